#!/usr/bin/env bash
# Training benchmarks (see bench/README.md, "train_bench.sh"):
#  (1) dense: tokens/s of `tokenmill train` against llm.c's CPU reference trainer (train_gpt2.c,
#      built outside the repository from $LLMC_DIR/train_gpt2.c) at the same shape, interleaved
#      in $ROUNDS rounds on the same machine;
#  (2) MoE: a small MoE model trained $MOE_STEPS steps once per router bias_gamma in $GAMMAS,
#      for tokens/s, the loss curves and the expert load balance.
# Results: tables on stdout, bench/out/train_bench.json; logs and metrics under bench/out/train.
set -euo pipefail
cd "$(dirname "$0")/.."
TM=${TOKENMILL:-build/tokenmill}
LLMC_DIR=${LLMC_DIR:-/tmp/llmc}          # holds train_gpt2.c (llm.c's public source); built here
INPUTS=${LLMC_INPUTS:-../shared/bench/llmc_inputs.py}
CORPORA=${CORPORA:-../shared/corpora}
R50K=${R50K:-../shared/vocab/r50k_base.tiktoken}
OUT=${OUT:-bench/out/train}
ROUNDS=${ROUNDS:-3}
THREADS=${THREADS:-2}
LAYERS=${LAYERS:-4} DMODEL=${DMODEL:-256} HEADS=${HEADS:-8}
LLMC_STEPS=${LLMC_STEPS:-12}             # llm.c steps 0..N (stopped after step N)
TM_STEPS=${TM_STEPS:-20}
DFFS=${DFFS:-"1024 683"}                 # 4*D (llm.c's MLP width) and 8*D/3 (FLOP-matched SwiGLU)
MOE_STEPS=${MOE_STEPS:-300}
GAMMAS=${GAMMAS:-"0.001 0 0.01"}
SKIP_DENSE=${SKIP_DENSE:-0} SKIP_MOE=${SKIP_MOE:-0}
T=64 B=4 V=50257                          # llm.c's main hard-codes B=4, T=64
HERE=$PWD
PY="python3 $HERE/bench/train_bench.py"
mkdir -p "$OUT"
# WikiText-2 articles and tiny Shakespeare pieces as JSONL documents (a random tenth of them is
# the validation split)
[ -f "$OUT/docs.jsonl" ] || $PY docs "$CORPORA" "$OUT/docs.jsonl"
TEXTS=("$OUT/docs.jsonl")

# ---- inputs -----------------------------------------------------------------------------------
if [ ! -d "$OUT/w50k/tokens" ]; then
  rm -rf "$OUT/w50k"
  "$TM" ingest --workdir "$OUT/w50k" --no-progress "${TEXTS[@]}"
  "$TM" tokenize --workdir "$OUT/w50k" --vocab "$R50K" --require none --val-fraction 0.1 --no-progress
fi
if [ ! -d "$OUT/wmoe/tokens" ]; then
  rm -rf "$OUT/wmoe"
  "$TM" ingest --workdir "$OUT/wmoe" --no-progress "${TEXTS[@]}"
  "$TM" tokenize train-vocab --workdir "$OUT/wmoe" --vocab-size 4096 --out "$OUT/wmoe/v.tiktoken" --require none --no-progress
  "$TM" tokenize --workdir "$OUT/wmoe" --vocab "$OUT/wmoe/v.tiktoken" --require none --val-fraction 0.1 --no-progress
fi
cat >"$OUT/bench_env.json" <<EOF
{"tokenmill": "$TM", "llmc_dir": "$LLMC_DIR", "threads": $THREADS, "layers": $LAYERS, "d_model": $DMODEL,
 "heads": $HEADS, "vocab": $V, "T": $T, "B": $B, "rounds": $ROUNDS, "llmc_steps": $LLMC_STEPS,
 "tm_steps": $TM_STEPS, "nproc": $(nproc), "cpu": "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"}
EOF

