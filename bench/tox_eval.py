#!/usr/bin/env python3
"""Toxicity precision and recall of `tokenmill filter` on the labeled set.

Usage:
  python3 bench/tox_eval.py [--tokenmill build/tokenmill] [--config F] [--lexicon F ...]
                            [--labeled F] [--out F] [--keep-workdir] [FILTER-ARGS...]
  python3 bench/tox_eval.py --export-in decisions.jsonl   # score an existing export
  python3 bench/tox_eval.py --validate                    # check the labeled set only
  python3 bench/tox_eval.py --selftest                    # test this script, no tokenmill

It ingests bench/toxicity/labeled.jsonl into a fresh temporary workdir, runs
`tokenmill filter --export W/decisions.jsonl` there (--config, every --lexicon and any
option this script does not know are passed on to filter), and measures the "toxic" class at
two operating points:

  removed  the document was removed by the toxicity rule:
           "toxicity" in fired and action == "removed"
  flagged  removed as above, or the scanner found hits that were (or would be) masked:
           tox_hits > 0 or "toxicity" in span_rules

Other rules (gopher_min_words, ...) may remove a document too; those removals do not count
as toxicity removals, which is why "fired" is used rather than "action" alone. Results go to
stdout and to bench/out/tox_eval.json. Python 3 standard library only.
"""

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DEFAULT_LABELED = os.path.join(HERE, "toxicity", "labeled.jsonl")
DEFAULT_OUT = os.path.join(HERE, "out", "tox_eval.json")
DEFAULT_TOKENMILL = os.path.join(ROOT, "build", "tokenmill")

KINDS = {
    "toxic": ["toxic_abuse", "toxic_sexual", "toxic_slur", "toxic_threat", "toxic_obfuscated",
              "toxic_mild"],
    "clean": ["clean_plain", "clean_medical", "clean_scunthorpe", "clean_discussion",
              "clean_foreign"],
}
KIND_ORDER = KINDS["toxic"] + KINDS["clean"]
ACTIONS = ("kept", "removed", "spans")
MIN_WORDS, MAX_WORDS = 40, 400
SWEEP = (0.0, 1.0, 2.0, 5.0, 10.0, 15.0, 20.0, 30.0, 50.0)


class EvalError(Exception):
    """A problem the user has to fix; printed without a traceback."""


# ---------------------------------------------------------------------------------------------
# The labeled set


def load_labeled(path):
    """Reads and validates the labeled set. Returns (docs in file order, list of problems)."""
    docs, problems, seen_ids, seen_texts = [], [], {}, {}
    try:
        fh = open(path, encoding="utf-8")
    except OSError as e:
        raise EvalError("cannot read the labeled set %s: %s" % (path, e.strerror))
    with fh:
        for lineno, line in enumerate(fh, 1):
            where = "%s:%d" % (path, lineno)
            if not line.strip():
                problems.append("%s: empty line" % where)
                continue
            try:
                d = json.loads(line)
            except ValueError as e:
                problems.append("%s: not JSON (%s)" % (where, e))
                continue
            if not isinstance(d, dict):
                problems.append("%s: not a JSON object" % where)
                continue
            bad = [k for k in ("id", "label", "kind", "text") if not isinstance(d.get(k), str)]
            if bad:
                problems.append("%s: missing or non-string field(s) %s" % (where, ", ".join(bad)))
                continue
            extra = sorted(set(d) - {"id", "label", "kind", "text"})
            if extra:
                problems.append("%s: unexpected field(s) %s" % (where, ", ".join(extra)))
            if not re.fullmatch(r"t\d{3,}", d["id"]):
                problems.append("%s: id %r is not t + digits" % (where, d["id"]))
            if d["id"] in seen_ids:
                problems.append("%s: id %s already used on line %d" % (where, d["id"],
                                                                      seen_ids[d["id"]]))
            seen_ids.setdefault(d["id"], lineno)
            if d["label"] not in KINDS:
                problems.append("%s: label %r is not toxic or clean" % (where, d["label"]))
            elif d["kind"] not in KINDS[d["label"]]:
                problems.append("%s: kind %r does not belong to label %r" % (where, d["kind"],
                                                                            d["label"]))
            nwords = len(d["text"].split())
            if not MIN_WORDS <= nwords <= MAX_WORDS:
                problems.append("%s: %d words, outside %d..%d" % (where, nwords, MIN_WORDS,
                                                                  MAX_WORDS))
            key = " ".join(d["text"].split()).lower()
            if key in seen_texts:
                problems.append("%s: same text as %s" % (where, seen_texts[key]))
            seen_texts.setdefault(key, d["id"])
            docs.append(d)
    return docs, problems


