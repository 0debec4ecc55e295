#!/usr/bin/env python3
"""BPE vocabulary training: `tokenmill tokenize train-vocab` against Hugging Face tokenizers
(BpeTrainer) and sentencepiece (model_type=bpe) on the same text, at the same vocabulary size.

Usage: bench/venv/bin/python bench/tok_train_bench.py [--vocab 32768 [--vocab 8192]]
           [--mb 120] [--runs 2] [--tokenmill build/tokenmill] [--no-spm]

Inputs (built on first use under bench/out/, not timed; delete them to rebuild):
  train_text.jsonl  the first --mb MB (10^6 bytes of UTF-8 text) of documents of
                    bench/out/text.jsonl.zst, as {"text": ...} lines, for `tokenmill ingest`
  train_text.txt    the same documents' text, one after the other, each ending in a newline,
                    for the peers (both read files line by line)
  heldout.jsonl     the next 8 MB of documents, for the quality check only
  train-work/       a workdir with train_text.jsonl ingested; trained with --require none
                    (filter and dedup are not part of this measurement)

Each training run is a child process under /usr/bin/time: wall time, CPU time (user + system)
and peak RSS per run; the best wall time of --runs is kept (all are in the JSON). Peers run
inside a Python child (this script with an internal mode), so their numbers include starting
Python and importing the library (well under a second). tokenmill's RSS includes the pages of
the store's memory map it read (about the size of the text). After the timed runs, each
vocabulary encodes the held-out documents (tokenmill's through tiktoken, loaded from the
.tiktoken file with the cl100k pattern), and bytes per token is reported. Results: a table on
stdout, bench/out/tok_train_bench.json."""
import argparse
import base64
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
OUT = os.path.join(HERE, "out")

