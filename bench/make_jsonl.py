#!/usr/bin/env python3
"""Write a JSONL benchmark input of real text to stdout: one {"id", "text", "source"} object
per line, stopping at the first line that brings the total to --min-bytes or more.

Documents come from text already on the machine (license texts, package documentation,
man-page sources) and from the shared corpora when present (WikiText-2 articles, tiny
Shakespeare paragraphs, GSM8K problems, Dolma Common Crawl documents). When they add up to
less than --min-bytes, the same documents are written again in further passes, with the pass
number in the id; the summary on stderr says how many bytes are distinct and how many in all.
Stdlib only, deterministic (sorted paths, no randomness), so two runs give the same file.
"""
import argparse
import gzip
import json
import os
import re
import sys

# Files larger than this are skipped: they are data dumps (changelogs of whole distributions,
# generated API listings), not documents, and would dominate the input.
MAX_DOC_BYTES = 8 << 20


def read_text(path):
    """Returns the file's text (gunzipped when it ends in .gz), or None when it is not
    UTF-8 text (binary, NUL bytes, another encoding), unreadable or too big."""
    try:
        if os.path.islink(path) or not os.path.isfile(path):
            return None
        if path.endswith(".gz"):
            with gzip.open(path, "rb") as f:
                data = f.read(MAX_DOC_BYTES + 1)
        else:
            if os.path.getsize(path) > MAX_DOC_BYTES:
                return None
            with open(path, "rb") as f:
                data = f.read()
    except (OSError, EOFError, gzip.BadGzipFile):
        return None
    if len(data) > MAX_DOC_BYTES or b"\0" in data:
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return text if text.strip() else None


def walk(root):
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            yield os.path.join(dirpath, name)


def system_docs():
    """(source, name, text) from /usr/share: licenses, package docs, man-page roff."""
    for path in walk("/usr/share/common-licenses"):
        text = read_text(path)
        if text:
            yield "common-licenses", path, text
    for path in walk("/usr/share/doc"):
        text = read_text(path)
        if text:
            kind = "copyright" if os.path.basename(path) == "copyright" else "doc"
            yield "usr-share-doc/" + kind, path, text
    for path in walk("/usr/share/man"):
        text = read_text(path)
        if text:
            yield "man-roff", path, text


def wikitext_articles(path):
    """WikiText articles start at a top-level heading line ' = Title = '."""
    heading = re.compile(r"^ = [^=].* = $")
    text = read_text(path)
    if not text:
        return
    article = []
    for line in text.split("\n"):
        if heading.match(line) and any(s.strip() for s in article):
            yield "".join(s + "\n" for s in article).strip("\n") + "\n"
            article = []
        article.append(line)
    if any(s.strip() for s in article):
        yield "".join(s + "\n" for s in article).strip("\n") + "\n"


def paragraphs(path):
    text = read_text(path)
    if not text:
        return
    for para in re.split(r"\n\s*\n", text):
        if para.strip():
            yield para.strip("\n") + "\n"


def jsonl_records(path):
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    yield json.loads(line)
    except (OSError, ValueError, EOFError):
        return


def corpus_docs(corpora):
    """(source, name, text) from the shared corpora folder, each part only when present."""
    for split in ("test", "valid", "train"):
        path = os.path.join(corpora, "wikitext-2", split + ".txt")
        for i, art in enumerate(wikitext_articles(path)):
            yield "wikitext-2", "%s#%d" % (path, i), art
    path = os.path.join(corpora, "tinyshakespeare", "input.txt")
    for i, para in enumerate(paragraphs(path)):
        yield "tinyshakespeare", "%s#%d" % (path, i), para
    for split in ("train", "test"):
        path = os.path.join(corpora, "gsm8k", split + ".jsonl")
        for i, rec in enumerate(jsonl_records(path)):
            if "question" in rec and "answer" in rec:
                yield "gsm8k", "%s#%d" % (path, i), rec["question"] + "\n\n" + rec["answer"] + "\n"
    dolma = os.path.join(corpora, "dolma-cc")
    if os.path.isdir(dolma):
        for path in walk(dolma):
            for i, rec in enumerate(jsonl_records(path)):
                if isinstance(rec.get("text"), str) and rec["text"].strip():
                    yield "dolma-cc", "%s#%d" % (path, i), rec["text"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--min-bytes", type=int, default=200_000_000)
    ap.add_argument("--corpora", default=None, help="shared corpora folder (skipped if absent)")
    args = ap.parse_args()

    groups = {}
    streams = [system_docs()]
    if args.corpora and os.path.isdir(args.corpora):
        streams.append(corpus_docs(args.corpora))
    for stream in streams:
        for doc in stream:
            groups.setdefault(doc[0], []).append(doc)
    # Round-robin over sources, so that when the size target cuts the list short every kind of
    # text is still represented in its share.
    docs = []
    queues = [groups[k] for k in sorted(groups)]
    for i in range(max((len(q) for q in queues), default=0)):
        docs.extend(q[i] for q in queues if i < len(q))
    if not docs:
        sys.exit("make_jsonl: no text documents found")

    # Later passes repeat the same documents; only the pass number in the id differs.
    out = sys.stdout.buffer
    total = 0
    distinct = 0
    lines = 0
    by_source = {}
    npass = 0
    while total < args.min_bytes:
        npass += 1
        for n, (source, name, text) in enumerate(docs):
            if total >= args.min_bytes:
                break
            rec = {"id": "p%d-%07d" % (npass, n), "text": text, "source": source}
            line = (json.dumps(rec, ensure_ascii=False) + "\n").encode("utf-8")
            out.write(line)
            total += len(line)
            lines += 1
            if npass == 1:
                distinct += len(line)
                by_source[source] = by_source.get(source, 0) + len(line)
    out.flush()

    print("make_jsonl: %d documents available, %d pass(es), %d lines; distinct %.1f MB, "
          "total %.1f MB (MB = 10^6 bytes)"
          % (len(docs), npass, lines, distinct / 1e6, total / 1e6), file=sys.stderr)
    for source in sorted(by_source):
        print("make_jsonl:   %-24s %8.1f MB distinct" % (source, by_source[source] / 1e6),
              file=sys.stderr)


if __name__ == "__main__":
    main()
