#!/usr/bin/env bash
# tokenmill run: a pipeline file over license texts through every stage (ingest, filter, dedup,
# train-vocab, tokenize, train, eval-bpb, eval-code, report).
# - the first run runs each stage in graph order with the section's keys as its options and
#   ${variables} (from [pipeline], ${workdir}, ${pipeline_dir}) interpolated, trains the
#   vocabulary because its file is missing, and ends with the summary line and a report; its
#   log lines (and the stages') are also in WORKDIR/logs/run-<time>-<pid>.log;
# - --dry-run on the empty workdir plans every stage (generation 1 for filter, dedup and
#   tokenize, once ingest has run) and changes nothing;
# - a rerun with nothing new runs no stage, each saying why (inputs unchanged, generation 1
#   done, the checkpoint at the run's end, nothing changed since the last evaluation);
# - a new input file: the dry run names generation 2 for ingest, filter, dedup and tokenize;
#   the refresh ingests only it (one new generation), tokenizes it into one new shard,
#   continues training 3 steps past ckpt-6 (continue-steps), evaluates again, and the report's
#   history lists the two runs that did work (4 and 1 documents ingested, two BPB
#   evaluations) with the corpus summed over them;
# - a changed filter setting re-filters every generation (--redo), and the dedup and tokenize
#   redo theirs after it; stopped after the filter (--only filter), the filter's new epoch
#   (recorded before it ran) makes the next run's dedup and tokenize redo (--input-epoch);
#   the shards then hold only what the new filter keeps;
# - another vocabulary size: a new vocabulary, every generation re-tokenized (--redo) and
#   training started over (--fresh), because the checkpoints are of the old tokenizer;
# - a vocabulary file the pipeline did not make is never retrained over;
# - queries (inspect, filter --explain and --dry-run, dedup --print-config) keep no statistics;
# - --only runs one stage; --set of a [pipeline] variable wins over the file's value wherever
#   the file uses it;
# - a second run while one holds the lock exits 4 at once, naming the lock;
# - a bad value, an unknown variable, an unknown section and the pipeline's own input-epoch
#   are refused with exit 2 naming the file and line, before any stage runs.
source "$(dirname "$0")/lib.sh"

mkdir -p "$T/in"
for f in GPL-3 Apache-2.0 MPL-2.0 BSD; do cp "/usr/share/common-licenses/$f" "$T/in/$f.txt"; done
{ tiny_moe_model 520; printf '[train]\nsteps = 6\nbatch = 2\nseq = 32\nwarmup = 1\neval_every = 3\neval_batches = 1\n'; } >"$T/model.ini"
head -n 2 "$TM_SRC/eval/problems/tokenmill_c.jsonl" >"$T/p.jsonl"
{
  printf '[pipeline]\nworkdir = %s/w\nsrc = %s\n' "$T" "$T"
  printf '[ingest]\ninputs = ${src}/in\n[filter]\n[dedup]\n'
  printf '[train-vocab]\nvocab-size = 512\n[tokenize]\nval-fraction = 0.2\n'
  printf '[train]\nconfig = ${pipeline_dir}/model.ini\ncontinue-steps = 3\n[eval-bpb]\nmax-docs = 5\n'
  printf '[eval-code]\nproblems = ${src}/p.jsonl\ncanonical = yes\n[report]\n'
} >"$T/p.ini"

tm run "$T/p.ini" --dry-run
expect_rc 0 "dry run on an empty workdir"
expect_grep "$T/out" "^run: ingest: 4 inputs: 4 new, .*; into generation 1$" "ingest's plan"
expect_grep "$T/out" "^run: filter: no documents yet; generation 1, once ingest has run$" "filter's plan"
expect_grep "$T/out" "^run: tokenize: tokenize --workdir=$T/w --vocab=$T/w/vocab.tiktoken" "tokenize planned"
expect_grep "$T/out" "^run: train: steps 0 to 6" "train's plan"
[ ! -e "$T/w/store" ] || fail "the dry run made a store"
ok

tm run "$T/p.ini" --no-progress
expect_rc 0 "first run"
expect_grep "$T/out" "^run: $T/w: 9 stages in [0-9.]+ s, done$" "summary line"
expect_grep "$T/out" "^run: train: train --workdir=$T/w --config=$T/model.ini" "pipeline_dir interpolated"
for f in vocab.tiktoken report/report.html eval/bpb.json eval/code/summary.json train/ckpt-6/model.safetensors; do
  [ -s "$T/w/$f" ] || fail "no $f after the first run"
done
ok
logs=("$T/w/logs"/run-*.log)
expect_eq "${#logs[@]}" 1 "one log file per run"
expect_grep "${logs[0]}" "info: run: 9 stages run, 0 with nothing to do, done" "the log ends with the run's end"
expect_grep "${logs[0]}" "checkpoint .*ckpt-6" "the stages' log lines are in it"
shards() { ls -d "$T/w/tokens"/shard-* | wc -l; }
expect_eq "$(shards)" 1 "one shard"
cp "$T/w/vocab.tiktoken" "$T/vocab.before"

