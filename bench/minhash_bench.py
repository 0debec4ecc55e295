#!/usr/bin/env python3
"""MinHash signature throughput: tokenmill (ddp_signature, C) against datasketch and rensa.

Usage: python3 bench/minhash_bench.py [--build DIR] [--docs N] [--max-mb MB] [--cpu C]
                                      [--runs R] [--input FILE]

Re-executes itself under bench/venv/bin/python (which has datasketch, rensa and numpy:
`bench/venv/bin/pip install datasketch rensa`) when run by another interpreter.

What is measured, on the same documents and with the same parameters (112 permutations, word
5-grams), everything pinned to one core (`taskset -c C` for the C harness,
os.sched_setaffinity for this process):
  - tokenmill: bench/minhash_speed.c, built here with cc against DIR's static libraries, from raw
    text: normalization, shingling, hashing and the permutation loop (AVX2 where the CPU has it;
    the portable loop is timed too);
  - datasketch MinHash.bulk(shingle lists, num_perm=112) and rensa RMinHash (per document:
    RMinHash(112, 1).update(shingles).digest(); in bulk: RMinHash.digest_matrix_from_token_byte_sets)
    and rensa CMinHash.digests_from_token_sets (a different sketch, C-MinHash, for context),
    each given the shingles tokenmill hashes: the normalized text from the harness
    (--dump-norm), split on spaces into words, 5 consecutive words joined by one space, as
    bytes. Building those lists is not counted in their library time; the "from raw text" column
    adds what a Python user pays to get there (the same normalization and 5-grams written in
    Python), which is the comparison the goal (at least 10x rensa per core, from raw text) is
    about.
Documents: the first N lines (default 3000) of FILE (default bench/out/text.jsonl.zst, written by
bench/ingest_bench.sh --inputs-only), stopping early past --max-mb (default 20) of text.
Throughput is documents and MB (10^6 bytes of raw UTF-8 text) per second, best of R runs
(default 3). Prints a table and writes bench/out/minhash_bench.json.
"""
import argparse
import json
import os
import struct
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV_PY = os.path.join(ROOT, "bench", "venv", "bin", "python")
NPERM = 112
NGRAM = 5
SEED = 1


def reexec_in_venv():
    try:
        import datasketch  # noqa: F401
        import rensa  # noqa: F401
    except ImportError:
        venv = os.path.dirname(os.path.dirname(VENV_PY))
        if os.path.exists(VENV_PY) and os.path.realpath(sys.prefix) != os.path.realpath(venv):
            os.execv(VENV_PY, [VENV_PY] + sys.argv)
        sys.exit("needs datasketch and rensa: bench/venv/bin/pip install datasketch rensa")


def write_records(path, blobs):
    with open(path, "wb") as f:
        for b in blobs:
            f.write(struct.pack("<I", len(b)))
            f.write(b)


def read_records(path):
    out = []
    with open(path, "rb") as f:
        data = f.read()
    off = 0
    while off < len(data):
        (n,) = struct.unpack_from("<I", data, off)
        out.append(data[off + 4:off + 4 + n])
        off += 4 + n
    return out


def load_docs(path, ndocs, max_bytes):
    docs, total = [], 0
    with subprocess.Popen(["zstd", "-dc", path], stdout=subprocess.PIPE) as p:
        for line in p.stdout:
            text = json.loads(line)["text"].encode("utf-8")
            docs.append(text)
            total += len(text)
            if len(docs) >= ndocs or total >= max_bytes:
                break
        p.kill()
    return docs


def build_harness(build, out):
    libs = [os.path.join(build, d, f"libtm_{d}.a") for d in ("dedup", "filter", "core")]
    for lib in libs:
        if not os.path.exists(lib):
            sys.exit(f"{lib} missing: cmake -S . -B {build} && cmake --build {build} -j2")
    pc = subprocess.run(["pkg-config", "--libs", "libpcre2-8", "libxxhash", "inih", "lmdb",
                         "libcjson"], capture_output=True, text=True, check=True).stdout.split()
    cmd = ["cc", "-O2", "-std=c11", "-D_GNU_SOURCE", "-Idedup", "-Icore",
           "bench/minhash_speed.c"] + libs + pc + ["-lm", "-lpthread", "-o", out]
    subprocess.run(cmd, cwd=ROOT, check=True)


def shingles_of(norm):
    """The word 5-grams of a normalized text, as ddp_minhash.h defines them."""
    if not norm:
        return []
    words = norm.split(b" ")
    if len(words) < NGRAM:
        return [norm]
    return [b" ".join(words[i:i + NGRAM]) for i in range(len(words) - NGRAM + 1)]


