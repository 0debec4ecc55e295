#!/usr/bin/env bash
# kill -9 at random moments during `tokenmill run` of a whole pipeline (ingest, filter, dedup,
# train-vocab, tokenize, train, eval-bpb), then one uninterrupted rerun: the final state is that
# of an uninterrupted run on another workdir, by content. Inputs: license texts (near duplicates:
# GPL-2 and GPL-3, LGPL-2.1 and LGPL-3, a copy of GPL-3 with one line changed) and a generated
# JSONL of 25,000 synthetic documents (exact and near duplicates, some too short or with curly
# braces for the filter); small commit batches, spills and shards, so that killed stages leave
# partial work; a 12-step training run with a checkpoint every 2 steps.
# Three phases: 1. the first run; 2. a refresh (two more license texts and a second JSONL, with
# duplicates of the first's, added to the inputs; training continues 4 steps past the first
# run's end, continue-steps); 3. a stricter filter setting (every generation filtered again,
# then deduplicated and tokenized again, training continued 4 steps on the new shards): the
# redo the filter owes the later stages must survive kills between them.
# In each phase, on workdir A one uninterrupted run; on workdir B runs killed at random moments
# within a third of A's run time (kill_runs: at least 3 killed, up to 12, until one ends first),
# then a rerun. Asserted:
# - no run on B found the workdir locked or failed (rather than being killed); the rerun exits 0
#   with its summary line;
# - nothing is left undecided (filter and dedup --export decide nothing more) and WORKDIR/tmp is
#   empty, in A and B;
# - the newest checkpoint of A is ckpt-12 after phase 1, ckpt-16 after the refresh and ckpt-20
#   after the filter change;
# - A and B have byte for byte the same: filter decisions and dedup decisions (--export); the
#   store's `inspect` counts and `inspect --list` (id, domain, language, bytes, xxh3 of the text,
#   source of every document); the sha256 of every file under WORKDIR/tokens (shards, by
#   relative name); vocab.tiktoken; vocab.tiktoken.json less training.seconds (a duration); the
#   names in WORKDIR/train; the newest checkpoint's name and the sha256 of each of its files;
#   train/metrics.jsonl less tokens_per_s (a throughput) in every line; eval/bpb.json less
#   seconds, the workdir's path in it replaced.
# It prints the stage each killed run was in.
source "$(dirname "$0")/lib.sh"

# ---- inputs --------------------------------------------------------------------------------
mkdir -p "$T/in" "$T/more"
for f in GPL-2 GPL-3 LGPL-2.1 LGPL-3 Apache-2.0 MPL-2.0 BSD; do
  cp "/usr/share/common-licenses/$f" "$T/in/$f.txt"
done
sed '40s/.*/This line was changed in the copy./' /usr/share/common-licenses/GPL-3 >"$T/in/GPL-3-edited.txt"
cp /usr/share/common-licenses/Artistic "$T/more/Artistic.txt"
cp /usr/share/common-licenses/MPL-1.1 "$T/more/MPL-1.1.txt"
cat >"$T/gen.py" <<'PY'
import json, random, sys
# gen.py SEED N OUT [EARLIER.jsonl]: N documents; duplicates are also drawn from EARLIER's.
seed, n, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
rng = random.Random(seed)
stop = "the be to of and that have with a in is for on".split()
words = ("mill token river stone garden window letter market winter summer engine signal "
         "harbor forest valley bridge lantern copper silver orchard meadow village station "
         "teacher student chapter record module compiler kernel buffer channel packet vector "
         "matrix sample measure weather season journey traveler account reason answer "
         "question number figure pattern surface texture marble canvas ribbon velvet thunder "
         "morning evening shadow mirror silence harvest").split()
pool = stop * 3 + words
def doc(lo, hi):
    ws = rng.choices(pool, k=rng.randint(lo, hi))
    out, i = [], 0
    while i < len(ws):
        k = rng.randint(6, 14)
        out.append(" ".join(ws[i:i + k]).capitalize() + ".")
        i += k
    return " ".join(out)
