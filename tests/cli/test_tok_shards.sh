#!/usr/bin/env bash
# tokenmill tokenize / export megatron: the kept documents (after filter and dedup) go into
# token shards and come back out of the Megatron export byte for byte; duplicates and filtered
# documents do not; a generation waits until filter and dedup have run on it; a run with another
# tokenizer is refused until --redo; the split is stable; uint16 vs uint32 follows the vocabulary.
source "$(dirname "$0")/lib.sh"

# A small vocabulary: the 256 bytes and a few merges (no sidecar: --pattern is given).
python3 - "$T/small.tiktoken" "$T/big.tiktoken" <<'PY'
import base64, sys
toks = [bytes([b]) for b in range(256)] + [b"th", b"the", b" the", b"in", b"ing", b" a", b"e "]
with open(sys.argv[1], "w") as f:
    for rank, t in enumerate(toks):
        f.write(base64.b64encode(t).decode() + " " + str(rank) + "\n")
# the same tokens with ranks past 65536: ids need uint32
with open(sys.argv[2], "w") as f:
    for rank, t in enumerate(toks):
        f.write(base64.b64encode(t).decode() + " " + str(rank if rank < 256 else 70000 + rank) + "\n")
PY

# Documents: real prose (the licenses every Debian system has), plus an exact copy of one.
mkdir -p "$T/in1" "$T/in2"
n=0
for f in /usr/share/common-licenses/{GPL-3,Apache-2.0,MPL-2.0,Artistic,BSD}; do
  [ -f "$f" ] && cp "$f" "$T/in1/$(basename "$f").txt" && n=$((n + 1))
done
[ "$n" -ge 3 ] || fail "fewer than 3 license texts found"
cp "$T/in1/GPL-3.txt" "$T/in1/copy-of-gpl.txt"
cp /usr/share/common-licenses/LGPL-2.1 "$T/in2/LGPL-2.1.txt"
printf 'A short note that the quality rules remove.\n' >"$T/in1/short.txt"

W="$T/w"
tm ingest --workdir "$W" --no-progress "$T/in1"
expect_rc 0 "ingest"
tm filter --workdir "$W" --no-progress
expect_rc 0 "filter"
tm dedup --workdir "$W" --no-progress --export "$T/dedup.jsonl"
expect_rc 0 "dedup"
tm tokenize --workdir "$W" --vocab "$T/small.tiktoken" --pattern r50k --no-progress \
  --shard-tokens 4000 --chunk-tokens 256 --val-fraction 0 --stats-json "$T/s1.json"
expect_rc 0 "tokenize"
docs=$(jget "$T/s1.json" tokenize.train.text.docs)
expect_eq "$(jget "$T/s1.json" tokenize.docs_duplicate)" 1 "the exact copy is a duplicate"
[ "$(jget "$T/s1.json" tokenize.docs_filtered)" -ge 1 ] || fail "the short note was not filtered"
ok
expect_eq "$docs" "$((n))" "kept documents tokenized"
[ "$(jget "$T/s1.json" tokenize.shards_written)" -ge 3 ] || fail "expected several 4000-token shards"
ok
expect_eq "$(ls "$W/tokens" | grep -c partial || true)" 0 "no unfinished shard left"

