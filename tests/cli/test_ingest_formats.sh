#!/usr/bin/env bash
# Every input format ingest reads, written here as fixtures: plain text, source files (by
# extension and by shebang), HTML, a gzipped man page, JSONL (plain, zstd, with a domain field),
# WARC and WARC.gz, tar in four compressions, zip, 7z, and a compressed JSONL nested in a tar.
source "$(dirname "$0")/lib.sh"
F="$T/in"
mkdir -p "$F" "$T/m"

cat >"$F/prose.txt" <<'TXT'
The mill turns slowly in the autumn wind, grinding the last of the harvest into flour.
Farmers bring their carts from the valley, and the miller keeps a careful ledger of every sack.
TXT
cat >"$F/hello.c" <<'TXT'
#include <stdio.h>

int main(void)
{
    printf("hello\n");
    return 0;
}
TXT
cat >"$F/tool" <<'TXT'
#!/usr/bin/env python3
import sys

def main():
    print(sys.argv)

main()
TXT
cat >"$F/page.html" <<'TXT'
<!DOCTYPE html><html><head><title>Mill notes</title><script>var x = "<p>hidden</p>";</script>
<style>p { color: red }</style></head><body><h1>Flour &amp; bread</h1>
<p>Rye costs &pound;3 &mdash; wheat costs more.</p><!-- a comment --></body></html>
TXT
cat >"$T/m/mill.1" <<'TXT'
.TH MILL 1 "2026" "tokenmill" "User Commands"
.SH NAME
mill \- grind grain into flour
.SH SYNOPSIS
.B mill
[\fB\-\-fine\fR] \fIgrain\fP
.SH DESCRIPTION
The \fBmill\fR command grinds grain.
TXT
"$TM_FIXTURE" "$F/mill.1.gz" mill.1="$T/m/mill.1"

cat >"$F/data.jsonl" <<'TXT'
{"id": "a1", "text": "A plain sentence about rivers and the sea, long enough to read.", "url": "http://example.org/a"}

{"id": "a2", "text": "Solve $x^2 - 5x + 6 = 0$. We factor: $(x-2)(x-3) = 0$, so $x = 2$ or $x = 3$. Check with $\\frac{5 \\pm \\sqrt{1}}{2}$.", "source": "gen"}
{"id": "a3", "text": "def f(x):\n    return x\n", "kind": "code", "lang": "python"}
TXT
"$TM_FIXTURE" "$F/more.jsonl.zst" more.jsonl="$F/data.jsonl"
mkdir -p "$T/dj"
cat >"$T/dj/tagged.jsonl" <<'TXT'
{"text": "Any text, told to be math by its field.", "dom": "math"}
TXT

# WARC: a warcinfo record, an HTML response, a plain-text response, a request.
warc_record() { # TYPE URI CONTENT-TYPE BODY-FILE
  local len
  len=$(stat -c %s "$4")
  printf 'WARC/1.0\r\nWARC-Type: %s\r\nWARC-Target-URI: %s\r\nWARC-Date: 2026-01-02T03:04:05Z\r\nWARC-Record-ID: <urn:uuid:%s>\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n' \
    "$1" "$2" "$(echo "$2$1" | md5sum | cut -c1-32)" "$3" "$len"
  cat "$4"
  printf '\r\n\r\n'
}
printf 'software: test\r\n' >"$T/info"
printf 'HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<html><body><p>Bread &amp; butter from the mill.</p></body></html>' >"$T/resp1"
printf 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nPlain words from a web server.' >"$T/resp2"
printf 'GET / HTTP/1.1\r\nHost: example.org\r\n\r\n' >"$T/req"
{
  warc_record warcinfo "" "application/warc-fields" "$T/info"
  warc_record response "http://example.org/bread" "application/http; msgtype=response" "$T/resp1"
  warc_record request "http://example.org/" "application/http; msgtype=request" "$T/req"
  warc_record response "http://example.org/plain" "application/http; msgtype=response" "$T/resp2"
} >"$F/crawl.warc"
# WARC.gz as crawlers write it: one gzip member per record.
{
  warc_record response "http://example.org/gz1" "application/http; msgtype=response" "$T/resp1" | gzip -c
  warc_record response "http://example.org/gz2" "application/http; msgtype=response" "$T/resp2" | gzip -c
} >"$F/crawl2.warc.gz"

# Archives with the same three members in every format, plus a nested compressed JSONL.
printf 'Notes on sharpening millstones, kept by the miller for the apprentices.\n' >"$T/m/a.txt"
printf 'import os\n\nclass Wheel:\n    def turn(self):\n        return os.getpid()\n' >"$T/m/b.py"
printf '# Mill\n\nA markdown note about the mill and its wheel.\n' >"$T/m/c.md"
"$TM_FIXTURE" "$T/m/inner.jsonl.gz" inner.jsonl="$T/dj/tagged.jsonl"
for fmt in tar.gz tar.zst tar.xz tar.bz2 zip 7z; do
  "$TM_FIXTURE" "$F/bundle.$fmt" a.txt="$T/m/a.txt" src/b.py="$T/m/b.py" docs/c.md="$T/m/c.md"