seen = [json.loads(l)["text"] for l in open(sys.argv[4])] if len(sys.argv) > 4 else []
docs = []
for i in range(n):
    r = rng.random()
    if r < 0.1 and seen:
        t = rng.choice(seen)                                      # exact duplicate
    elif r < 0.2 and seen:
        w = rng.choice(seen).split(" ")
        w[rng.randrange(len(w))] = rng.choice(words)              # near duplicate
        t = " ".join(w)
    elif r < 0.27:
        t = doc(5, 40)                                            # too short: filtered
    elif r < 0.3:
        t = doc(80, 150) + " {" + rng.choice(words) + "}"         # curly braces: filtered
    else:
        t = doc(80, 300)
    docs.append(t)
    seen.append(t)
with open(path, "w") as f:
    for i, t in enumerate(docs):
        f.write(json.dumps({"id": "%d-%d" % (seed, i), "text": t}) + "\n")
PY
python3 "$T/gen.py" 5 25000 "$T/in/docs.jsonl"
python3 "$T/gen.py" 6 3000 "$T/more/docs2.jsonl" "$T/in/docs.jsonl"

# ---- the pipeline ----------------------------------------------------------------------------
# Small commit batches, spills and shards, so that a killed stage leaves partial work; one
# thread everywhere (the results do not depend on it, but CI has few cores).
STEPS=12
CONTINUE=4
{
  tiny_moe_model 520
  printf '[train]\nsteps = %d\nbatch = 96\nseq = 32\nwarmup = 1\neval_every = 4\n' "$STEPS"
  printf 'eval_batches = 1\nckpt_every = 2\nthreads = 1\n'
} >"$T/model.ini"
# Continued training on each refresh: CONTINUE updates past the newest checkpoint.
train_more="continue-steps = $CONTINUE"
{
  printf '[pipeline]\nworkdir = %s/A\nsrc = %s\n' "$T" "$T"
  printf '[ingest]\ninputs = ${src}/in\nbatch-docs = 1000\n'
  printf '[filter]\nbatch-docs = 1000\nthreads = 1\n'
  printf '[dedup]\nmemory = 256K\nthreads = 1\n'
  printf '[train-vocab]\nvocab-size = 512\nthreads = 1\n'
  printf '[tokenize]\nval-fraction = 0.2\nshard-tokens = 500000\nchunk-tokens = 65536\n'
  printf 'batch-size = 512K\nthreads = 1\n'
  printf '[train]\nconfig = ${pipeline_dir}/model.ini\n%s\n' "$train_more"
  printf '[eval-bpb]\nmax-docs = 4\n'
} >"$T/p.ini"

# state W OUT: the final state of workdir W, as files under OUT to compare.
state() {
  local w=$1 o=$2 ck
  mkdir -p "$o"
  # The exports decide what is still undecided first: there must be nothing left.
  tm filter --workdir "$w" --no-progress --export "$o/filter.jsonl"
  expect_rc 0 "filter --export ($w)"
  expect_grep "$T/out" "^filter: decided 0 now" "every document was filtered ($w)"
  tm dedup --workdir "$w" --no-progress --export "$o/dedup.jsonl"
  expect_rc 0 "dedup --export ($w)"
  expect_grep "$T/out" "^dedup: 0 generation" "every document was deduplicated ($w)"
  tm inspect --workdir "$w" --no-progress
  expect_rc 0 "inspect ($w)"
  cp "$T/out" "$o/inspect.txt"
  tm inspect --workdir "$w" --no-progress --list
  expect_rc 0 "inspect --list ($w)"
  cp "$T/out" "$o/list.txt"
  (cd "$w/tokens" && find . -type f -print0 | sort -z | xargs -0 sha256sum) >"$o/tokens.sha256"
  cp "$w/vocab.tiktoken" "$o/vocab.tiktoken"
  [ -z "$(ls -A "$w/tmp" 2>/dev/null)" ] || fail "files left behind in $w/tmp: $(ls "$w/tmp")"
  ok
  ls "$w/train" >"$o/train.ls"
  ck=$(cd "$w/train" && ls -d ckpt-* | grep -E '^ckpt-[0-9]+$' | sort -t- -k2 -n | tail -n 1)
  echo "$ck" >"$o/ckpt.txt"
  (cd "$w/train/$ck" && find . -type f -print0 | sort -z | xargs -0 sha256sum) >>"$o/ckpt.txt"
  python3 - "$w" "$o" <<'PY'
import json, sys
w, o = sys.argv[1], sys.argv[2]
def strip(x, keys):
    if isinstance(x, dict):
        return {k: strip(v, keys) for k, v in x.items() if k not in keys}
    if isinstance(x, list):
        return [strip(v, keys) for v in x]
    if isinstance(x, str):
        return x.replace(w, "WORKDIR")
    return x
with open(o + "/metrics.jsonl", "w") as f:
    for line in open(w + "/train/metrics.jsonl"):
        f.write(json.dumps(strip(json.loads(line), {"tokens_per_s"}), sort_keys=True) + "\n")
for src, dst, drop in (("vocab.tiktoken.json", "vocab.json", {"seconds"}),
                       ("eval/bpb.json", "bpb.json", {"seconds"})):
    json.dump(strip(json.load(open(w + "/" + src)), drop), open(o + "/" + dst, "w"),
              sort_keys=True, indent=1)
PY
}

