#!/usr/bin/env bash
# tokenmill train (CPU reference trainer) on a small workdir of license texts: a 2-layer model
# (1 dense, 1 MoE with 4 experts, top 2) with d_model 32, T 32, B 4, 60 steps.
# - the training loss drops (last step below the first) and so does the validation loss (end
#   below step 0); metrics lines carry the per-step fields and the MoE statistics;
# - the same seed and threads in two fresh workdirs give identical losses;
# - a run stopped at step 30 whose newest checkpoint is then lost (as if killed after the
#   metrics lines of steps 21..30 but before ckpt-30) resumes from ckpt-20 and ends with the
#   same losses as the uninterrupted run, line for line; --fresh starts over and matches too;
# - keep_ckpts 2 leaves ckpt-40 and ckpt-60; model.safetensors parses with python's json
#   module, its header is a multiple of 8 bytes, and the tensors' byte ranges tile the data;
# - --continue-steps: nothing to do on unchanged shards; 10 updates past the checkpoint at
#   min_lr once the shards grow, and a continuation stopped half-way finishes at the same
#   weights;
# - a checkpoint of other [model] settings is not resumed (exit 2);
# - a bad [train] value and a vocabulary smaller than the shards' are refused with exit 2,
#   naming the key.
source "$(dirname "$0")/lib.sh"

W="$T/w1"
license_workdir "$W" 512 GPL-3 Apache-2.0 MPL-2.0 Artistic BSD LGPL-2.1 GPL-2 GFDL-1.3 CC0-1.0
cp -r "$W" "$T/w2"
cp -r "$W" "$T/w3"

{ tiny_moe_model 520; echo "init_std = 0.05"; } >"$T/model.ini"
cp "$T/model.ini" "$T/cfg.ini"
cat >>"$T/cfg.ini" <<'INI'

[train]
steps = 60
batch = 4
seq = 32
lr = 3e-3
min_lr = 3e-4
warmup = 5
eval_every = 20
eval_batches = 4
ckpt_every = 20
keep_ckpts = 2
seed = 3
threads = 1
INI

# losses FILE: "step loss loss_mtp grad_norm lr val_loss" per metrics line, floats as repr.
losses() {
  python3 - "$1" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    d = json.loads(line)
    print(d["step"], *(repr(d.get(k)) for k in ("loss", "loss_mtp", "grad_norm", "lr", "val_loss")))
PY
}

tm train --workdir "$T/w1" --config "$T/cfg.ini" --no-progress
expect_rc 0 "train 60 steps"
expect_grep "$T/out" "trained to step 60" "summary line"
M1="$T/w1/train/metrics.jsonl"
python3 - "$M1" <<'PY' || fail "losses did not drop, or metrics lines lack fields"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
steps = [d for d in lines if "loss" in d]
vals = [d for d in lines if "val_loss" in d]
assert [d["step"] for d in steps] == list(range(1, 61)), "one line per step"
assert [d["step"] for d in vals] == [0, 20, 40, 60], [d["step"] for d in vals]
assert steps[-1]["loss"] < steps[0]["loss"], (steps[0]["loss"], steps[-1]["loss"])
assert vals[-1]["val_loss"] < vals[0]["val_loss"], (vals[0], vals[-1])
for d in steps:
    for k in ("loss_mtp", "lr", "grad_norm", "tokens_per_s"):
        assert isinstance(d[k], (int, float)), k
    (moe,) = d["moe"]
    assert moe["layer"] == 1
    assert 0 <= moe["load_min"] <= moe["load_max"] and moe["load_cv"] >= 0
    assert moe["load_min"] + moe["load_max"] <= 4 * 32 * 2
assert steps[-1]["moe"][0]["bias_maxabs"] > 0, "the router biases moved"
print("loss", steps[0]["loss"], "->", steps[-1]["loss"], "val", vals[0]["val_loss"], "->", vals[-1]["val_loss"], file=sys.stderr)
PY
ok
losses "$M1" >"$T/l1"

# keep_ckpts: the two newest.
expect_eq "$(cd "$T/w1/train" && ls -d ckpt-* | sort | tr '\n' ' ')" "ckpt-40 ckpt-60 " "keep_ckpts 2"

