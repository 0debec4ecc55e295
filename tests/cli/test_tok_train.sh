#!/usr/bin/env bash
# tokenmill tokenize train-vocab: refuses generations filter and dedup have not finished (unless
# --require none); trains on what both kept; the .tiktoken file (bytes 0-255 in order, then
# every token the concatenation of two lower-ranked ones, unique) and its sidecar; encode and
# decode with the result; the same file with 1 and 2 threads; domain weights (0 skips, a weight
# of 2 equals the documents twice, uniform scaling changes nothing); sample limits,
# --min-frequency, pruning under --max-words; usage errors.
source "$(dirname "$0")/lib.sh"
F="$T/in"
mkdir -p "$F"

# Text from a pool of sentences (so some pairs are frequent), math and code documents (with a
# "domain" field), and exact and near copies of some text documents for dedup to remove.
python3 - "$F" <<'PY'
import json, random, sys
rng = random.Random(11)
words = ("the of and to in is that it for was on are as with his they at be this from have or "
         "by one had not but what all were when we there can an your which their said if do will "
         "each about how up out them then she many some so these would other into has more her "
         "two like him see time could no make than first been its who now people my made over "
         "did down only way find use may water long little very after words called just where "
         "most know").split()
def sentence():
    s = " ".join(rng.choice(words) for _ in range(rng.randint(6, 18)))
    return s[0].upper() + s[1:] + "."
text = []
for i in range(150):
    paras = ["  ".join(sentence() for _ in range(rng.randint(3, 7))) for _ in range(rng.randint(2, 4))]
    text.append({"id": "t%d" % i, "domain": "text", "text": "\n\n".join(paras) + "\n"})
math = []
for i in range(30):
    lines = []
    for _ in range(rng.randint(5, 12)):
        a, b, c = rng.randint(2, 99), rng.randint(2, 99), rng.randint(2, 9)
        lines.append("Let x = %d. Then x^%d + %d*x = %d, so the answer is %d." %
                     (a, c, b, a ** c + b * a, a ** c + b * a))
    math.append({"id": "m%d" % i, "domain": "math", "text": "\n".join(lines) + "\n"})
code = []
for i in range(20):
    body = []
    for k in range(rng.randint(4, 10)):
        body.append("def f%d_%d(x, y):\n    return x * %d + y - %d\n" % (i, k, rng.randint(1, 9),
                                                                      rng.randint(1, 9)))
    code.append({"id": "c%d" % i, "domain": "code", "lang": "python", "text": "\n".join(body)})
