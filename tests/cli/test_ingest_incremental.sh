#!/usr/bin/env bash
# Idempotent reruns, changed files in new generations, touched-but-identical files, and the
# workdir lock.
source "$(dirname "$0")/lib.sh"
F="$T/in"
mkdir -p "$F"
W="$T/w"
for i in 1 2 3 4 5; do
  printf 'Document number %d about grinding grain at the old mill by the river.\n' "$i" >"$F/doc$i.txt"
done
printf '{"text": "jsonl one"}\n{"text": "jsonl two"}\n' >"$F/set.jsonl"

tm ingest --workdir "$W" --no-progress --stats-json "$T/s1.json" "$F"
expect_rc 0 "first ingest"
expect_eq "$(jget "$T/s1.json" documents.total)" 7 "first run documents"
expect_eq "$(jget "$T/s1.json" generation)" 1 "first generation"
tm inspect --workdir "$W" --list
cp "$T/out" "$T/list1"

tm ingest --workdir "$W" --no-progress --stats-json "$T/s2.json" "$F"
expect_rc 0 "rerun"
expect_eq "$(jget "$T/s2.json" documents.total)" 0 "rerun adds nothing"
expect_eq "$(jget "$T/s2.json" inputs.unchanged)" 6 "all inputs unchanged"
tm inspect --workdir "$W" --list
cmp -s "$T/out" "$T/list1" || fail "rerun changed the store"
ok

# Touched but identical: recognized by content hash, nothing added.
touch -d '2001-01-01' "$F/doc1.txt"
tm ingest --workdir "$W" --no-progress --stats-json "$T/s3.json" "$F"
expect_eq "$(jget "$T/s3.json" documents.total)" 0 "touched file adds nothing"
expect_eq "$(jget "$T/s3.json" inputs.unchanged)" 6 "touched file is unchanged"

# A changed file goes into a new generation; the others stay unchanged.
printf 'Document number 2, revised: the mill now grinds buckwheat too.\n' >"$F/doc2.txt"
printf 'A new document dropped into the folder.\n' >"$F/doc6.txt"
tm ingest --workdir "$W" --no-progress --stats-json "$T/s4.json" "$F"
expect_rc 0 "refresh"
expect_eq "$(jget "$T/s4.json" documents.total)" 2 "changed and new file ingested"
expect_eq "$(jget "$T/s4.json" generation)" 2 "second generation"
tm inspect --workdir "$W" --stats-json "$T/i.json"
expect_rc 0 "inspect counts"
expect_grep "$T/out" "^1 +closed +6 +7 " "generation 1 row"
expect_grep "$T/out" "^2 +closed +2 +2 " "generation 2 row"
expect_eq "$(jget "$T/i.json" total.text_docs)" 9 "total text documents"
tm inspect --workdir "$W" --list
expect_eq "$(grep -c "/doc2.txt" "$T/out")" 2 "both versions of doc2 are kept, in their generations"
expect_eq "$(grep "/doc6.txt" "$T/out" | cut -f1)" $(( (2 << 40) + 1 )) "new document id is (2 << 40) | seq"

# --sample is deterministic for a seed and draws distinct documents.
tm inspect --workdir "$W" --sample 4 --seed 7
cp "$T/out" "$T/sample1"
tm inspect --workdir "$W" --sample 4 --seed 7
cmp -s "$T/out" "$T/sample1" || fail "--sample is not deterministic"
ok
expect_eq "$(grep -c '^=== document' "$T/sample1")" 4 "four documents sampled"
expect_eq "$(grep '^=== document' "$T/sample1" | sort -u | wc -l)" 4 "sampled documents are distinct"

tm inspect --workdir "$W" --doc 999999
expect_rc 1 "missing document"
expect_grep "$T/err" "no document 999999" "missing document message"
tm inspect --workdir "$T/nowhere"
expect_rc 1 "no store"
expect_grep "$T/err" "no document store in" "no store message"

# The workdir lock: a second writer exits at once with status 4 and touches nothing.
flock "$W/lock" sleep 60 >/dev/null 2>&1 &
holder=$!
# Wait until the holder really has the lock (a busy machine may start it late).
for _ in $(seq 1 200); do
  flock -n "$W/lock" true || break
  sleep 0.05
done
printf 'Should not be ingested while locked.\n' >"$F/doc7.txt"
tm ingest --workdir "$W" --no-progress "$F"
expect_rc 4 "locked workdir"
expect_grep "$T/err" "locked" "lock message"
pkill -P "$holder" 2>/dev/null || true # the sleep that holds the lock
kill "$holder" 2>/dev/null || true
wait "$holder" 2>/dev/null || true
tm inspect --workdir "$W" --list
expect_eq "$(grep -c '/doc7.txt' "$T/out")" 0 "nothing written while locked"

# One file named twice, or through a link, is read once and counted as the same file.
ln -s "$F/doc1.txt" "$T/link.txt"
tm ingest --workdir "$T/w5" --no-progress --stats-json "$T/s5.json" "$F/doc1.txt" "$T/link.txt" "$F/doc1.txt"
expect_rc 0 "same file named three times"
expect_eq "$(jget "$T/s5.json" documents.total)" 1 "read once"
expect_eq "$(jget "$T/s5.json" inputs.same_file)" 2 "the other two counted as the same file"
done_checks
