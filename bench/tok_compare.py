#!/usr/bin/env python3
"""Encodes the shared corpora with tiktoken and with `tokenmill encode`, per file and encoding,
and reports whether the ids are equal (first mismatch otherwise) and both tools' times.
Usage: bench/venv/bin/python bench/tok_compare.py BUILD/tokenmill /work/shared/vocab /work/shared/corpora"""
import glob, gzip, json, os, subprocess, sys, time
sys.path.insert(0, os.path.dirname(__file__))
from tok_golden_lib import encoding  # noqa: E402


def texts(corpora):
    for path in sorted(glob.glob(os.path.join(corpora, "**", "*"), recursive=True)):
        if os.path.isdir(path) or path.endswith(".warc.gz"):
            continue
        raw = gzip.open(path).read() if path.endswith(".gz") else open(path, "rb").read()
        if ".jsonl" in path:
            docs = [json.loads(l) for l in raw.decode("utf-8").splitlines() if l.strip()]
            t = "\n\n".join(d.get("text") or d.get("question", "") + "\n" + d.get("answer", "")
                            for d in docs)
        else:
            t = raw.decode("utf-8", errors="replace")
        yield os.path.relpath(path, corpora), t


def main():
    exe, vocab_dir, corpora = sys.argv[1:4]
    bad = 0
    for name in ("r50k", "cl100k", "o200k"):
        enc = encoding(vocab_dir, name)
        vocab = os.path.join(vocab_dir, name + "_base.tiktoken")
        for rel, t in texts(corpora):
            t0 = time.time()
            want = enc.encode_ordinary(t)
            t1 = time.time()
            p = subprocess.run([exe, "encode", "--vocab", vocab, "--pattern", name,
                                "--disallowed-special", "none"], input=t.encode(),
                               capture_output=True, check=True)
            t2 = time.time()
            got = list(map(int, p.stdout.split()))
            if got == want:
                status = "equal"
            else:
                bad += 1
                i = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b),
                         min(len(got), len(want)))
                status = f"MISMATCH at id {i} (got {got[i:i+3]} want {want[i:i+3]})"
            print(f"{name:7} {rel:40} {len(t.encode()):9} bytes {len(want):8} ids  "
                  f"tiktoken {t1-t0:6.2f}s tokenmill {t2-t1:6.2f}s  {status}")
    print("files with mismatches:", bad)
    return 1 if bad else 0


sys.exit(main())
