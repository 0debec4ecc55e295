#!/usr/bin/env bash
# tokenmill generate: a tiny model trained here on the license texts; greedy output is
# deterministic, sampling is deterministic for a seed, a stop text cuts the output where it
# starts, and a wrong vocabulary, an over-long prompt or a missing checkpoint are refused.
source "$(dirname "$0")/lib.sh"
W="$T/w"
tm ingest --workdir "$W" --no-progress /usr/share/common-licenses
tm tokenize train-vocab --workdir "$W" --vocab-size 400 --out "$T/v.tiktoken" --require none --no-progress
expect_rc 0 "train-vocab"
tm tokenize --workdir "$W" --vocab "$T/v.tiktoken" --require none --val-fraction 0.2 --no-progress
expect_rc 0 "tokenize"
tiny_moe_model 401 >"$T/cfg.ini"
cat >>"$T/cfg.ini" <<'INI'
[train]
steps = 40
batch = 4
seq = 32
lr = 3e-3
warmup = 4
eval_every = 20
ckpt_every = 40
threads = 1
INI
tm train --workdir "$W" --config "$T/cfg.ini" --no-progress
expect_rc 0 "train"
gen() { tm generate --ckpt "$W" --vocab "$T/v.tiktoken" --prompt "This program is free software" "$@"; }
gen -n 24
expect_rc 0 "greedy"
cp "$T/out" "$T/greedy1"
[ "$(wc -c <"$T/greedy1")" -gt 1 ] || fail "no text generated"
ok
gen -n 24
cmp -s "$T/out" "$T/greedy1" || fail "greedy output differs between runs"
ok
gen -n 24 -t 1 --seed 7
cp "$T/out" "$T/s7a"
gen -n 24 -t 1 --seed 7
cmp -s "$T/out" "$T/s7a" || fail "the same seed sampled differently"
ok
differ=0
for seed in 8 9 10 11; do
  gen -n 24 -t 1 --seed "$seed"
  cmp -s "$T/out" "$T/s7a" || differ=1
done
[ "$differ" = 1 ] || fail "five seeds gave the same sample"
ok
# A stop text taken from the greedy output: the output ends just before its first occurrence.
stop=$(python3 -c "import sys; t=open(sys.argv[1],'rb').read()[:-1]; print(t[4:7].decode('utf-8','replace'))" "$T/greedy1")
gen -n 24 --stop "$stop" --stats-json "$T/stop.json"
expect_rc 0 "with --stop"
python3 - "$T/greedy1" "$T/out" "$stop" <<'PY' || fail "--stop did not cut at the first occurrence"
import sys
full = open(sys.argv[1], "rb").read()[:-1]
got = open(sys.argv[2], "rb").read()[:-1]
stop = sys.argv[3].encode()
assert got == full[:full.index(stop)], (got, full, stop)
PY
ok
expect_eq "$(jget "$T/stop.json" generate.stop)" "stop sequence" "the reason is recorded"
gen -n 0
expect_rc 0 "-n 0"
expect_eq "$(cat "$T/out")" "" "nothing generated"
# Refusals.
python3 - "$T/v.tiktoken" "$T/other.tiktoken" <<'PY'
import sys
lines = open(sys.argv[1]).read().splitlines()
lines[300], lines[301] = lines[301].split()[0] + " 300", lines[300].split()[0] + " 301"
open(sys.argv[2], "w").write("\n".join(lines) + "\n")
PY
cp "$T/v.tiktoken.json" "$T/other.tiktoken.json"
tm generate --ckpt "$W" --vocab "$T/other.tiktoken" --prompt "x"
expect_rc 2 "another vocabulary"
expect_grep "$T/err" "trained with" "the hash mismatch is explained"
tm generate --ckpt "$W" --vocab "$T/v.tiktoken" --prompt "$(printf 'word %.0s' $(seq 1 100))"
[ "$RC" -ne 0 ] || fail "a prompt longer than the context was accepted"
expect_grep "$T/err" "context" "the context limit is named"
tm generate --ckpt "$T/nowhere" --vocab "$T/v.tiktoken" --prompt "x"
expect_rc 1 "missing checkpoint"
expect_grep "$T/err" "no checkpoint" "the missing checkpoint is named"
done_checks
