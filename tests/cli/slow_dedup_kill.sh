#!/usr/bin/env bash
# kill -9 at random moments during dedup (two generations, band keys spilled to runs), then a
# rerun: the decisions, the indexes' effect on a later generation, and the statistics must equal
# those of an uninterrupted run.
source "$(dirname "$0")/lib.sh"
mkdir -p "$T/a" "$T/b"
python3 - "$T" <<'PY'
import json, random, sys
rng = random.Random(11)
vocab = ["v%04d" % i for i in range(5000)]
def doc():
    return [rng.choice(vocab) for _ in range(rng.randint(30, 120))]
def edit(w, k):
    w = list(w)
    for i in rng.sample(range(len(w)), min(k, len(w))):
        w[i] = rng.choice(vocab)
    return w
base = [doc() for _ in range(20000)]
def write(path, docs):
    with open(path, "w") as f:
        for i, w in enumerate(docs):
            f.write(json.dumps({"id": i, "text": " ".join(w)}) + "\n")
a = []
for w in base:
    r = rng.random()
    a.append(w)
    if r < 0.2:
        a.append(edit(w, 1))
    elif r < 0.3:
        a.append(list(w))
write(sys.argv[1] + "/a/a.jsonl", a)
write(sys.argv[1] + "/b/b.jsonl", [edit(rng.choice(base), 1) for _ in range(8000)] +
      [doc() for _ in range(8000)])
PY
opts=(--no-progress --quiet --memory 64K --threads 2)
tm ingest --workdir "$T/base" --no-progress --quiet "$T/a"
tm ingest --workdir "$T/base" --no-progress --quiet "$T/b"
expect_rc 0 "ingest"
cp -r "$T/base" "$T/ref"
start=$(date +%s%N)
tm dedup --workdir "$T/ref" "${opts[@]}"
expect_rc 0 "uninterrupted run"
ref_ns=$(($(date +%s%N) - start))
tm dedup --workdir "$T/ref" "${opts[@]}" --export "$T/ref.jsonl"
cp -r "$T/base" "$T/killed"
kill_runs "$ref_ns" 3 8 3 "$TOKENMILL" dedup --workdir "$T/killed" "${opts[@]}"
tm dedup --workdir "$T/killed" "${opts[@]}" --export "$T/got.jsonl"
expect_rc 0 "final rerun"
[ -s "$T/ref.jsonl" ] || fail "empty export"
cmp -s "$T/ref.jsonl" "$T/got.jsonl" || {
  diff "$T/ref.jsonl" "$T/got.jsonl" | head -5
  fail "decisions after kills differ from the uninterrupted run"
}
ok
[ -z "$(ls -A "$T/killed/tmp" 2>/dev/null)" ] || fail "spill files left behind: $(ls "$T/killed/tmp")"
ok
done_checks