# The safetensors file, read with python's json module only.
python3 - "$T/w1/train/ckpt-60/model.safetensors" <<'PY' || fail "safetensors layout"
import json, math, struct, sys
b = open(sys.argv[1], "rb").read()
(n,) = struct.unpack("<Q", b[:8])
assert n % 8 == 0, n
h = json.loads(b[8:8 + n].decode("utf-8"))
meta = h.pop("__metadata__")
assert meta["step"] == "60"
assert len(meta["tokenizer_hash"]) == 16 and int(meta["tokenizer_hash"], 16) != 0, meta
pos = 0
for s, e, name in sorted((v["data_offsets"][0], v["data_offsets"][1], k) for k, v in h.items()):
    assert h[name]["dtype"] == "F32"
    assert s == pos and e - s == 4 * math.prod(h[name]["shape"]), name
    pos = e
assert pos == len(b) - 8 - n, (pos, len(b) - 8 - n)
assert h["embed"]["shape"] == [520, 32] and h["layers.1.moe.router_bias"]["shape"] == [4]
assert h["layers.1.moe.experts.w1"]["shape"] == [4, 16, 32]
PY
ok
python3 -c "import json,sys; d=json.load(open(sys.argv[1])); assert d['train']['steps']==60 and d['model']['d_model']==32" \
  "$T/w1/train/ckpt-60/config.json" || fail "config.json"
ok

# Same seed and threads in another fresh workdir: the same losses.
tm train --workdir "$T/w2" --config "$T/cfg.ini" --no-progress
expect_rc 0 "train again"
losses "$T/w2/train/metrics.jsonl" >"$T/l2"
cmp -s "$T/l1" "$T/l2" || { diff "$T/l1" "$T/l2" | head; fail "two fresh runs differ"; }
ok

# Stop at 30, lose ckpt-30, resume from ckpt-20 to the end: the uninterrupted run's losses.
tm train --workdir "$T/w3" --config "$T/cfg.ini" --no-progress --until 30
expect_rc 0 "train until 30"
expect_eq "$(cd "$T/w3/train" && ls -d ckpt-* | sort | tr '\n' ' ')" "ckpt-20 ckpt-30 " "checkpoint at the stop"
expect_eq "$(tail -n 1 "$T/w3/train/metrics.jsonl" | python3 -c 'import json,sys; print(json.load(sys.stdin)["step"])')" 30 "stopped at 30"
rm -rf "$T/w3/train/ckpt-30"
mkdir "$T/w3/train/ckpt-50.partial"
tm train --workdir "$T/w3" --config "$T/cfg.ini" --no-progress
expect_rc 0 "resume"
expect_grep "$T/err" "resuming from .*ckpt-20" "resumed from ckpt-20"
[ ! -e "$T/w3/train/ckpt-50.partial" ] || fail "the partial checkpoint was not removed"
losses "$T/w3/train/metrics.jsonl" >"$T/l3"
cmp -s "$T/l1" "$T/l3" || { diff "$T/l1" "$T/l3" | head; fail "resumed run differs from the uninterrupted one"; }
ok
cmp -s "$T/w1/train/ckpt-60/model.safetensors" "$T/w3/train/ckpt-60/model.safetensors" || fail "final weights differ"
ok

# Nothing left to do: a rerun resumes at 60 and changes nothing; --fresh starts over.
tm train --workdir "$T/w3" --config "$T/cfg.ini" --no-progress
expect_rc 0 "rerun at the end"
losses "$T/w3/train/metrics.jsonl" >"$T/l3"
cmp -s "$T/l1" "$T/l3" || fail "a rerun at the end changed the metrics"
ok
tm train --workdir "$T/w3" --config "$T/cfg.ini" --no-progress --fresh
expect_rc 0 "fresh"
losses "$T/w3/train/metrics.jsonl" >"$T/l3"
cmp -s "$T/l1" "$T/l3" || fail "--fresh differs from a fresh workdir"
ok

