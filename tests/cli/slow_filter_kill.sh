#!/usr/bin/env bash
# kill -9 at random moments during filter, then a rerun: the decisions must equal those of an
# uninterrupted run, document for document, and the statistics over the store must agree.
source "$(dirname "$0")/lib.sh"
python3 - "$T/docs.jsonl" <<'PY'
import json, random, sys
rng = random.Random(7)
words = ("the of and to mill grain flour wheel river stone miller sack cart valley harvest "
         "wind grobble").split()
with open(sys.argv[1], "w") as f:
    for i in range(120000):
        n = rng.randint(5, 200)
        text = " ".join(rng.choice(words) for _ in range(n))
        lines = [text[k:k + 70] for k in range(0, len(text), 70)]
        f.write(json.dumps({"id": i, "text": ".\n".join(lines) + "."}) + "\n")
PY
printf 'grobble\t1\n' >"$T/lex.txt"
tm ingest --workdir "$T/base" --no-progress --quiet "$T/docs.jsonl"
expect_rc 0 "ingest"
cp -r "$T/base" "$T/ref"
opts=(--no-progress --quiet --lexicon "$T/lex.txt" --batch-docs 300 --threads 2)
start=$(date +%s%N)
tm filter --workdir "$T/ref" "${opts[@]}"
expect_rc 0 "uninterrupted run"
ref_ns=$(($(date +%s%N) - start))
tm filter --workdir "$T/ref" "${opts[@]}" --export "$T/ref.jsonl" --stats-json "$T/ref.json"
expect_rc 0 "export of the uninterrupted run"
expect_eq "$(wc -l <"$T/ref.jsonl")" 120000 "decisions in the uninterrupted run"

W="$T/killed"
cp -r "$T/base" "$W"
kill_runs "$ref_ns" 5 8 3 "$TOKENMILL" filter --workdir "$W" "${opts[@]}"
tm filter --workdir "$W" "${opts[@]}" --export "$T/got.jsonl" --stats-json "$T/got.json"
expect_rc 0 "final rerun"
cmp -s "$T/ref.jsonl" "$T/got.jsonl" || {
  diff <(head -c 2000 "$T/ref.jsonl") <(head -c 2000 "$T/got.jsonl") | head
  fail "decisions after kills differ from the uninterrupted run"
}
ok
python3 - "$T/ref.json" "$T/got.json" <<'PY'
import json, sys
a = json.load(open(sys.argv[1]))["filter"]["total"]
b = json.load(open(sys.argv[2]))["filter"]["total"]
if a != b:
    print("FAIL: statistics over the store differ", a, b); sys.exit(1)
PY
ok
done_checks