dups = [dict(d, id=d["id"] + "-copy") for d in text[:10]]
# and one near copy (one word of the longest document changed: Jaccard ~0.95)
longest = max(text, key=lambda d: len(d["text"]))
w = longest["text"].split(" ")
w[len(w) // 2] = "zebra"
dups.append(dict(longest, id="near-copy", text=" ".join(w)))
with open(sys.argv[1] + "/docs.jsonl", "w") as f:
    for d in text + math + code + dups:
        f.write(json.dumps(d) + "\n")
with open(sys.argv[1] + "/math-again.jsonl", "w") as f:
    for d in math:
        f.write(json.dumps(dict(d, id=d["id"] + "-again")) + "\n")
with open(sys.argv[1] + "/sample.txt", "w") as f:
    f.write(text[3]["text"] + math[2]["text"] + code[1]["text"] + "Ünïcödé ✓ 日本語\n")
PY

# check_vocab FILE N: N lines "base64 rank" with ranks 0..N-1 in order, 0-255 the single bytes,
# tokens unique, every token >= 256 the concatenation of two tokens of lower rank; and the
# sidecar FILE.json.
check_vocab() {
  python3 - "$1" "$2" <<'PY'
import base64, json, sys
path, n = sys.argv[1], int(sys.argv[2])
toks = []
for i, line in enumerate(open(path, "rb")):
    b64, rank = line.split(b" ")
    assert int(rank) == i, ("rank", i, rank)
    toks.append(base64.b64decode(b64, validate=True))
assert len(toks) == n, ("lines", len(toks), n)
assert toks[:256] == [bytes([b]) for b in range(256)], "ranks 0-255 are not the bytes"
rank = {t: i for i, t in enumerate(toks)}
assert len(rank) == n, "duplicate tokens"
for i in range(256, n):
    t = toks[i]
    assert any(rank.get(t[:k], n) < i and rank.get(t[k:], n) < i for k in range(1, len(t))), \
        ("token %d %r is not two lower-ranked tokens" % (i, t))
side = json.load(open(path + ".json"))
assert side["format"] == "tokenmill-vocab" and side["version"] == 1, side
assert side["pattern"] == "cl100k", side
assert side["vocab_size"] == n + 1, side
assert side["special_tokens"] == {"<|endoftext|>": n}, side
assert side["training"]["mergeable_tokens"] == n, side
PY
}

# jcheck FILE WHAT CHECK...: each CHECK is PATH=VALUE, PATH>VALUE, PATH<=VALUE or PATH==PATH2
# on dotted paths of the JSON file (one python start for many checks: they cost ~0.1 s each).
jcheck() {
  python3 - "$@" <<'PY' || fail "$2"
import json, re, sys
doc = json.load(open(sys.argv[1]))
def get(path):
    v = doc
    for part in path.split("."):
        v = v.get(part) if isinstance(v, dict) else None
    return int(v) if isinstance(v, float) and v.is_integer() else v
bad = 0
for check in sys.argv[3:]:
    path, op, want = re.match(r"([\w.]+)(==|<=|>|=)(.*)", check).groups()
    got = get(path)
    if op == "==":
        good = got == get(want)
    elif op == "=":
        good = str(got) == want
    elif op == ">":
        good = got > int(want)
    else:
        good = got <= int(want)
    if not good:
        print("%s: %s is %r" % (sys.argv[1], check, got), file=sys.stderr)
        bad += 1
sys.exit(1 if bad else 0)
PY
  CHECKS=$((CHECKS + $# - 2))
}

W="$T/w"
V=(--vocab-size 400 --no-progress)
tm ingest --workdir "$W" --no-progress --domain-field domain "$F/docs.jsonl"
expect_rc 0 "ingest"

# Not filtered yet: nothing is ready, nothing is written.
tm tokenize train-vocab --workdir "$W" --out "$T/v0.tiktoken" "${V[@]}"
expect_rc 1 "train-vocab before filter and dedup"
expect_grep "$T/err" "generation 1 skipped: not filtered yet" "the skipped generation is named"
expect_grep "$T/err" "no documents to train on" "the failure says why"
[ ! -e "$T/v0.tiktoken" ] && [ ! -e "$T/v0.tiktoken.json" ] || fail "a file was written"
ok

tm filter --workdir "$W" --no-progress
expect_rc 0 "filter"
tm tokenize train-vocab --workdir "$W" --out "$T/v0.tiktoken" "${V[@]}"
expect_rc 1 "train-vocab before dedup"
expect_grep "$T/err" "not deduplicated yet" "dedup is still missing"
tm dedup --workdir "$W" --no-progress
expect_rc 0 "dedup"

tm tokenize train-vocab --workdir "$W" --out "$T/v1.tiktoken" "${V[@]}" --threads 1 \
  --stats-json "$T/s1.json"
expect_rc 0 "train-vocab"
expect_grep "$T/out" "^train-vocab: [0-9]+ documents, .* 400 tokens \(.* merges\) \+ <\|endoftext\|> = 401 ids" "summary line"
check_vocab "$T/v1.tiktoken" 400 || fail "v1.tiktoken"
ok
# Trained on what filter and dedup kept: the planted copies are not counted.
jcheck "$T/s1.json" "statistics of a run" train_vocab.docs==train_vocab.store.kept \
  train_vocab.docs\>150 train_vocab.store.duplicates=11 train_vocab.domains.code.docs=20 \
  train_vocab.mergeable_tokens=400 train_vocab.stop=vocab_size train_vocab.pruned_pretokens=0 \
  train_vocab.unique_pretokens\>100 train_vocab.merges=144 train_vocab.seconds.merge\>-1
ls "$T" | grep -q "\.tmp\." && fail "a temporary file was left behind"
ok

# The vocabulary encodes and decodes: fewer ids than bytes, and the text comes back.
tm encode --vocab "$T/v1.tiktoken" --pattern cl100k --disallowed-special none <"$F/sample.txt"
expect_rc 0 "encode with the trained vocabulary"
nids=$(wc -w <"$T/out")
[ "$nids" -lt $(($(wc -c <"$F/sample.txt") * 2 / 3)) ] || fail "$nids ids: the merges are not used"
ok
"$TOKENMILL" decode --vocab "$T/v1.tiktoken" --pattern cl100k <"$T/out" >"$T/back.txt"
cmp -s "$F/sample.txt" "$T/back.txt" || fail "decode(encode(text)) differs"
ok

# The corpus command takes it (pattern and <|endoftext|> from the sidecar).
tm tokenize --workdir "$W" --vocab "$T/v1.tiktoken" --no-progress
expect_rc 0 "tokenize with the trained vocabulary"

# Two threads: the same file.
tm tokenize train-vocab --workdir "$W" --out "$T/v2.tiktoken" "${V[@]}" --threads 2
expect_rc 0 "train-vocab -j2"
cmp -s "$T/v1.tiktoken" "$T/v2.tiktoken" || fail "--threads 2 gives other merges"
ok

# --require none reads undecided generations; --weight code=0 skips code.
W2="$T/w2"
tm ingest --workdir "$W2" --no-progress --domain-field domain "$F/docs.jsonl"
tm tokenize train-vocab --workdir "$W2" --require none --out "$T/n.tiktoken" "${V[@]}" \
  --weight code=0 --stats-json "$T/sn.json"
expect_rc 0 "--require none"
jcheck "$T/sn.json" "--require none, code=0" train_vocab.docs=191 \
  train_vocab.docs_skipped_weight_0=20 train_vocab.domains.code.bytes=0 train_vocab.weights.code=0 \
  train_vocab.weights.math=1 train_vocab.store.undecided=211 train_vocab.generations_read=1
jcheck "$T/n.tiktoken.json" "the sidecar" training.weights.code=0 training.require=none \
  training.docs=191

# A weight of 2 counts like the documents twice; scaling every weight changes nothing.
tm tokenize train-vocab --workdir "$W2" --require none --out "$T/m2.tiktoken" "${V[@]}" \
  --weight math=2
expect_rc 0 "--weight math=2"
W3="$T/w3"
tm ingest --workdir "$W3" --no-progress --domain-field domain "$F/docs.jsonl" \
  "$F/math-again.jsonl"
tm tokenize train-vocab --workdir "$W3" --require none --out "$T/mm.tiktoken" "${V[@]}"
expect_rc 0 "math twice"
cmp -s "$T/m2.tiktoken" "$T/mm.tiktoken" || fail "math=2 differs from the math documents twice"
ok
cmp -s "$T/m2.tiktoken" "$T/n.tiktoken" && fail "the weights changed nothing"
ok
tm tokenize train-vocab --workdir "$W2" --require none --out "$T/u1.tiktoken" "${V[@]}"
tm tokenize train-vocab --workdir "$W2" --require none --out "$T/u3.tiktoken" "${V[@]}" \
  --weight text=3,math=3,code=3
cmp -s "$T/u1.tiktoken" "$T/u3.tiktoken" || fail "uniform weights changed the merges"
ok

# Sample limits, --min-frequency, --max-words.
tm tokenize train-vocab --workdir "$W2" --require none --out "$T/x.tiktoken" "${V[@]}" \
  --max-docs 7 --stats-json "$T/sx.json"
expect_rc 0 "--max-docs"
jcheck "$T/sx.json" "--max-docs 7" train_vocab.docs=7
tm tokenize train-vocab --workdir "$W2" --require none --out "$T/x.tiktoken" "${V[@]}" \
  --max-bytes 5000 --stats-json "$T/sx.json"
expect_rc 0 "--max-bytes"
jcheck "$T/sx.json" "--max-bytes 5000" train_vocab.bytes\<=5000 train_vocab.bytes\>3000
tm tokenize train-vocab --workdir "$W2" --require none --out "$T/x.tiktoken" "${V[@]}" \
  --min-frequency 300 --stats-json "$T/sx.json"
expect_rc 0 "--min-frequency"
expect_grep "$T/err" "min-frequency" "the early stop is a warning"
jcheck "$T/sx.json" "--min-frequency 300" train_vocab.stop=min_frequency \
  train_vocab.mergeable_tokens\>256 train_vocab.mergeable_tokens\<=399 \
  train_vocab.last_merge_count\>299
check_vocab "$T/x.tiktoken" "$(($(wc -l <"$T/x.tiktoken")))" || fail "early-stopped vocabulary"
ok
tm tokenize train-vocab --workdir "$W2" --require none --out "$T/x.tiktoken" "${V[@]}" \
  --max-words 60 --stats-json "$T/sx.json"
expect_rc 0 "--max-words"
expect_grep "$T/err" "pruned" "pruning is reported"
jcheck "$T/sx.json" "--max-words 60" train_vocab.pruned_pretokens\>0 \
  train_vocab.unique_pretokens\<=60 train_vocab.prunes\>0

# Usage errors.
for bad in "--vocab-size 100" "--vocab-size 5000000" "--weight prose=1" "--weight text=-1" \
  "--weight text" "--weight text=0,math=0,code=0" "--weight text=0.0001" "--pattern gpt9"; do
  # shellcheck disable=SC2086
  tm tokenize train-vocab --workdir "$W2" --out "$T/e.tiktoken" --no-progress $bad
  expect_rc 2 "$bad"
done
tm tokenize train-vocab --workdir "$W2" --no-progress
expect_rc 2 "no --out"
tm tokenize train-vocab --workdir "$T/nowhere" --out "$T/e.tiktoken" --no-progress
expect_rc 1 "no store"
[ ! -e "$T/e.tiktoken" ] || fail "a file was written after an error"
ok
tm tokenize train-vocab --help
expect_rc 0 "--help"
expect_grep "$T/out" "--vocab-size" "help lists the options"
done_checks