# tiktoken's cl100k_base pattern (tiktoken_ext/openai_public.py), which tokenmill's
# --pattern cl100k implements for PCRE2; the peers get it as a Split pre-tokenizer.
CL100K = (r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++"""
          r"""[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s""")
EOT = "<|endoftext|>"
HELDOUT_MB = 8


def prep(mb, tokenmill):
    train_jsonl = os.path.join(OUT, "train_text.jsonl")
    train_txt = os.path.join(OUT, "train_text.txt")
    heldout = os.path.join(OUT, "heldout.jsonl")
    work = os.path.join(OUT, "train-work")
    meta = os.path.join(OUT, "train_text.meta.json")
    want = {"mb": mb, "prep_version": 2}
    if not (os.path.exists(meta) and json.load(open(meta)) == want and os.path.isdir(work)):
        import zstandard
        src = os.path.join(OUT, "text.jsonl.zst")
        if not os.path.exists(src):
            sys.exit(f"{src} is missing: run bench/ingest_bench.sh --inputs-only first")
        limit, hlimit = mb * 10**6, HELDOUT_MB * 10**6
        n = hn = 0
        nbytes = hbytes = 0
        with open(src, "rb") as fz, open(train_jsonl, "w") as fj, open(train_txt, "w") as ft, \
                open(heldout, "w") as fh:
            reader = zstandard.ZstdDecompressor().stream_reader(fz)
            import io
            for line in io.TextIOWrapper(reader, encoding="utf-8"):
                text = json.loads(line)["text"]
                size = len(text.encode())
                if nbytes < limit:
                    fj.write(json.dumps({"text": text}) + "\n")
                    # ingest stores LF line ends; the peers get the same text
                    t = text.replace("\r\n", "\n")
                    ft.write(t if t.endswith("\n") else t + "\n")
                    nbytes += size
                    n += 1
                elif hbytes < hlimit:
                    fh.write(json.dumps({"text": text}) + "\n")
                    hbytes += size
                    hn += 1
                else:
                    break
        print(f"prep: {n} documents, {nbytes / 1e6:.1f} MB to train on; {hn} documents, "
              f"{hbytes / 1e6:.1f} MB held out", flush=True)
        subprocess.run(["rm", "-rf", work], check=True)
        subprocess.run([tokenmill, "ingest", "--workdir", work, "--no-progress", "--quiet",
                        train_jsonl], check=True)
        json.dump(want, open(meta, "w"))
    return train_txt, heldout, work


def measure(cmd, env=None):
    """Runs cmd under /usr/bin/time; returns (wall seconds, peak RSS MB, CPU seconds).
    /usr/bin/time reports its own child's maximum RSS; a child forked straight from this
    (large) Python process would count the parent's pages it shares until exec."""
    tfile = os.path.join(OUT, "tok_train_bench.time")
    t0 = time.perf_counter()
    p = subprocess.run(["/usr/bin/time", "-o", tfile, "-f", "%M %U %S"] + cmd,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        sys.exit(f"failed ({p.returncode}): {' '.join(cmd)}\n"
                 f"{p.stdout.decode(errors='replace')[-3000:]}")
    rss_kb, user, system = open(tfile).read().split()[-3:]
    return wall, int(rss_kb) / 1024, float(user) + float(system)


# ---- Peers, run as children of this script -------------------------------------------------


def run_hf(vocab, text, out_dir):
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    tok = Tokenizer(models.BPE())
    # The cl100k split, then bytes mapped to printable characters (GPT-2's byte-level trick).
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(CL100K), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    # vocab_size counts the special token: vocab + 1 gives `vocab` mergeable tokens, as
    # tokenmill's --vocab-size (the 256 bytes included, <|endoftext|> on top).
    trainer = trainers.BpeTrainer(vocab_size=vocab + 1, min_frequency=2, show_progress=False,
                                  special_tokens=[EOT],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train([text], trainer)
    tok.save(os.path.join(out_dir, f"hf-{vocab}.json"))


def run_spm(vocab, text, out_dir, sentences):
    import sentencepiece as spm
    spm.SentencePieceTrainer.train(
        input=text, model_prefix=os.path.join(out_dir, f"spm-{vocab}"), vocab_size=vocab,
        model_type="bpe", byte_fallback=True, character_coverage=0.9995,
        # Lossless, like the byte-level tools: no NFKC, no whitespace collapsing, so that
        # bytes per token measures the same bytes for all three.
        normalization_rule_name="identity", remove_extra_whitespaces=False,
        input_sentence_size=sentences, shuffle_input_sentence=True,
        max_sentence_length=1 << 16, num_threads=os.cpu_count(), minloglevel=2,
        user_defined_symbols=[], control_symbols=[EOT])


# ---- Quality --------------------------------------------------------------------------------


def heldout_texts(path):
    return [json.loads(l)["text"] for l in open(path)]


def bytes_per_token(texts, kind, path):
    nbytes = sum(len(t.encode()) for t in texts)
    if kind == "tokenmill":
        import tiktoken
        ranks = {}
        for line in open(path, "rb"):
            b, r = line.split()
            ranks[base64.b64decode(b)] = int(r)
        enc = tiktoken.Encoding("trained", pat_str=CL100K, mergeable_ranks=ranks,
                                special_tokens={EOT: len(ranks)})
        ntok = sum(len(x) for x in enc.encode_ordinary_batch(texts, num_threads=2))
    elif kind == "hf":
        from tokenizers import Tokenizer
        tok = Tokenizer.from_file(path)
        ntok = sum(len(e.ids) for e in tok.encode_batch(texts))
    else:
        import sentencepiece as spm
        sp = spm.SentencePieceProcessor(model_file=path)
        ntok = sum(len(x) for x in sp.encode(texts))
    return nbytes / ntok


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "_hf":
        return run_hf(int(sys.argv[2]), sys.argv[3], sys.argv[4])
    if len(sys.argv) > 1 and sys.argv[1] == "_spm":
        return run_spm(int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5]))
    ap = argparse.ArgumentParser()
    ap.add_argument("--vocab", type=int, action="append")
    ap.add_argument("--mb", type=int, default=120)
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--tokenmill", default=os.path.join(ROOT, "build", "tokenmill"))
    ap.add_argument("--no-spm", action="store_true")
    ap.add_argument("--spm-sentences", type=int, default=0,
                    help="sentencepiece input_sentence_size (lines sampled; 0: all)")
    args = ap.parse_args()
    vocabs = args.vocab or [32768]
    text, heldout, work = prep(args.mb, args.tokenmill)
    text_mb = os.path.getsize(text) / 1e6
    held = heldout_texts(heldout)
    runs = []
    me = [sys.executable, os.path.abspath(__file__)]
    for vocab in vocabs:
        tools = [("tokenmill -j1", "tokenmill", 1), ("tokenmill -j2", "tokenmill", 2),
                 ("hf tokenizers", "hf", 2)]
        if not args.no_spm:
            tools.append(("sentencepiece", "spm", 2))
        for label, kind, threads in tools:
            best = None
            walls = []
            for _ in range(args.runs):
                if kind == "tokenmill":
                    path = os.path.join(OUT, f"tm-{vocab}-j{threads}.tiktoken")
                    stats = os.path.join(OUT, f"tm-{vocab}-j{threads}.stats.json")
                    cmd = [args.tokenmill, "tokenize", "train-vocab", "--workdir", work,
                           "--require", "none", "--vocab-size", str(vocab), "--out", path,
                           "--threads", str(threads), "--no-progress", "--stats-json", stats]
                    env = None
                elif kind == "hf":
                    path = os.path.join(OUT, f"hf-{vocab}.json")
                    cmd = me + ["_hf", str(vocab), text, OUT]
                    env = dict(os.environ, RAYON_NUM_THREADS=str(threads))
                else:
                    path = os.path.join(OUT, f"spm-{vocab}.model")
                    cmd = me + ["_spm", str(vocab), text, OUT, str(args.spm_sentences)]
                    env = None
                wall, rss, cpu = measure(cmd, env)
                print(f"  {label:15} vocab {vocab}: {wall:7.2f} s wall {cpu:7.2f} s CPU "
                      f"{rss:8.0f} MB", flush=True)
                walls.append(wall)
                if best is None or wall < best["seconds"]:
                    best = {"tool": label, "vocab": vocab, "threads": threads, "seconds": wall,
                            "cpu_seconds": cpu, "peak_rss_mb": rss, "file": path}
                    if kind == "tokenmill":
                        st = json.load(open(stats))["train_vocab"]
                        best["seconds_by_phase"] = st["seconds"]
                        best["unique_pretokens"] = st["unique_pretokens"]
                        best["mergeable_tokens"] = st["mergeable_tokens"]
            best["all_seconds"] = walls
            best["heldout_bytes_per_token"] = bytes_per_token(held, kind, path)
            runs.append(best)
    # Same merges whatever the thread count.
    for vocab in vocabs:
        a = open(os.path.join(OUT, f"tm-{vocab}-j1.tiktoken"), "rb").read()
        b = open(os.path.join(OUT, f"tm-{vocab}-j2.tiktoken"), "rb").read()
        if a != b:
            sys.exit(f"vocab {vocab}: -j1 and -j2 files differ")
    print(f"\n{text_mb:.1f} MB of text, held-out {sum(len(t.encode()) for t in held) / 1e6:.1f} "
          f"MB; best of {args.runs}")
    print(f"{'tool':15} {'vocab':>6} {'seconds':>8} {'CPU s':>7} {'vs HF':>6} "
          f"{'peak RSS MB':>12} {'held-out bytes/token':>21}")
    for r in runs:
        hf = next(x for x in runs if x["vocab"] == r["vocab"] and x["tool"] == "hf tokenizers")
        r["speedup_vs_hf"] = hf["seconds"] / r["seconds"]
        print(f"{r['tool']:15} {r['vocab']:6} {r['seconds']:8.2f} {r['cpu_seconds']:7.2f} "
              f"{r['speedup_vs_hf']:5.1f}x {r['peak_rss_mb']:12.0f} "
              f"{r['heldout_bytes_per_token']:21.3f}")
    goal = all(r["speedup_vs_hf"] >= 3 for r in runs if r["tool"] == "tokenmill -j2")
    print(f"goal (tokenmill -j2 >= 3x faster than HF at every vocabulary size): "
          f"{'met' if goal else 'NOT met'}")
    import tokenizers
    res = {"date": time.strftime("%Y-%m-%dT%H:%M:%S"), "text_mb": text_mb, "runs_per_tool":
           args.runs, "cpus": os.cpu_count(), "tokenizers_version": tokenizers.__version__,
           "results": runs, "goal_met": goal}
    if not args.no_spm:
        import sentencepiece
        res["sentencepiece_version"] = sentencepiece.__version__
        res["spm_input_sentence_size"] = args.spm_sentences
    with open(os.path.join(OUT, "tok_train_bench.json"), "w") as f:
        json.dump(res, f, indent=2)
    return 0


sys.exit(main())