# Export and decode: every kept document comes back exactly, once, followed by <|endoftext|>.
tm export megatron --workdir "$W" --out "$T/mg/corpus" --split train --no-progress
expect_rc 0 "export megatron"
decode_check() { # PREFIX VOCAB EXPECT_DTYPE_CODE FILES...
  python3 - "$@" <<'PY'
import base64, struct, sys
prefix, vocab, code = sys.argv[1], sys.argv[2], int(sys.argv[3])
want = sorted(open(p, "rb").read() for p in sys.argv[4:])
tok = {}
for line in open(vocab):
    b, r = line.split()
    tok[int(r)] = base64.b64decode(b)
eot = max(tok) + 1
idx = open(prefix + ".idx", "rb").read()
assert idx[:9] == b"MMIDIDX\x00\x00", "magic"
ver, = struct.unpack_from("<Q", idx, 9)
dcode = idx[17]
S, D = struct.unpack_from("<QQ", idx, 18)
assert ver == 1 and dcode == code and D == S + 1, (ver, dcode, S, D)
lens = struct.unpack_from("<%di" % S, idx, 34)
ptrs = struct.unpack_from("<%dq" % S, idx, 34 + 4 * S)
dix = struct.unpack_from("<%dq" % D, idx, 34 + 12 * S)
assert list(dix) == list(range(S + 1)), "document indices"
assert len(idx) == 34 + 12 * S + 8 * D, "index length"
w = 2 if code == 8 else 4
binf = open(prefix + ".bin", "rb").read()
assert len(binf) == sum(lens) * w, "bin length"
got = []
for L, P in zip(lens, ptrs):
    ids = struct.unpack_from("<%d%s" % (L, "H" if w == 2 else "i"), binf, P)
    assert ids[-1] == eot and eot not in ids[:-1], "one <|endoftext|> per document, at its end"
    got.append(b"".join(tok[i] for i in ids[:-1]))
assert sorted(got) == want, "decoded documents differ from the kept ones"
print(S)
PY
}
kept=()
for f in "$T"/in1/*.txt; do
  case "$(basename "$f")" in copy-of-gpl.txt | short.txt) ;; *) kept+=("$f") ;; esac
done
got=$(decode_check "$T/mg/corpus_train" "$T/small.tiktoken" 8 "${kept[@]}") ||
  fail "the exported documents do not decode to the kept ones"
expect_eq "$got" "$n" "documents in the export"

# A new generation waits for filter and dedup.
tm ingest --workdir "$W" --no-progress "$T/in2"
expect_rc 0 "ingest generation 2"
tm tokenize --workdir "$W" --vocab "$T/small.tiktoken" --pattern r50k --no-progress \
  --shard-tokens 4000 --chunk-tokens 256 --val-fraction 0 --stats-json "$T/s2.json"
expect_rc 0 "tokenize before filter"
expect_grep "$T/err" "generation 2 is not filtered yet" "the waiting generation is named"
expect_eq "$(jget "$T/s2.json" tokenize.tokens)" 0 "nothing tokenized before the decisions"
tm filter --workdir "$W" --no-progress
tm dedup --workdir "$W" --no-progress
tm tokenize --workdir "$W" --vocab "$T/small.tiktoken" --pattern r50k --no-progress \
  --shard-tokens 4000 --chunk-tokens 256 --val-fraction 0 --stats-json "$T/s3.json"
expect_rc 0 "tokenize generation 2"
expect_eq "$(jget "$T/s3.json" tokenize.train.text.docs)" 1 "only the new document"
tm tokenize --workdir "$W" --vocab "$T/small.tiktoken" --pattern r50k --no-progress \
  --shard-tokens 4000 --chunk-tokens 256 --val-fraction 0 --stats-json "$T/s4.json"
expect_eq "$(jget "$T/s4.json" tokenize.tokens)" 0 "a rerun finds nothing new"
tm export megatron --workdir "$W" --out "$T/mg/all" --split train --no-progress
got=$(decode_check "$T/mg/all_train" "$T/small.tiktoken" 8 "${kept[@]}" "$T/in2/LGPL-2.1.txt") ||
  fail "export after generation 2"
ok

# Another tokenizer is refused; --redo re-tokenizes everything with it (uint32 ids).
tm tokenize --workdir "$W" --vocab "$T/big.tiktoken" --pattern r50k --no-progress --val-fraction 0
[ "$RC" -ne 0 ] || fail "a second tokenizer was accepted"
expect_grep "$T/err" "--redo" "the refusal says how to proceed"
tm tokenize --workdir "$W" --vocab "$T/big.tiktoken" --pattern r50k --no-progress --val-fraction 0 \
  --redo --stats-json "$T/s5.json"
expect_rc 0 "tokenize --redo"
expect_eq "$(jget "$T/s5.json" tokenize.train.text.docs)" "$((n + 1))" "every kept document again"
tm export megatron --workdir "$W" --out "$T/mg/big" --split train --no-progress
got=$(decode_check "$T/mg/big_train" "$T/big.tiktoken" 4 "${kept[@]}" "$T/in2/LGPL-2.1.txt") ||
  fail "export of uint32 shards"
ok

# The split: a stable hash of the document id. Two workdirs built alike split alike; with a
# fraction of 0.5 both splits get documents; --require none reads undecided documents.
for x in a b; do
  tm ingest --workdir "$T/$x" --no-progress "$T/in1" "$T/in2"
  tm tokenize --workdir "$T/$x" --vocab "$T/small.tiktoken" --pattern r50k --no-progress \
    --require none --val-fraction 0.5 --threads 2 --stats-json "$T/$x.json"
  expect_rc 0 "tokenize --require none ($x)"
  tm export megatron --workdir "$T/$x" --out "$T/$x/mg" --no-progress
  expect_rc 0 "export ($x)"
done
cmp -s "$T/a/mg_train.bin" "$T/b/mg_train.bin" && cmp -s "$T/a/mg_val.idx" "$T/b/mg_val.idx" ||
  fail "the same input split or encoded differently"
ok
tr=$(jget "$T/a.json" tokenize.train.text.docs)
va=$(jget "$T/a.json" tokenize.val.text.docs)
expect_eq "$((tr + va))" "$((n + 3))" "every document, undecided ones included"
[ "$tr" -ge 1 ] && [ "$va" -ge 1 ] || fail "a split is empty at fraction 0.5 ($tr/$va)"
ok
done_checks