# Continued training (--continue-steps 10, what a pipeline's refresh runs): with the same
# shards there is nothing to do; once the shards grow, 10 updates past the newest checkpoint at
# the schedule's final lr, evaluated at the end; stopped half-way (--until 65) and rerun, the
# same weights as without the stop.
tm train --workdir "$T/w2" --config "$T/cfg.ini" --no-progress --continue-steps 10
expect_rc 0 "continue on the same shards"
expect_grep "$T/out" "nothing to do: the newest checkpoint is step 60" "nothing to do, said so"
expect_eq "$(cd "$T/w2/train" && ls -d ckpt-* | sort | tr '\n' ' ')" "ckpt-40 ckpt-60 " "no checkpoint written"
mkdir -p "$T/in2"
cp /usr/share/common-licenses/LGPL-3 "$T/in2/LGPL-3.txt"
for w in w2 w3; do
  tm ingest --workdir "$T/$w" --no-progress "$T/in2"
  expect_rc 0 "ingest more"
  tm tokenize --workdir "$T/$w" --vocab "$T/w1/v.tiktoken" --require none --val-fraction 0.1 --no-progress
  expect_rc 0 "tokenize more"
done
tm train --workdir "$T/w2" --config "$T/cfg.ini" --no-progress --continue-steps 10
expect_rc 0 "continue on grown shards"
expect_grep "$T/out" "trained to step 70" "10 steps more"
expect_grep "$T/err" "shards changed since step 60 was trained: training to step 70" "why, logged"
python3 - "$T/w2/train/metrics.jsonl" <<'PY' || fail "the continued run's metrics"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
steps = [d for d in lines if "loss" in d]
assert [d["step"] for d in steps] == list(range(1, 71)), [d["step"] for d in steps][-12:]
assert all(d["lr"] == 3e-4 for d in steps[60:]), [d["lr"] for d in steps[60:]]
assert any(d["step"] == 70 and "val_loss" in d for d in lines), "no evaluation at step 70"
PY
ok
tm train --workdir "$T/w2" --config "$T/cfg.ini" --no-progress --continue-steps 10
expect_rc 0 "continue again, nothing new"
expect_grep "$T/out" "nothing to do: the newest checkpoint is step 70" "a second continue does nothing"
tm train --workdir "$T/w3" --config "$T/cfg.ini" --no-progress --continue-steps 10 --until 65
expect_rc 0 "continue, stopped at 65"
tm train --workdir "$T/w3" --config "$T/cfg.ini" --no-progress --continue-steps 10
expect_rc 0 "continue, finished"
expect_grep "$T/out" "trained to step 70" "the stopped continuation is finished, not extended"
cmp -s "$T/w2/train/ckpt-70/model.safetensors" "$T/w3/train/ckpt-70/model.safetensors" ||
  fail "a continuation stopped and resumed differs from an uninterrupted one"
ok

# A changed [model] section is not resumed.
sed 's/^init_std = .*/init_std = 0.06/' "$T/cfg.ini" >"$T/changed.ini"
tm train --workdir "$T/w3" --config "$T/changed.ini" --no-progress
expect_rc 2 "changed model"
expect_grep "$T/err" "differ from the checkpoint's; use --fresh" "changed model explained"

# Refusals, exit 2 naming the key.
cp "$T/cfg.ini" "$T/bad.ini"
echo "weight_decay = -1" >>"$T/bad.ini"
tm train --workdir "$T/w2" --config "$T/bad.ini" --no-progress
expect_rc 2 "bad weight_decay"
expect_grep "$T/err" "weight_decay" "the bad key is named"
sed 's/^vocab_size = .*/vocab_size = 300/' "$T/cfg.ini" >"$T/small.ini"
tm train --workdir "$T/w2" --config "$T/small.ini" --no-progress
expect_rc 2 "vocabulary smaller than the shards'"
expect_grep "$T/err" "vocab_size 300 .*513" "vocab_size named with the shards' id count"
sed 's/^seq = .*/seq = 64/' "$T/cfg.ini" >"$T/long.ini"
tm train --workdir "$T/w2" --config "$T/long.ini" --no-progress
expect_rc 2 "seq over the context"
expect_grep "$T/err" "seq" "seq named"
tm train --workdir "$T/w2" --no-progress
expect_rc 2 "--config required"

echo "ok: $CHECKS checks"
