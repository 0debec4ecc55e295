#!/usr/bin/env python3
"""Encode throughput of tokenmill against tiktoken and Hugging Face tokenizers, with ids compared.

Usage: bench/venv/bin/python bench/tok_bench.py [--tokenmill BUILD/tokenmill] [--vocab-dir DIR]
           [--runs N] [--encodings cl100k,o200k] [--mix-only]

Builds (once) bench/out/tok_mix.jsonl: documents of real English web text from
bench/out/text.jsonl.zst (TEXT_MB, default 35) interleaved with C/C++ headers from /usr/include
and Python sources from /usr/lib/python3* (CODE_MB, default 15), and bench/out/tok_mix.txt, the
same documents concatenated. Then, per encoding, best of --runs:

  single thread, the whole of tok_mix.txt as one text:
    tiktoken    Encoding.encode_ordinary(text)
    tokenizers  Tokenizer.encode(text) of a BPE rebuilt from the .tiktoken ranks
    tokenmill   `tokenmill encode --count-only`, the library's encode time (its own clock; not
                process start, vocabulary load, reading or printing)
  threads (1 and 2), every document of tok_mix.jsonl on its own:
    tiktoken    Encoding.encode_ordinary_batch(docs, num_threads=N)
    tokenmill   `tokenmill encode --jsonl text --threads N --count-only`

Equality: the id count and a 64-bit polynomial hash of the ids (ids_hash below, the same as
tokenmill's --count-only) must equal tiktoken's, for every tool and mode; the script prints
MISMATCH and exits 1 otherwise. Writes bench/out/tok_bench.json.
"""
import argparse
import io
import json
import os
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
OUT = os.path.join(HERE, "out")
MB = 1e6

# ids_hash: h = h * HASH_MUL + (id + 1) mod 2^64 over the ids in order, starting from 0 (the
# multiplier is FNV-1a 64's prime; any odd constant works). tokenmill computes it by Horner's
# rule; here it is sum((id_i + 1) * HASH_MUL^(n-1-i)), vectorized with numpy's wrapping uint64.
HASH_MUL = 0x100000001B3


def ids_hash(ids):
    a = np.asarray(ids, dtype=np.uint64) + np.uint64(1)
    n = len(a)
    if n == 0:
        return 0
    with np.errstate(over="ignore"):
        pw = np.empty(n, dtype=np.uint64)
        pw[0] = 1
        pw[1:] = HASH_MUL
        pw = np.cumprod(pw, dtype=np.uint64)[::-1]
        return int(np.sum(a * pw, dtype=np.uint64))


def code_files():
    """C/C++ headers and Python sources, in a fixed order, as (kind, path)."""
    roots = [("c", "/usr/include", (".h", ".hpp", ".hh", ".c", ".cc", ".cpp", ".hxx"))]
    for d in sorted(os.listdir("/usr/lib")):
        if d.startswith("python3"):
            roots.append(("py", os.path.join("/usr/lib", d), (".py",)))
    gens = []
    for kind, root, exts in roots:
        def walk(root=root, exts=exts, kind=kind):
            for dirpath, dirnames, filenames in os.walk(root):
                dirnames.sort()
                for f in sorted(filenames):
                    if f.endswith(exts):
                        yield kind, os.path.join(dirpath, f)
        gens.append(walk())
    return gens


