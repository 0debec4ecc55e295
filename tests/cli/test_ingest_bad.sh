#!/usr/bin/env bash
# Bad input: truncated and corrupt archives, invalid UTF-8, NUL bytes, CRLF, empty files, a
# 50 MB single line, binary files, broken JSONL lines, a missing path. Each is reported with its
# file and position, counted, and never costs the documents around it.
source "$(dirname "$0")/lib.sh"
F="$T/in"
mkdir -p "$F" "$T/m"
W="$T/w"

# A first, clean ingest whose documents must survive everything below.
printf 'A first document that is committed before anything goes wrong.\n' >"$T/first.txt"
tm ingest --workdir "$W" --no-progress "$T/first.txt"
expect_rc 0 "clean first ingest"
tm inspect --workdir "$W" --list
cp "$T/out" "$T/before"

printf 'The first member arrives intact and is kept.\n' >"$T/m/a.txt"
head -c 300000 /dev/urandom | base64 >"$T/m/b.txt"
printf 'The third member is never reached.\n' >"$T/m/c.txt"
"$TM_FIXTURE" "$T/full.tar.gz" a.txt="$T/m/a.txt" b.txt="$T/m/b.txt" c.txt="$T/m/c.txt"
size=$(stat -c %s "$T/full.tar.gz")
head -c $((size * 6 / 10)) "$T/full.tar.gz" >"$F/truncated.tar.gz"

"$TM_FIXTURE" "$T/full.zip" a.txt="$T/m/a.txt" b.txt="$T/m/b.txt" c.txt="$T/m/c.txt"
# Overwrite bytes in the middle of the second member's compressed data.
cp "$T/full.zip" "$F/corrupt.zip"
printf 'XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX' |
  dd of="$F/corrupt.zip" bs=1 seek=$((size / 2)) conv=notrunc status=none

printf 'ok \xff ok \xc0\x80 end\n' >"$F/bad-utf8.txt"
printf 'A line of text with a few stray NUL bytes: nul\0bytes\0here, which are removed.\n' >"$F/nul.txt"
printf 'line one\r\nline two\r\nlone\rcr\n' >"$F/crlf.txt"
: >"$F/empty.txt"
printf "" | gzip -c >"$F/empty-inside.txt.gz"
head -c $((50 * 1024 * 1024)) /dev/zero | tr '\0' 'a' >"$F/huge-line.txt"
cp /bin/true "$F/true-binary"
# A JSONL line far over the limit, between two good lines: memory stays bounded, the line is
# skipped with its number, and the lines around it are kept.
{
  printf '{"text": "before the long line"}\n{"text": "'
  head -c $((20 * 1024 * 1024)) /dev/zero | tr '\0' 'b'
  printf '"}\n{"text": "after the long line"}\n'
} >"$F/long.jsonl"
cat >"$F/bad.jsonl" <<'TXT'
{"text": "good line one"}
{"text": "broken
["not", "an", "object"]
{"title": "no text field"}
{"text": 42}
{"text": "good line six"}
TXT

tm ingest --workdir "$W" --no-progress --stats-json "$T/s.json" "$F" "$T/does-not-exist"
expect_rc 3 "exit status 3: some inputs failed"
s="$T/s.json"
# Documents: a.txt from the truncated tar, a.txt and c.txt from the zip, bad-utf8, nul, crlf,
# the two good JSONL lines, the two short lines of long.jsonl.
expect_eq "$(jget "$s" documents.total)" 10 "documents kept around the failures"
expect_eq "$(jget "$s" skipped.line_too_long)" 1 "over-long JSONL line counted"
expect_eq "$(jget "$s" skipped.empty)" 2 "empty file and empty compressed file counted"
expect_eq "$(jget "$s" skipped.too_large)" 1 "50 MB line skipped as too large"
expect_eq "$(jget "$s" skipped.binary)" 1 "binary file skipped"
expect_eq "$(jget "$s" skipped.bad_json)" 1 "bad JSON line"
expect_eq "$(jget "$s" normalization.utf8_repairs)" 3 "invalid UTF-8 sequences replaced"
expect_eq "$(jget "$s" normalization.nul_removed)" 2 "NUL bytes removed"
expect_eq "$(jget "$s" normalization.crlf)" 2 "CRLF turned into LF"
expect_eq "$(jget "$s" inputs.failed)" 1 "missing path counted as a failed input"
expect_grep "$T/err" "truncated.tar.gz!b.txt: offset [0-9]+: .*truncated" "truncated archive named with position"
expect_eq "$(grep -c 'truncated.tar.gz' "$T/err")" 1 "one error for one truncation"
expect_grep "$T/err" "corrupt.zip!b.txt: offset [0-9]+: " "corrupt zip member named with position"
expect_grep "$T/err" "bad.jsonl: line 2: bad_json" "bad JSON line named with its line"
expect_grep "$T/err" "bad.jsonl: line 4: missing_text" "missing text field"
expect_grep "$T/err" "does-not-exist" "missing input named"
expect_grep "$T/err" "long.jsonl: line 2: line_too_long" "over-long line named with its number"

tm inspect --workdir "$W" --list
cp "$T/out" "$T/after"
# Everything committed before is still there, byte for byte.
while IFS= read -r line; do
  grep -qxF -- "$line" "$T/after" || fail "document lost after bad input: $line"
done <"$T/before"
ok
expect_eq "$(grep -c 'truncated.tar.gz!a.txt' "$T/after")" 1 "member before the truncation kept"
expect_eq "$(grep -c 'truncated.tar.gz!c.txt' "$T/after")" 0 "nothing invented after the truncation"
expect_eq "$(grep -cE 'corrupt.zip!(a|c).txt' "$T/after")" 2 "zip members around the corrupt one kept"
expect_eq "$(grep -c 'corrupt.zip!b.txt' "$T/after")" 0 "corrupt zip member skipped"

id=$(grep -F '/bad-utf8.txt' "$T/after" | cut -f1)
tm inspect --workdir "$W" --doc "$id"
expect_grep "$T/out" $'^ok \xef\xbf\xbd ok \xef\xbf\xbd\xef\xbf\xbd end$' "U+FFFD per maximal subpart"
id=$(grep -F '/nul.txt' "$T/after" | cut -f1)
tm inspect --workdir "$W" --doc "$id"
expect_grep "$T/out" 'bytes: nulbyteshere, which' "NUL bytes removed from the text"
id=$(grep -F '/crlf.txt' "$T/after" | cut -f1)
tm inspect --workdir "$W" --doc "$id"
expect_grep "$T/out" $'^lone\rcr$' "a lone CR is kept"
expect_no_grep "$T/out" $'two\r' "CRLF is gone"

# The 50 MB line is a document when the limit allows it.
tm ingest --workdir "$T/w-big" --no-progress --max-doc-size 64M --stats-json "$T/big.json" "$F/huge-line.txt"
expect_rc 0 "huge line with a larger limit"
expect_eq "$(jget "$T/big.json" text_bytes.total)" $((50 * 1024 * 1024)) "50 MB line stored whole"

# A bad option value is a usage error naming the option.
tm ingest --workdir "$W" --max-doc-size 12Q "$F"
expect_rc 2 "bad size"
expect_grep "$T/err" "max-doc-size" "message names the option"
done_checks
