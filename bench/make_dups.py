#!/usr/bin/env python3
"""Write a dedup benchmark input with planted duplicates and their ground truth to stdout.

One JSON object per line: {"id", "text", "orig", "kind", "jaccard", "src"}.
  kind     "orig"  an original document,
           "exact" a copy of an original that differs only in case, punctuation and whitespace
                   (same normalized text: tokenmill must call it an exact duplicate),
           "near"  a copy with random word edits, 5-gram Jaccard to the original in [0.85, 0.95],
           "far"   a copy with many word edits, 5-gram Jaccard to the original below 0.5;
  orig     the id of the original (its own id for an original);
  jaccard  the exact Jaccard similarity of the word 5-gram sets of the copy and its original,
           after tokenmill's normalization (approximated here: str.lower(); ASCII punctuation,
           U+00A1..U+00BF and U+2000..U+206F stripped except the Unicode spaces among them;
           whitespace runs collapsed; words split on spaces; a text of fewer than 5 words is one
           shingle, an empty text has none); 1.0 for an original;
  src      where the original's text comes from: "chunk" (a contiguous piece of one document)
           or "mix" (sentences drawn at random from the whole input; see below).

Originals are real text: the documents of the input JSONL (default bench/out/text.jsonl.zst,
read with `zstd -dc`) are split into paragraphs (blank lines) and sentences, paragraphs already
seen (same normalized text) are dropped, and the rest are cut into chunks of 40..200 words at
sentence or paragraph boundaries (a sentence longer than what is left to fill is cut at a word).
When the chunks run out (the default input has about 12.7 M words of distinct paragraphs, room
for ~186 k chunks, fewer than the ~780 k originals of a million documents) further originals
are "mix" documents: 40..200 words of whole sentences drawn uniformly from the pool of distinct
sentences of 3..20 words (longer ones, drawn again and again, would make mixes near duplicates).
Chunks whose normalized text repeats an earlier original are skipped either way.

Copies always come after their original (the stream emits, at each position, a new original
with probability 0.78, else a copy of a uniformly chosen earlier original), so a correct
deduplicator keeps the original and marks the copy. Rates: 10 % exact, 10 % near, 2 % far.
Deterministic for a given --seed and input. Stdlib only.
"""
import argparse
import hashlib
import json
import random
import re
import string
import subprocess
import sys

NGRAM = 5
# Mixes draw sentences of 3..20 words only: every sentence of the pool is drawn ~10 times, and
# two 40-word mixes sharing one sentence of L words have a Jaccard of (L - 4) / (72 - L + 4),
# at most 0.29 for L = 20; longer sentences (up to 200 words, a whole chunk) would make the
# mixes near duplicates of each other.
MIX_MAX_SENTENCE = 20

# ---- tokenmill's normalization, approximated ---------------------------------------------------

_SPACES = set(range(0x09, 0x0E)) | {0x20, 0x85, 0xA0, 0x1680, 0x2028, 0x2029, 0x202F, 0x205F,
                                    0x3000} | set(range(0x2000, 0x200B))
_PUNCT = {ord(c) for c in string.punctuation} | set(range(0xA1, 0xC0)) | set(range(0x2000, 0x2070))
_TABLE = {}
for _c in _PUNCT:
    _TABLE[_c] = None
for _c in _SPACES:
    _TABLE[_c] = " "  # whitespace wins over punctuation (U+2000..U+200A, U+2028, ...)
_MULTI_SPACE = re.compile(" {2,}")


def normalize(text):
    """Case folded, punctuation stripped, whitespace collapsed to single spaces, trimmed."""
    return _MULTI_SPACE.sub(" ", text.lower().translate(_TABLE)).strip(" ")


def shingles(norm):
    """The set of word 5-grams of a normalized text (fewer words: one shingle; empty: none)."""
    if not norm:
        return set()
    w = norm.split(" ")
    if len(w) < NGRAM:
        return {norm}
    return {" ".join(w[i:i + NGRAM]) for i in range(len(w) - NGRAM + 1)}


def jaccard(a, b):
    if not a and not b:
        return 1.0
    inter = len(a & b)
    return inter / (len(a) + len(b) - inter)


# ---- Real text: paragraphs, sentences, chunks ---------------------------------------------------

_PARA = re.compile(r"\n[ \t\r\f\v]*\n\s*")
_SENT = re.compile(r"(?<=[.!?])\s+(?=\S)")
_WS = re.compile(r"\s+")


