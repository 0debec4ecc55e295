#!/usr/bin/env bash
# filter_bench.sh: single-core throughput of `tokenmill filter` with every rule on, next to a
# peer (datatrove's Gopher quality + repetition, C4 and FineWeb filters, the Python
# implementation FineWeb was built with) measured on the same documents in the same run; and the
# removal breakdown on the shared corpora (Dolma's Common Crawl sample, WikiText-2).
#
# Usage: bench/filter_bench.sh
#   TOKENMILL   the binary (default: build/tokenmill under the repository root)
#   RUNS        timed runs per measurement, best kept (default 3)
#   BENCH_CPU   the core everything is pinned to (default 0)
#   PEER_DOCS   documents the peer is timed on (default 500; it is slow), tokenmill too
# Input: bench/out/text.jsonl.zst, the ingest benchmark's 200 MB of real text (built by
# bench/ingest_bench.sh --inputs-only when missing). The peer runs from bench/venv when
# datatrove is installed there (python3 -m venv bench/venv && bench/venv/bin/pip install
# datatrove nltk); without it the peer column says so.
# Writes the tables to stdout and bench/out/filter_bench.json.
set -euo pipefail
shopt -s inherit_errexit

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
out="$here/out"
corpora="$root/../shared/corpora"
tokenmill=${TOKENMILL:-$root/build/tokenmill}
runs=${RUNS:-3}
cpu=${BENCH_CPU:-0}
peer_docs=${PEER_DOCS:-500}
goal=100 # MB/s per core

die() {
    echo "filter_bench: error: $*" >&2
    exit 1
}
[[ -x $tokenmill ]] || die "no tokenmill binary at '$tokenmill' (cmake -S . -B build -DCMAKE_BUILD_TYPE=Release && cmake --build build -j2)"
mkdir -p "$out"
[[ -s $out/text.jsonl.zst ]] || "$here/ingest_bench.sh" --inputs-only

# ---- Throughput ----
W="$out/filter-work"
if [[ ! -d $W/store ]]; then
    echo "ingesting bench/out/text.jsonl.zst into $W ..."
    "$tokenmill" ingest --quiet --no-progress --workdir "$W" "$out/text.jsonl.zst" >/dev/null
