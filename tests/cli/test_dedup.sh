#!/usr/bin/env bash
# tokenmill dedup: exact and near duplicates (planted at known similarities), the kept document
# of a cluster, verification, --show-cluster, --export, incremental generations equal to a
# one-shot run, thread-count and memory-budget independence, scope, and settings errors.
source "$(dirname "$0")/lib.sh"
F="$T/in"
mkdir -p "$F/a" "$F/b"

# Documents from a word pool (so every 5-gram is distinct unless planted): originals, exact
# copies (case, punctuation and spacing changed), near copies with k of 200 words replaced, and
# a second batch (generation 2) with near copies of generation-1 documents.
python3 - "$F" <<'PY'
import json, random, sys
rng = random.Random(3)
pool = ["w%05d" % i for i in range(60000)]
rng.shuffle(pool)
it = iter(pool)
def doc(n=200):
    return [next(it) for _ in range(n)]
def edit(words, k):
    out = list(words)
    for i in rng.sample(range(len(out)), k):
        out[i] = next(it)
    return out
orig = [doc() for _ in range(40)]
a, b = [], []
for i, w in enumerate(orig):
    a.append({"id": "o%d" % i, "text": " ".join(w) + "."})
a.append({"id": "exact0", "text": "  ".join(x.upper() for x in orig[0]) + "!!"})
a.append({"id": "near1", "text": " ".join(edit(orig[1], 4)) + "."})    # J = 176/216 ~ 0.81
a.append({"id": "near2", "text": " ".join(edit(orig[2], 2)) + "."})    # J = 186/206 ~ 0.90
a.append({"id": "far3", "text": " ".join(edit(orig[3], 40)) + "."})    # J < 0.4
b.append({"id": "g2near5", "text": " ".join(edit(orig[5], 3)) + "."})  # near a gen-1 doc
b.append({"id": "g2exact6", "text": " ".join(orig[6]) + "."})          # exact gen-1 copy
b.append({"id": "g2new", "text": " ".join(doc()) + "."})
json.dump  # noqa
with open(sys.argv[1] + "/a/docs.jsonl", "w") as f:
    for d in a:
        f.write(json.dumps(d) + "\n")
with open(sys.argv[1] + "/b/docs.jsonl", "w") as f:
    for d in b:
        f.write(json.dumps(d) + "\n")
PY

check_export() { # FILE: the expected decisions, by the documents' own ids
  python3 - "$1" <<'PY'
import json, sys
rows = {}
ids = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    rows[r["meta"]["id"]] = r
    ids[r["id"]] = r["meta"]["id"]
def want(name, status, of=None):
    r = rows[name]
    if r["status"] != status or (of is not None and ids.get(r.get("of")) != of):
        print("FAIL:", name, "got", r, "want", status, of); sys.exit(1)
for i in range(40):
    want("o%d" % i, "kept")
want("exact0", "exact", "o0")
want("near1", "near", "o1")
want("near2", "near", "o2")
want("far3", "kept")
if "g2near5" in rows:
    want("g2near5", "near", "o5")
    want("g2exact6", "exact", "o6")
    want("g2new", "kept")
s = rows["near1"]["similarity"]
if abs(s - 176 / 216) > 0.02:  # exact verification: the true Jaccard (at most 5 edits overlap)
    print("FAIL: near1 similarity", s); sys.exit(1)
PY
}

opts=(--no-progress --quiet)
W="$T/w"
tm ingest --workdir "$W" "${opts[@]}" "$F/a"
expect_rc 0 "ingest generation 1"
tm dedup --workdir "$W" --no-progress --stats-json "$T/s1.json"
expect_rc 0 "dedup"
expect_grep "$T/err" "was not filtered" "warns that the filter has not run"
expect_grep "$T/out" "44 documents: kept 41, exact duplicates 1, near duplicates 2" "summary"
expect_eq "$(jget "$T/s1.json" dedup.run.cluster_sizes.2)" 3 "cluster-size histogram"
expect_eq "$(jget "$T/s1.json" dedup.run.rejected_by_verification)" 0 "no rejected pair"

# generation 2: checked against everything kept before
tm ingest --workdir "$W" "${opts[@]}" "$F/b"
tm dedup --workdir "$W" "${opts[@]}" --export "$T/inc.jsonl" --stats-json "$T/s2.json"
expect_rc 0 "dedup generation 2"
expect_eq "$(jget "$T/s2.json" dedup.generations)" "[2]" "only the new generation"
check_export "$T/inc.jsonl" || fail "incremental decisions"
ok

