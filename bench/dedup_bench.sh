#!/usr/bin/env bash
# dedup_bench.sh: `tokenmill dedup` on a million documents of real text with planted duplicates:
# wall time, peak RSS, documents per second, RAM per document, detection quality against the
# ground truth, the same run under a small --memory (band keys spilled to disk) with its RSS and
# the check that its decisions are identical; and the agreement of tokenmill's kept set with
# datasketch's MinHashLSH on a subset.
#
# Usage: bench/dedup_bench.sh
#   TOKENMILL      the binary (default: build/tokenmill under the repository root)
#   DUP_DOCS       documents of the input (default 1000000)
#   AGREE_DOCS     documents of the datasketch agreement subset (default 50000; 0 skips it)
#   THREADS        dedup --threads (default 0: one per core)
#   SPILL_MEMORY   dedup --memory of the spill run (default 64M; "" skips the run)
#   BENCH_WORKDIR  where the workdirs go (default bench/out)
# Input: bench/out/dups-1m.jsonl (dups-N.jsonl for another DUP_DOCS), written once by
# bench/make_dups.py from bench/out/text.jsonl.zst (the ingest benchmark's real text; built by
# bench/ingest_bench.sh --inputs-only when missing); delete it to rebuild. Each line carries its
# ground truth: kind orig|exact|near|far, the original's id, the 5-gram Jaccard to it.
# Needs python3, zstd, GNU time (/usr/bin/time -v); the agreement part needs datasketch in
# bench/venv (python3 -m venv bench/venv && bench/venv/bin/pip install datasketch).
# Writes the table to stdout and bench/out/dedup_bench.json; dedup's logs, statistics and
# exports are left in bench/out/dedup-*.
set -euo pipefail
shopt -s inherit_errexit

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
out="$here/out"
tokenmill=${TOKENMILL:-$root/build/tokenmill}
docs=${DUP_DOCS:-1000000}
agree_docs=${AGREE_DOCS:-50000}
threads=${THREADS:-0}
spill_mem=${SPILL_MEMORY-64M}
bw=${BENCH_WORKDIR:-$out}
py="$root/bench/venv/bin/python"

die() {
    echo "dedup_bench: error: $*" >&2
    exit 1
}
[[ -x $tokenmill ]] || die "no tokenmill binary at '$tokenmill' (cmake -S . -B build -DCMAKE_BUILD_TYPE=Release && cmake --build build -j2)"
[[ -x /usr/bin/time ]] || die "needs GNU time at /usr/bin/time"
mkdir -p "$out" "$bw"
[[ -s $out/text.jsonl.zst ]] || "$here/ingest_bench.sh" --inputs-only

if [[ $docs == 1000000 ]]; then input="$out/dups-1m.jsonl"; else input="$out/dups-$docs.jsonl"; fi
if [[ ! -s $input ]]; then
    echo "writing $input ($docs documents) ..."
    t0=$(date +%s.%N)
    (cd "$root" && python3 "$here/make_dups.py" --docs "$docs" --input "$out/text.jsonl.zst" -o "$input.tmp")
    mv "$input.tmp" "$input"
    echo "  $(python3 -c "print(f'{$(date +%s.%N) - $t0:.0f}')") s"
fi

secs() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.2f}')" "$@"; }
# time_field LOG FIELD: a field of /usr/bin/time -v's report
time_field() { sed -n "s/^[[:space:]]*$2: //p" "$1" | tail -n 1; }
wall_s() { # the wall clock field (h:mm:ss or m:ss) in seconds
    python3 -c "import sys; p=[float(x) for x in sys.argv[1].split(':')]; print(f'{sum(v * 60 ** i for i, v in enumerate(reversed(p))):.2f}')" \
        "$(time_field "$1" 'Elapsed (wall clock) time (h:mm:ss or m:ss)')"
}

# ---- Ingest (untimed for the result; reported for context) ----
W="$bw/dedup-work"
WS="$bw/dedup-work-spill"
rm -rf "$W" "$WS"
echo "ingesting $input into $W ..."
t0=$(date +%s.%N)
"$tokenmill" ingest --quiet --no-progress --domain text --workdir "$W" "$input" >/dev/null
ingest_s=$(secs "$t0" "$(date +%s.%N)")
[[ -z $spill_mem ]] || cp -a "$W" "$WS" # the spill run starts from the same store
sync

