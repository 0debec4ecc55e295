#!/usr/bin/env bash
# tokenmill encode / decode: a small .tiktoken vocabulary written here (the 256 bytes, then a
# few merges), round trips of text through encode and decode, merges applied, special tokens
# refused unless allowed, invalid input reported, --lines / --jsonl / --threads / --count-only,
# and the real encodings' golden ids when TOKENMILL_VOCAB_DIR names the tiktoken files.
source "$(dirname "$0")/lib.sh"
python3 - "$T/small.tiktoken" <<'PY'
import base64, sys
toks = [bytes([b]) for b in range(256)] + [b"th", b"the", b" the", b"in", b"ing", b" a"]
with open(sys.argv[1], "w") as f:
    for rank, t in enumerate(toks):
        f.write(base64.b64encode(t).decode() + " " + str(rank) + "\n")
PY
printf 'the thing in the bathing suit\nand a line\n' >"$T/text.txt"
tm encode --vocab "$T/small.tiktoken" --pattern r50k <"$T/text.txt"
expect_rc 0 "encode"
ids=$(cat "$T/out")
# "the" is token 257, " the" 258, "ing" 260: all merges used
for want in 257 258 260; do
  echo " $ids " | grep -q " $want " || fail "id $want missing from: $ids"
  ok
done
printf "%s\n" "$ids" | "$TOKENMILL" decode --vocab "$T/small.tiktoken" --pattern r50k >"$T/back.txt"
cmp -s "$T/text.txt" "$T/back.txt" || fail "decode(encode(text)) differs from the text"
ok
printf 'before <|endoftext|> after' >"$T/special.txt"
tm encode --vocab "$T/small.tiktoken" --pattern r50k <"$T/special.txt"
[ "$RC" -ne 0 ] || fail "a disallowed special token was accepted"
expect_grep "$T/err" "endoftext" "the refused special token is named"
tm encode --vocab "$T/small.tiktoken" --pattern r50k --disallowed-special none <"$T/special.txt"
expect_rc 0 "special text encoded as text when not disallowed"
printf 'bad \xff byte' >"$T/bad.txt"
tm encode --vocab "$T/small.tiktoken" --pattern r50k <"$T/bad.txt"
[ "$RC" -ne 0 ] || fail "invalid UTF-8 was accepted"
expect_grep "$T/err" "4" "the offset of the invalid byte"
printf 'AAAA 0\n!!!! 1\n' >"$T/broken.tiktoken"
tm encode --vocab "$T/broken.tiktoken" <"$T/text.txt"
[ "$RC" -ne 0 ] || fail "a broken vocabulary was accepted"
expect_grep "$T/err" "broken.tiktoken:2" "the bad line is named"

# --lines: one output line per input line, each equal to encoding that line alone; the same
# on 1 and 3 threads; --jsonl FIELD gives the same ids for the same texts.
python3 - "$T" <<'PY'
import json, random, sys
random.seed(7)
words = ["the", "thing", " the", "in", "bathing", "suit", "and", "a", "line", "42", "'s", ".",
         "\t", "  ", "\u00e9t\u00e9", "\u4e2d\u6587"]
lines = ["".join(random.choice(words) + random.choice([" ", "", "  "])
                 for _ in range(random.randrange(0, 40))) for _ in range(300)]
lines[5] = ""  # an empty document is an empty line of ids
with open(sys.argv[1] + "/lines.txt", "w", encoding="utf-8") as f:
    f.write("\n".join(lines) + "\n")
with open(sys.argv[1] + "/docs.jsonl", "w", encoding="utf-8") as f:
    for l in lines:
        f.write(json.dumps({"id": 1, "text": l}) + "\n")
PY
tm encode --vocab "$T/small.tiktoken" --pattern cl100k --lines --threads 1 <"$T/lines.txt"
expect_rc 0 "encode --lines"
cp "$T/out" "$T/lines1.ids"
expect_eq "$(wc -l <"$T/lines1.ids")" 300 "one output line per document"
expect_eq "$(sed -n 6p "$T/lines1.ids")" "" "the empty document"
for n in 1 2 17 150 300; do
  sed -n "${n}p" "$T/lines.txt" | tr -d '\n' >"$T/one.txt"
  "$TOKENMILL" encode --vocab "$T/small.tiktoken" --pattern cl100k <"$T/one.txt" >"$T/one.ids"
  expect_eq "$(sed -n "${n}p" "$T/lines1.ids")" "$(cat "$T/one.ids")" "line $n alone"