# one-shot over the same two generations: the same decisions
W1="$T/one"
tm ingest --workdir "$W1" "${opts[@]}" "$F/a"
tm ingest --workdir "$W1" "${opts[@]}" "$F/b"
tm dedup --workdir "$W1" "${opts[@]}" --threads 1 --export "$T/one.jsonl"
expect_rc 0 "one-shot"
cmp -s "$T/inc.jsonl" "$T/one.jsonl" || fail "incremental and one-shot runs differ"
ok

# threads and a tiny memory budget (band keys spilled to sorted runs) change nothing
W2="$T/spill"
tm ingest --workdir "$W2" "${opts[@]}" "$F/a"
tm ingest --workdir "$W2" "${opts[@]}" "$F/b"
tm dedup --workdir "$W2" "${opts[@]}" --threads 4 --memory 4K --export "$T/spill.jsonl" \
  --stats-json "$T/s3.json"
expect_rc 0 "spilled"
[ "$(jget "$T/s3.json" dedup.spilled_band_keys)" -gt 0 ] || fail "nothing was spilled"
ok
cmp -s "$T/inc.jsonl" "$T/spill.jsonl" || fail "threads or spilling changed the decisions"
ok

# --show-cluster, from the kept document or a member
near1=$(python3 -c "import json;print([r['id'] for r in map(json.loads,open('$T/inc.jsonl')) if r['meta']['id']=='near1'][0])")
tm dedup --workdir "$W" --show-cluster "$near1"
expect_rc 0 "show-cluster"
expect_grep "$T/out" "^kept +[0-9]+	kept	" "the kept document first"
expect_grep "$T/out" "^member +$near1	near 0\.[0-9]+" "the member with its similarity"
expect_grep "$T/out" "1 member\(s\)" "member count"

# without verification, and at a threshold above the pair: verification matters
W3="$T/strict"
tm ingest --workdir "$W3" "${opts[@]}" "$F/a"
tm dedup --workdir "$W3" "${opts[@]}" --set text.threshold=0.85 --stats-json "$T/s4.json"
expect_eq "$(jget "$T/s4.json" dedup.run.near_duplicates)" 1 "only the 0.90 pair at 0.85"
[ "$(jget "$T/s4.json" dedup.run.rejected_by_verification)" -ge 1 ] || fail "no rejection counted"
ok

# scope per generation: generation 2 is not checked against generation 1
W4="$T/scope"
tm ingest --workdir "$W4" "${opts[@]}" "$F/a"
tm ingest --workdir "$W4" "${opts[@]}" "$F/b"
tm dedup --workdir "$W4" "${opts[@]}" --set dedup.scope=generation --export "$T/scope.jsonl"
expect_eq "$(grep -c '"status":"kept"' "$T/scope.jsonl")" 44 "per-generation scope keeps cross-generation copies"

# rerun: nothing to do; changed settings: warned, --redo redoes
tm dedup --workdir "$W" "${opts[@]}"
expect_grep "$T/out" "0 generation\(s\)" "rerun does nothing"
tm dedup --workdir "$W" --no-progress --set text.threshold=0.5
expect_grep "$T/err" "other settings" "stale generations warned"
tm dedup --workdir "$W" "${opts[@]}" --redo --export "$T/redo.jsonl"
expect_rc 0 "redo"
cmp -s "$T/inc.jsonl" "$T/redo.jsonl" || fail "--redo with the same settings differs"
ok

# after the filter: only what it kept takes part
W5="$T/filtered"
printf '{"id": "short", "text": "ten words are far too few for gopher to keep it."}\n' >"$T/short.jsonl"
tm ingest --workdir "$W5" "${opts[@]}" "$F/a" "$T/short.jsonl"
tm filter --workdir "$W5" "${opts[@]}" --set text.gopher_stop_words=off --export "$T/f.jsonl"
expect_eq "$(grep -c '"action":"removed"' "$T/f.jsonl")" 1 "the filter removed the short document"
tm dedup --workdir "$W5" --no-progress --export "$T/fd.jsonl"
expect_no_grep "$T/err" "was not filtered" "no warning once filtered"
expect_eq "$(wc -l <"$T/fd.jsonl")" 44 "the removed document takes no part"
expect_no_grep "$T/fd.jsonl" '"id":"short"' "not in dedup's decisions"

# settings errors
printf '[dedup]\nbands = 20\nrows = 8\n' >"$T/bad.ini"
tm dedup --workdir "$W" --config "$T/bad.ini"
expect_rc 2 "bands x rows over permutations"
expect_grep "$T/err" "20 bands of 8 rows need 160 permutations" "combination error"
printf '[text]\nverify = maybe\n' >"$T/bad2.ini"
tm dedup --workdir "$W" --config "$T/bad2.ini"
expect_rc 2 "bad value"
expect_grep "$T/err" "bad2.ini:2: verify: want exact, signature or off" "error position"
tm dedup --print-config
expect_grep "$T/out" "^bands = 14$" "print-config"
done_checks