# ---- (1) dense against llm.c ------------------------------------------------------------------
if [ "$SKIP_DENSE" = 0 ]; then
  [ -f "$LLMC_DIR/train_gpt2.c" ] || { echo "no $LLMC_DIR/train_gpt2.c (llm.c's source; see bench/README.md)" >&2; exit 1; }
  if [ ! -x "$LLMC_DIR/train_gpt2" ] || [ "$LLMC_DIR/train_gpt2.c" -nt "$LLMC_DIR/train_gpt2" ]; then
    # the flags of llm.c's Makefile for the CPU trainer with OpenMP
    gcc -Ofast -march=native -fopenmp -DOMP -Wno-unused-result "$LLMC_DIR/train_gpt2.c" -lm -o "$LLMC_DIR/train_gpt2"
  fi
  S="$LLMC_DIR/shape-L$LAYERS-C$DMODEL-H$HEADS"
  if [ ! -f "$S/gpt2_124M.bin" ]; then
    python3 "$INPUTS" "$S" --layers "$LAYERS" --heads "$HEADS" --channels "$DMODEL" --max-seq $T --vocab $V
    # the stored train_gpt2.c reads checkpoint version 1 and int32 token files under data/
    if grep -q 'model_header\[1\] != 1' "$LLMC_DIR/train_gpt2.c"; then $PY llmc-convert "$S"; fi
  fi
  ln -sf "$LLMC_DIR/train_gpt2" "$S/train_gpt2"
  for dff in $DFFS; do
    cat >"$OUT/dense-dff$dff.ini" <<EOF
[model]
vocab_size = $V
context = $T
layers = $LAYERS
dense_layers = $LAYERS
d_model = $DMODEL
n_heads = $HEADS
n_kv_heads = $HEADS
head_dim = $((DMODEL / HEADS))
d_ff = $dff
mtp_depth = 0
seed = 1
[train]
steps = $TM_STEPS
batch = $B
seq = $T
lr = 1e-4
min_lr = 1e-5
warmup = 0
eval_every = 0
eval_batches = 0
ckpt_every = 0
keep_ckpts = 1
threads = $THREADS
EOF
  done
  rm -rf "$OUT/dense"
  for r in $(seq 1 "$ROUNDS"); do
    D="$OUT/dense/round$r"; mkdir -p "$D"
    echo "round $r: llm.c" >&2
    OMP_NUM_THREADS=$THREADS $PY llmc-run "$S" "$LLMC_STEPS" "$D/llmc.log"
    for dff in $DFFS; do
      echo "round $r: tokenmill d_ff $dff" >&2
      "$TM" train --workdir "$OUT/w50k" --config "$OUT/dense-dff$dff.ini" --fresh --no-progress >"$D/tm-dff$dff.log" 2>&1
      cp "$OUT/w50k/train/metrics.jsonl" "$D/tm-dff$dff.jsonl"
    done
  done
fi

# ---- (2) MoE: bias_gamma ----------------------------------------------------------------------
if [ "$SKIP_MOE" = 0 ]; then
  VOC=${MOE_VOCAB:-4097}                 # ids of the 4096-token vocabulary + <|endoftext|>
  for g in $GAMMAS; do
    M="$OUT/moe/gamma-$g"; rm -rf "$M"; mkdir -p "$M"
    sed -e "s/^vocab_size = .*/vocab_size = $VOC/" -e "s/^bias_gamma = .*/bias_gamma = $g/" \
      bench/moe_model.ini >"$M/cfg.ini"
    cat >>"$M/cfg.ini" <<EOF
[train]
steps = $MOE_STEPS
batch = 8
seq = 64
lr = 3e-3
min_lr = 3e-4
warmup = 20
eval_every = 50
eval_batches = 8
ckpt_every = 0
keep_ckpts = 1
seed = 1
threads = $THREADS
EOF
    echo "MoE: bias_gamma $g" >&2
    "$TM" train --workdir "$OUT/wmoe" --config "$M/cfg.ini" --fresh --no-progress >"$M/train.log" 2>&1
    cp "$OUT/wmoe/train/metrics.jsonl" "$M/metrics.jsonl"
  done
fi

$PY summarize "$OUT" "${JSON:-bench/out/train_bench.json}"
