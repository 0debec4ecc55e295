#!/usr/bin/env bash
# tokenmill filter: decisions per document (kept, removed by which rule, spans), --explain,
# --dry-run, --export, incremental generations, thread-count independence, configuration errors
# with file and line, and changed configurations (--redo).
source "$(dirname "$0")/lib.sh"
F="$T/in"
mkdir -p "$F/g1" "$F/g2"

# A lexicon of made-up terms, so the test does not depend on the built-in list: "grobble" (weight
# 1) and the phrase "vile snark" (weight 3, category insult).
printf '# test lexicon\ngrobble\t1\tprofanity\nvile snark\t3\tinsult\n\nzonk*\n' >"$T/lex.txt"
printf 'grobble stew\n' >"$T/allow.txt"

python3 - "$F/g1/docs.jsonl" <<'PY'
import json, sys
def prose(seed, n):
    # n distinct words with a few stop words, sentences of eight words
    out = []
    for i in range(n):
        w = "".join("bdfgklmnprstvz"[(seed * 7 + i * 3 + k) % 14] + "aeiou"[(seed + i + k) % 5]
                    for k in range(3)) + "xyz"[i % 3]
        out.append(("the " if i % 8 == 0 else "") + w + ("." if i % 8 == 7 else ""))
    return " ".join(out).rstrip(".") + "."
docs = [
    {"id": "good", "text": prose(1, 80)},
    {"id": "short", "text": "Too short to keep."},
    {"id": "spans", "text": prose(2, 60) + " This sentence has a grobble in it. " + prose(3, 60)},
    {"id": "toxic", "text": "the vile snark and the grobble, " + prose(4, 50) + " zonkers!"},
    {"id": "allowed", "text": prose(5, 70) + " We ate grobble stew. " + prose(6, 10)},
    {"id": "quoted", "text": prose(7, 70) + ' The word \u201cgrobble,\u201d is rude.'},
]
with open(sys.argv[1], "w") as f:
    for d in docs:
        f.write(json.dumps(d) + "\n")
PY
cat >"$F/g1/tool.c" <<'C'
/* This comment says grobble, a hit in a comment; gr0bble, a disguise, counts in prose only. */
int grobble_count = 0; /* the identifier above is not scanned */
int main(void) { return grobble_count; }
C

W="$T/w"
tm ingest --workdir "$W" --no-progress --quiet "$F/g1"
expect_rc 0 "ingest generation 1"
common=(--workdir "$W" --no-progress --lexicon "$T/lex.txt" --allow "$T/allow.txt")

tm filter "${common[@]}" --export "$T/e1.jsonl" --stats-json "$T/s1.json"
expect_rc 0 "filter"
expect_grep "$T/out" "decided 7 now" "summary counts this run"
python3 - "$T/e1.jsonl" <<'PY'
import json, sys
rows = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    key = r["meta"].get("id") if r.get("meta") else r["source"].rsplit("/", 1)[-1]
    rows[key] = r
def check(cond, what):
    if not cond:
        print("FAIL:", what, json.dumps(rows, indent=1)[:3000]); sys.exit(1)
check(rows["good"]["action"] == "kept" and rows["good"]["rule"] is None, "good kept")
check(rows["short"]["action"] == "removed" and rows["short"]["rule"] == "gopher_min_words", "short")
s = rows["spans"]
check(s["action"] == "spans" and s["span_rules"] == ["toxicity"] and s["tox_hits"] == 1, "spans")
check(rows["toxic"]["action"] == "removed" and rows["toxic"]["rule"] == "toxicity", "toxic")
# "vile snark" (3) + "grobble" (1) + "zonkers" (1, prefix term) = 5 weighted hits per its words
t = rows["toxic"]
check(t["tox_hits"] == 3, "toxic hits")
check(abs(t["toxicity"] - 5000 / t["values"]["gopher_min_words"]) < 0.01, "toxic score")
check(rows["allowed"]["tox_hits"] == 0 and rows["allowed"]["action"] == "kept", "allow list")
q = rows["quoted"]  # a mention in quotation marks counts a quarter of its weight
check(q["tox_hits"] == 1 and abs(q["toxicity"] * q["values"]["gopher_min_words"] - 250) < 0.01,
      "quoted hit weight")
c = rows["tool.c"]
check(c["domain"] == "code" and c["tox_hits"] == 1, "code: comment scanned, identifier not")
PY
ok
expect_eq "$(jget "$T/s1.json" filter.total.rules.gopher_min_words.removed)" 1 "stats: removed by rule"
expect_eq "$(jget "$T/s1.json" filter.total.rules.toxicity.spans)" 2 "stats: span removals"
expect_eq "$(jget "$T/s1.json" filter.total.domains.code.documents)" 1 "stats: per domain"
expect_eq "$(jget "$T/s1.json" filter.total.domains.text.kept_with_spans)" 2 "stats: kept with spans"

