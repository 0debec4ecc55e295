#!/usr/bin/env bash
# tokenmill report on a workdir taken through every stage (license texts and C sources: ingest,
# filter, dedup, train-vocab, tokenize, train, eval bpb, eval code --canonical --workdir):
# - each stage keeps its last statistics in WORKDIR/stats/<command>.json;
# - report.json parses and holds the results (bpb per domain and overall, pass@1 with its
#   stderr, the validation loss) with the values of their sources, the versions, and the
#   corpus's token counts;
# - report.md has a section per source with their numbers;
# - report.html is one self-contained file: inline SVG plots (loss, MTP loss, expert load,
#   BPB, code outcomes, FP8 study when given), no scripts, no external references;
# - a workdir with only an ingest reports the rest as not available, not as an error.
source "$(dirname "$0")/lib.sh"

W="$T/w"
license_workdir "$W" 512 GPL-3 Apache-2.0 MPL-2.0 Artistic BSD LGPL-2.1
mkdir -p "$T/src"
cp "$TM_SRC"/core/tm_buf.c "$TM_SRC"/core/tm_fs.c "$T/src/"
tm ingest --workdir "$W" --no-progress "$T/src"
expect_rc 0 "ingest C sources"
tm filter --workdir "$W" --no-progress
expect_rc 0 "filter"
tm dedup --workdir "$W" --no-progress
expect_rc 0 "dedup"
tm tokenize --workdir "$W" --vocab "$W/v.tiktoken" --val-fraction 0.2 --redo --no-progress
expect_rc 0 "tokenize again"
{ tiny_moe_model 520; cat <<'INI'; } >"$T/cfg.ini"
mtp_depth = 1
[train]
steps = 20
batch = 4
seq = 32
lr = 3e-3
warmup = 2
eval_every = 10
eval_batches = 2
INI
tm train --workdir "$W" --config "$T/cfg.ini" --no-progress
expect_rc 0 "train"
tm eval bpb --workdir "$W" --vocab "$W/v.tiktoken" --no-progress
expect_rc 0 "eval bpb"
head -n 5 "$TM_SRC/eval/problems/tokenmill_c.jsonl" >"$T/p.jsonl"
tm eval code --workdir "$W" --problems "$T/p.jsonl" --canonical --no-progress
expect_rc 0 "eval code"
cat >"$T/fp8.json" <<'JSON'
{"runs": {"bf16": {"final_loss": 4.0, "final_loss_tail_mean": 4.1, "final_val_loss": 4.2,
                   "val_steps": [0, 10], "val_loss": [8.0, 4.2]},
          "fp8": {"final_loss": 4.004, "final_loss_tail_mean": 4.102, "final_val_loss": 4.201,
                  "val_steps": [0, 10], "val_loss": [8.0, 4.201]}},
 "gap": {"final_loss": 0.001, "final_loss_tail_mean": 0.0005, "final_val_loss": 0.000238}}
JSON
tm report --workdir "$W" --fp8-study "$T/fp8.json"
expect_rc 0 "report"
for f in ingest filter dedup tokenize tokenize-train-vocab train eval-bpb eval-code; do
  [ -s "$W/stats/$f.json" ] || fail "no kept statistics for $f"
done
ok

python3 - "$W" <<'PY' || fail "report.json"
import json, sys
w = sys.argv[1]
r = json.load(open(f"{w}/report/report.json"))
bpb = json.load(open(f"{w}/eval/bpb.json"))
code = json.load(open(f"{w}/eval/code/summary.json"))
res = {(x["task"], x["metric"]): x for x in r["results"]}
assert res[("bpb/overall", "bpb")]["value"] == bpb["overall"]["bpb"]
for d in bpb["domains"]:
    assert res[(f"bpb/{d}", "bpb")]["value"] == bpb["domains"][d]["bpb"], d
p1 = res[("code", "pass@1")]
assert p1["value"] == code["pass_at_k"]["1"] == 1.0 and p1["stderr"] == 0.0, p1
assert ("validation", "loss") in res and res[("fp8_study", "val_loss_gap_vs_bf16")]["value"] == 0.000238
assert r["versions"]["tokenmill"] and r["training"]["steps"] == 20
assert r["corpus"]["text"]["tokens_train"] > 0 and r["corpus"]["code"]["tokens_train"] > 0
PY
ok
md="$W/report/report.md"
for s in "## Corpus" "## History" "## Training" "## Bits per byte" "## Code tasks" "## FP8 study" "pass@1"; do
  expect_grep "$md" "$s" "report.md: $s"
done
html="$W/report/report.html"
expect_eq "$(grep -o '<svg' "$html" | wc -l)" 6 "plots: loss, MTP, expert load, BPB, code outcomes, FP8 (no rule removed anything here)"
expect_no_grep "$html" "<script|<link|<img| src=|url\\(" "self-contained: no scripts, links, images"
expect_eq "$(grep -oE 'https?://[^"]*' "$html" | sort -u)" "http://www.w3.org/2000/svg" "no URL but SVG's namespace"
python3 - "$html" <<'PY' || fail "report.html does not parse"
import html.parser, sys
class P(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.stack = []
    def handle_starttag(self, t, a):
        if t not in ("meta", "br", "line", "rect", "polyline", "!doctype"):
            self.stack.append(t)
    def handle_endtag(self, t):
        assert self.stack and self.stack[-1] == t, (t, self.stack[-3:])
        self.stack.pop()
    def handle_startendtag(self, t, a):
        pass
p = P()
p.feed(open(sys.argv[1]).read())
assert p.stack == [], p.stack
PY
ok

# Only an ingest: the other sections say what is missing.
tm ingest --workdir "$T/w2" --no-progress "$T/src"
tm report --workdir "$T/w2" --out "$T/r2"
expect_rc 0 "report of a bare workdir"
expect_grep "$T/r2/report.md" "Not available: no training metrics" "missing training"
expect_grep "$T/r2/report.md" "Not available: no WORKDIR/eval/bpb.json" "missing bpb"
echo "$TEST_NAME: $CHECKS checks passed"