# run_dedup NAME WORKDIR ARGS...: dedup under /usr/bin/time -v, then the export (untimed)
run_dedup() {
    local name=$1 w=$2
    shift 2
    echo "dedup $name${*:+: $*} ..."
    /usr/bin/time -v "$tokenmill" dedup --workdir "$w" --no-progress --threads "$threads" "$@" \
        --stats-json "$out/dedup-stats-$name.json" >"$out/dedup-$name.log" 2>&1 &
    # the peak RSS of time -v counts the pages of the store's memory map that were read
    # (file-backed, reclaimable); sample anonymous and file-backed RSS apart every 0.1 s
    local tp=$! pid="" a f max_a=0 max_f=0
    while kill -0 "$tp" 2>/dev/null; do
        [[ -n $pid ]] || pid=$(pgrep -P "$tp" || true)
        if [[ -n $pid ]] && read -r a f < <(awk '/^RssAnon/ {a = $2} /^RssFile/ {f = $2}
                END {print a + 0, f + 0}' "/proc/$pid/status" 2>/dev/null); then
            ((a > max_a)) && max_a=$a
            ((f > max_f)) && max_f=$f
        fi
        sleep 0.1
    done
    wait "$tp" || { tail -n 20 "$out/dedup-$name.log" >&2; die "dedup $name failed"; }
    echo "$max_a $max_f" >"$out/dedup-$name.mem"
    "$tokenmill" dedup --workdir "$w" --quiet --no-progress --export "$out/dedup-$name.jsonl" \
        >>"$out/dedup-$name.log" 2>&1 || { tail -n 20 "$out/dedup-$name.log" >&2; die "export $name failed"; }
}
run_dedup default "$W"
d_wall=$(wall_s "$out/dedup-default.log")
d_rss=$(time_field "$out/dedup-default.log" 'Maximum resident set size (kbytes)')
d_cpu=$(time_field "$out/dedup-default.log" 'Percent of CPU this job got')
read -r d_anon d_file <"$out/dedup-default.mem"
if [[ -n $spill_mem ]]; then
    run_dedup spill "$WS" --memory "$spill_mem"
    s_wall=$(wall_s "$out/dedup-spill.log")
    s_rss=$(time_field "$out/dedup-spill.log" 'Maximum resident set size (kbytes)')
    read -r s_anon s_file <"$out/dedup-spill.mem"
    if cmp -s "$out/dedup-default.jsonl" "$out/dedup-spill.jsonl"; then same=identical; else same=DIFFERENT; fi
else
    s_wall=null s_rss=null s_anon=null s_file=null same=null
fi

# ---- Detection quality against the ground truth ----
echo "scoring $out/dedup-default.jsonl against the ground truth ..."
(cd "$root" && python3 - "$input" "$out/dedup-default.jsonl" "$out/dedup-quality.json" <<'EOF'
"""Scores the export: recall of planted exact and near copies, false positives on originals
and far edits. A flagged original or far copy is 'justified' when its Jaccard (Python) to some
other member of its cluster (the kept document and every document marked as its duplicate, the
first 300 by id) is at least 0.8 - 0.005: the real text has duplicates of its own."""
import collections, json, sys
sys.path.insert(0, "bench")
from make_dups import normalize, shingles, jaccard

docs_path, export_path, out_path = sys.argv[1:4]
THRESHOLD = 0.8 - 0.005
exp = {}       # own id -> (status, of own id, similarity)
internal = {}  # tokenmill id -> own id
rows = []
with open(export_path) as f:
    for line in f:
        e = json.loads(line)
        internal[e["id"]] = e["meta"]["id"]
        rows.append(e)
members = collections.defaultdict(list)
for e in rows:
    of = internal.get(e.get("of")) if "of" in e else None
    exp[e["meta"]["id"]] = (e["status"], of, e.get("similarity"))
    if of is not None:
        members[of].append(e["meta"]["id"])
del rows, internal
truth = {}
with open(docs_path) as f:
    for line in f:
        d = json.loads(line)
        truth[d["id"]] = (d["kind"], d["orig"], d["jaccard"], d["src"])
# originals and far copies marked as duplicates: collect their clusters' texts
flagged = [i for i, (k, _, _, _) in truth.items() if k in ("orig", "far") and exp[i][0] != "kept"]
need = set()
for i in flagged:
    root = exp[i][1]
    need.add(i)
    need.add(root)
    need.update(sorted(members[root])[:300])
sh = {}
with open(docs_path) as f:
    for line in f:
        d = json.loads(line)
        if d["id"] in need:
            sh[d["id"]] = shingles(normalize(d["text"]))
justified = {}
for i in flagged:
    root = exp[i][1]
    best = max((jaccard(sh[i], sh[m]) for m in [root] + sorted(members[root])[:300]
                if m != i and m in sh), default=0.0)
    justified[i] = best >= THRESHOLD

n = collections.Counter()
res = {}
for i, (kind, orig, j, src) in truth.items():
    st, of, _ = exp[i]
    n[kind] += 1
    if kind in ("exact", "near"):
        n[kind + "_found"] += st != "kept"
        n[kind + "_as_" + kind] += st == kind
        # the right cluster: the original, or the document the original itself duplicates
        n[kind + "_right_of"] += st != "kept" and of in (orig, exp[orig][1])
        if kind == "near":
            b = "0.85-0.90" if j < 0.9 else "0.90-0.95"
            n["near_" + b] += 1
            n["near_found_" + b] += st != "kept"
    else:
        if st != "kept":
            n[kind + "_flagged"] += 1
            n[kind + "_unjustified"] += not justified[i]
        if kind == "orig":
            key = "orig_" + src
            n[key + "_n"] += 1
            if st != "kept":
                n[key + "_flagged"] += 1
                n[key + "_unjustified"] += not justified[i]

def rate(a, b):
    return round(a / b, 6) if b else None

res = {
    "documents": len(truth),
    "planted": {k: n[k] for k in ("orig", "exact", "near", "far")},
    "exact_recall": rate(n["exact_found"], n["exact"]),
    "exact_as_exact": rate(n["exact_as_exact"], n["exact"]),
    "exact_right_cluster": rate(n["exact_right_of"], n["exact"]),
    "near_recall": rate(n["near_found"], n["near"]),
    "near_as_near": rate(n["near_as_near"], n["near"]),
    "near_right_cluster": rate(n["near_right_of"], n["near"]),
    "near_recall_by_jaccard": {b: rate(n["near_found_" + b], n["near_" + b])
                               for b in ("0.85-0.90", "0.90-0.95")},
    "near_missed": n["near"] - n["near_found"],
    "orig_flagged": n["orig_flagged"],
    "orig_flagged_rate": rate(n["orig_flagged"], n["orig"]),
    "orig_flagged_justified": n["orig_flagged"] - n["orig_unjustified"],
    "orig_false_positives": n["orig_unjustified"],
    "orig_fp_rate": rate(n["orig_unjustified"], n["orig"]),
    "orig_by_source": {s: {"n": n[f"orig_{s}_n"], "flagged": n[f"orig_{s}_flagged"],
                           "unjustified": n[f"orig_{s}_unjustified"]} for s in ("chunk", "mix")},
    "far_flagged": n["far_flagged"],
    "far_fp_rate": rate(n["far_flagged"], n["far"]),
    "far_flagged_unjustified": n["far_unjustified"],
}
json.dump(res, open(out_path, "w"), indent=1)
print(json.dumps(res, indent=1))
EOF
) >"$out/dedup-quality.log"

# ---- Agreement with datasketch on a subset ----
agree=null
if [[ $agree_docs -gt 0 ]]; then
    if [[ -x $py ]] && "$py" -c "import datasketch" 2>/dev/null; then
        sub="$out/dups-agree-$agree_docs.jsonl"
        head -n "$agree_docs" "$input" >"$sub"
        WA="$bw/dedup-work-agree"
        rm -rf "$WA"
        "$tokenmill" ingest --quiet --no-progress --domain text --workdir "$WA" "$sub" >/dev/null
        "$tokenmill" dedup --workdir "$WA" --quiet --no-progress --threads "$threads" \
            --set text.verify=off --set text.exact=off --export "$out/dedup-agree-pure.jsonl" >"$out/dedup-agree.log" 2>&1
        "$tokenmill" dedup --workdir "$WA" --quiet --no-progress --threads "$threads" --redo \
            --export "$out/dedup-agree-default.jsonl" >>"$out/dedup-agree.log" 2>&1
        echo "datasketch MinHashLSH on the first $agree_docs documents ..."
        "$py" "$here/dedup_agree.py" "$sub" "$out/dedup-agree-pure.jsonl" \
            "$out/dedup-agree-default.jsonl" --json "$out/dedup-agree.json"
        agree="$out/dedup-agree.json"
    else
        echo "dedup_bench: no datasketch in bench/venv: agreement skipped" >&2
    fi
fi

# ---- Results ----
python3 - "$out" "$docs" "$ingest_s" "$d_wall" "$d_rss" "$d_cpu" "$s_wall" "$s_rss" "$same" \
    "$spill_mem" "$agree" "$tokenmill" "$threads" "$(nproc)" "$d_anon" "$d_file" "$s_anon" "$s_file" <<'EOF'
import json, sys, time
(out, docs, ingest_s, d_wall, d_rss, d_cpu, s_wall, s_rss, same, spill_mem, agree, binary,
 threads, cores, d_anon, d_file, s_anon, s_file) = sys.argv[1:]
docs = int(docs)
q = json.load(open(f"{out}/dedup-quality.json"))
st = json.load(open(f"{out}/dedup-stats-default.json"))["dedup"]
sp = json.load(open(f"{out}/dedup-stats-spill.json"))["dedup"] if s_rss != "null" else None
ag = json.load(open(agree)) if agree != "null" else None
d_wall, d_rss = float(d_wall), int(d_rss)
res = {
    "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    "binary": binary, "threads": threads, "cores": int(cores), "documents": docs,
    "ingest_s": float(ingest_s),
    "default": {"wall_s": d_wall, "dedup_seconds": st["seconds"], "peak_rss_kb": d_rss,
                "cpu": d_cpu, "docs_per_s": round(docs / d_wall),
                "peak_anon_rss_kb_sampled": int(d_anon), "peak_file_rss_kb_sampled": int(d_file),
                "rss_bytes_per_doc": round(d_rss * 1024 / docs, 1), "run": st["run"]},
    "quality": q,
}
if sp:
    res["spill"] = {"memory": spill_mem, "wall_s": float(s_wall), "peak_rss_kb": int(s_rss),
                    "spilled_band_keys": sp["spilled_band_keys"],
                    "rss_bytes_per_doc": round(int(s_rss) * 1024 / docs, 1),
                    "decisions": same}
if ag:
    res["agreement"] = ag
json.dump(res, open(f"{out}/dedup_bench.json", "w"), indent=1)

pct = lambda x: "n/a" if x is None else f"{100 * x:.2f} %"
rows = [
    ("documents (orig / exact / near / far)",
     f"{docs:,} ({q['planted']['orig']:,} / {q['planted']['exact']:,} / {q['planted']['near']:,} / {q['planted']['far']:,})"),
    ("ingest wall time", f"{float(ingest_s):.1f} s"),
    (f"dedup wall time (threads {threads}, {cores} cores)", f"{d_wall:.1f} s (CPU {d_cpu})"),
    ("dedup documents/s", f"{docs / d_wall:,.0f}"),
    ("dedup peak RSS (anonymous / file-backed store map, sampled)",
     f"{d_rss / 1024:.0f} MiB ({int(d_anon) / 1024:.0f} / {int(d_file) / 1024:.0f} MiB)"),
    ("RAM per document (peak RSS / documents; anonymous only)",
     f"{d_rss * 1024 / docs:.0f} B ({int(d_anon) * 1024 / docs:.0f} B)"),
]
if sp:
    rows += [
        (f"spill run (--memory {spill_mem}): wall time", f"{float(s_wall):.1f} s"),
        ("spill run: peak RSS (anonymous / file-backed, sampled)",
         f"{int(s_rss) / 1024:.0f} MiB ({int(s_anon) / 1024:.0f} / {int(s_file) / 1024:.0f} MiB), "
         f"{sp['spilled_band_keys']:,} band keys spilled"),
        ("spill run: decisions vs default run", same),
    ]
rows += [
    ("exact copies found (as exact)", f"{pct(q['exact_recall'])} ({pct(q['exact_as_exact'])})"),
    ("near copies found (as near)", f"{pct(q['near_recall'])} ({pct(q['near_as_near'])}); "
     f"J 0.85-0.90: {pct(q['near_recall_by_jaccard']['0.85-0.90'])}, "
     f"0.90-0.95: {pct(q['near_recall_by_jaccard']['0.90-0.95'])}"),
    ("copies joined to the right cluster (exact / near)",
     f"{pct(q['exact_right_cluster'])} / {pct(q['near_right_cluster'])}"),
    ("originals marked duplicate", f"{q['orig_flagged']:,} ({pct(q['orig_flagged_rate'])}); "
     f"{q['orig_flagged_justified']:,} of them have J >= 0.8 to a cluster member"),
    ("false positives on originals (J < 0.8 to every cluster member)",
     f"{q['orig_false_positives']:,} ({pct(q['orig_fp_rate'])})"),
    ("far edits (J < 0.5) marked duplicate", f"{q['far_flagged']:,} ({pct(q['far_fp_rate'])})"),
]
if ag:
    rows += [
        (f"kept-set Jaccard vs datasketch MinHashLSH, pure LSH ({ag['documents']:,} docs)",
         f"{ag['kept_jaccard_pure']:.4f} (datasketch keeps {ag['datasketch_kept']:,}, tokenmill {ag['tokenmill_pure_kept']:,}; goal >= 0.98)"),
        ("... tokenmill default settings (exact + verified)",
         f"{ag['kept_jaccard_default']:.4f} (tokenmill keeps {ag['tokenmill_default_kept']:,})"),
    ]
    if "kept_jaccard_pure_vs_components" in ag:
        rows.append(("... pure LSH vs datasketch candidates under tokenmill's cluster rule",
                     f"{ag['kept_jaccard_pure_vs_components']:.4f}"))
print()
print("| measure | value |")
print("|---|---|")
for k, v in rows:
    print(f"| {k} | {v} |")
print(f"\nwritten: {out}/dedup_bench.json")
EOF