def build_mix(text_mb, code_mb):
    """Writes tok_mix.jsonl and tok_mix.txt unless present; returns the documents."""
    jpath = os.path.join(OUT, "tok_mix.jsonl")
    tpath = os.path.join(OUT, "tok_mix.txt")
    if os.path.exists(jpath) and os.path.exists(tpath):
        with open(jpath, encoding="utf-8") as f:
            return [json.loads(line)["text"] for line in f]
    import zstandard

    src = os.path.join(OUT, "text.jsonl.zst")
    if not os.path.exists(src):
        sys.exit(f"{src} missing: run bench/ingest_bench.sh --inputs-only first")
    texts, n = [], 0
    with open(src, "rb") as raw:
        reader = io.TextIOWrapper(zstandard.ZstdDecompressor().stream_reader(raw), encoding="utf-8")
        for line in reader:
            d = json.loads(line)
            if not d.get("id", "p1-").startswith("p1-"):
                continue  # a repeated pass of the same material (make_jsonl.py's "p2-" ids)
            if "\0" in d["text"]:
                continue
            texts.append(d["text"])
            n += len(d["text"].encode())
            if n >= text_mb * MB:
                break
    codes, n, gens = [], 0, code_files()
    # Round-robin over the roots (headers, each Python tree) so every kind of code is in.
    while n < code_mb * MB and gens:
        for g in list(gens):
            try:
                _, path = next(g)
            except StopIteration:
                gens.remove(g)
                continue
            try:
                with open(path, "rb") as f:
                    t = f.read().decode("utf-8")
            except (OSError, UnicodeDecodeError):
                continue
            if not t or "\0" in t:
                continue  # tokenmill --jsonl reads strings through cJSON, which ends them at NUL
            codes.append(t)
            n += len(t.encode())
    # Interleave so every part of the file (and every thread's share) has both kinds.
    docs, step = [], max(1, len(texts) // max(1, len(codes)))
    ci = 0
    for i, t in enumerate(texts):
        docs.append(t)
        if i % step == step - 1 and ci < len(codes):
            docs.append(codes[ci])
            ci += 1
    docs.extend(codes[ci:])
    os.makedirs(OUT, exist_ok=True)
    with open(jpath + ".tmp", "w", encoding="utf-8") as f:
        for d in docs:
            f.write(json.dumps({"text": d}, ensure_ascii=False) + "\n")
    with open(tpath + ".tmp", "w", encoding="utf-8", newline="") as f:
        f.write("".join(docs))
    os.replace(jpath + ".tmp", jpath)
    os.replace(tpath + ".tmp", tpath)
    return docs


def bytes_to_unicode():
    """GPT-2's byte-level alphabet: printable bytes stand for themselves, the others are mapped
    to code points from 256 up, in byte order."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    table, extra = {}, 0
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


def hf_tokenizer(enc):
    """A Hugging Face tokenizer equal in intent to tiktoken Encoding `enc`: byte-level BPE whose
    vocabulary is the ranks, with a merge for every split of a token into two tokens, ordered by
    the rank of the merged token (then of its halves), so the lowest-rank concatenation merges
    first as in tiktoken; ignore_merges so a piece that is a token is that token; the same
    regex as a Split pre-tokenizer."""
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers

    b2u = bytes_to_unicode()
    ranks = enc._mergeable_ranks

    def s(b):
        return "".join(b2u[x] for x in b)

    vocab = {s(t): r for t, r in ranks.items()}
    merges = []
    for t, r in ranks.items():
        for i in range(1, len(t)):
            a, b = t[:i], t[i:]
            if a in ranks and b in ranks:
                merges.append((r, ranks[a], ranks[b], s(a), s(b)))
    merges.sort()
    model = models.BPE(vocab=vocab, merges=[(m[3], m[4]) for m in merges], ignore_merges=True)
    tok = Tokenizer(model)
    # Oniguruma reads `{1,3}+` as "{1,3}, one or more times", not as possessive: "2024" would be
    # one piece. Without the `+` the pattern means the same (nothing follows it to backtrack).
    pat = enc._pat_str.replace("{1,3}+", "{1,3}")
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(pat), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    return tok


def best(fn, runs):
    """(best wall seconds, best CPU seconds of the process, last result) of `runs` calls. CPU
    time counts every thread (tiktoken's batch threads included)."""
    t, c, out = float("inf"), float("inf"), None
    for _ in range(runs):
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        t = min(t, time.perf_counter() - t0)
        c = min(c, time.process_time() - c0)
    return t, c, out


def tokenmill(exe, vocab, name, args, stdin_path, runs):
    """Best encode_seconds and encode_cpu_seconds of `runs` runs of tokenmill encode
    --count-only (the library's encoding only, timed by tokenmill), and its JSON."""
    t, c, res = float("inf"), float("inf"), None
    for _ in range(runs):
        with open(stdin_path, "rb") as f:
            p = subprocess.run([exe, "encode", "--vocab", vocab, "--pattern", name,
                                "--disallowed-special", "none", "--count-only", "--no-progress"]
                               + args, stdin=f, capture_output=True, check=True)
        res = json.loads(p.stdout)
        t = min(t, res["encode_seconds"])
        c = min(c, res["encode_cpu_seconds"])
    return t, c, res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tokenmill", default=os.environ.get("TOKENMILL",
                                                          os.path.join(ROOT, "build", "tokenmill")))
    ap.add_argument("--vocab-dir", default=os.environ.get("TOKENMILL_VOCAB_DIR",
                                                          os.path.join(ROOT, "..", "shared", "vocab")))
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--encodings", default="cl100k,o200k")
    ap.add_argument("--no-hf", action="store_true", help="skip Hugging Face tokenizers")
    ap.add_argument("--mix-only", action="store_true", help="only build the input files")
    args = ap.parse_args()
    docs = build_mix(float(os.environ.get("TEXT_MB", 35)), float(os.environ.get("CODE_MB", 15)))
    tpath, jpath = os.path.join(OUT, "tok_mix.txt"), os.path.join(OUT, "tok_mix.jsonl")
    with open(tpath, encoding="utf-8", newline="") as f:
        text = f.read()
    nbytes = len(text.encode())
    print(f"input: {tpath}: {nbytes / MB:.1f} MB, {len(docs)} documents "
          f"(also as {os.path.basename(jpath)}); best of {args.runs} runs; MB = 10^6 bytes")
    if args.mix_only:
        return 0
    sys.dont_write_bytecode = True  # no bench/__pycache__ from importing tok_golden_lib
    sys.path.insert(0, HERE)
    import tiktoken
    from tok_golden_lib import encoding

    hf_version = None
    if not args.no_hf:
        try:
            import tokenizers
            hf_version = tokenizers.__version__
        except ImportError:
            print("tokenizers not installed (bench/venv/bin/pip install tokenizers): skipped")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    results, rows, bad = {}, [], 0
    for name in args.encodings.split(","):
        enc = encoding(args.vocab_dir, name)
        vocab = os.path.join(args.vocab_dir, name + "_base.tiktoken")
        r = results[name] = {}

        def record(key, seconds, cpu, n, h, ref=None, threads=1):
            nonlocal bad
            r[key] = {"seconds": round(seconds, 4), "cpu_seconds": round(cpu, 4),
                      "mb_per_s": round(nbytes / MB / seconds, 2),
                      "mb_per_s_per_thread": round(nbytes / MB / seconds / threads, 2),
                      "mb_per_cpu_s": round(nbytes / MB / cpu, 2),
                      "threads": threads, "ids": n, "ids_hash": f"{h:016x}"}
            if ref is not None:
                same = (n, h) == (r[ref]["ids"], int(r[ref]["ids_hash"], 16))
                r[key]["ids_equal_tiktoken"] = same
                if not same:
                    bad += 1
                    print(f"MISMATCH: {name} {key}: {n} ids hash {h:016x}, tiktoken "
                          f"{r[ref]['ids']} ids hash {r[ref]['ids_hash']}")

        # Single thread, the whole text.
        t, c, ids = best(lambda: enc.encode_ordinary(text), args.runs)
        record("tiktoken", t, c, len(ids), ids_hash(ids))
        del ids
        t, c, res = tokenmill(args.tokenmill, vocab, name, [], tpath, args.runs)
        record("tokenmill", t, c, res["ids"], int(res["ids_hash"], 16), "tiktoken")
        # Documents, 1 and 2 threads.
        for n in (1, 2):
            t, c, out = best(lambda: enc.encode_ordinary_batch(docs, num_threads=n), args.runs)
            flat = [i for d in out for i in d]
            record(f"tiktoken_docs_{n}t", t, c, len(flat), ids_hash(flat), None if n == 1
                   else "tiktoken_docs_1t", n)
            t, c, res = tokenmill(args.tokenmill, vocab, name,
                                  ["--jsonl", "text", "--threads", str(n)], jpath, args.runs)
            record(f"tokenmill_docs_{n}t", t, c, res["ids"], int(res["ids_hash"], 16),
                   "tiktoken_docs_1t", n)
        del flat, out
        if hf_version:
            tok = hf_tokenizer(enc)
            t, c, out = best(lambda: [e.ids for e in (tok.encode(d, add_special_tokens=False)
                                                      for d in docs)], args.runs)
            flat = [i for d in out for i in d]
            record("tokenizers_docs_1t", t, c, len(flat), ids_hash(flat), "tiktoken_docs_1t")
            del flat, out

    # The tables: wall-clock MB/s, then MB per CPU-second (what a thread costs when other work
    # shares the cores; equal to wall MB/s per thread on an idle machine).
    encs = list(results)
    lines = [
        ("tiktoken encode_ordinary (whole text)", "tiktoken", "tiktoken"),
        ("tokenmill encode (whole text)", "tokenmill", "tiktoken"),
        ("tiktoken encode_ordinary_batch 1 thr", "tiktoken_docs_1t", "tiktoken_docs_1t"),
        ("tokenizers encode per doc, 1 thread", "tokenizers_docs_1t", "tiktoken_docs_1t"),
        ("tokenmill --jsonl, 1 thread", "tokenmill_docs_1t", "tiktoken_docs_1t"),
        ("tiktoken encode_ordinary_batch 2 thr", "tiktoken_docs_2t", "tiktoken_docs_2t"),
        ("tokenmill --jsonl, 2 threads", "tokenmill_docs_2t", "tiktoken_docs_2t"),
    ]
    for field, title in (("mb_per_s", "MB/s"), ("mb_per_cpu_s", "MB/CPU-s")):
        print()
        head = f"{'tool':38}" + "".join(f"{e + ' ' + title:>16}{'x tiktoken':>12}" for e in encs)
        print(head)
        print("-" * len(head))
        for label, key, ref in lines:
            if key not in results[encs[0]]:
                continue
            row = f"{label:38}"
            for e in encs:
                x = results[e][key]
                flag = "" if x.get("ids_equal_tiktoken", True) else " !"
                row += f"{x[field]:>16.1f}{x[field] / results[e][ref][field]:>11.2f}x{flag}"
            print(row)
    print()
    for e in encs:
        x = results[e]
        tm = x["tokenmill_docs_2t"]["mb_per_s"] / x["tokenmill_docs_1t"]["mb_per_s"]
        tk = x["tiktoken_docs_2t"]["mb_per_s"] / x["tiktoken_docs_1t"]["mb_per_s"]
        x["scaling_2t"] = {"tokenmill": round(tm, 2), "tiktoken": round(tk, 2)}
        x["tokenmill_vs_tiktoken_1t"] = {
            "wall": round(x["tokenmill"]["mb_per_s"] / x["tiktoken"]["mb_per_s"], 2),
            "cpu": round(x["tokenmill"]["mb_per_cpu_s"] / x["tiktoken"]["mb_per_cpu_s"], 2)}
        v = x["tokenmill_vs_tiktoken_1t"]
        print(f"{e}: tokenmill single thread {v['wall']:.2f}x tiktoken (wall), {v['cpu']:.2f}x "
              f"(CPU) (goal >= 3x); 2 threads / 1 thread: tokenmill {tm:.2f}x, tiktoken {tk:.2f}x")
    print("ids equal to tiktoken's (count and hash) for every tool and mode" if not bad
          else f"{bad} MISMATCHES (marked !)")
    out = {"date": time.strftime("%Y-%m-%dT%H:%M:%S"), "input": tpath, "bytes": nbytes,
           "documents": len(docs), "runs": args.runs, "tokenmill": args.tokenmill,
           "tiktoken_version": tiktoken.__version__, "tokenizers_version": hf_version,
           "cpus": os.cpu_count(), "results": results}
    with open(os.path.join(OUT, "tok_bench.json"), "w") as f:
        json.dump(out, f, indent=2)
    print(f"wrote {os.path.join(OUT, 'tok_bench.json')}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