def best_of(runs, fn):
    best = None
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        t = time.perf_counter() - t0
        best = t if best is None or t < best else best
    return best


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.environ.get("TM_BUILD", "build"))
    ap.add_argument("--input", default=os.path.join(ROOT, "bench", "out", "text.jsonl.zst"))
    ap.add_argument("--docs", type=int, default=3000)
    ap.add_argument("--max-mb", type=float, default=20)
    ap.add_argument("--cpu", type=int, default=int(os.environ.get("BENCH_CPU", "0")))
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    reexec_in_venv()
    import datasketch
    import rensa
    from datasketch import MinHash
    from rensa import CMinHash, RMinHash

    os.sched_setaffinity(0, {args.cpu})
    build = os.path.join(ROOT, args.build) if not os.path.isabs(args.build) else args.build
    outdir = os.path.join(ROOT, "bench", "out")
    os.makedirs(outdir, exist_ok=True)
    harness = os.path.join(outdir, "minhash_speed")
    docs_path = os.path.join(outdir, "minhash_docs.bin")
    norm_path = os.path.join(outdir, "minhash_norm.bin")

    build_harness(build, harness)
    docs = load_docs(args.input, args.docs, int(args.max_mb * 1e6))
    nbytes = sum(len(d) for d in docs)
    write_records(docs_path, docs)

    res = subprocess.run(["taskset", "-c", str(args.cpu), harness, docs_path, "--runs",
                          str(args.runs), "--dump-norm", norm_path],
                         capture_output=True, text=True)
    if res.returncode != 0:
        sys.exit(f"minhash_speed failed ({res.returncode}): {res.stdout}{res.stderr}")
    tm = json.loads(res.stdout)

    norms = read_records(norm_path)
    t0 = time.perf_counter()
    sets = [shingles_of(n) for n in norms]
    t_shingle = time.perf_counter() - t0
    # What a Python user of datasketch or rensa pays to get from raw text to shingles: the same
    # normalization written in Python (lower case, punctuation deleted, whitespace collapsed),
    # then the 5-grams. Timed once, best of R; added to each library's time for the "from raw
    # text" column, which is the comparison the goal is about.
    punct = dict.fromkeys([ord(c) for c in "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"] +
                          list(range(0x2000, 0x2070)) + list(range(0xA1, 0xC0)))

    def py_prepare():
        out = []
        for d in docs:
            words = d.decode("utf-8", "replace").lower().translate(punct).split()
            if len(words) < NGRAM:
                out.append([" ".join(words).encode()] if words else [])
            else:
                out.append([" ".join(words[i:i + NGRAM]).encode()
                            for i in range(len(words) - NGRAM + 1)])
        return out

    t_prep_raw = best_of(args.runs, py_prepare)
    nshingles = sum(len(s) for s in sets)
    if nshingles != tm["shingles"]:
        sys.exit(f"shingle counts differ: python {nshingles}, tokenmill {tm['shingles']}")

    def rensa_each():
        for s in sets:
            m = RMinHash(NPERM, SEED)
            m.update(s)
            m.digest()

    def rensa_bulk():
        RMinHash.digest_matrix_from_token_byte_sets(sets, NPERM, SEED)

    def cminhash_bulk():
        CMinHash.digests_from_token_sets(sets, NPERM, SEED)

    def datasketch_bulk():
        for m in MinHash.bulk(sets, num_perm=NPERM, seed=SEED):
            m.digest()

    rows = [("tokenmill (C, AVX2)" if tm["simd"] else "tokenmill (C, portable)", tm["seconds"]),
            ("tokenmill (C, portable loop)", tm["seconds_portable"]),
            ("rensa RMinHash, per document", best_of(args.runs, rensa_each)),
            ("rensa RMinHash, bulk matrix", best_of(args.runs, rensa_bulk)),
            ("rensa CMinHash, bulk", best_of(args.runs, cminhash_bulk)),
            ("datasketch MinHash.bulk", best_of(max(1, min(args.runs, 2)), datasketch_bulk))]

    ndocs = len(docs)
    print(f"{ndocs} documents, {nbytes / 1e6:.2f} MB, {nshingles} word {NGRAM}-gram shingles, "
          f"{NPERM} permutations, core {args.cpu}, best of {args.runs}")
    print(f"(tokenmill from raw text; the Python libraries from prepared shingle lists, whose "
          f"construction took {t_shingle:.3f} s; tokenmill's normalization alone "
          f"{tm['seconds_normalize']:.3f} s)")
    print(f"(Python normalization and shingling from raw text, for the peers: {t_prep_raw:.3f} s)")
    print(f"{'implementation':32} {'seconds':>9} {'docs/s':>11} {'MB/s':>9} {'tokenmill x':>12}"
          f" {'from raw text: MB/s':>20} {'tokenmill x':>12}")
    results = []
    for name, secs in rows:
        ratio = secs / tm["seconds"]
        peer = not name.startswith("tokenmill")
        raw = secs + t_prep_raw if peer else secs
        print(f"{name:32} {secs:9.3f} {ndocs / secs:11.0f} {nbytes / secs / 1e6:9.2f} "
              f"{ratio:12.1f} {nbytes / raw / 1e6:20.2f} {raw / tm['seconds']:12.1f}")
        results.append({"name": name, "seconds": secs, "docs_per_s": ndocs / secs,
                        "mb_per_s": nbytes / secs / 1e6, "tokenmill_speedup": ratio,
                        "seconds_from_raw_text": raw,
                        "tokenmill_speedup_from_raw_text": raw / tm["seconds"]})
    best_rensa = min(s for n, s in rows if n.startswith("rensa RMinHash"))
    ratio = best_rensa / tm["seconds"]
    ratio_raw = (best_rensa + t_prep_raw) / tm["seconds"]
    print(f"tokenmill / rensa (RMinHash, its faster path), from raw text: {ratio_raw:.1f}x "
          f"(goal: at least 10x); rensa's library call alone: {ratio:.1f}x")
    print(f"reference check: {tm['reference_agree']} of {tm['reference_checked']} documents agree")
    with open(os.path.join(outdir, "minhash_bench.json"), "w") as f:
        json.dump({"date": time.strftime("%Y-%m-%dT%H:%M:%S"), "docs": ndocs, "bytes": nbytes,
                   "shingles": nshingles, "nperm": NPERM, "ngram": NGRAM, "cpu": args.cpu,
                   "runs": args.runs, "datasketch": datasketch.__version__,
                   "rensa": getattr(rensa, "__version__", "?"), "results": results,
                   "tokenmill_over_rensa": ratio, "python_prep_from_raw_seconds": t_prep_raw,
                   "tokenmill_over_rensa_from_raw_text": ratio_raw}, f, indent=1)


if __name__ == "__main__":
    main()
