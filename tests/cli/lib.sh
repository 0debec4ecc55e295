# Shared helpers for the CLI tests. Each test sources this file; ctest provides TOKENMILL
# (the binary), TM_FIXTURE (the archive fixture writer), TM_SRC and TM_TEST_TMP.
set -euo pipefail
: "${TOKENMILL:?TOKENMILL must point at the tokenmill binary}"
TEST_NAME=$(basename "$0" .sh)
T=$(mktemp -d "${TM_TEST_TMP:-/tmp}/${TEST_NAME}.XXXXXX" 2>/dev/null || mktemp -d)
mkdir -p "$T"
trap 'rm -rf "$T"' EXIT
CHECKS=0

fail() {
  echo "FAIL [$TEST_NAME]: $*" >&2
  exit 1
}

ok() {
  CHECKS=$((CHECKS + 1))
}

# tm ARGS...: runs tokenmill, stdout to $T/out, stderr to $T/err, exit code to $RC.
tm() {
  set +e
  "$TOKENMILL" "$@" >"$T/out" 2>"$T/err"
  RC=$?
  set -e
}

expect_rc() {
  [ "$RC" -eq "$1" ] || { echo "--- stdout"; cat "$T/out"; echo "--- stderr"; cat "$T/err"; fail "expected exit $1, got $RC ($2)"; } >&2
  ok
}

expect_grep() { # FILE PATTERN WHAT
  grep -qE -- "$2" "$1" || { echo "--- $1"; head -c 4000 "$1"; fail "$3: /$2/ not found"; } >&2
  ok
}

expect_no_grep() { # FILE PATTERN WHAT
  if grep -qE -- "$2" "$1"; then
    { echo "--- $1"; head -c 4000 "$1"; fail "$3: /$2/ found"; } >&2
  fi
  ok
}

expect_eq() { # GOT WANT WHAT
  [ "$1" = "$2" ] || fail "$3: got '$1', want '$2'"
  ok
}

# jget FILE PATH: prints the JSON value at a dotted path ("documents.code"), or "null".
jget() {
  python3 - "$1" "$2" <<'PY'
import json, sys
v = json.load(open(sys.argv[1]))
for part in sys.argv[2].split('.'):
    if isinstance(v, list):
        v = v[int(part)]
    elif isinstance(v, dict) and part in v:
        v = v[part]
    else:
        v = None
        break
if isinstance(v, float) and v.is_integer():
    v = int(v)
print("null" if v is None else (json.dumps(v) if isinstance(v, (dict, list)) else v))
PY
}

# kill_runs REF_NS DIVISOR MAX_KILLS MIN_KILLS CMD...: starts CMD (a tokenmill command line) up
# to 60 times, each time killing it with SIGKILL at a random moment within the first
# REF_NS / DIVISOR nanoseconds (REF_NS: how long an uninterrupted run took). Resumed runs have
# less left to do, so the window is a fraction of a whole run. Stops after MAX_KILLS kills or when
# a run finishes first; fails the test when fewer than MIN_KILLS runs were killed mid-way.
kill_runs() {
  local ref_ns=$1 div=$2 max=$3 min=$4 kills=0 pid window delay_ns
  shift 4
  for _ in $(seq 1 60); do
    "$@" >/dev/null 2>"$T/kill.err" &
    pid=$!
    window=$((ref_ns / div > 1000000 ? ref_ns / div : 1000000))
    delay_ns=$((((RANDOM << 30) | (RANDOM << 15) | RANDOM) % window)) # 45 random bits
    sleep "$(printf '%d.%09d' $((delay_ns / 1000000000)) $((delay_ns % 1000000000)))"
    if kill -9 "$pid" 2>/dev/null; then
      wait "$pid" 2>/dev/null || true
      kills=$((kills + 1))
    else
      wait "$pid" && break
    fi
    [ "$kills" -ge "$max" ] && break
  done
  echo "killed $kills runs"
  [ "$kills" -ge "$min" ] || fail "only $kills runs were killed mid-way; the test proves nothing"
  ok
}

done_checks() {
  echo "$TEST_NAME: $CHECKS checks passed"
}

# license_workdir W VOCAB_SIZE NAME...: a workdir of the named /usr/share/common-licenses texts
# (copied to $T/in), ingested, with a vocabulary of VOCAB_SIZE trained on them (W/v.tiktoken)
# and tokenized with a tenth of the documents held out for validation.
license_workdir() {
  local w=$1 vocab=$2
  shift 2
  mkdir -p "$T/in"
  for f in "$@"; do
    cp "/usr/share/common-licenses/$f" "$T/in/$f.txt"
  done
  tm ingest --workdir "$w" --no-progress "$T/in"
  expect_rc 0 "ingest"
  tm tokenize train-vocab --workdir "$w" --vocab-size "$vocab" --out "$w/v.tiktoken" --require none --no-progress
  expect_rc 0 "train-vocab"
  tm tokenize --workdir "$w" --vocab "$w/v.tiktoken" --require none --val-fraction 0.1 --no-progress
  expect_rc 0 "tokenize"
}

# tiny_moe_model VOCAB_SIZE: the [model] section of the tests' tiny model: context 32, 2 layers
# (1 dense, 1 MoE with 4 routed experts, top 2, 1 shared), d_model 32, 4 heads, 2 KV heads.
tiny_moe_model() {
  cat <<INI
[model]
vocab_size = $1
context = 32
layers = 2
dense_layers = 1
d_model = 32
n_heads = 4
n_kv_heads = 2
head_dim = 8
d_ff = 64
n_routed_experts = 4
n_shared_experts = 1
top_k = 2
d_expert = 16
seed = 7
INI
}
