#!/usr/bin/env bash
# kill -9 at random moments during tokenize (many small shards, small batches), then a rerun:
# the shards, read back through the Megatron export, must equal those of an uninterrupted run,
# and no unfinished shard may remain.
source "$(dirname "$0")/lib.sh"
python3 - "$T/small.tiktoken" "$T/in.jsonl" <<'PY'
import base64, json, random, sys
toks = [bytes([b]) for b in range(256)] + [b"th", b"the", b" the", b"in", b"ing", b" a", b"e "]
with open(sys.argv[1], "w") as f:
    for rank, t in enumerate(toks):
        f.write(base64.b64encode(t).decode() + " " + str(rank) + "\n")
rng = random.Random(5)
words = ["the", "thing", "in", "a", "bathing", "suit", "sings", "thin", "notes", "at", "noon"]
with open(sys.argv[2], "w") as f:
    for i in range(80000):
        f.write(json.dumps({"id": i, "text": " ".join(rng.choice(words) for _ in range(rng.randint(5, 200)))}) + "\n")
PY
tm ingest --workdir "$T/base" --no-progress --quiet "$T/in.jsonl"
expect_rc 0 "ingest"
cp -r "$T/base" "$T/ref"
opts=(--vocab "$T/small.tiktoken" --pattern r50k --require none --shard-tokens 100K
  --chunk-tokens 4096 --batch-size 64K --threads 1 --no-progress --quiet)
tm tokenize --workdir "$T/ref" "${opts[@]}" --stats-json "$T/ref.json"
expect_rc 0 "uninterrupted tokenize"
shards=$(jget "$T/ref.json" tokenize.shards_written)
[ "$shards" -ge 12 ] || fail "expected at least 12 shards, got $shards"
ok
# Kill each run once it has published a shard more than it started with (so it is mid-way,
# whatever the machine's load), after a further random 0-90 ms.
shards_now() { ls "$T/base/tokens" 2>/dev/null | grep -vc partial || true; }
kills=0
for _ in $(seq 1 40); do
  before=$(shards_now)
  "$TOKENMILL" tokenize --workdir "$T/base" "${opts[@]}" >/dev/null 2>"$T/kill.err" &
  pid=$!
  while kill -0 "$pid" 2>/dev/null && [ "$(shards_now)" -le "$before" ]; do
    sleep 0.005
  done
  sleep "0.0$((RANDOM % 10))"
  if kill -9 "$pid" 2>/dev/null; then
    wait "$pid" 2>/dev/null || true
    kills=$((kills + 1))
  else
    wait "$pid" && break
  fi
  [ "$kills" -ge 6 ] && break
done
echo "killed $kills runs"
[ "$kills" -ge 3 ] || fail "only $kills runs were killed mid-way; the test proves nothing"
ok
tm tokenize --workdir "$T/base" "${opts[@]}"
expect_rc 0 "final tokenize"
expect_eq "$(ls "$T/base/tokens")" "$(ls "$T/ref/tokens")" "the same shards"
for w in ref base; do
  tm export megatron --workdir "$T/$w" --out "$T/$w-mg" --no-progress --quiet
  expect_rc 0 "export $w"
done
for f in train.bin train.idx val.bin val.idx; do
  cmp -s "$T/ref-mg_$f" "$T/base-mg_$f" || fail "$f differs after kills"
  ok
done
tm tokenize --workdir "$T/base" "${opts[@]}" --stats-json "$T/again.json"
expect_eq "$(jget "$T/again.json" tokenize.tokens)" 0 "nothing left to do"
done_checks
