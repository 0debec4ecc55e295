#!/usr/bin/env python3
"""Check the tokenmill code-eval problem set.

For every task in tokenmill_c.jsonl this builds two programs in a temporary
directory, prompt + canonical_solution + test and prompt + wrong completion +
test (wrong completions come from tokenmill_c_wrong.jsonl), compiles them the
way `tokenmill eval code` does, runs each with a time limit and checks that
the canonical program exits 0 and the wrong one exits non-zero on its own
(not killed by a signal, not timed out). It also validates the JSONL fields,
task_id uniqueness, and that every task has exactly one wrong completion.

Compiler warnings from canonical programs are reported and count as failures;
warnings from wrong completions are only reported.

Usage: python3 eval/problems/check_problems.py [--jobs N] [--timeout S]
                                                [--sanitize] [-v]
                                                [--only TASK_ID ...]
--sanitize also builds both programs with ASan/UBSan: the canonical one must
pass there and the wrong one must fail through its test checks, not through
undefined behaviour (a sanitizer report) that the plain build happens to hide.
Exit status: 0 when everything checks out, 1 otherwise.
"""
import argparse
import concurrent.futures
import json
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
PROBLEMS = os.path.join(HERE, "tokenmill_c.jsonl")
WRONG = os.path.join(HERE, "tokenmill_c_wrong.jsonl")

REQUIRED = ("task_id", "language", "prompt", "canonical_solution", "test")
COMPILERS = {
    "c": (["gcc", "-std=c11", "-O1", "-Wall"], ["-lm"], ".c"),
    "cpp": (["g++", "-std=c++17", "-O1", "-Wall"], [], ".cpp"),
}
TASK_ID_RE = re.compile(r"^tokenmill/(c|cpp)/[0-9]{3}$")