done
"$TM_FIXTURE" "$F/nested.tar" inner/tagged.jsonl.gz="$T/m/inner.jsonl.gz"

W="$T/w"
tm ingest --workdir "$W" --no-progress --stats-json "$T/s.json" "$F"
expect_rc 0 "ingest of every format"
# 1 prose + 1 C + 1 shebang + 1 HTML + 1 man + 3 JSONL + 3 JSONL.zst + 2 WARC + 2 WARC.gz
# + 6 archives x 3 members + 1 nested JSONL record = 34
expect_eq "$(jget "$T/s.json" documents.total)" 34 "documents ingested"
expect_eq "$(jget "$T/s.json" inputs.ingested)" 16 "inputs ingested"
expect_eq "$(jget "$T/s.json" errors.count)" 0 "errors"
expect_eq "$(jget "$T/s.json" records.warc_records_not_response)" 2 "non-response WARC records counted"
expect_grep "$T/out" "34 documents" "summary line"

tm inspect --workdir "$W" --list
expect_rc 0 "inspect --list"
cp "$T/out" "$T/list"
row() { grep -F -- "$1" "$T/list" | head -1; }
field() { row "$1" | cut -f"$2"; }
expect_eq "$(field "/hello.c" 2)/$(field "/hello.c" 3)" "code/c" "C file by extension"
expect_eq "$(field "/tool" 2)/$(field "/tool" 3)" "code/python" "script by shebang"
expect_eq "$(field "/prose.txt" 2)" "text" "prose is text"
expect_eq "$(field "bundle.zip!src/b.py" 2)/$(field "bundle.zip!src/b.py" 3)" "code/python" "zip member language"
expect_eq "$(field "bundle.7z!a.txt" 2)" "text" "7z member"
expect_eq "$(field "data.jsonl#line=3" 2)" "math" "LaTeX-dense JSONL record is math"
expect_eq "$(field "data.jsonl#line=1" 2)" "text" "plain JSONL record"
expect_eq "$(grep -c 'nested.tar!inner/tagged.jsonl.gz#line=1' "$T/list")" 1 "nested compressed JSONL"
for fmt in tar.gz tar.zst tar.xz tar.bz2 zip 7z; do
  expect_eq "$(grep -c "bundle.$fmt!" "$T/list")" 3 "members of bundle.$fmt"
done
# The same member text in every archive format hashes the same.
expect_eq "$(grep -F '!a.txt' "$T/list" | cut -f5 | sort -u | wc -l)" 1 "identical text across formats"

# Document contents.
id=$(field "/page.html" 1)
tm inspect --workdir "$W" --doc "$id"
expect_rc 0 "inspect --doc html"
expect_grep "$T/out" "^Flour & bread" "HTML heading with decoded entity"
expect_grep "$T/out" "Rye costs £3 — wheat costs more." "HTML entities"
expect_no_grep "$T/out" "hidden|color: red|a comment|<p>" "script, style, comment and tags removed"
id=$(field "/mill.1.gz" 1)
tm inspect --workdir "$W" --doc "$id"
expect_grep "$T/out" "mill - grind grain into flour" "man page NAME line"
expect_no_grep "$T/out" '\\f[BIRP]|^\.(TH|SH|B)' "roff requests and font escapes removed"
id=$(field "crawl.warc#offset=" 1)
tm inspect --workdir "$W" --doc "$id"
expect_grep "$T/out" '"url": ?"http://example.org/bread"' "WARC target URI in metadata"
expect_grep "$T/out" '"date": ?"2026-01-02T03:04:05Z"' "WARC date in metadata"
expect_grep "$T/out" "^Bread & butter from the mill.$" "WARC HTML body as text"
id=$(field "data.jsonl#line=1" 1)
tm inspect --workdir "$W" --doc "$id"
expect_grep "$T/out" '^meta: \{"id":"a1","url":"http://example.org/a"\}$' "JSONL metadata keeps the other fields"

# A domain field and --domain.
tm ingest --workdir "$T/w2" --no-progress --domain-field dom --stats-json "$T/s2.json" "$T/dj/tagged.jsonl"
expect_rc 0 "ingest with --domain-field"
expect_eq "$(jget "$T/s2.json" documents.math)" 1 "domain from the JSONL field"
tm ingest --workdir "$T/w3" --no-progress --domain code --stats-json "$T/s3.json" "$F/prose.txt"
expect_eq "$(jget "$T/s3.json" documents.code)" 1 "--domain overrides detection"
tm ingest --workdir "$T/w4" --no-progress --domain poetry "$F/prose.txt"
expect_rc 2 "unknown --domain is a usage error"
expect_grep "$T/err" "poetry" "message names the bad domain"
done_checks
