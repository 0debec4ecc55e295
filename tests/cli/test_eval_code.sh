#!/usr/bin/env bash
# tokenmill eval code: the project's problem set and the harness's classification.
# - every canonical solution of eval/problems/tokenmill_c.jsonl passes (C and C++), and every
#   planted wrong completion fails as wrong_answer;
# - one problem with a sample of each kind is classified: correct -> passed, a syntax error ->
#   compile_error, a crash -> runtime_error, a failing test -> wrong_answer, an infinite loop ->
#   timeout, a socket -> sandbox_violation (seccomp); results.jsonl keeps the order of the
#   samples, the compiler's and the program's output (capped);
# - pass@k: 1 correct of 6 samples gives pass@1 = 1/6, pass@2 = 1/3, pass@6 = 1 (Chen et al.);
# - the results do not depend on the number of workers (-j 1 and -j 3 give the same outcomes);
# - completions generated with a checkpoint (a tiny model trained two steps on license texts,
#   context 512): n = 2 per task, non-empty, the same for the same seed, pass@1 and pass@2
#   reported;
# - a sample naming an unknown task, and a problems line without a test, are refused with the
#   file and line.
source "$(dirname "$0")/lib.sh"
P="$TM_SRC/eval/problems"

tm eval code --problems "$P/tokenmill_c.jsonl" --canonical --out "$T/canon" -j 2
expect_rc 0 "canonical solutions"
python3 - "$T/canon/summary.json" "$P/tokenmill_c.jsonl" <<'PY' || fail "a canonical solution does not pass"
import json, sys
s = json.load(open(sys.argv[1]))
n = sum(1 for l in open(sys.argv[2]) if l.strip())
langs = {json.loads(l)["language"] for l in open(sys.argv[2]) if l.strip()}
assert langs == {"c", "cpp"}, langs
assert s["tasks"] == n and s["samples"] == n and s["outcomes"]["passed"] == n, s
assert s["pass_at_k"]["1"] == 1.0
PY
ok
tm eval code --problems "$P/tokenmill_c.jsonl" --samples "$P/tokenmill_c_wrong.jsonl" --out "$T/wrong" -j 2
expect_rc 0 "wrong completions"
python3 - "$T/wrong/summary.json" <<'PY' || fail "a wrong completion passes"
import json, sys
s = json.load(open(sys.argv[1]))
assert s["outcomes"]["wrong_answer"] == s["samples"] > 40, s
assert s["pass_at_k"]["1"] == 0.0
PY
ok

# One problem, one sample of each outcome.
python3 - "$T" <<'PY'
import json, sys
d = sys.argv[1]
prompt = "#include <stdio.h>\n#include <stdlib.h>\n#include <string.h>\n#include <unistd.h>\n#include <sys/socket.h>\n/* a + b */\nint add(int a, int b)\n{\n"
test = ("int main(void)\n{\n    if (add(2, 3) != 5) { fprintf(stderr, \"add(2, 3) != 5\\n\"); return 1; }\n"
        "    return add(-1, 1) == 0 ? 0 : 1;\n}\n")
json.dump({"task_id": "t/add", "prompt": prompt, "test": test, "language": "c"}, open(f"{d}/p.jsonl", "w"))
samples = [
    "    return a + b;\n}\n",                                    # passed
    "    return a + ;\n}\n",                                     # compile_error
    "    volatile int *p = 0;\n    return *p + a + b;\n}\n",     # runtime_error
    "    return a - b;\n}\n",                                    # wrong_answer
    "    for (;;)\n        ;\n}\n",                              # timeout
    "    socket(AF_INET, SOCK_STREAM, 0);\n    return a + b;\n}\n",  # sandbox_violation
]
with open(f"{d}/s.jsonl", "w") as f:
    for s in samples:
        f.write(json.dumps({"task_id": "t/add", "completion": s}) + "\n")
PY
for j in 1 3; do
  tm eval code --problems "$T/p.jsonl" --samples "$T/s.jsonl" --timeout 1 --out "$T/kinds$j" -j $j
  expect_rc 0 "one of each kind, -j $j"
done
python3 - "$T/kinds1" "$T/kinds3" <<'PY' || fail "outcomes"
import json, sys
want = ["passed", "compile_error", "runtime_error", "wrong_answer", "timeout", "sandbox_violation"]
runs = []
for d in sys.argv[1:]:
    rows = [json.loads(l) for l in open(f"{d}/results.jsonl")]
    assert [r["outcome"] for r in rows] == want, [r["outcome"] for r in rows]
    assert [r["sample"] for r in rows] == list(range(6))
    assert "error" in rows[1]["compiler_output"], rows[1]
    assert "add(2, 3) != 5" in rows[3]["program_output"], rows[3]
    assert rows[2]["signal"] == 11 and rows[5]["signal"] == 31, (rows[2], rows[5])
    s = json.load(open(f"{d}/summary.json"))
    pk = s["pass_at_k"]
    assert abs(pk["1"] - 1 / 6) < 1e-12 and abs(pk["2"] - 1 / 3) < 1e-12 and pk["6"] == 1.0, pk
    assert set(s["outcomes"].values()) == {1}, s["outcomes"]
    runs.append([(r["outcome"], r.get("exit_code"), r.get("signal")) for r in rows])
assert runs[0] == runs[1], "the worker count changed the results"
PY
ok

# Completions from a checkpoint.
W="$T/w"
license_workdir "$W" 512 GPL-3 Apache-2.0 MPL-2.0
{ tiny_moe_model 520 | sed 's/^context = 32$/context = 512/'; cat <<'INI'; } >"$T/cfg.ini"
[train]
steps = 2
batch = 2
seq = 64
warmup = 0
eval_every = 0
eval_batches = 1
INI
tm train --workdir "$W" --config "$T/cfg.ini" --no-progress
expect_rc 0 "train a tiny model"
head -n 3 "$P/tokenmill_c.jsonl" >"$T/p3.jsonl"
for r in 1 2; do
  tm eval code --problems "$T/p3.jsonl" --ckpt "$W" --vocab "$W/v.tiktoken" -n 2 --max-tokens 16 \
    --temperature 1 --seed 9 --out "$T/gen$r" --no-progress
  expect_rc 0 "eval code --ckpt, run $r"
done
python3 - "$T/gen1" "$T/gen2" <<'PY' || fail "generated completions"
import json, sys
rows = [[json.loads(l) for l in open(f"{d}/results.jsonl")] for d in sys.argv[1:]]
assert len(rows[0]) == 6 and [r["sample"] for r in rows[0]] == [0, 1] * 3
assert all(r["completion"] for r in rows[0]), "an empty completion"
assert [r["completion"] for r in rows[0]] == [r["completion"] for r in rows[1]], "seed"
s = json.load(open(f"{sys.argv[1]}/summary.json"))
assert set(s["pass_at_k"]) == {"1", "2"} and s["samples"] == 6, s
PY
ok

echo '{"task_id": "t/none", "completion": "x"}' >"$T/bad.jsonl"
tm eval code --problems "$T/p.jsonl" --samples "$T/bad.jsonl"
expect_rc 1 "unknown task"
expect_grep "$T/err" "bad.jsonl:1: task_id 't/none' is not a problem" "names the file and line"
echo '{"task_id": "x", "prompt": "int f(void)\n{\n"}' >"$T/badp.jsonl"
tm eval code --problems "$T/badp.jsonl" --canonical
expect_rc 1 "a problem without a test"
expect_grep "$T/err" "badp.jsonl:1: task_id, prompt and test must be strings" "names the line"
echo "$TEST_NAME: $CHECKS checks passed"
