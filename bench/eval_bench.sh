#!/usr/bin/env bash
# The code-evaluation harness (see bench/README.md, "eval_bench.sh"): the sandbox's cost per run
# against a plain fork and exec of the same binary (bench/sandbox_overhead.c), and the
# harness's throughput on the project's problem set with the canonical solutions, one worker
# and one per core. Output: the JSON of the overhead run and the harness summaries under $OUT.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
OUT=${OUT:-bench/out/eval}
RUNS=${RUNS:-200}
mkdir -p "$OUT"
cc -O2 -std=c11 -D_GNU_SOURCE -Ieval -Icore bench/sandbox_overhead.c "$BUILD/eval/libtm_eval.a" \
  "$BUILD/core/libtm_core.a" -lseccomp -lpthread -o "$OUT/sandbox_overhead"
"$OUT/sandbox_overhead" "$RUNS" | tee "$OUT/overhead.json"
for j in 1 0; do
  "$BUILD/tokenmill" eval code --problems eval/problems/tokenmill_c.jsonl --canonical -j $j \
    --out "$OUT/canonical-j$j" --no-progress >"$OUT/canonical-j$j.txt"
  python3 -c "import json,sys; s=json.load(open(sys.argv[1])); print(f\"-j $j: {s['samples']} problems in {s['seconds']:.2f} s, {s['samples_per_s']:.2f} problems/s ({s['workers']} workers), pass@1 {s['pass_at_k']['1']}\")" "$OUT/canonical-j$j/summary.json"
done
