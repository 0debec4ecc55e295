#!/usr/bin/env bash
# The README's main job: ingest of the embedded default corpus. Every domain is present, the
# generated math set is all math, a rerun adds nothing, and the statistics add up.
source "$(dirname "$0")/lib.sh"
W="$T/w"
tm ingest --workdir "$W" --default-corpus --math-problems 140 --stats-json "$T/s.json"
case "$RC" in 0 | 3) ok ;; *) fail "default corpus ingest exited $RC" ;; esac
s="$T/s.json"
expect_grep "$T/out" "^ingest: generation 1: [0-9]+ documents" "summary line"
math=$(jget "$s" documents.math)
[ "$math" -ge 140 ] || fail "math documents: $math, want at least the 140 generated"
ok
if [ -d /usr/include ]; then
  [ "$(jget "$s" documents.code)" -gt 100 ] || fail "code documents from /usr/include"
  ok
fi
if [ -d /usr/share/common-licenses ]; then
  [ "$(jget "$s" documents.text)" -gt 10 ] || fail "text documents from the licenses"
  ok
fi
total=$(jget "$s" documents.total)
sum=$(( $(jget "$s" documents.text) + $(jget "$s" documents.math) + $(jget "$s" documents.code) ))
expect_eq "$sum" "$total" "domain counts add up to the total"
tm inspect --workdir "$W" --list
expect_eq "$(grep -c 'tokenmill:math#problem=' "$T/out")" 140 "every generated problem stored once"
expect_eq "$(grep 'tokenmill:math#problem=' "$T/out" | cut -f2 | sort -u)" "math" "generated problems are math"
expect_eq "$(wc -l <"$T/out")" "$total" "listed documents equal the statistics"
tm ingest --workdir "$W" --default-corpus --math-problems 140 --stats-json "$T/s2.json"
expect_eq "$(jget "$T/s2.json" documents.total)" 0 "a rerun of the main job adds nothing"
done_checks
