#!/usr/bin/env bash
# tokenmill train with precision = fp8 (DeepSeek-V3's FP8 recipe, emulated) against the same
# model, data and seed with precision = bf16, on the license-text workdir: a 2-layer model
# (1 dense, 1 MoE with 4 experts, top 2, MTP depth 1) with d_model 160 and d_ff 320, so that
# the products span more than one 128-wide tile along K and the accumulator is promoted.
# - both runs train (the last step's loss below the first), the fp8 run's losses differ from
#   the bf16 run's at every step after the first few (the quantization is really there), and
#   track them: the final training and validation losses within 2% of the bf16 run's
#   (measured: about 0.1%);
# - the probe (fp8_probe_every 20) reports, at steps 1 and 21 and only there, the relative
#   error of the FP8 Fprop, Dgrad and Wgrad products against FP32, each between 0.1% and 20%
#   (E4M3 keeps 3 mantissa bits: a few percent), in both runs; and it changes nothing: the
#   bf16 run without it has the same losses, bit for bit;
# - the checkpoint's config.json records the precision and the FP8 settings;
# - a precision that does not exist and an unsupported promotion interval are refused with
#   exit 2, naming the key.
source "$(dirname "$0")/lib.sh"

W="$T/w"
license_workdir "$W" 512 GPL-3 Apache-2.0 MPL-2.0 Artistic BSD LGPL-2.1 GPL-2
cp -r "$W" "$T/w8"
cp -r "$W" "$T/wn"

config() { # PRECISION [PROBE_EVERY]
  cat <<INI
[model]
vocab_size = 520
context = 32
layers = 2
dense_layers = 1
d_model = 160
n_heads = 4
n_kv_heads = 2
head_dim = 40
d_ff = 320
n_routed_experts = 4
n_shared_experts = 1
top_k = 2
d_expert = 160
mtp_depth = 1
seed = 11
init_std = 0.05

[train]
steps = 40
batch = 4
seq = 32
lr = 3e-3
min_lr = 3e-4
warmup = 5
eval_every = 20
eval_batches = 4
ckpt_every = 0
seed = 5
threads = 2
precision = $1
fp8_probe_every = ${2:-20}
INI
}
config bf16 >"$T/bf16.ini"
config fp8 >"$T/fp8.ini"

tm train --workdir "$W" --config "$T/bf16.ini" --no-progress
expect_rc 0 "train bf16"
tm train --workdir "$T/w8" --config "$T/fp8.ini" --no-progress
expect_rc 0 "train fp8"
config bf16 0 >"$T/noprobe.ini"
tm train --workdir "$T/wn" --config "$T/noprobe.ini" --no-progress
expect_rc 0 "train bf16 without the probe"

python3 - "$W/train/metrics.jsonl" "$T/w8/train/metrics.jsonl" <<'PY' || fail "fp8 does not track bf16"
import json, sys
def read(p):
    lines = [json.loads(l) for l in open(p)]
    return [d["loss"] for d in lines if "loss" in d], [d["val_loss"] for d in lines if "val_loss" in d]
bl, bv = read(sys.argv[1])
fl, fv = read(sys.argv[2])
assert len(bl) == len(fl) == 40 and len(bv) == len(fv) == 3
assert bl[-1] < bl[0] and fl[-1] < fl[0], (bl[0], bl[-1], fl[0], fl[-1])
assert all(b != f for b, f in zip(bl[5:], fl[5:])), "fp8 losses equal bf16's: nothing quantized"
gap_train = abs(fl[-1] - bl[-1]) / bl[-1]
gap_val = abs(fv[-1] - bv[-1]) / bv[-1]
print(f"bf16 loss {bl[-1]:.4f} val {bv[-1]:.4f}; fp8 loss {fl[-1]:.4f} val {fv[-1]:.4f}; "
      f"gaps {gap_train:.2%} {gap_val:.2%}", file=sys.stderr)
assert gap_train < 0.02 and gap_val < 0.02, (gap_train, gap_val)
PY
ok

python3 - "$W/train/metrics.jsonl" "$T/w8/train/metrics.jsonl" "$T/wn/train/metrics.jsonl" <<'PY' || fail "fp8 probe"
import json, sys
runs = [[json.loads(l) for l in open(p)] for p in sys.argv[1:]]
for lines in runs[:2]:
    probed = [d for d in lines if "fp8_rel_err" in d]
    assert [d["step"] for d in probed] == [1, 21], [d["step"] for d in probed]
    for d in probed:
        e = d["fp8_rel_err"]
        assert all(0.001 < e[k] < 0.2 for k in ("fprop", "dgrad", "wgrad")), e
    print("fp8 relative error at step 21:", probed[-1]["fp8_rel_err"], file=sys.stderr)
loss = lambda lines: [d.get("loss") for d in lines] + [d.get("val_loss") for d in lines]
assert loss(runs[0]) == loss(runs[2]), "the probe changed the bf16 run"
assert not any("fp8_rel_err" in d for d in runs[2])
PY
ok

python3 - "$T/w8/train/ckpt-40/config.json" <<'PY' || fail "config.json precision"
import json, sys
t = json.load(open(sys.argv[1]))["train"]
assert t["precision"] == "fp8" and t["fp8_format"] == "e4m3" and t["fp8_promote"] == "128", t
assert t["fp8_accum_bits"] == 14 and t["moments"] == "auto", t
PY
ok

config fp16 >"$T/bad.ini"
tm train --workdir "$T/w8" --config "$T/bad.ini" --fresh --no-progress
expect_rc 2 "precision fp16"
expect_grep "$T/err" "precision: want one of fp32, bf16, fp8, not 'fp16'" "names the key and the words"
{ config fp8; echo "fp8_promote = 100"; } >"$T/bad.ini"
tm train --workdir "$T/w8" --config "$T/bad.ini" --fresh --no-progress
expect_rc 2 "fp8_promote 100"
expect_grep "$T/err" "fp8_promote: want one of 32, 64, 128" "promotion interval"
echo "$TEST_NAME: $CHECKS checks passed"
