#!/usr/bin/env bash
# tokenmill eval bpb on the license-text workdir, with checkpoints of a tiny model.
# - by hand: with the output head zeroed (python edits model.safetensors), every prediction is
#   uniform over the model's 520 ids, so the summed NLL must be tokens * ln 520 (to 1e-6) and
#   BPB = nats / (ln 2 * bytes);
# - the bytes are the decoded text's: val + train bytes equal the license files' sizes (plain
#   ASCII with LF: ingest stores them unchanged), and a second tokenizer (another vocabulary
#   size, its own model) divides the same text by the same bytes per split while its token
#   count differs;
# - windows: every token is scored once whatever the window and stride (same token count for
#   window 16 / stride 8 and window 32 / stride 32), and with the uniform model the same nats;
#   a trained model's BPB is finite and below the uniform one's;
# - --out writes the JSON; a stride above the window, and a vocabulary other than the model's,
#   are refused with exit 2.
source "$(dirname "$0")/lib.sh"

FILES=(GPL-3 Apache-2.0 MPL-2.0 Artistic BSD LGPL-2.1 GPL-2 GFDL-1.3)
W="$T/w"
license_workdir "$W" 512 "${FILES[@]}"
TOTAL=0
for f in "${FILES[@]}"; do TOTAL=$((TOTAL + $(stat -c %s "/usr/share/common-licenses/$f"))); done

model() { # VOCAB_SIZE STEPS
  tiny_moe_model "$1"
  cat <<INI
[train]
steps = $2
batch = 4
seq = 32
lr = 3e-3
warmup = 0
eval_every = 0
eval_batches = 1
ckpt_every = 0
seed = 3
INI
}
model 520 40 >"$T/cfg.ini"
tm train --workdir "$W" --config "$T/cfg.ini" --no-progress
expect_rc 0 "train"

bpb() { # OUT ARGS...: eval bpb on $W with its vocabulary
  local out=$1
  shift
  tm eval bpb --workdir "$W" --vocab "$W/v.tiktoken" --out "$out" "$@"
  expect_rc 0 "eval bpb $*"
}
bpb "$T/trained.json" --window 32 --stride 16
expect_grep "$T/out" "^\| all " "the table"

# Zero the head: uniform predictions.
cp -r "$W/train/ckpt-40" "$T/uniform"
python3 - "$T/uniform/model.safetensors" <<'PY' || fail "zeroing the head"
import json, struct, sys
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
(n,) = struct.unpack("<Q", b[:8])
h = json.loads(b[8:8 + n])
s, e = h["head"]["data_offsets"]
b[8 + n + s:8 + n + e] = bytes(e - s)
open(p, "wb").write(b)
PY
bpb "$T/u16.json" --ckpt "$T/uniform" --window 16 --stride 8
bpb "$T/u32.json" --ckpt "$T/uniform" --window 32 --stride 32
bpb "$T/train_split.json" --ckpt "$T/uniform" --split train

python3 - "$T" "$TOTAL" <<'PY' || fail "bpb values"
import json, math, sys
d, total = sys.argv[1], int(sys.argv[2])
load = lambda n: json.load(open(f"{d}/{n}.json"))
u16, u32, tr, tv = load("u16"), load("u32"), load("train_split"), load("trained")
for r in (u16, u32):
    o = r["overall"]
    want = o["tokens"] * math.log(520)
    assert abs(o["nats"] - want) <= 1e-6 * want, (o["nats"], want)
    assert abs(o["bpb"] - o["nats"] / (math.log(2) * o["bytes"])) <= 1e-12 * o["bpb"]
    assert abs(o["perplexity"] - 520) < 1e-3, o["perplexity"]
assert u16["window"] == 16 and u16["stride"] == 8 and u32["window"] == 32
assert u16["overall"]["tokens"] == u32["overall"]["tokens"] == tv["overall"]["tokens"]
assert u16["overall"]["bytes"] == u32["overall"]["bytes"]
val_bytes, train_bytes = u32["overall"]["bytes"], tr["overall"]["bytes"]
assert val_bytes + train_bytes == total, (val_bytes, train_bytes, total)
assert val_bytes > 0 and train_bytes > 0
t = tv["overall"]
assert math.isfinite(t["bpb"]) and 0 < t["bpb"] < u32["overall"]["bpb"], (t["bpb"], u32["overall"]["bpb"])
print("uniform bpb", u32["overall"]["bpb"], "trained", t["bpb"], "val bytes", val_bytes, file=sys.stderr)
PY
ok

# A second tokenizer over the same documents: the same bytes per split, other token counts.
W2="$T/w2"
cp -r "$W" "$W2"
rm -rf "$W2/tokens" "$W2/train" "$W2/v.tiktoken"*
tm tokenize train-vocab --workdir "$W2" --vocab-size 300 --out "$W2/v.tiktoken" --require none --no-progress
expect_rc 0 "train-vocab 300"
tm tokenize --workdir "$W2" --vocab "$W2/v.tiktoken" --require none --val-fraction 0.1 --redo --no-progress
expect_rc 0 "tokenize with 300"
model 308 2 >"$T/cfg2.ini"
tm train --workdir "$W2" --config "$T/cfg2.ini" --no-progress
expect_rc 0 "train on the second tokenizer"
tm eval bpb --workdir "$W2" --vocab "$W2/v.tiktoken" --out "$T/second.json"
expect_rc 0 "eval bpb, second tokenizer"
python3 - "$T/second.json" "$T/u32.json" <<'PY' || fail "bytes differ between tokenizers"
import json, sys
a, b = (json.load(open(p))["overall"] for p in sys.argv[1:])
assert a["bytes"] == b["bytes"], (a["bytes"], b["bytes"])
assert a["tokens"] != b["tokens"], a["tokens"]
PY
ok

tm eval bpb --workdir "$W" --vocab "$W/v.tiktoken" --window 16 --stride 17
expect_rc 2 "stride above the window"
expect_grep "$T/err" "window 16 and stride 17" "names both"
tm eval bpb --workdir "$W" --vocab "$W2/v.tiktoken"
expect_rc 2 "another tokenizer's vocabulary"
echo "$TEST_NAME: $CHECKS checks passed"