def labeled_summary(docs):
    counts = {}
    for d in docs:
        counts[d["kind"]] = counts.get(d["kind"], 0) + 1
    lines = ["%-18s %5s %6s" % ("kind", "docs", "words")]
    for kind in KIND_ORDER + sorted(set(counts) - set(KIND_ORDER)):
        if kind in counts:
            words = [len(d["text"].split()) for d in docs if d["kind"] == kind]
            lines.append("%-18s %5d %6s" % (kind, counts[kind],
                                             "%d-%d" % (min(words), max(words))))
    for label in ("toxic", "clean"):
        lines.append("%-18s %5d" % ("total " + label, sum(1 for d in docs if d["label"] == label)))
    lines.append("%-18s %5d" % ("total", len(docs)))
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# The export written by `tokenmill filter --export`


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def parse_export(lines, source="export"):
    """Parses the decisions export (an iterable of lines). Returns a list of records with the
    fields this script uses. Raises EvalError naming the line and field on any problem."""
    recs = []
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = "%s:%d" % (source, lineno)
        try:
            r = json.loads(line)
        except ValueError as e:
            raise EvalError("%s: not JSON (%s)" % (where, e))
        if not isinstance(r, dict):
            raise EvalError("%s: not a JSON object" % where)

        def need(field, ok, what):
            if field not in r:
                raise EvalError("%s: the export has no field %r; this script expects %s "
                                "(see the spec at the top of bench/tox_eval.py)"
                                % (where, field, what))
            if not ok(r[field]):
                raise EvalError("%s: field %r is %s, expected %s"
                                % (where, field, json.dumps(r[field])[:80], what))
            return r[field]

        action = need("action", lambda v: v in ACTIONS, "one of " + "|".join(ACTIONS))
        fired = need("fired", lambda v: isinstance(v, list) and
                     all(isinstance(x, str) for x in v), "a list of rule names")
        hits = need("tox_hits", lambda v: _is_int(v) and v >= 0, "a non-negative integer")
        score = need("toxicity", _is_num, "a number (weighted hits per 1000 words)")
        meta = need("meta", lambda v: isinstance(v, dict), "an object (the JSONL's other fields)")
        rule = r.get("rule")
        if rule is not None and not isinstance(rule, str):
            raise EvalError("%s: field 'rule' is %s, expected a string or null"
                            % (where, json.dumps(rule)[:80]))
        spans = r.get("spans", [])
        if not (isinstance(spans, list) and all(isinstance(s, list) and len(s) == 2 and
                                                all(_is_int(x) for x in s) for s in spans)):
            raise EvalError("%s: field 'spans' is not a list of [start, end] pairs" % where)
        span_rules = r.get("span_rules", [])
        if not (isinstance(span_rules, list) and all(isinstance(x, str) for x in span_rules)):
            raise EvalError("%s: field 'span_rules' is not a list of rule names" % where)
        if span_rules and len(span_rules) != len(spans):
            raise EvalError("%s: %d spans but %d span_rules" % (where, len(spans),
                                                                len(span_rules)))
        doc_id = meta.get("id")
        if not isinstance(doc_id, str):
            raise EvalError("%s: meta has no string 'id' (meta keys: %s); did ingest keep the "
                            "JSONL fields as metadata?" % (where, ", ".join(sorted(meta)) or "none"))
        removed_tox = "toxicity" in fired and action == "removed"
        recs.append({
            "doc": doc_id,
            "store_id": r.get("id"),
            "domain": r.get("domain"),
            "action": action,
            "rule": rule,
            "fired": fired,
            "toxicity": float(score),
            "tox_hits": hits,
            "tox_spans": sum(1 for x in span_rules if x == "toxicity"),
            "meta_label": meta.get("label"),
            "meta_kind": meta.get("kind"),
            "removed_tox": removed_tox,
            "flagged": removed_tox or hits > 0 or "toxicity" in span_rules,
            "removed_other": action == "removed" and not removed_tox,
            "line": lineno,
        })
    return recs


