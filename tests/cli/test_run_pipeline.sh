#!/usr/bin/env bash
# tokenmill run: a pipeline file over license texts through every stage (ingest, filter, dedup,
# train-vocab, tokenize, train, eval-bpb, eval-code, report).
# - the first run runs each stage in graph order with the section's keys as its options and
#   ${variables} (from [pipeline], ${workdir}, ${pipeline_dir}) interpolated, trains the
#   vocabulary because its file is missing, and ends with the summary line and a report; its
#   log lines (and the stages') are also in WORKDIR/logs/run-<time>-<pid>.log;
# - a rerun with nothing new does nothing new: no documents ingested, no shard written, the
#   vocabulary not retrained;
# - a new input file: the refresh ingests only it (one new generation) and tokenizes it into
#   one new shard, and the report's history lists the three runs (4, 0 and 1 documents
#   ingested, three BPB evaluations) with the corpus summed over them;
# - --dry-run prints the plan and changes nothing; --only runs one stage; --set of a [pipeline]
#   variable wins over the file's value wherever the file uses it;
# - a second run while one holds the lock exits 4 at once, naming the lock;
# - a bad value and an unknown variable are refused with exit 2 naming the file and line,
#   before any stage runs.
source "$(dirname "$0")/lib.sh"

mkdir -p "$T/in"
for f in GPL-3 Apache-2.0 MPL-2.0 BSD; do cp "/usr/share/common-licenses/$f" "$T/in/$f.txt"; done
{ tiny_moe_model 520; printf '[train]\nsteps = 6\nbatch = 2\nseq = 32\nwarmup = 1\neval_every = 3\neval_batches = 1\n'; } >"$T/model.ini"
head -n 2 "$TM_SRC/eval/problems/tokenmill_c.jsonl" >"$T/p.jsonl"
{
  printf '[pipeline]\nworkdir = %s/w\nsrc = %s\n' "$T" "$T"
  printf '[ingest]\ninputs = ${src}/in\n[filter]\n[dedup]\n'
  printf '[train-vocab]\nvocab-size = 512\n[tokenize]\nval-fraction = 0.2\n'
  printf '[train]\nconfig = ${pipeline_dir}/model.ini\n[eval-bpb]\nmax-docs = 5\n'
  printf '[eval-code]\nproblems = ${src}/p.jsonl\ncanonical = yes\n[report]\n'
} >"$T/p.ini"

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
expect_grep "${logs[0]}" "info: run: 9 stages, done" "the log ends with the run's end"
expect_grep "${logs[0]}" "checkpoint .*ckpt-6" "the stages' log lines are in it"
shards() { ls -d "$T/w/tokens"/shard-* | wc -l; }
expect_eq "$(shards)" 1 "one shard"
cp "$T/w/vocab.tiktoken" "$T/vocab.before"

tm run "$T/p.ini" --no-progress
expect_rc 0 "rerun"
expect_grep "$T/out" "^run: train-vocab: skipped, $T/w/vocab.tiktoken exists" "vocabulary kept"
expect_eq "$(jget "$T/w/stats/ingest.json" documents.total)" 0 "rerun ingests nothing"
expect_eq "$(shards)" 1 "rerun writes no shard"
cmp -s "$T/vocab.before" "$T/w/vocab.tiktoken" || fail "the vocabulary changed"
ok

cp /usr/share/common-licenses/Artistic "$T/in/Artistic.txt"
tm run "$T/p.ini" --no-progress
expect_rc 0 "refresh"
expect_eq "$(jget "$T/w/stats/ingest.json" documents.total)" 1 "the refresh ingests the new file only"
expect_eq "$(jget "$T/w/stats/ingest.json" generation)" 2 "in a new generation"
expect_eq "$(shards)" 2 "and tokenizes it into one new shard"
python3 - "$T/w/report/report.json" <<'PY' || fail "the report's history"
import json, sys
r = json.load(open(sys.argv[1]))
ing = [x["documents"] for x in r["history"] if x["command"] == "ingest"]
assert ing == [4, 0, 1], ing
assert r["corpus"]["text"]["ingested"] == 5, r["corpus"]["text"]
assert len([x for x in r["history"] if x["command"] == "eval bpb"]) == 3
PY
ok

tm run "$T/p.ini" --dry-run --only dedup
expect_rc 0 "dry run"
expect_eq "$(grep -c '^run: ' "$T/out")" 1 "--only: one stage planned"
expect_grep "$T/out" "^run: dedup: dedup --workdir=$T/w" "the plan"

tm run "$T/p.ini" --dry-run --only ingest --set pipeline.src=/elsewhere
expect_rc 0 "dry run with a variable overridden"
expect_grep "$T/out" "^run: ingest: ingest --workdir=$T/w /elsewhere/in$" "--set of a variable wins over the file's, everywhere it is used"

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
echo "$TEST_NAME: $CHECKS checks passed"