fi
best() { # WORKDIR MODE ARGS...: prints the best decide time in seconds over RUNS runs, and bytes
    local w=$1 mode=$2 b=0 best_s=""
    shift 2
    for _ in $(seq 1 "$runs"); do
        taskset -c "$cpu" "$tokenmill" filter --workdir "$w" --dry-run --threads 1 --no-progress \
            --quiet "$@" --stats-json "$out/filter-$mode.json" >/dev/null
        read -r s b < <(python3 -c "
import json,sys; f=json.load(open(sys.argv[1]))['filter']
print(f['seconds'], f['run']['bytes'])" "$out/filter-$mode.json")
        if [[ -z $best_s ]] || python3 -c "import sys; sys.exit(0 if $s < $best_s else 1)"; then
            best_s=$s
        fi
    done
    echo "$best_s $b"
}
read -r t_first bytes < <(best "$W" first)
read -r t_all _ < <(best "$W" all --all-rules)
mbs_first=$(python3 -c "print(f'{$bytes / $t_first / 1e6:.1f}')")
mbs_all=$(python3 -c "print(f'{$bytes / $t_all / 1e6:.1f}')")

# ---- Peer ----
peer_py="$root/bench/venv/bin/python"
peer_mbs="n/a"
ratio="n/a"
sub_mbs="n/a"
if [[ -x $peer_py ]] && "$peer_py" -c "import datatrove, spacy" 2>/dev/null; then
    # the same first PEER_DOCS documents for both
    WP="$out/filter-peer-work"
    rm -rf "$WP"
    { zstd -dc "$out/text.jsonl.zst" || true; } | head -n "$peer_docs" >"$out/peer.jsonl"
    "$tokenmill" ingest --quiet --no-progress --workdir "$WP" "$out/peer.jsonl" >/dev/null
    read -r t_sub sub_bytes < <(best "$WP" peer --all-rules)
    sub_mbs=$(python3 -c "print(f'{$sub_bytes / $t_sub / 1e6:.1f}')")
    peer_mbs=$(taskset -c "$cpu" "$peer_py" "$here/filter_peer.py" "$out/text.jsonl.zst" "$peer_docs")
    ratio=$(python3 -c "print(f'{$sub_mbs / $peer_mbs:.0f}x')")
fi

echo
echo "filter throughput, one core, $(python3 -c "print(f'{$bytes/1e6:.1f}')") MB of text, best of $runs:"
printf '| %-44s | %10s | %s |\n' "run" "MB/s" "goal >= $goal"
printf '|%s|%s|%s|\n' "----------------------------------------------" "------------" "------------"
printf '| %-44s | %10s | %s |\n' "tokenmill, stop at the first failing rule" "$mbs_first" \
    "$(python3 -c "print('met' if $mbs_first >= $goal else 'missed')")"
printf '| %-44s | %10s | %s |\n' "tokenmill --all-rules (every rule, every doc)" "$mbs_all" \
    "$(python3 -c "print('met' if $mbs_all >= $goal else 'missed')")"
printf '| %-44s | %10s | %s |\n' "tokenmill --all-rules, first $peer_docs docs" "$sub_mbs" ""
printf '| %-44s | %10s | %s |\n' "datatrove, first $peer_docs docs, its filters" "$peer_mbs" "tokenmill / datatrove: $ratio"

# ---- Removal breakdown ----
breakdown() { # NAME JSONL
    local name=$1 input=$2 w="$out/filter-$1"
    rm -rf "$w"
    "$tokenmill" ingest --quiet --no-progress --workdir "$w" --domain text "$input" >/dev/null
    "$tokenmill" filter --quiet --no-progress --workdir "$w" --stats-json "$out/breakdown-$name.json" >/dev/null
    python3 - "$out/breakdown-$name.json" "$name" <<'PY'
import json, sys
t = json.load(open(sys.argv[1]))["filter"]["total"]
print(f"\n{sys.argv[2]}: {t['documents']} documents, {t['bytes']/1e6:.2f} MB; kept {t['kept']} "
      f"({t['kept_with_spans']} with spans removed), removed {t['removed']} "
      f"({100*t['removed_bytes']/max(t['bytes'],1):.1f}% of bytes)")
print("| rule | documents removed | bytes removed | span removals |")
print("|---|---|---|---|")
for name, r in sorted(t["rules"].items(), key=lambda kv: -kv[1]["removed"]):
    if r["removed"] or r["spans"]:
        print(f"| {name} | {r['removed']} | {r['removed_bytes']} | {r['spans']} |")
PY
}
if [[ -d $corpora ]]; then
    zcat "$corpora"/dolma-cc/*.jsonl.gz >"$out/dolma-cc.jsonl"
    python3 - "$corpora/wikitext-2" "$out/wikitext-2.jsonl" <<'PY'
import json, os, re, sys
# One document per article: WikiText marks article titles as " = Title = " lines.
out = open(sys.argv[2], "w")
for split in ("test.txt", "valid.txt"):
    art = []
    for line in open(os.path.join(sys.argv[1], split), encoding="utf-8"):
        if re.match(r"^ = [^=].* = $", line) and art:
            out.write(json.dumps({"text": "".join(art).strip()}) + "\n")
            art = []
        art.append(line)
    if art:
        out.write(json.dumps({"text": "".join(art).strip()}) + "\n")
PY
    breakdown dolma-cc "$out/dolma-cc.jsonl"
    breakdown wikitext-2 "$out/wikitext-2.jsonl"
else
    echo "(no ../shared/corpora: removal breakdown skipped)"
fi
python3 - "$out/filter_bench.json" <<PY
import json, sys
json.dump({"bytes": $bytes, "seconds_first_failure": $t_first, "seconds_all_rules": $t_all,
           "mbs_first_failure": $mbs_first, "mbs_all_rules": $mbs_all,
           "peer_docs": $peer_docs, "tokenmill_mbs_on_peer_docs": "$sub_mbs",
           "peer_mbs": "$peer_mbs", "ratio": "$ratio", "goal_mbs": $goal}, open(sys.argv[1], "w"), indent=1)
PY