def join(docs, recs):
    """Pairs each labeled document with its export record. Returns (rows, warnings)."""
    by_id = {d["id"]: d for d in docs}
    rows, warnings, seen = [], [], {}
    for r in recs:
        d = by_id.get(r["doc"])
        if d is None:
            raise EvalError("export line %d: meta.id %r is not in the labeled set"
                            % (r["line"], r["doc"]))
        if r["doc"] in seen:
            raise EvalError("export lines %d and %d: both for document %s"
                            % (seen[r["doc"]], r["line"], r["doc"]))
        seen[r["doc"]] = r["line"]
        for f in ("label", "kind"):
            if r["meta_" + f] is not None and r["meta_" + f] != d[f]:
                warnings.append("%s: meta.%s is %r, the labeled set says %r"
                                % (r["doc"], f, r["meta_" + f], d[f]))
        if r["domain"] not in (None, "text"):
            warnings.append("%s: domain %r, expected text (--domain text)" % (r["doc"],
                                                                            r["domain"]))
        row = dict(r)
        row.update(label=d["label"], kind=d["kind"], words=len(d["text"].split()))
        rows.append(row)
    missing = [d["id"] for d in docs if d["id"] not in seen]
    if missing:
        raise EvalError("%d labeled document(s) missing from the export (not ingested, or not "
                        "exported): %s" % (len(missing), " ".join(missing[:20]) +
                                           (" ..." if len(missing) > 20 else "")))
    order = {d["id"]: i for i, d in enumerate(docs)}
    rows.sort(key=lambda x: order[x["doc"]])
    return rows, warnings


# ---------------------------------------------------------------------------------------------
# Metrics


def confusion(rows, predicate):
    c = {"tp": 0, "fp": 0, "fn": 0, "tn": 0}
    for r in rows:
        pos, pred = r["label"] == "toxic", bool(predicate(r))
        c[("t" if pos == pred else "f") + ("p" if pred else "n")] += 1
    tp, fp, fn = c["tp"], c["fp"], c["fn"]
    c["precision"] = tp / (tp + fp) if tp + fp else None  # undefined: nothing predicted
    c["recall"] = tp / (tp + fn) if tp + fn else None
    p, rc = c["precision"], c["recall"]
    c["f1"] = (2 * p * rc / (p + rc) if p + rc else 0.0) if p is not None and rc is not None \
        else None
    return c


def per_kind(rows):
    table = {}
    for r in rows:
        t = table.setdefault(r["kind"], {"label": r["label"], "count": 0, "flagged": 0,
                                         "removed": 0, "removed_other": 0, "spans": 0,
                                         "score_sum": 0.0})
        t["count"] += 1
        t["flagged"] += r["flagged"]
        t["removed"] += r["removed_tox"]
        t["removed_other"] += r["removed_other"]
        t["spans"] += r["tox_spans"] > 0 and not r["removed_tox"]
        t["score_sum"] += r["toxicity"]
    out = {}
    for kind in KIND_ORDER + sorted(set(table) - set(KIND_ORDER)):
        if kind in table:
            t = table[kind]
            t["mean_score"] = round(t.pop("score_sum") / t["count"], 3)
            out[kind] = t
    return out


def misclassified(rows, key):
    """False negatives (toxic, not predicted) then false positives (clean, predicted)."""
    fn = [r for r in rows if r["label"] == "toxic" and not r[key]]
    fp = [r for r in rows if r["label"] == "clean" and r[key]]
    return [dict(error=e, id=r["doc"], kind=r["kind"], score=round(r["toxicity"], 3),
                 hits=r["tox_hits"], action=r["action"], rule=r["rule"])
            for e, group in (("FN", fn), ("FP", fp)) for r in group]


def sweep(rows):
    """Precision/recall of "toxicity score > t" for a few thresholds t, and the best-F1 t over
    all distinct scores. Independent of what the filter decided; useful for tuning."""
    points = []
    for t in SWEEP:
        c = confusion(rows, lambda r, t=t: r["toxicity"] > t)
        points.append(dict(threshold=t, **c))
    best = None
    for t in sorted({0.0} | {r["toxicity"] for r in rows}):
        c = confusion(rows, lambda r, t=t: r["toxicity"] > t)
        if c["f1"] is not None and (best is None or c["f1"] > best["f1"]):
            best = dict(threshold=t, **c)
    return points, best