tm run "$T/p.ini" --no-progress
expect_rc 0 "rerun"
expect_grep "$T/out" "^run: $T/w: 0 stages in [0-9.]+ s \(9 with nothing to do\), done$" "rerun runs nothing"
expect_grep "$T/out" "^run: the report: $T/w/report/report.html$" "where the report is, even when nothing ran"
expect_grep "$T/out" "^run: ingest: nothing to do: 4 inputs: 0 new, 0 changed .*4 unchanged$" "why not ingest"
expect_grep "$T/out" "^run: filter: nothing to do: generation 1 done$" "why not filter"
expect_grep "$T/out" "^run: train-vocab: nothing to do: $T/w/vocab.tiktoken exists" "vocabulary kept"
expect_grep "$T/out" "^run: train: nothing to do: ckpt-6 is the end of the run" "why not train"
expect_grep "$T/out" "^run: eval-bpb: nothing to do: nothing changed since the last evaluation" "why not eval"
expect_eq "$(shards)" 1 "rerun writes no shard"
cmp -s "$T/vocab.before" "$T/w/vocab.tiktoken" || fail "the vocabulary changed"
ok

cp /usr/share/common-licenses/Artistic "$T/in/Artistic.txt"
tm run "$T/p.ini" --dry-run
expect_rc 0 "dry run of the refresh"
expect_grep "$T/out" "^run: ingest: 5 inputs: 1 new, 0 changed .*4 unchanged; into generation 2$" "ingest names the new generation"
expect_grep "$T/out" "^run: dedup: generation 1 done; generation 2, once ingest has run$" "dedup's plan"
tm run "$T/p.ini" --no-progress
expect_rc 0 "refresh"
expect_grep "$T/out" "^run: train: steps 6 to 9 \(the shards changed since the newest checkpoint\)$" "training continues"
[ -s "$T/w/train/ckpt-9/model.safetensors" ] || fail "no ckpt-9 after the refresh"
ok
expect_eq "$(jget "$T/w/stats/ingest.json" documents.total)" 1 "the refresh ingests the new file only"
expect_eq "$(jget "$T/w/stats/ingest.json" generation)" 2 "in a new generation"
expect_eq "$(shards)" 2 "and tokenizes it into one new shard"
python3 - "$T/w/report/report.json" <<'PY' || fail "the report's history"
import json, sys
r = json.load(open(sys.argv[1]))
ing = [x["documents"] for x in r["history"] if x["command"] == "ingest"]
assert ing == [4, 1], ing
assert r["corpus"]["text"]["ingested"] == 5, r["corpus"]["text"]
assert len([x for x in r["history"] if x["command"] == "eval bpb"]) == 2
PY
ok

# A stricter filter: every generation filtered again, then dedup and tokenize redone.
strict=(--set filter.set=text.gopher_min_words=1000)
tm run "$T/p.ini" --dry-run --only dedup "${strict[@]}"
expect_rc 0 "dry run"
expect_eq "$(grep -c '^run: ' "$T/out")" 1 "--only: one stage planned"
expect_grep "$T/out" "^run: dedup: nothing to do: generations 1-2 done$" "the plan"
tm run "$T/p.ini" --no-progress --only filter "${strict[@]}"
expect_rc 0 "a stricter filter, alone"
expect_grep "$T/out" "^run: filter: generations 1-2 done with other settings; so --redo-stale: those generations again$" "why filter redoes"
expect_grep "$T/out" "^run: filter: filter --workdir=$T/w --redo-stale " "--redo-stale"
kept=$(jget "$T/w/stats/filter.json" filter.total.kept)
[ "$kept" -lt 5 ] && [ "$kept" -gt 0 ] || fail "the stricter filter should remove some of the 5 licenses, kept $kept"
ok
tm run "$T/p.ini" --no-progress "${strict[@]}"
expect_rc 0 "the rest of the redo"
expect_grep "$T/out" "^run: filter: nothing to do: generations 1-2 done$" "the filter is not redone twice"
expect_grep "$T/out" "^run: dedup: generations 1-2 done with other settings; so --redo: every generation again$" "dedup redoes: the filter's redo started a new epoch"
expect_grep "$T/out" "^run: dedup: dedup --workdir=$T/w --redo --input-epoch=f1$" "the filter's epoch"
expect_grep "$T/out" "^run: tokenize: .*; so --redo: every generation again, after the dedup's redo$" "tokenize redoes, after the dedup"
expect_grep "$T/out" "^run: tokenize: tokenize --workdir=$T/w --vocab=$T/w/vocab.tiktoken --redo --input-epoch=f1.d1 " "both epochs"
python3 - "$T/w/tokens" "$kept" <<'PY' || fail "the shards after the redo"
import json, os, sys
d, kept = sys.argv[1], int(sys.argv[2])
t = json.load(open(os.path.join(os.path.dirname(d), "stats", "tokenize.json")))["tokenize"]
docs = sum(t[sp][dom]["docs"] for sp in ("train", "val") for dom in ("text", "math", "code"))
assert t["generations"] == 2 and docs == kept, (t["generations"], docs, kept)
PY
ok