def load_jsonl(path, errors):
    rows = []
    try:
        with open(path, encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    errors.append(f"{os.path.basename(path)}:{lineno}: blank line")
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as e:
                    errors.append(f"{os.path.basename(path)}:{lineno}: bad JSON: {e}")
                    continue
                if not isinstance(obj, dict):
                    errors.append(f"{os.path.basename(path)}:{lineno}: not an object")
                    continue
                rows.append((lineno, obj))
    except OSError as e:
        errors.append(f"cannot read {path}: {e}")
    return rows


def validate(problems, wrongs, errors):
    tasks = {}
    for lineno, p in problems:
        where = f"tokenmill_c.jsonl:{lineno}"
        ok = True
        for k in REQUIRED:
            if not isinstance(p.get(k), str) or not p.get(k):
                errors.append(f"{where}: field {k!r} missing, empty or not a string")
                ok = False
        if not ok:
            continue
        tid, lang = p["task_id"], p["language"]
        if lang not in COMPILERS:
            errors.append(f"{where}: language {lang!r} is not c or cpp")
            continue
        m = TASK_ID_RE.match(tid)
        if not m or m.group(1) != lang:
            errors.append(f"{where}: task_id {tid!r} does not match language {lang!r}")
        if tid in tasks:
            errors.append(f"{where}: duplicate task_id {tid!r}")
            continue
        if not p["prompt"].endswith("{\n"):
            errors.append(f"{where}: prompt does not end with an opening brace line")
        if not p["canonical_solution"].rstrip().endswith("}"):
            errors.append(f"{where}: canonical_solution does not end with '}}'")
        main_sig = "int main(void)" if lang == "c" else "int main()"
        if main_sig not in p["test"]:
            errors.append(f"{where}: test has no {main_sig}")
        if re.search(r"\bassert\s*\(", p["test"]):
            errors.append(f"{where}: test uses assert()")
        tasks[tid] = p
    wrong = {}
    for lineno, w in wrongs:
        where = f"tokenmill_c_wrong.jsonl:{lineno}"
        tid, comp = w.get("task_id"), w.get("completion")
        if not isinstance(tid, str) or not isinstance(comp, str) or not comp:
            errors.append(f"{where}: needs string task_id and non-empty completion")
            continue
        if tid in wrong:
            errors.append(f"{where}: duplicate wrong completion for {tid!r}")
            continue
        if tid not in tasks:
            errors.append(f"{where}: unknown task_id {tid!r}")
            continue
        wrong[tid] = comp
    for tid in tasks:
        if tid not in wrong:
            errors.append(f"{tid}: no wrong completion")
    return tasks, wrong


SANITIZE = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-g"]
SAN_EXIT = 86  # exit code a sanitizer report produces, told apart from a test failure
SAN_ENV = dict(os.environ, ASAN_OPTIONS=f"exitcode={SAN_EXIT}:detect_leaks=1",
               UBSAN_OPTIONS=f"exitcode={SAN_EXIT}:print_stacktrace=1")


def build_and_run(tmp, tid, kind, lang, source, timeout, extra=(), env=None):
    """Compile and run one program; return (status, detail, warnings)."""
    pre, post, ext = COMPILERS[lang]
    pre = pre + list(extra)
    stem = os.path.join(tmp, tid.replace("/", "_") + "_" + kind)
    src, exe = stem + ext, stem + ".out"
    with open(src, "w", encoding="utf-8") as f:
        f.write(source)
    try:
        cp = subprocess.run(pre + [src, "-o", exe] + post, capture_output=True,
                            text=True, timeout=120)
    except subprocess.TimeoutExpired:
        return "compile-timeout", "", ""
    warnings = cp.stderr.strip()
    if cp.returncode != 0:
        return "compile-error", warnings, warnings
    try:
        rp = subprocess.run([exe], capture_output=True, text=True, timeout=timeout,
                            stdin=subprocess.DEVNULL, cwd=tmp, env=env)
    except subprocess.TimeoutExpired:
        return "timeout", "", warnings
    if rp.returncode == 0:
        return "pass", "", warnings
    if rp.returncode < 0:
        return "signal", f"killed by signal {-rp.returncode}", warnings
    if env is SAN_ENV and rp.returncode == SAN_EXIT:
        return "sanitizer-error", (rp.stderr.strip().splitlines() or [""])[0], warnings
    return "fail", (rp.stderr.strip().splitlines() or [""])[-1], warnings


def check_task(tmp, p, wrong_comp, timeout, sanitize=False):
    tid, lang = p["task_id"], p["language"]
    out = []
    canon = p["prompt"] + p["canonical_solution"] + "\n" + p["test"]
    st, detail, warn = build_and_run(tmp, tid, "canonical", lang, canon, timeout)
    if st != "pass":
        out.append(f"{tid}: canonical {st}: {detail}")
    elif warn:
        out.append(f"{tid}: canonical has compiler warnings:\n{warn}")
    if sanitize:
        st, detail, warn = build_and_run(tmp, tid, "canonical_san", lang, canon,
                                         max(timeout, 30.0), SANITIZE, SAN_ENV)
        if st != "pass":
            out.append(f"{tid}: canonical under ASan/UBSan {st}: {detail}")
    notes = []
    wsrc = p["prompt"] + wrong_comp + "\n" + p["test"]
    st, detail, warn = build_and_run(tmp, tid, "wrong", lang, wsrc, timeout)
    if st != "fail":
        out.append(f"{tid}: wrong completion {st} (want a clean non-zero exit) {detail}")
    if warn and st != "compile-error":
        notes.append(f"{tid}: note: wrong completion has compiler warnings")
    if sanitize:
        st2, d2, _ = build_and_run(tmp, tid, "wrong_san", lang, wsrc,
                                   max(timeout, 30.0), SANITIZE, SAN_ENV)
        if st2 != "fail":
            out.append(f"{tid}: wrong completion under ASan/UBSan {st2} "
                       f"(want a plain test failure, not undefined behaviour) {d2}")
    return tid, out, notes, detail if st == "fail" else ""


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=1, help="parallel tasks (default 1)")
    ap.add_argument("--timeout", type=float, default=5.0, help="run limit in seconds")
    ap.add_argument("--only", nargs="*", help="check only these task_ids")
    ap.add_argument("--sanitize", action="store_true",
                    help="also run both programs under ASan/UBSan")
    ap.add_argument("-v", "--verbose", action="store_true",
                    help="print how each wrong completion failed")
    args = ap.parse_args()

    errors = []
    problems = load_jsonl(PROBLEMS, errors)
    wrongs = load_jsonl(WRONG, errors)
    tasks, wrong = validate(problems, wrongs, errors)

    todo = [t for t in tasks if t in wrong and (not args.only or t in args.only)]
    results = {}
    with tempfile.TemporaryDirectory(prefix="tm_problems_") as tmp:
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as ex:
            futs = [ex.submit(check_task, tmp, tasks[t], wrong[t], args.timeout,
                              args.sanitize) for t in todo]
            for fut in concurrent.futures.as_completed(futs):
                tid, out, notes, detail = fut.result()
                results[tid] = (out, notes, detail)

    failed = 0
    for tid in todo:
        out, notes, detail = results[tid]
        for line in out + notes:
            print(line)
        if args.verbose and detail:
            print(f"{tid}: wrong completion fails with: {detail}")
        failed += bool(out)
    for e in errors:
        print("error:", e)

    by_lang = {}
    by_cat = {}
    for t in tasks.values():
        by_lang[t["language"]] = by_lang.get(t["language"], 0) + 1
        cat = t.get("category", "?")
        by_cat[cat] = by_cat.get(cat, 0) + 1
    print(f"tasks: {len(tasks)} ("
          + ", ".join(f"{k}: {v}" for k, v in sorted(by_lang.items())) + ")")
    print("categories: " + ", ".join(f"{k}: {v}" for k, v in sorted(by_cat.items())))
    print(f"checked: {len(todo)}, ok: {len(todo) - failed}, failed: {failed}, "
          f"format errors: {len(errors)}")
    return 1 if failed or errors else 0


if __name__ == "__main__":
    sys.exit(main())
