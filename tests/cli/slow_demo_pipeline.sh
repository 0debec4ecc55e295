#!/usr/bin/env bash
# The README's main job, shortened: pipelines/demo.ini on the embedded default corpus with
# training stopped after 4 steps (--set train.until=4), 2 documents per domain for bits per
# byte and 8 tokens per code completion. Every stage runs and succeeds, the report names all
# its sections with data, the FP8 run logs its probe, and the code evaluation classified all
# 54 problems.
source "$(dirname "$0")/lib.sh"
W="$T/demo"
tm run "$TM_SRC/pipelines/demo.ini" --no-progress --set "pipeline.workdir=$W" \
  --set train.until=4 --set eval-bpb.max-docs=2 --set eval-code.max-tokens=8
case "$RC" in 0 | 3) ok ;; *) { cat "$T/err" | tail -20; fail "demo pipeline exited $RC"; } >&2 ;; esac
expect_grep "$T/out" "^run: $W: 9 stages in [0-9.]+ s, done" "every stage ran"
python3 - "$W" <<'PY' || fail "demo results"
import json, sys
w = sys.argv[1]
r = json.load(open(f"{w}/report/report.json"))
tasks = {x["task"] for x in r["results"]}
assert {"bpb/overall", "code", "validation"} <= tasks, tasks
code = json.load(open(f"{w}/eval/code/summary.json"))
assert code["samples"] == 54 and sum(code["outcomes"].values()) == 54, code
metrics = [json.loads(l) for l in open(f"{w}/train/metrics.jsonl")]
assert any("fp8_rel_err" in m for m in metrics), "the fp8 probe"
cfg = json.load(open(f"{w}/train/ckpt-4/config.json"))
assert cfg["train"]["precision"] == "fp8", cfg["train"]
PY
ok
echo "$TEST_NAME: $CHECKS checks passed"
