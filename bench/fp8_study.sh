#!/usr/bin/env bash
# The FP8 study (see bench/README.md, "fp8_study.sh"): the same MoE model, data and seed trained
# STEPS steps with precision = bf16 and with precision = fp8 (DeepSeek-V3's recipe, emulated),
# then the relative gap of the final training and validation losses (the seed's bound: 0.25%),
# the relative error of each Linear product kind against FP32 (the trainer's probe), the error
# of a K-long dot product against K with and without promotion (bench/fp8_numerics.c), bytes
# per parameter per mode, and each run's peak RSS.
# Results: a table on stdout, $JSON and $SVG (the loss curves and the gap); logs and metrics
# under $OUT.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
OUT=${OUT:-bench/out/fp8}
JSON=${JSON:-bench/out/fp8_study.json}
SVG=${SVG:-bench/out/fp8_study.svg}
STEPS=${STEPS:-2000}
THREADS=${THREADS:-2}
PROBE_EVERY=${PROBE_EVERY:-250}
PRECISIONS=${PRECISIONS:-"bf16 fp8"}
WMOE=${WMOE:-bench/out/train/wmoe}   # the MoE benchmark's workdir (train_bench.sh makes it)
mkdir -p "$OUT"
if [ ! -d "$WMOE/tokens" ]; then
  SKIP_DENSE=1 SKIP_MOE=1 bash bench/train_bench.sh >/dev/null
fi
# Our own copy of the binary, so a rebuild during the runs cannot change it under them.
cp "$BUILD/tokenmill" "$OUT/tokenmill"

# ---- the numerics: dot products against K ------------------------------------------------------
cc -O2 -std=c11 -D_GNU_SOURCE -Itrain -Icore bench/fp8_numerics.c "$BUILD/train/libtm_train.a" \
  "$BUILD/tokenize/libtm_tokenize.a" "$BUILD/core/libtm_core.a" \
  $(pkg-config --libs openblas lmdb libcjson libpcre2-8 libxxhash inih) -lm -lpthread \
  -o "$OUT/fp8_numerics"
"$OUT/fp8_numerics" >"$OUT/numerics.json"

# ---- the two training runs -------------------------------------------------------------------
for p in $PRECISIONS; do
  D="$OUT/$p"
  rm -rf "$D"
  mkdir -p "$D"
  cp -r "$WMOE" "$D/w"
  rm -rf "$D/w/train"
  cp bench/moe_model.ini "$D/cfg.ini"
  cat >>"$D/cfg.ini" <<INI
[train]
steps = $STEPS
batch = 8
seq = 64
lr = 3e-3
min_lr = 3e-4
warmup = $(( STEPS < 1000 ? STEPS / 10 : 100 ))
eval_every = 100
eval_batches = 32
ckpt_every = 0
keep_ckpts = 1
seed = 1
threads = $THREADS
precision = $p
fp8_probe_every = $PROBE_EVERY
INI
  echo "training $p, $STEPS steps" >&2
  /usr/bin/time -v "$OUT/tokenmill" train --workdir "$D/w" --config "$D/cfg.ini" --no-progress \
    >"$D/train.log" 2>"$D/train.err"
  cp "$D/w/train/metrics.jsonl" "$D/metrics.jsonl"
done

python3 bench/fp8_study.py "$OUT" "$JSON" "$SVG" $PRECISIONS
