#!/usr/bin/env python3
"""The peer for bench/filter_bench.sh: datatrove's Gopher quality, Gopher repetition, C4 and
FineWeb filters (the Python implementation FineWeb was built with), each run on every document
like `tokenmill filter --all-rules`. Prints MB/s of document text on stdout.

Usage: filter_peer.py TEXT.jsonl.zst DOCS   (run it with bench/venv/bin/python)
"""
import json
import subprocess
import sys
import time

from datatrove.data import Document
from datatrove.pipeline.filters import (C4QualityFilter, FineWebQualityFilter,
                                        GopherQualityFilter, GopherRepetitionFilter)


def main():
    path, ndocs = sys.argv[1], int(sys.argv[2])
    docs = []
    with subprocess.Popen(["zstd", "-dc", path], stdout=subprocess.PIPE) as p:
        for line in p.stdout:
            docs.append(json.loads(line)["text"])
            if len(docs) >= ndocs:
                break
        p.kill()
    filters = [GopherRepetitionFilter(), GopherQualityFilter(), C4QualityFilter(),
               FineWebQualityFilter()]
    nbytes = sum(len(t.encode("utf-8")) for t in docs)
    start = time.perf_counter()
    for i, text in enumerate(docs):
        for f in filters:
            f.filter(Document(text=text, id=str(i)))
    secs = time.perf_counter() - start
    print(f"{nbytes / secs / 1e6:.2f}")


if __name__ == "__main__":
    main()