def read_paragraphs(path):
    """Yields the distinct paragraphs of the input JSONL (whitespace inside collapsed), each a
    list of sentences."""
    seen = set()
    proc = subprocess.Popen(["zstd", "-dc", path], stdout=subprocess.PIPE) \
        if path.endswith(".zst") else None
    stream = proc.stdout if proc else open(path, "rb")
    try:
        for line in stream:
            try:
                text = json.loads(line)["text"]
            except (ValueError, KeyError, TypeError):
                continue
            for para in _PARA.split(text):
                para = _WS.sub(" ", para).strip()
                if not para:
                    continue
                key = hashlib.blake2b(normalize(para).encode(), digest_size=12).digest()
                if key in seen:
                    continue
                seen.add(key)
                yield [s for s in _SENT.split(para) if s]
    finally:
        stream.close()
        if proc:
            proc.wait()


def make_chunks(paragraphs, rng):
    """Cuts paragraphs into chunks of 40..200 words at sentence/paragraph boundaries. Returns
    (chunks, sentences): the chunk texts and the list of distinct sentences seen."""
    chunks, sentences, sent_seen = [], [], set()
    cur, cur_words = [], 0  # cur: list of paragraphs, each a list of sentence strings
    target = rng.randint(40, 200)

    def flush():
        nonlocal cur, cur_words, target
        if cur_words >= 40:
            chunks.append("\n\n".join(" ".join(p) for p in cur if p))
        cur, cur_words = [], 0
        target = rng.randint(40, 200)

    for para in paragraphs:
        cur.append([])
        for s in para:
            words = s.split(" ")
            if 3 <= len(words) <= MIX_MAX_SENTENCE:
                k = hashlib.blake2b(normalize(s).encode(), digest_size=12).digest()
                if k not in sent_seen:
                    sent_seen.add(k)
                    sentences.append(s)
            while words:
                room = target - cur_words
                if len(words) <= room:
                    cur[-1].append(" ".join(words))
                    cur_words += len(words)
                    words = []
                elif cur_words >= 40:  # end the chunk at this sentence boundary
                    flush()
                    cur.append([])
                else:  # the sentence is longer than what is left: cut it at a word
                    cur[-1].append(" ".join(words[:room]))
                    cur_words += room
                    words = words[room:]
                if cur_words >= target:
                    flush()
                    cur.append([])
        if cur_words >= 40:  # a paragraph boundary past 40 words ends the chunk
            flush()
    flush()
    return chunks, sentences


def make_mix(sentences, rng):
    target = rng.randint(40, 200)
    out, n = [], 0
    while n < target:
        s = sentences[rng.randrange(len(sentences))]
        w = s.split(" ")
        if n + len(w) > 200:
            w = w[:200 - n]
        out.append(" ".join(w))
        n += len(w)
    # a paragraph break now and then
    text = ""
    for i, s in enumerate(out):
        text += s if i == 0 else ("\n\n" if rng.random() < 0.15 else " ") + s
    return text


# ---- Copies --------------------------------------------------------------------------------

_ASCII_PUNCT = string.punctuation
_TOKEN = re.compile(r"(\s+)")


def exact_copy(text, rng, norm):
    """Same normalized text: ASCII case changes, punctuation added or removed next to words,
    whitespace runs replaced by other whitespace."""
    parts = _TOKEN.split(text)
    style = rng.random()
    out = []
    for i, p in enumerate(parts):
        if i % 2 == 1:  # whitespace
            r = rng.random()
            out.append(p if r < 0.8 else rng.choice(["  ", "\n", "\t", " \n ", "   "]))
            continue
        if not p:
            out.append(p)
            continue
        if p.isascii():
            if style < 0.25:
                p = p.upper()
            elif style < 0.45:
                p = p.lower()
            elif style < 0.65 and rng.random() < 0.3:
                p = p.swapcase()
            elif rng.random() < 0.1:
                p = p.capitalize()
        r = rng.random()
        if r < 0.05:
            p = p + rng.choice(_ASCII_PUNCT)
        elif r < 0.08:
            p = rng.choice("\"'([") + p
        elif r < 0.15:
            p = "".join(ch for ch in p if ch not in _ASCII_PUNCT) or p
        elif r < 0.16:
            p = p + " \u2014"  # a free-standing em dash: stripped, the space collapses
        out.append(p)
    copy = "".join(out)
    if normalize(copy) != norm:  # a rule above changed the words (should not happen): plain
        copy = text.upper() if text.isascii() else "  " + text + " "
        if normalize(copy) != norm:
            copy = " " + text + "\n"
    return copy