done
tm encode --vocab "$T/small.tiktoken" --pattern cl100k --lines --threads 3 <"$T/lines.txt"
expect_rc 0 "encode --lines --threads 3"
cmp -s "$T/out" "$T/lines1.ids" || fail "3 threads differ from 1"
ok
tm encode --vocab "$T/small.tiktoken" --pattern cl100k --jsonl text -j 2 <"$T/docs.jsonl"
expect_rc 0 "encode --jsonl text"
cmp -s "$T/out" "$T/lines1.ids" || fail "--jsonl differs from --lines on the same texts"
ok
# --count-only: the id count and the hash of the ids printed above (h = h*0x100000001B3 + id+1).
tm encode --vocab "$T/small.tiktoken" --pattern cl100k --lines -j 2 --count-only \
  --stats-json "$T/stats.json" <"$T/lines.txt"
expect_rc 0 "encode --count-only"
want=$(python3 - "$T/lines1.ids" <<'PY'
import sys
ids = [int(x) for x in open(sys.argv[1]).read().split()]
h = 0
for i in ids:
    h = (h * 0x100000001B3 + i + 1) % 2**64
print("%d %016x" % (len(ids), h))
PY
)
expect_eq "$(jget "$T/out" ids) $(jget "$T/out" ids_hash)" "$want" "count and hash of the ids"
expect_eq "$(jget "$T/out" documents)" 300 "documents counted"
expect_eq "$(jget "$T/stats.json" ids) $(jget "$T/stats.json" ids_hash)" "$want" "stats JSON"
# Errors name the line: bad JSON, a missing field, invalid UTF-8; exclusive modes.
printf '{"text": "ok"}\n{"text": \n' >"$T/bad.jsonl"
tm encode --vocab "$T/small.tiktoken" -p r50k --jsonl text <"$T/bad.jsonl"
expect_rc 1 "bad JSON"
expect_grep "$T/err" "line 2" "the bad JSON line is named"
printf '{"body": "ok"}\n' >"$T/nofield.jsonl"
tm encode --vocab "$T/small.tiktoken" -p r50k --jsonl text <"$T/nofield.jsonl"
expect_rc 1 "missing field"
expect_grep "$T/err" "line 1" "the line without the field is named"
printf 'fine\nalso fine\nbad \xff\nfine\n' >"$T/bad_lines.txt"
tm encode --vocab "$T/small.tiktoken" -p r50k --lines -j 2 <"$T/bad_lines.txt"
expect_rc 1 "invalid UTF-8 in a line"
expect_grep "$T/err" "line 3" "the invalid line is named"
tm encode --vocab "$T/small.tiktoken" -p r50k --lines --jsonl text <"$T/lines.txt"
expect_rc 2 "--lines with --jsonl"

if [ -n "${TOKENMILL_VOCAB_DIR:-}" ] && [ -f "$TOKENMILL_VOCAB_DIR/cl100k_base.tiktoken" ]; then
  fx="$TM_SRC/tests/fixtures/tok"
  for enc in r50k cl100k o200k; do
    tm encode --vocab "$TOKENMILL_VOCAB_DIR/${enc}_base.tiktoken" --pattern "$enc" \
      --disallowed-special none <"$fx/text.txt"
    expect_rc 0 "encode $enc"
    [ "$(tr -s ' \n' '\n\n' <"$T/out" | grep -c .)" = "$(tr -s ' \n' '\n\n' <"$fx/$enc.ids" | grep -c .)" ] ||
      fail "$enc: id count differs from tiktoken's"
    diff <(tr -s ' \n' '\n\n' <"$T/out" | grep .) <(tr -s ' \n' '\n\n' <"$fx/$enc.ids" | grep .) >/dev/null ||
      fail "$enc: ids differ from tiktoken's"
    ok
  done
else
  echo "TOKENMILL_VOCAB_DIR unset: the real encodings' checks are skipped"
fi
done_checks