def evaluate(docs, recs):
    rows, warnings = join(docs, recs)
    points, best = sweep(rows)
    return {
        "documents": len(rows),
        "toxic": sum(1 for r in rows if r["label"] == "toxic"),
        "clean": sum(1 for r in rows if r["label"] == "clean"),
        "points": {"removed": confusion(rows, lambda r: r["removed_tox"]),
                   "flagged": confusion(rows, lambda r: r["flagged"])},
        "per_kind": per_kind(rows),
        "misclassified": {"removed": misclassified(rows, "removed_tox"),
                          "flagged": misclassified(rows, "flagged")},
        "score_sweep": points,
        "best_threshold": best,
        "removed_by_other_rules": sum(1 for r in rows if r["removed_other"]),
        "warnings": warnings,
        "docs": [{k: r[k] for k in ("doc", "label", "kind", "words", "action", "rule", "fired",
                                    "toxicity", "tox_hits", "tox_spans", "removed_tox",
                                    "flagged")} for r in rows],
    }


def _f(v):
    return "  n/a" if v is None else "%.3f" % v


def report(res):
    out = []
    out.append("documents: %d (toxic %d, clean %d); removed by non-toxicity rules: %d"
               % (res["documents"], res["toxic"], res["clean"], res["removed_by_other_rules"]))
    out.append("")
    out.append("%-9s %4s %4s %4s %4s  %9s %6s %6s" % ("point", "tp", "fp", "fn", "tn",
                                                       "precision", "recall", "f1"))
    for name, c in res["points"].items():
        out.append("%-9s %4d %4d %4d %4d  %9s %6s %6s" % (name, c["tp"], c["fp"], c["fn"],
                                                           c["tn"], _f(c["precision"]),
                                                           _f(c["recall"]), _f(c["f1"])))
    out.append("  removed = \"toxicity\" in fired and action == removed; "
               "flagged = removed, or tox_hits > 0, or a toxicity span")
    out.append("")
    out.append("%-18s %-5s %5s %7s %7s %5s %7s %10s" % ("kind", "label", "count", "flagged",
                                                        "removed", "spans", "other", "mean score"))
    for kind, t in res["per_kind"].items():
        out.append("%-18s %-5s %5d %7d %7d %5d %7d %10.2f" % (
            kind, t["label"], t["count"], t["flagged"], t["removed"], t["spans"],
            t["removed_other"], t["mean_score"]))
    out.append("  removed: by the toxicity rule; spans: kept with toxicity spans masked; "
               "other: removed by another rule")
    out.append("")
    b = res["best_threshold"]
    out.append("score sweep (predict toxic when toxicity score > t):")
    out.append("  %8s %4s %4s %9s %6s %6s" % ("t", "tp", "fp", "precision", "recall", "f1"))
    for c in res["score_sweep"] + ([b] if b else []):
        out.append("  %8s %4d %4d %9s %6s %6s%s" % (
            "%.3f" % c["threshold"], c["tp"], c["fp"], _f(c["precision"]), _f(c["recall"]),
            _f(c["f1"]), "   <- best F1" if c is b else ""))
    for name, errs in res["misclassified"].items():
        out.append("")
        out.append("misclassified at '%s' (%d):" % (name, len(errs)))
        for e in errs:
            out.append("  %s %-5s %-18s score %8.3f  hits %3d  %-7s %s" % (
                e["error"], e["id"], e["kind"], e["score"], e["hits"], e["action"],
                e["rule"] or "-"))
    for w in res["warnings"]:
        out.append("warning: " + w)
    return "\n".join(out)


def write_json(path, obj):
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tox_eval.", dir=d)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(obj, fh, indent=1)
        fh.write("\n")
    os.replace(tmp, path)


# ---------------------------------------------------------------------------------------------
# Running tokenmill


def _run(cmd, what):
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           universal_newlines=True)
    except OSError as e:
        raise EvalError("%s: cannot run %s: %s" % (what, cmd[0], e.strerror))
    if p.returncode != 0:
        tail = (p.stderr.strip() or p.stdout.strip())[-2000:]
        raise EvalError("%s failed (exit %d): %s\n%s" % (what, p.returncode,
                                                          " ".join(cmd), tail))
    return p


def filter_args(args, extra):
    fa = []
    if args.config:
        fa += ["--config", args.config]
    for lex in args.lexicon:
        fa += ["--lexicon", lex]
    return fa + extra