def edit_copy(text, rng, orig_sh, lo, hi, vocab):
    """Random word edits (substitute, insert, delete; anywhere, or at the ends) until the
    Jaccard to the original is in [lo, hi]. Returns (copy, jaccard)."""
    parts = _TOKEN.split(text)
    words = [parts[i] for i in range(0, len(parts), 2)]
    goal = rng.uniform(lo, hi)
    j = 1.0
    fails = 0
    while j > goal:
        trial = list(words)
        op = rng.random()
        if fails > 20:  # only small steps at the ends are left
            op = 0.9
        if op < 0.45 and trial:
            trial[rng.randrange(len(trial))] = rng.choice(vocab)
        elif op < 0.65:
            trial.insert(rng.randrange(len(trial) + 1), rng.choice(vocab))
        elif op < 0.8 and len(trial) > 1:
            del trial[rng.randrange(len(trial))]
        else:
            if rng.random() < 0.5:
                trial.append(rng.choice(vocab))
            else:
                trial.insert(0, rng.choice(vocab))
        tj = jaccard(orig_sh, shingles(normalize(" ".join(trial))))
        if tj < lo:
            fails += 1
            if fails > 200:
                break
            continue
        words, j = trial, tj
    return " ".join(words), j


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", "--docs", type=int, default=1_000_000)
    ap.add_argument("--input", default="bench/out/text.jsonl.zst")
    ap.add_argument("--seed", type=int, default=20240601)
    ap.add_argument("-o", "--output", default="-")
    args = ap.parse_args()
    rng = random.Random(args.seed)

    chunks, sentences = make_chunks(read_paragraphs(args.input), rng)
    rng.shuffle(chunks)
    vocab = sorted({w for s in sentences[:200000] for w in s.split(" ") if w.isalpha()})
    print(f"make_dups: {len(chunks)} chunks, {len(sentences)} distinct sentences of 3.."
          f"{MIX_MAX_SENTENCE} words, "
          f"{len(vocab)} vocabulary words", file=sys.stderr)

    out = sys.stdout if args.output == "-" else open(args.output, "w", encoding="utf-8")
    origs = []  # (id, text, norm, shingles or None)
    orig_norms = set()
    counts = {"orig": 0, "exact": 0, "near": 0, "far": 0, "chunk": 0, "mix": 0}
    next_chunk = 0
    for i in range(args.docs):
        doc_id = f"d{i:07d}"
        r = rng.random()
        if not origs or r < 0.78:
            while True:
                if next_chunk < len(chunks):
                    text, src = chunks[next_chunk], "chunk"
                    next_chunk += 1
                else:
                    text, src = make_mix(sentences, rng), "mix"
                norm = normalize(text)
                key = hashlib.blake2b(norm.encode(), digest_size=12).digest()
                if norm and key not in orig_norms:
                    orig_norms.add(key)
                    break
            origs.append((doc_id, text, norm))
            counts["orig"] += 1
            counts[src] += 1
            rec = {"id": doc_id, "text": text, "orig": doc_id, "kind": "orig", "jaccard": 1.0,
                   "src": src}
        else:
            oid, otext, onorm = origs[rng.randrange(len(origs))]
            if r < 0.88:
                kind = "exact"
                text = exact_copy(otext, rng, onorm)
                j = 1.0
            elif r < 0.98:
                kind = "near"
                text, j = edit_copy(otext, rng, shingles(onorm), 0.85, 0.95, vocab)
            else:
                kind = "far"
                text, j = edit_copy(otext, rng, shingles(onorm), 0.05, 0.4999, vocab)
            if kind != "exact":
                j = jaccard(shingles(onorm), shingles(normalize(text)))
            counts[kind] += 1
            rec = {"id": doc_id, "text": text, "orig": oid, "kind": kind,
                   "jaccard": round(j, 6), "src": "copy"}
        out.write(json.dumps(rec, ensure_ascii=False) + "\n")
    if out is not sys.stdout:
        out.close()
    print("make_dups: " + ", ".join(f"{k} {v}" for k, v in counts.items()), file=sys.stderr)


if __name__ == "__main__":
    main()