# Another vocabulary size: a new vocabulary, every generation re-tokenized, training from step 0.
tm run "$T/p.ini" --no-progress "${strict[@]}" --set train-vocab.vocab-size=500
expect_rc 0 "a new vocabulary"
expect_grep "$T/out" "^run: train-vocab: its settings changed: a new $T/w/vocab.tiktoken" "vocabulary retrained"
expect_grep "$T/out" "^run: tokenize: .*; so --redo: every generation again, after the new vocabulary$" "re-tokenized"
expect_grep "$T/out" "^run: train: ckpt-[0-9]+ was trained on shards of another tokenizer; so --fresh: training starts over, after the new vocabulary$" "why train starts over"
expect_eq "$(cd "$T/w/train" && ls -d ckpt-* | tr '\n' ' ')" "ckpt-6 " "trained from scratch to [train] steps"
expect_eq "$(jget "$T/w/train/ckpt-6/config.json" model.vocab_size)" 520 "the same model"
ok

tm run "$T/p.ini" --dry-run --only ingest --set pipeline.src=/elsewhere
expect_rc 0 "dry run with a variable overridden"
expect_grep "$T/out" "^run: ingest: ingest --workdir=$T/w /elsewhere/in$" "--set of a variable wins over the file's, everywhere it is used"

# A vocabulary the pipeline did not make is never retrained over, whatever [train-vocab] says.
cp "$T/w/vocab.tiktoken" "$T/ext.tiktoken"
cp "$T/w/vocab.tiktoken.json" "$T/ext.tiktoken.json"
tm run "$T/p.ini" --no-progress --only train-vocab --set "pipeline.vocab=$T/ext.tiktoken" --set train-vocab.vocab-size=400
expect_rc 0 "train-vocab with a vocabulary of our own"
expect_grep "$T/out" "^run: train-vocab: nothing to do: $T/ext.tiktoken exists \\(not made by this pipeline: kept\\)$" "kept"
cmp -s "$T/w/vocab.tiktoken" "$T/ext.tiktoken" || fail "a vocabulary the pipeline did not make was overwritten"
ok

# Queries keep no statistics: they would replace the last real run's, which the report reads.
cp "$T/w/stats/filter.json" "$T/filter.before"
lines=$(wc -l <"$T/w/stats/history.jsonl")
tm inspect --workdir "$T/w"
expect_rc 0 "inspect"
tm inspect --workdir "$T/w" --list
expect_rc 0 "inspect --list"
tm filter --workdir "$T/w" --explain "$(head -n 1 "$T/out" | cut -f 1)"
expect_rc 0 "filter --explain"
expect_grep "$T/out" "^decision: " "an explanation"
tm filter --workdir "$T/w" --dry-run --no-progress
expect_rc 0 "filter --dry-run"
tm dedup --workdir "$T/w" --print-config
expect_rc 0 "dedup --print-config"
cmp -s "$T/filter.before" "$T/w/stats/filter.json" || fail "a query replaced stats/filter.json"
expect_eq "$(wc -l <"$T/w/stats/history.jsonl")" "$lines" "queries add no history lines"

flock "$T/w/pipeline/lock" sleep 5 &
holder=$!
sleep 0.5
tm run "$T/p.ini" --no-progress
expect_rc 4 "a second run while the lock is held"
expect_grep "$T/err" "$T/w/pipeline is locked" "names the lock"
kill "$holder" 2>/dev/null || true
wait "$holder" 2>/dev/null || true

printf '[pipeline]\nworkdir = %s/w\n[filter]\nthreads = many\n' "$T" >"$T/bad1.ini"
tm run "$T/bad1.ini"
expect_rc 2 "bad value"
expect_grep "$T/err" "bad1.ini:4:.*threads" "file, line and key"
printf '[pipeline]\nworkdir = %s/w\n[ingest]\ninputs = ${nowhere}/x\n' "$T" >"$T/bad2.ini"
tm run "$T/bad2.ini"
expect_rc 2 "unknown variable"
expect_grep "$T/err" 'bad2.ini:4: unknown variable \$\{nowhere\}' "names the variable"
printf '[pipeline]\nworkdir = %s/w\n[fliter]\nx = 1\n' "$T" >"$T/bad3.ini"
tm run "$T/bad3.ini"
expect_rc 2 "unknown section"
expect_grep "$T/err" "bad3.ini:4: unknown section \[fliter\]" "names the section"
printf '[pipeline]\nworkdir = %s/w\n[dedup]\ninput-epoch = f9\n' "$T" >"$T/bad4.ini"
tm run "$T/bad4.ini"
expect_rc 2 "the pipeline's own key"
expect_grep "$T/err" "bad4.ini:4: input-epoch is the pipeline's own" "names the key"
echo "$TEST_NAME: $CHECKS checks passed"
