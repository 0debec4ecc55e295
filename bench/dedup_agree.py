#!/usr/bin/env python3
"""Agreement of tokenmill's near-duplicate decisions with datasketch's MinHashLSH.

Usage: dedup_agree.py DOCS.jsonl PURE_EXPORT.jsonl [DEFAULT_EXPORT.jsonl] [--json OUT.json]

DOCS.jsonl      the documents ({"id", "text", ...}, as written by make_dups.py), in the order
                they were ingested;
PURE_EXPORT     `tokenmill dedup --export` of those documents deduplicated with
                `--set text.verify=off --set text.exact=off` (pure LSH, as datasketch does);
DEFAULT_EXPORT  optionally the same with tokenmill's default settings (exact pass, candidates
                verified by Jaccard >= 0.8), for information.

datasketch's kept set: MinHash(num_perm=112) of every document's word 5-gram shingles (the
normalized text, as make_dups.py normalizes it: case folded, punctuation stripped, whitespace
collapsed; shingles as UTF-8 bytes), MinHashLSH(num_perm=112, params=(14, 8)) (14 bands of 8
rows, as tokenmill), and the streaming rule: for each document in file order, query; if any
previously kept document is a candidate the document is a duplicate, else it is inserted and
kept. For information it also applies tokenmill's own rule to datasketch's candidates (every
candidate pair, earlier documents included whether kept or not, joins one cluster; the earliest
document of each cluster is kept), which separates the effect of the rule from that of the hash
functions. The kept sets are compared by the documents' own ids (the "id" field; tokenmill exports
it under "meta"). Prints a summary; the figure to watch is the Jaccard similarity of the two
kept sets (goal >= 0.98). Needs datasketch (bench/venv).
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_dups import normalize  # noqa: E402

from datasketch import MinHash, MinHashLSH  # noqa: E402

NGRAM = 5


def shingle_bytes(text):
    norm = normalize(text)
    if not norm:
        return []
    w = norm.split(" ")
    if len(w) < NGRAM:
        return [norm.encode()]
    return list({" ".join(w[i:i + NGRAM]).encode() for i in range(len(w) - NGRAM + 1)})


def datasketch_kept(path, clusters):
    """Returns (kept by the streaming rule, kept by connected components or None, documents,
    seconds of the streaming rule)."""
    lsh = MinHashLSH(num_perm=112, params=(14, 8))
    lsh_all = MinHashLSH(num_perm=112, params=(14, 8)) if clusters else None
    parent = {}

    def find(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    kept, n, secs, order = set(), 0, 0.0, {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            d = json.loads(line)
            t0 = time.perf_counter()
            m = MinHash(num_perm=112)
            sh = shingle_bytes(d["text"])
            if sh:
                m.update_batch(sh)
            n += 1
            if not lsh.query(m):
                lsh.insert(d["id"], m)
                kept.add(d["id"])
            secs += time.perf_counter() - t0
            if clusters:
                order[d["id"]] = n
                parent[d["id"]] = d["id"]
                for c in lsh_all.query(m):
                    a, b = find(c), find(d["id"])
                    if a != b:  # the root is the earliest document
                        if order[a] < order[b]:
                            parent[b] = a
                        else:
                            parent[a] = b
                lsh_all.insert(d["id"], m)
    kept_cc = {x for x in parent if find(x) == x} if clusters else None
    return kept, kept_cc, n, secs


def tokenmill_kept(path):
    kept, n = set(), 0
    with open(path, encoding="utf-8") as f:
        for line in f:
            e = json.loads(line)
            n += 1
            if e["status"] == "kept":
                kept.add(e["meta"]["id"])
    return kept, n


def jac(a, b):
    return len(a & b) / len(a | b) if a or b else 1.0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("docs")
    ap.add_argument("pure_export")
    ap.add_argument("default_export", nargs="?")
    ap.add_argument("--json", help="write the figures here")
    ap.add_argument("--no-clusters", action="store_true",
                    help="skip the second datasketch rule (connected components)")
    args = ap.parse_args()

    ds, ds_cc, n, secs = datasketch_kept(args.docs, not args.no_clusters)
    tm, tn = tokenmill_kept(args.pure_export)
    if tn != n:
        sys.exit(f"dedup_agree: {args.docs} has {n} documents, {args.pure_export} {tn}")
    res = {
        "documents": n,
        "datasketch_kept": len(ds),
        "datasketch_seconds": round(secs, 2),
        "tokenmill_pure_kept": len(tm),
        "kept_jaccard_pure": round(jac(ds, tm), 5),
        "kept_only_datasketch": len(ds - tm),
        "kept_only_tokenmill": len(tm - ds),
    }
    print(f"documents {n}: datasketch keeps {len(ds)} ({secs:.1f} s), tokenmill (verify=off, "
          f"exact=off) keeps {len(tm)}; kept-set Jaccard {res['kept_jaccard_pure']:.5f} "
          f"(only datasketch {len(ds - tm)}, only tokenmill {len(tm - ds)})")
    if ds_cc is not None:
        res["datasketch_components_kept"] = len(ds_cc)
        res["kept_jaccard_pure_vs_components"] = round(jac(ds_cc, tm), 5)
        res["kept_jaccard_streaming_vs_components"] = round(jac(ds_cc, ds), 5)
        print(f"datasketch with tokenmill's rule (every candidate pair joins a cluster, the "
              f"earliest document is kept) keeps {len(ds_cc)}; kept-set Jaccard with tokenmill "
              f"{res['kept_jaccard_pure_vs_components']:.5f}, with the streaming rule "
              f"{res['kept_jaccard_streaming_vs_components']:.5f}")
    if args.default_export:
        td, _ = tokenmill_kept(args.default_export)
        res["tokenmill_default_kept"] = len(td)
        res["kept_jaccard_default"] = round(jac(ds, td), 5)
        print(f"tokenmill (default settings) keeps {len(td)}; kept-set Jaccard "
              f"{res['kept_jaccard_default']:.5f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