# compare WHAT: the states of A and B after phase WHAT.
compare() {
  local f
  for f in filter.jsonl dedup.jsonl inspect.txt list.txt tokens.sha256 vocab.tiktoken vocab.json \
    train.ls ckpt.txt metrics.jsonl bpb.json; do
    [ -s "$T/sA/$f" ] || fail "$1: empty $f from the uninterrupted run"
    cmp -s "$T/sA/$f" "$T/sB/$f" || {
      diff "$T/sA/$f" "$T/sB/$f" | head -20 | cut -c 1-300
      fail "$1: $f after kills differs from the uninterrupted run (< uninterrupted, > killed)"
    }
    ok
  done
}

# phase WHAT STEP: the uninterrupted run on A, then killed runs and a rerun on B; compares their
# states, the newest checkpoint being ckpt-STEP.
phase() {
  local start ref_ns f
  start=$(date +%s%N)
  tm run "$T/p.ini" --no-progress "${EXTRA[@]}"
  expect_rc 0 "$1: uninterrupted run"
  ref_ns=$(($(date +%s%N) - start))
  echo "$1: uninterrupted run: $((ref_ns / 1000000)) ms"
  # Each kill within the first third of a whole run: a resumed run goes on where the last one
  # was killed, so the kills walk through the stages (ingest early, train late) until a run
  # ends first, and the first 3 always land. Each run's output goes to its own file (exec: the
  # pid killed is tokenmill's): where the kills landed (the last stage a run printed; "+": it
  # had nothing to do, the next was being planned), and no run found the workdir locked or
  # failed instead of being killed.
  rm -rf "$T/runs"
  mkdir -p "$T/runs"
  kill_runs "$ref_ns" 3 12 3 sh -c 'exec "$@" >"$0/$$.out" 2>&1' "$T/runs" \
    "$TOKENMILL" run "$T/p.ini" --no-progress --set "pipeline.workdir=$T/B" "${EXTRA[@]}"
  echo "$1: killed in: $(for f in $(ls -tr "$T/runs"); do
    awk '/^run: [^ :]+: / { s = $2; sub(":", "", s); if (/nothing to do/) s = s "+" }
         /^run: \// { s = "(finished)" } END { printf "%s ", s ? s : "(before-a-stage)" }' "$T/runs/$f"
  done)"
  cat "$T/runs"/* >"$T/runs.txt"
  expect_no_grep "$T/runs.txt" "is locked|error: run: " "$1: a killed run's rerun"
  tm run "$T/p.ini" --no-progress --set "pipeline.workdir=$T/B" "${EXTRA[@]}"
  expect_rc 0 "$1: rerun after the kills"
  expect_no_grep "$T/err" "locked" "$1: the killed runs' locks were released"
  expect_grep "$T/out" "^run: $T/B: [0-9]+ stages in [0-9.]+ s.*, done$" "$1: the rerun's summary"
  rm -rf "$T/sA" "$T/sB"
  state "$T/A" "$T/sA"
  state "$T/B" "$T/sB"
  expect_eq "$(head -n 1 "$T/sA/ckpt.txt")" "ckpt-$2" "$1: the newest checkpoint"
  compare "$1"
}

EXTRA=()
phase "first run" "$STEPS"
cp "$T/more"/* "$T/in/"
phase "refresh" $((STEPS + CONTINUE))
EXTRA=(--set filter.set=text.gopher_min_words=120)
phase "stricter filter" $((STEPS + 2 * CONTINUE))
expect_grep "$T/runs.txt" "run: filter: filter --workdir=$T/B --redo-stale " "the filter was redone"
done_checks