def run_pipeline(tokenmill, labeled, fargs, keep_workdir=False, log=sys.stderr):
    """Ingests `labeled` and filters it in a fresh workdir. Returns (export lines, workdir)."""
    if not os.path.isfile(tokenmill):
        raise EvalError("tokenmill binary not found at %s; build it (cmake --build build) or "
                        "pass --tokenmill PATH" % tokenmill)
    if not os.access(tokenmill, os.X_OK):
        raise EvalError("%s is not executable" % tokenmill)
    try:
        p = subprocess.run([tokenmill, "filter", "--help"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, universal_newlines=True)
    except OSError as e:
        raise EvalError("cannot run %s: %s" % (tokenmill, e.strerror))
    if p.returncode != 0:
        first = [ln for ln in (p.stderr + "\n" + p.stdout).splitlines() if ln.strip()]
        raise EvalError("%s has no working 'filter' command ('filter --help' exited %d: %s); "
                        "this evaluation needs the filter stage"
                        % (tokenmill, p.returncode, first[0].strip() if first else "no output"))
    if "--export" not in p.stdout + p.stderr:
        print("tox_eval: warning: 'filter --help' does not mention --export", file=log)
    work = tempfile.mkdtemp(prefix="tox_eval.")
    try:
        export = os.path.join(work, "decisions.jsonl")
        _run([tokenmill, "ingest", "--quiet", "--workdir", work, "--domain", "text", labeled],
             "ingest")
        _run([tokenmill, "filter", "--quiet", "--workdir", work, "--export", export] + fargs,
             "filter")
        if not os.path.isfile(export):
            raise EvalError("filter succeeded but wrote no export at %s" % export)
        with open(export, encoding="utf-8") as fh:
            lines = fh.read().splitlines()
        return lines, work
    finally:
        if keep_workdir:
            print("tox_eval: workdir kept at %s" % work, file=log)
        else:
            shutil.rmtree(work, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# Self-test: the metric code on synthetic data, and the plumbing against a fake tokenmill


def _synthetic():
    docs, recs = [], []

    def add(i, label, kind, action, fired, hits, score, span_rules=(), rule=None):
        did = "t%03d" % i
        docs.append({"id": did, "label": label, "kind": kind,
                     "text": " ".join(["word"] * 45) + " " + did})
        recs.append(json.dumps({
            "id": i, "source": "labeled.jsonl", "domain": "text", "action": action,
            "rule": rule, "toxicity": score, "tox_hits": hits,
            "spans": [[0, 4]] * len(span_rules), "span_rules": list(span_rules),
            "fired": list(fired), "meta": {"id": did, "label": label, "kind": kind}}))

    # toxic: 4 removed by toxicity, 1 kept with masked spans, 1 missed entirely,
    # 1 removed by a quality rule only (not a toxicity removal, but hits > 0 -> flagged)
    add(1, "toxic", "toxic_abuse", "removed", ["toxicity"], 5, 80.0, rule="toxicity")
    add(2, "toxic", "toxic_abuse", "removed", ["gopher_min_words", "toxicity"], 3, 60.0,
        rule="toxicity")
    add(3, "toxic", "toxic_sexual", "removed", ["toxicity"], 9, 150.0, rule="toxicity")
    add(4, "toxic", "toxic_slur", "removed", ["toxicity"], 2, 40.0, rule="toxicity")
    add(5, "toxic", "toxic_mild", "spans", [], 1, 5.0, span_rules=["toxicity"])
    add(6, "toxic", "toxic_threat", "kept", [], 0, 0.0)
    add(7, "toxic", "toxic_obfuscated", "removed", ["gopher_min_words"], 2, 30.0,
        rule="gopher_min_words")
    # clean: 1 removed by toxicity (FP at both points), 1 masked (FP at flagged), 1 removed by
    # a quality rule with no hits (TN), 3 kept (TN); one span from another rule only
    add(8, "clean", "clean_discussion", "removed", ["toxicity"], 4, 50.0, rule="toxicity")
    add(9, "clean", "clean_medical", "spans", [], 1, 8.0, span_rules=["toxicity"])
    add(10, "clean", "clean_plain", "removed", ["gopher_min_words"], 0, 0.0,
        rule="gopher_min_words")
    add(11, "clean", "clean_plain", "kept", [], 0, 0.0)
    add(12, "clean", "clean_scunthorpe", "kept", [], 0, 0.0)
    add(13, "clean", "clean_foreign", "spans", [], 0, 0.0, span_rules=["pii"])
    return docs, recs


def _expect_error(fn, needle):
    try:
        fn()
    except EvalError as e:
        assert needle in str(e), "error %r lacks %r" % (str(e), needle)
        return str(e)
    raise AssertionError("expected an EvalError mentioning %r" % needle)


FAKE_TOKENMILL = r'''#!/usr/bin/env python3
# A stand-in for tokenmill used by tox_eval.py --selftest.
import json, os, sys
args = sys.argv[1:]
cmd = args[0] if args else ""
if os.environ.get("FAKE_NO_FILTER") and cmd == "filter":
    print("tokenmill: unknown command 'filter'", file=sys.stderr); sys.exit(2)
if "--help" in args:
    print("usage: tokenmill %s ... --export FILE" % cmd); sys.exit(0)
w = args[args.index("--workdir") + 1]
if cmd == "ingest":
    assert args[args.index("--domain") + 1] == "text"
    with open(os.path.join(w, "ingested"), "w") as fh:
        fh.write(args[-1])
    sys.exit(0)
if cmd == "filter":
    with open(os.path.join(w, "ingested")) as fh:
        src = fh.read()
    with open(os.environ["FAKE_ARGS_OUT"], "w") as fh:
        json.dump(args, fh)
    out = open(args[args.index("--export") + 1], "w")
    for i, line in enumerate(open(src), 1):
        d = json.loads(line)
        text = d.pop("text")
        hits = text.count("BAD")
        removed = hits >= 2
        out.write(json.dumps({"id": i, "source": src, "domain": "text",
            "action": "removed" if removed else ("spans" if hits else "kept"),
            "rule": "toxicity" if removed else None, "toxicity": 1000.0 * hits / len(text.split()),
            "tox_hits": hits, "spans": [] if removed else [[0, 3]] * hits,
            "span_rules": [] if removed else ["toxicity"] * hits,
            "fired": ["toxicity"] if removed else [], "meta": d}) + "\n")
    sys.exit(0)
sys.exit(2)
'''


def selftest():
    docs, lines = _synthetic()
    res = evaluate(docs, parse_export(lines, "synthetic"))
    rm, fl = res["points"]["removed"], res["points"]["flagged"]
    # removed: TP t001-t004; FN t005 t006 t007; FP t008; TN t009-t013
    assert (rm["tp"], rm["fp"], rm["fn"], rm["tn"]) == (4, 1, 3, 5), rm
    assert abs(rm["precision"] - 4 / 5) < 1e-12 and abs(rm["recall"] - 4 / 7) < 1e-12, rm
    assert abs(rm["f1"] - 2 * (4 / 5) * (4 / 7) / (4 / 5 + 4 / 7)) < 1e-12, rm
    # flagged: TP t001-t005 t007; FN t006; FP t008 t009; TN t010-t013
    assert (fl["tp"], fl["fp"], fl["fn"], fl["tn"]) == (6, 2, 1, 4), fl
    assert abs(fl["precision"] - 0.75) < 1e-12 and abs(fl["recall"] - 6 / 7) < 1e-12, fl
    assert abs(fl["f1"] - 0.8) < 1e-12, fl
    pk = res["per_kind"]
    assert pk["toxic_abuse"] == {"label": "toxic", "count": 2, "flagged": 2, "removed": 2,
                                 "removed_other": 0, "spans": 0, "mean_score": 70.0}, pk
    assert pk["toxic_obfuscated"]["removed"] == 0 and pk["toxic_obfuscated"]["flagged"] == 1
    assert pk["toxic_obfuscated"]["removed_other"] == 1
    assert pk["clean_plain"]["count"] == 2 and pk["clean_plain"]["removed_other"] == 1
    assert pk["clean_medical"]["spans"] == 1 and pk["clean_foreign"]["flagged"] == 0
    assert list(pk) == [k for k in KIND_ORDER if k in pk], "per-kind table out of order"
    mis = res["misclassified"]
    assert [(e["error"], e["id"]) for e in mis["removed"]] == [
        ("FN", "t005"), ("FN", "t006"), ("FN", "t007"), ("FP", "t008")], mis["removed"]
    assert [(e["error"], e["id"]) for e in mis["flagged"]] == [
        ("FN", "t006"), ("FP", "t008"), ("FP", "t009")], mis["flagged"]
    assert mis["removed"][3]["score"] == 50.0
    assert res["removed_by_other_rules"] == 2
    # sweep: "score > 30" catches t001-t004 and t008 -> same as the removed point
    s30 = [c for c in res["score_sweep"] if c["threshold"] == 30.0][0]
    assert (s30["tp"], s30["fp"]) == (4, 1), s30
    assert res["best_threshold"]["f1"] >= fl["f1"] - 1e-12
    # undefined precision when nothing is predicted
    none = confusion([{"label": "toxic", "x": False}], lambda r: r["x"])
    assert none["precision"] is None and none["recall"] == 0.0 and none["f1"] is None
    report(res)  # formats without raising
    print("selftest: metrics on 13 synthetic documents")
    print("  removed: tp=%d fp=%d fn=%d tn=%d precision=%.3f recall=%.3f f1=%.3f"
          % tuple(rm[k] for k in ("tp", "fp", "fn", "tn", "precision", "recall", "f1")))
    print("  flagged: tp=%d fp=%d fn=%d tn=%d precision=%.3f recall=%.3f f1=%.3f"
          % tuple(fl[k] for k in ("tp", "fp", "fn", "tn", "precision", "recall", "f1")))

    # parse errors name the line and the field
    good = json.loads(lines[0])
    for field, needle in (("fired", "no field 'fired'"), ("tox_hits", "no field 'tox_hits'"),
                          ("toxicity", "no field 'toxicity'"), ("meta", "no field 'meta'"),
                          ("action", "no field 'action'")):
        bad = dict(good)
        del bad[field]
        msg = _expect_error(lambda: parse_export([json.dumps(bad)], "x.jsonl"), needle)
        assert msg.startswith("x.jsonl:1:"), msg
    _expect_error(lambda: parse_export([json.dumps(dict(good, action="dropped"))]), "'action'")
    _expect_error(lambda: parse_export([json.dumps(dict(good, tox_hits=1.5))]), "'tox_hits'")
    _expect_error(lambda: parse_export([json.dumps(dict(good, meta={"kind": "x"}))]),
                  "meta has no string 'id'")
    _expect_error(lambda: parse_export(["{not json"]), "not JSON")
    _expect_error(lambda: parse_export([json.dumps(dict(good, span_rules=["toxicity"]))]),
                  "0 spans but 1 span_rules")
    recs = parse_export(lines)
    _expect_error(lambda: join(docs, recs[:-1]), "1 labeled document(s) missing")
    _expect_error(lambda: join(docs, recs + recs[:1]), "both for document t001")
    _expect_error(lambda: join(docs[1:], recs), "'t001' is not in the labeled set")
    _, warns = join(docs, parse_export([lines[0].replace('"toxic_abuse"', '"toxic_slur"')] +
                                       lines[1:]))
    assert warns and "meta.kind" in warns[0], warns
    print("selftest: export parsing and joining errors: ok")

    # the labeled-set validator
    tmp = tempfile.mkdtemp(prefix="tox_eval_selftest.")
    try:
        bad_set = os.path.join(tmp, "bad.jsonl")
        with open(bad_set, "w") as fh:
            fh.write(json.dumps(docs[0]) + "\n" + json.dumps(docs[0]) + "\n")
            fh.write(json.dumps(dict(docs[1], id="t900", kind="clean_plain")) + "\n")
            fh.write(json.dumps(dict(docs[2], id="t901", text="too short")) + "\n")
            fh.write("[1]\n")
        _, probs = load_labeled(bad_set)
        want = ["already used", "same text", "does not belong", "outside 40..400",
                "not a JSON object"]
        for w in want:
            assert any(w in p for p in probs), (w, probs)
        print("selftest: labeled-set validation: ok")

        # the whole run against a fake tokenmill
        fake = os.path.join(tmp, "tokenmill")
        with open(fake, "w") as fh:
            fh.write(FAKE_TOKENMILL)
        os.chmod(fake, 0o755)
        small = os.path.join(tmp, "small.jsonl")
        texts = [("toxic", "toxic_abuse", "BAD BAD"), ("toxic", "toxic_mild", "BAD"),
                 ("toxic", "toxic_threat", "nothing"), ("clean", "clean_plain", "fine"),
                 ("clean", "clean_discussion", "BAD BAD BAD")]
        with open(small, "w") as fh:
            for i, (label, kind, t) in enumerate(texts, 1):
                fh.write(json.dumps({"id": "t%03d" % i, "label": label, "kind": kind,
                                     "text": t + " " + " ".join(["filler"] * 40)}) + "\n")
        sdocs, probs = load_labeled(small)
        assert not probs, probs
        os.environ["FAKE_ARGS_OUT"] = os.path.join(tmp, "args.json")
        ns = argparse.Namespace(config="my.ini", lexicon=["a.txt", "b.txt"])
        fargs = filter_args(ns, ["--threshold", "7"])
        elines, _ = run_pipeline(fake, small, fargs, log=open(os.devnull, "w"))
        with open(os.environ["FAKE_ARGS_OUT"]) as fh:
            got = json.load(fh)
        assert got[got.index("--export") + 2:] == ["--config", "my.ini", "--lexicon", "a.txt",
                                                  "--lexicon", "b.txt", "--threshold", "7"], got
        assert "--quiet" in got
        r = evaluate(sdocs, parse_export(elines))
        assert (r["points"]["removed"]["tp"], r["points"]["removed"]["fp"],
                r["points"]["removed"]["fn"]) == (1, 1, 2), r["points"]["removed"]
        assert (r["points"]["flagged"]["tp"], r["points"]["flagged"]["fn"]) == (2, 1)
        _expect_error(lambda: run_pipeline(os.path.join(tmp, "nope"), small, []),
                      "tokenmill binary not found")
        os.environ["FAKE_NO_FILTER"] = "1"
        _expect_error(lambda: run_pipeline(fake, small, []), "has no working 'filter' command")
        del os.environ["FAKE_NO_FILTER"]
        print("selftest: pipeline against a fake tokenmill (ingest, filter, passthrough args, "
              "missing binary, missing filter command): ok")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        os.environ.pop("FAKE_ARGS_OUT", None)
    print("selftest: all passed")


# ---------------------------------------------------------------------------------------------


def main(argv=None):
    ap = argparse.ArgumentParser(
        description="Toxicity precision/recall of tokenmill filter on the labeled set. "
                    "Options not listed here are passed on to 'tokenmill filter'.")
    ap.add_argument("--tokenmill", default=DEFAULT_TOKENMILL,
                    help="the tokenmill binary (default: build/tokenmill)")
    ap.add_argument("--config", help="passed to filter as --config F")
    ap.add_argument("--lexicon", action="append", default=[], metavar="F",
                    help="passed to filter as --lexicon F (repeatable)")
    ap.add_argument("--labeled", default=DEFAULT_LABELED,
                    help="the labeled set (default: bench/toxicity/labeled.jsonl)")
    ap.add_argument("--out", default=DEFAULT_OUT,
                    help="JSON results (default: bench/out/tox_eval.json)")
    ap.add_argument("--export-in", metavar="F",
                    help="score this existing filter export instead of running tokenmill")
    ap.add_argument("--keep-workdir", action="store_true", help="keep the temporary workdir")
    ap.add_argument("--validate", action="store_true",
                    help="only validate the labeled set and print its counts per kind")
    ap.add_argument("--selftest", action="store_true",
                    help="test this script's parsing and metrics on synthetic data")
    args, extra = ap.parse_known_args(argv)
    if extra and extra[0] == "--":
        extra = extra[1:]
    try:
        if args.selftest:
            selftest()
            return 0
        docs, problems = load_labeled(args.labeled)
        if args.validate:
            print("%s: %d documents, %d problem(s)" % (args.labeled, len(docs), len(problems)))
            for p in problems:
                print("  " + p)
            print(labeled_summary(docs))
            return 1 if problems else 0
        if problems:
            raise EvalError("the labeled set has problems (run with --validate):\n  " +
                            "\n  ".join(problems[:20]))
        fargs = filter_args(args, extra)
        if args.export_in:
            with open(args.export_in, encoding="utf-8") as fh:
                lines = fh.read().splitlines()
            source = args.export_in
        else:
            lines, _ = run_pipeline(args.tokenmill, args.labeled, fargs, args.keep_workdir)
            source = "filter export"
        res = evaluate(docs, parse_export(lines, source))
        print(report(res))
        res = dict({"labeled": os.path.relpath(args.labeled, ROOT),
                    "tokenmill": None if args.export_in else args.tokenmill,
                    "export_in": args.export_in, "filter_args": fargs}, **res)
        write_json(args.out, res)
        print("\nwrote %s" % args.out)
        return 0
    except EvalError as e:
        print("tox_eval: error: %s" % e, file=sys.stderr)
        return 1


if __name__ == "__main__":
    if hasattr(signal, "SIGPIPE"):
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # quiet under `| head`
    sys.exit(main())
