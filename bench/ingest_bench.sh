#!/usr/bin/env bash
# ingest_bench.sh: single-core throughput of `tokenmill ingest` against the floor of merely
# decompressing the same input (`zstd -dc FILE > /dev/null`). The goal is ingest within 3x of
# that floor: decompression is work ingest cannot avoid, so the ratio measures everything else
# (archive/JSON parsing, UTF-8 checks, domain detection, LMDB writes).
#
# Usage: bench/ingest_bench.sh [--inputs-only]
#   TOKENMILL   the binary (default: build/tokenmill under the repository root)
#   RUNS        timed runs per measurement, best kept (default 3)
#   BENCH_CPU   the core both commands are pinned to with taskset (default 0)
#   JSONL_MB    minimum uncompressed size of the JSONL input in MB = 10^6 bytes (default 200)
#   BENCH_WORKDIR  where ingest workdirs are made (default bench/out; /dev/shm separates the
#               cost of the disk from the cost of the work)
# Inputs are built under bench/out/ once and reused; delete them to rebuild.
# Writes the table to stdout and bench/out/ingest_bench.json.
set -euo pipefail
shopt -s inherit_errexit # a failed run inside $(...) must stop the script too

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
out="$here/out"
corpora="$root/../shared/corpora"
tokenmill=${TOKENMILL:-$root/build/tokenmill}
runs=${RUNS:-3}
cpu=${BENCH_CPU:-0}
jsonl_mb=${JSONL_MB:-200}
goal=3.0 # ingest may take at most this many times the decompression floor

inputs_only=0
case "${1:-}" in
"") ;;
--inputs-only) inputs_only=1 ;;
*)
    echo "usage: $0 [--inputs-only]" >&2
    exit 2
    ;;
esac

die() {
    echo "ingest_bench: error: $*" >&2
    exit 1
}

for tool in zstd tar python3 taskset; do
    command -v "$tool" >/dev/null || die "'$tool' is not installed"
done
if [[ $inputs_only == 0 && ! -x $tokenmill ]]; then
    die "no tokenmill binary at '$tokenmill'; build it with
  cmake -S . -B build -DCMAKE_BUILD_TYPE=Release && cmake --build build -j2
or point TOKENMILL at one"
fi
mkdir -p "$out"

# ---- Inputs (built once, into a .partial file renamed when complete, so an interrupted build
# is never mistaken for a finished one) ----
build_input() { # name, then the command that writes it to the path in $tmp
    local name=$1
    shift
    if [[ -s $out/$name ]]; then
        echo "input: $name (present, reused)"
        return
    fi
    echo "input: building $name ..."
    tmp="$out/$name.partial"
    rm -f "$tmp"
    "$@"
    mv "$tmp" "$out/$name"
}

make_usr_include() {
    # GNU tar exits 1 when a file changed while being read (a package upgrade); the archive is
    # still usable. 2 is a real failure.
    { tar -C / -cf - usr/include || [[ $? == 1 ]]; } | zstd -3 -T1 -q -o "$tmp"
}

make_jsonl() {
    python3 "$here/make_jsonl.py" --min-bytes $((jsonl_mb * 1000000)) --corpora "$corpora" |
        zstd -3 -T1 -q -o "$tmp"
}

build_input usr_include.tar.zst make_usr_include
build_input text.jsonl.zst make_jsonl
inputs=("$out/usr_include.tar.zst" "$out/text.jsonl.zst")
if [[ $inputs_only == 1 ]]; then
    exit 0
fi

# ---- Timing ----
now() { date +%s.%N; }

# Prints the wall seconds of the best of $runs runs of "$@" (stdout discarded).
# Seconds one command takes (the workdir it leaves is removed after the clock stops).
time_one() {
    local t0 t1
    t0=$(now)
    "$@" >/dev/null
    t1=$(now)
    cleanup_run # outside the timed span: deleting a workdir is not part of ingest
    sync        # and no run pays for the write-back of the one before
    python3 -c 'import sys; print("%.3f" % (float(sys.argv[2]) - float(sys.argv[1])))' "$t0" "$t1"
}

min_of() { printf '%s\n' "$@" | sort -g | head -n 1; }

floor_run() { taskset -c "$cpu" zstd -dc "$1" >/dev/null; }

# A second, informative floor: decompress and write the same bytes durably to a file where the
# workdirs go (fsync through `sync FILE`), i.e. the least any tool that stores the text must do.
write_floor_run() {
    last_work=$(mktemp -d "${BENCH_WORKDIR:-$out}/work.XXXXXX")
    taskset -c "$cpu" zstd -dc "$1" >"$last_work/out" && sync "$last_work/out"
}

