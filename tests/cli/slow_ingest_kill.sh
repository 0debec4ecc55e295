#!/usr/bin/env bash
# kill -9 at random moments during ingest, then a rerun: the store must end with exactly the
# documents of an uninterrupted run (same ids, sources, domains and text hashes), in one
# generation, with no duplicate and nothing lost.
source "$(dirname "$0")/lib.sh"
F="$T/in"
mkdir -p "$F/dir" "$T/m"

# Inputs: a JSONL file, a tar.gz of many small members, and a directory of plain files, so kills
# land inside every kind of reading.
python3 - "$F/big.jsonl" <<'PY'
import json, random, sys
rng = random.Random(42)
words = "mill grain flour wheel river stone miller sack cart valley harvest wind".split()
with open(sys.argv[1], "w") as f:
    for i in range(150000):
        text = " ".join(rng.choice(words) for _ in range(rng.randint(20, 80)))
        f.write(json.dumps({"id": i, "text": f"{i}: {text}"}) + "\n")
PY
members=()
for i in $(seq 1 1500); do
  printf 'Member %d of the archive: notes on the mill, entry %d.\n' "$i" "$i" >"$T/m/m$i.txt"
  members+=("m/m$i.txt=$T/m/m$i.txt")
done
"$TM_FIXTURE" "$F/many.tar.gz" "${members[@]}"
for i in $(seq 1 400); do
  printf 'Plain file %d, one of many in a folder.\n' "$i" >"$F/dir/f$i.txt"
done

opts=(--no-progress --quiet --batch-docs 100)
start=$(date +%s%N)
tm ingest --workdir "$T/ref" "${opts[@]}" "$F"
expect_rc 0 "uninterrupted run"
ref_ns=$(( $(date +%s%N) - start ))
tm inspect --workdir "$T/ref" --list
cp "$T/out" "$T/ref.list"
total=$(wc -l <"$T/ref.list")
expect_eq "$total" $((150000 + 1500 + 400)) "documents in the uninterrupted run"

W="$T/killed"
kill_runs "$ref_ns" 6 12 5 "$TOKENMILL" ingest --workdir "$W" "${opts[@]}" "$F"
tm ingest --workdir "$W" "${opts[@]}" "$F"
expect_rc 0 "final rerun"
tm inspect --workdir "$W" --list
if ! cmp -s "$T/out" "$T/ref.list"; then
  diff "$T/ref.list" "$T/out" | head -20 >&2
  fail "the killed-and-resumed store differs from the uninterrupted one"
fi
ok
tm inspect --workdir "$W"
expect_grep "$T/out" "^1 +closed" "one closed generation"
expect_no_grep "$T/out" "^2 " "no second generation"
# And once more: nothing to do.
tm ingest --workdir "$W" "${opts[@]}" --stats-json "$T/again.json" "$F"
expect_eq "$(jget "$T/again.json" documents.total)" 0 "rerun after completion adds nothing"
done_checks