# --explain: every rule against its threshold, the hit, the span, the stored decision
spans_id=$(python3 -c "import json;print([r['id'] for r in map(json.loads,open('$T/e1.jsonl')) if r.get('meta',{}).get('id')=='spans'][0])")
tm filter "${common[@]}" --explain "$spans_id"
expect_rc 0 "explain"
expect_grep "$T/out" "^decision: spans \(toxicity\)" "explain: decision"
expect_grep "$T/out" "stored: spans \(toxicity\), made with this configuration" "explain: stored"
expect_grep "$T/out" "gopher_min_words +[0-9]+ +min 50 +pass" "explain: rule against threshold"
expect_grep "$T/out" 'term "grobble" \(profanity, weight 1\) from .*lex.txt:2' "explain: hit origin"
expect_grep "$T/out" '\) toxicity: "This sentence has a grobble in it. "' "explain: the span"
tm filter "${common[@]}" --explain 1:9999

[ "$RC" -ne 0 ] || fail "explain of a missing document succeeded"
expect_grep "$T/err" "no document" "explain: missing document message"

# A rerun decides nothing; a new generation is decided alone
tm filter "${common[@]}"
expect_rc 0 "rerun"
expect_grep "$T/out" "decided 0 now; all filtered: 7 documents" "rerun decides nothing"
python3 -c "
import json
print(json.dumps({'id': 'late', 'text': ' '.join('late%03d' % i for i in range(5))}))" >"$F/g2/late.jsonl"
tm ingest --workdir "$W" --no-progress --quiet "$F/g2"
expect_rc 0 "ingest generation 2"
tm filter "${common[@]}" --stats-json "$T/s2.json"
expect_rc 0 "filter generation 2"
expect_grep "$T/out" "decided 1 now; all filtered: 8 documents" "only the new generation"
expect_eq "$(jget "$T/s2.json" filter.generations)" "[2]" "generations decided"

# A different configuration leaves filtered generations alone unless --redo
tm filter "${common[@]}" --set text.gopher_min_words=3
expect_rc 0 "changed configuration"
expect_grep "$T/err" "different configuration" "warned about the stale generations"
expect_grep "$T/out" "decided 0 now" "nothing redone without --redo"
tm filter "${common[@]}" --set text.gopher_min_words=3 --redo --export "$T/e2.jsonl"
expect_rc 0 "redo"
expect_grep "$T/out" "decided 8 now" "redo decides everything again"
expect_eq "$(grep -c '"rule":"gopher_min_words"' "$T/e2.jsonl" || true)" 0 "new threshold applied"

# Dry run: statistics, nothing written
W2="$T/w2"
tm ingest --workdir "$W2" --no-progress --quiet "$F/g1"
tm filter --workdir "$W2" --no-progress --lexicon "$T/lex.txt" --dry-run --stats-json "$T/s3.json"
expect_rc 0 "dry run"
expect_grep "$T/out" "dry run \(nothing written\): 7 documents" "dry run summary"
expect_eq "$(jget "$T/s3.json" filter.run.rules.gopher_min_words.removed)" 1 "dry run statistics"
tm filter --workdir "$W2" --no-progress --lexicon "$T/lex.txt"
expect_grep "$T/out" "decided 7 now" "the dry run wrote no decision"

# Thread count does not change decisions
W3="$T/w3"
tm ingest --workdir "$W3" --no-progress --quiet "$F/g1" "$F/g2"
cp -r "$W3" "$T/w4"
tm filter --workdir "$W3" --no-progress --threads 1 --batch-docs 2 --export "$T/t1.jsonl"
expect_rc 0 "one thread"
tm filter --workdir "$T/w4" --no-progress --threads 4 --export "$T/t4.jsonl"
expect_rc 0 "four threads"
cmp -s "$T/t1.jsonl" "$T/t4.jsonl" || fail "decisions differ between 1 and 4 threads"
ok

# Configuration errors name the file and line; bad options are usage errors
printf '[text]\ngopher_min_words = 40\ngopher_min_wrds = 3\n' >"$T/bad.ini"
tm filter --workdir "$W" --config "$T/bad.ini"
expect_rc 2 "bad config"
expect_grep "$T/err" "bad.ini:3: unknown rule 'gopher_min_wrds'" "config error position"
tm filter --workdir "$W" --set text.gopher_min_words
expect_rc 2 "bad --set"
printf 'term\tnot-a-weight\n' >"$T/badlex.txt"
tm filter --workdir "$W" --lexicon "$T/badlex.txt"
[ "$RC" -ne 0 ] || fail "a bad lexicon was accepted"
expect_grep "$T/err" "badlex.txt:1" "lexicon error position"
tm filter --workdir "$T/none" --no-progress
[ "$RC" -ne 0 ] || fail "filter of an empty workdir succeeded"
tm filter --print-config
expect_rc 0 "print-config"
expect_grep "$T/out" "^gopher_min_words = 50$" "print-config lists thresholds"
expect_grep "$T/out" "^lexicon = builtin$" "print-config lists lexicons"
done_checks
