#!/usr/bin/env bash
# tokenmill encode / decode: a small .tiktoken vocabulary written here (the 256 bytes, then a
# few merges), round trips of text through encode and decode, merges applied, special tokens
# refused unless allowed, invalid input reported, and the real encodings' golden ids when
# TOKENMILL_VOCAB_DIR names the tiktoken files.
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