# One ingest into a fresh workdir, so nothing is skipped as already ingested. The workdir is
# removed by cleanup_run after the clock stops.
last_work=""
cleanup_run() {
    if [[ -n $last_work ]]; then
        rm -rf "$last_work"
        last_work=""
    fi
}
ingest_run() {
    local file=$1 stats=$2 log=$3
    last_work=$(mktemp -d "${BENCH_WORKDIR:-$out}/work.XXXXXX")
    if ! taskset -c "$cpu" "$tokenmill" ingest --workdir "$last_work" --no-progress \
        --stats-json "$stats" "$file" 2>"$log"; then
        echo "ingest_bench: error: ingest of $file failed; log: $log" >&2
        tail -n 20 "$log" >&2
        cleanup_run
        return 1
    fi
}

# Workdirs and the scratch table of a failed or interrupted run are removed on the way out, and
# no results file from an earlier run is left to be mistaken for this one's.
results="$out/ingest_bench.tsv"
trap 'rm -rf "$out"/work.* "${BENCH_WORKDIR:-$out}"/work.* "$results"' EXIT
rm -f "$out/ingest_bench.json"
: >"$results"
for file in "${inputs[@]}"; do
    name=$(basename "$file")
    echo "timing: $name (best of $runs, cpu $cpu) ..." >&2
    raw=$(zstd -dc "$file" | wc -c)
    comp=$(stat -c %s "$file")
    # Interleaved (floor, write floor, ingest) rounds, so that all three see the same state of a
    # machine whose speed drifts; the best of each is kept.
    floors=() wfloors=() ingests=()
    for ((i = 0; i < runs; i++)); do
        floors+=("$(time_one floor_run "$file")")
        wfloors+=("$(time_one write_floor_run "$file")")
        ingests+=("$(time_one ingest_run "$file" "$out/stats-$name.json" "$out/ingest-$name.log")")
    done
    floor=$(min_of "${floors[@]}")
    wfloor=$(min_of "${wfloors[@]}")
    ingest=$(min_of "${ingests[@]}")
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$raw" "$comp" "$floor" "$ingest" "$wfloor" >>"$results"
done

# Table and JSON from the same numbers (MB = 10^6 bytes).
python3 - "$results" "$out/ingest_bench.json" "$goal" "$tokenmill" "$cpu" "$runs" <<'EOF'
import json, sys, time
tsv, json_path, goal, binary, cpu, runs = sys.argv[1:7]
goal = float(goal)
rows = []
for line in open(tsv):
    name, raw, comp, floor, ingest, wfloor = line.rstrip("\n").split("\t")
    raw, comp, floor, ingest, wfloor = int(raw), int(comp), float(floor), float(ingest), float(wfloor)
    rows.append({
        "input": name,
        "uncompressed_mb": raw / 1e6,
        "compressed_mb": comp / 1e6,
        "floor_s": floor,
        "floor_mb_s": raw / 1e6 / floor if floor > 0 else None,
        "ingest_s": ingest,
        "ingest_mb_s": raw / 1e6 / ingest if ingest > 0 else None,
        "ratio": ingest / floor if floor > 0 else None,
        "write_floor_s": wfloor,
        "ratio_to_write_floor": ingest / wfloor if wfloor > 0 else None,
    })
    r = rows[-1]
    r["goal_met"] = r["ratio"] is not None and r["ratio"] <= goal

hdr = ("input", "uncomp MB", "comp MB", "floor s", "floor MB/s", "ingest s", "ingest MB/s",
       "ingest/floor", "goal <= %.1fx" % goal, "write floor s", "ingest/write floor")
fmt = "%-22s %10s %8s %8s %11s %9s %12s %13s %12s %14s %19s"
print(fmt % hdr)
num = lambda v, p: "-" if v is None else "%.*f" % (p, v)
for r in rows:
    print(fmt % (r["input"], num(r["uncompressed_mb"], 1), num(r["compressed_mb"], 1),
                 num(r["floor_s"], 3), num(r["floor_mb_s"], 1), num(r["ingest_s"], 3),
                 num(r["ingest_mb_s"], 1), num(r["ratio"], 2) + "x",
                 "met" if r["goal_met"] else "missed", num(r["write_floor_s"], 3),
                 num(r["ratio_to_write_floor"], 2) + "x"))
doc = {
    "benchmark": "ingest_bench",
    "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    "tokenmill": binary,
    "cpu": int(cpu),
    "runs": int(runs),
    "timing": "wall seconds, best of runs, both commands pinned with taskset -c cpu",
    "goal_ratio": goal,
    "results": rows,
}
with open(json_path, "w") as f:
    json.dump(doc, f, indent=2)
    f.write("\n")
print("wrote %s" % json_path)
EOF
