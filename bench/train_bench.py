#!/usr/bin/env python3
"""Helpers of bench/train_bench.sh (stdlib only).

  train_bench.py llmc-convert DIR
      Rewrites what /work/shared/bench/llmc_inputs.py wrote in DIR into the file formats of the
      train_gpt2.c revision being timed, when that revision is the older one (checkpoint
      version 1: header int32[256] = {20240326, 1, maxT, V, L, NH, C, ...} and wte of V rows, not
      the padded Vp; token files data/tiny_shakespeare_{train,val}.bin as raw int32 without a
      header). The weights and token ids are the same numbers; only the layout changes.
  train_bench.py llmc-run DIR STEPS LOG
      Runs ./train_gpt2 in DIR (its main hard-codes B=4, T=64), copies stdout to LOG and stops it
      after the line of step STEPS, so the sampling at step 20 is never reached.
  train_bench.py docs CORPORA OUT.jsonl
      Writes the training text as JSONL documents {"id", "text", "source"}: every WikiText-2
      article of test.txt and valid.txt (split at its " = Title = " lines) and tiny Shakespeare
      in pieces of about 5000 characters (cut at blank lines), so tokenize's validation split
      (whole documents) holds both sources, like the training split.
  train_bench.py summarize OUTDIR [JSON]
      Reads the logs and metrics under OUTDIR (see train_bench.sh), prints the tables and writes
      JSON (default OUTDIR/../train_bench.json).
"""
import glob, json, os, re, statistics, struct, subprocess, sys, time
from array import array

WARMUP = 2  # steps skipped at the start of every timed run (lazy allocation, cold caches)


def llmc_convert(d):
    p = os.path.join(d, 'gpt2_124M.bin')
    b = open(p, 'rb').read()
    h = list(struct.unpack('<256i', b[:1024]))
    if h[1] == 1:
        return
    maxT, V, L, NH, C, Vp = h[2:8]
    body = b[1024:]
    h[1] = 1
    with open(p, 'wb') as f:
        f.write(struct.pack('<256i', *h))
        f.write(body[:V * C * 4])
        f.write(body[Vp * C * 4:])
    os.makedirs(os.path.join(d, 'data'), exist_ok=True)
    for n in ('train', 'val'):
        raw = open(os.path.join(d, f'dev/data/tinyshakespeare/tiny_shakespeare_{n}.bin'), 'rb').read()
        ids = array('H')
        ids.frombytes(raw[1024:])
        with open(os.path.join(d, f'data/tiny_shakespeare_{n}.bin'), 'wb') as f:
            array('i', ids).tofile(f)


def docs(corpora, out):
    n = 0
    with open(out, 'w') as f:
        for name in ('test', 'valid'):
            art = []
            for line in open(os.path.join(corpora, 'wikitext-2', name + '.txt'), encoding='utf-8'):
                if re.match(r'^ = [^=].* = $', line.rstrip('\n')) and ''.join(art).strip():
                    f.write(json.dumps({'id': f'wt2-{name}-{n}', 'text': ''.join(art).strip(), 'source': 'wikitext-2'}) + '\n')
                    n += 1
                    art = []
                art.append(line)
            if art:
                f.write(json.dumps({'id': f'wt2-{name}-{n}', 'text': ''.join(art).strip(), 'source': 'wikitext-2'}) + '\n')
                n += 1
        piece = ''
        for para in open(os.path.join(corpora, 'tinyshakespeare', 'input.txt'), encoding='utf-8').read().split('\n\n'):
            piece += para + '\n\n'
            if len(piece) >= 5000:
                f.write(json.dumps({'id': f'ts-{n}', 'text': piece.strip(), 'source': 'tinyshakespeare'}) + '\n')
                n += 1
                piece = ''
        if piece.strip():
            f.write(json.dumps({'id': f'ts-{n}', 'text': piece.strip(), 'source': 'tinyshakespeare'}) + '\n')
            n += 1
    print(f'{out}: {n} documents')


def llmc_run(d, steps, log):
    pat = re.compile(r'^step (\d+): train loss \S+ \(took ([0-9.]+) ms\)')
    with open(log, 'w') as out:
        p = subprocess.Popen(['stdbuf', '-oL', './train_gpt2'],  # line-buffered: stop right after step STEPS
                              cwd=d, stdout=subprocess.PIPE, text=True, bufsize=1)
        try:
            for line in p.stdout:
                out.write(line)
                m = pat.match(line)
                if m and int(m.group(1)) >= steps:
                    break
        finally:
            p.kill()
            p.wait()


def med(xs):
    return statistics.median(xs) if xs else float('nan')


def llmc_tps(log, B=4, T=64):
    ms = [float(m.group(2)) for m in re.finditer(r'^step (\d+): train loss \S+ \(took ([0-9.]+) ms\)',
                                                 open(log).read(), re.M)]
    tps = [B * T / (x / 1000) for x in ms[WARMUP:]]
    return tps


def metrics(path):
    steps, vals = [], []
    for line in open(path):
        d = json.loads(line)
        (steps if 'loss' in d else vals).append(d)
    return steps, vals


def ini_model(path):
    m, sec = {}, None
    for line in open(path):
        line = line.strip()
        if line.startswith('['):
            sec = line.strip('[]')
        elif '=' in line and sec == 'model':
            k, v = (x.strip() for x in line.split('=', 1))
            m[k] = v
    return m


def flops_per_token(kind, L, D, V, F=None):
    """6 x the weights that take part in a matrix product per token (forward + backward); the
    embedding lookup is not a product, llm.c's tied head is. Attention's T x T products are left
    out (under 1% at T=64 here)."""
    if kind == 'llmc':
        n = L * (3 * D * D + D * D + 4 * D * D * 2) + V * D
    else:  # tokenmill: q, k, v, o (n_kv_heads = n_heads) + SwiGLU (3 matrices) + untied head
        n = L * (4 * D * D + 3 * D * F) + V * D
    return 6 * n, n


def fmt(x, nd=0):
    return f'{x:,.{nd}f}'


def summarize(outdir, json_path=None):
    res = {'date': time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime()), 'warmup_steps_skipped': WARMUP}
    cfg = json.load(open(os.path.join(outdir, 'bench_env.json')))
    res.update(cfg)
    L, D, V = cfg['layers'], cfg['d_model'], cfg['vocab']
    # ---- dense ----
    dense = {}
    for log in sorted(glob.glob(os.path.join(outdir, 'dense', 'round*', 'llmc.log'))):
        dense.setdefault('llm.c', []).append(llmc_tps(log))
    for mpath in sorted(glob.glob(os.path.join(outdir, 'dense', 'round*', 'tm-*.jsonl'))):
        name = 'tokenmill ' + os.path.basename(mpath)[3:-6]
        steps, _ = metrics(mpath)
        dense.setdefault(name, []).append([d['tokens_per_s'] for d in steps[WARMUP:]])
    rows = []
    base = None
    for name, runs in dense.items():
        per_run = [med(r) for r in runs]
        allm = med([x for r in runs for x in r])
        if name == 'llm.c':
            fpt, n = flops_per_token('llmc', L, D, V)
            base = per_run
        else:
            F = int(name.split('dff')[1])
            fpt, n = flops_per_token('tm', L, D, V, F)
        rows.append({'trainer': name, 'matmul_params': n, 'flops_per_token': fpt,
                     'tokens_per_s_median_per_round': per_run, 'tokens_per_s_median_all': allm,
                     'steps_per_round': [len(r) for r in runs],
                     'gflops_per_s_median_all': fpt * allm / 1e9})
    for r in rows:
        if base and r['trainer'] != 'llm.c':
            ratios = [a / b for a, b in zip(r['tokens_per_s_median_per_round'], base)]
            r['speedup_vs_llmc_per_round'] = ratios
            bl = next(x for x in rows if x['trainer'] == 'llm.c')
            r['speedup_vs_llmc_median_all'] = r['tokens_per_s_median_all'] / bl['tokens_per_s_median_all']
            r['flops_speedup_vs_llmc_median_all'] = r['gflops_per_s_median_all'] / bl['gflops_per_s_median_all']
    res['dense'] = rows
    print(f"\nDense, L={L} D={D} heads={cfg['heads']} V={V} T={cfg['T']} B={cfg['B']}, "
          f"{cfg['threads']} threads, median tokens/s after {WARMUP} warm-up steps")
    print(f"| trainer | matmul params | tok/s per round | tok/s median (all rounds) | x llm.c per round | x llm.c | GFLOP/s | x llm.c (FLOPs) |")
    print("|---|---:|---|---:|---|---:|---:|---:|")
    for r in rows:
        pr = ', '.join(fmt(x) for x in r['tokens_per_s_median_per_round'])
        sp = ', '.join(f'{x:.2f}' for x in r.get('speedup_vs_llmc_per_round', []))
        print(f"| {r['trainer']} | {r['matmul_params']/1e6:.2f}M | {pr} | {fmt(r['tokens_per_s_median_all'])} | "
              f"{sp or '-'} | {r.get('speedup_vs_llmc_median_all', 1):.2f} | {r['gflops_per_s_median_all']:.1f} | "
              f"{r.get('flops_speedup_vs_llmc_median_all', 1):.2f} |")
    # ---- MoE ----
    moe = []
    for mpath in sorted(glob.glob(os.path.join(outdir, 'moe', 'gamma-*', 'metrics.jsonl'))):
        gamma = os.path.basename(os.path.dirname(mpath))[6:]
        steps, vals = metrics(mpath)
        tps = [d['tokens_per_s'] for d in steps[WARMUP:]]
        curve = []
        vmap = {d['step']: d['val_loss'] for d in vals}
        for d in steps:
            if d['step'] % 50 == 0 or d['step'] == 1:
                row = {'step': d['step'], 'loss': d['loss'], 'loss_mtp': d['loss_mtp'],
                       'val_loss': vmap.get(d['step']), 'moe': d['moe']}
                curve.append(row)
        # mean over 50-step windows of load_cv and max/min per layer
        windows = []
        for lo in range(0, len(steps), 50):
            w = steps[lo:lo + 50]
            if not w:
                continue
            per = {}
            for d in w:
                for m in d['moe']:
                    e = per.setdefault(m['layer'], {'cv': [], 'max': [], 'min': []})
                    e['cv'].append(m['load_cv']); e['max'].append(m['load_max']); e['min'].append(m['load_min'])
            windows.append({'steps': f"{w[0]['step']}-{w[-1]['step']}",
                            'layers': {str(k): {'load_cv_mean': statistics.mean(v['cv']),
                                                'load_max_mean': statistics.mean(v['max']),
                                                'load_min_mean': statistics.mean(v['min'])} for k, v in per.items()}})
        moe.append({'bias_gamma': gamma, 'tokens_per_s_median': med(tps),
                    'tokens_per_s_p10_p90': [sorted(tps)[len(tps) // 10], sorted(tps)[len(tps) * 9 // 10]] if tps else None,
                    'val_loss': [[d['step'], d['val_loss']] for d in vals],
                    'curve': curve, 'load_windows': windows})
    res['moe'] = moe
    if moe:
        res['moe_config'] = ini_model(os.path.join(outdir, 'moe', 'gamma-' + moe[0]['bias_gamma'], 'cfg.ini'))
        print(f"\nMoE: {res['moe_config']}")
        print("| bias_gamma | tok/s median | tok/s p10-p90 | final loss | final val_loss |")
        print("|---|---:|---|---:|---:|")
        for r in moe:
            p = r['tokens_per_s_p10_p90'] or [float('nan')] * 2
            print(f"| {r['bias_gamma']} | {fmt(r['tokens_per_s_median'])} | {fmt(p[0])}-{fmt(p[1])} | "
                  f"{r['curve'][-1]['loss']:.3f} | {r['val_loss'][-1][1]:.3f} |")
        print("\nLoss curve (train loss at the step / val loss at the step)")
        steps_ = [c['step'] for c in moe[0]['curve']]
        print("| step | " + " | ".join(f"gamma {r['bias_gamma']} train / val" for r in moe) + " |")
        print("|---:|" + "---|" * len(moe))
        for i, s in enumerate(steps_):
            cells = []
            for r in moe:
                c = r['curve'][i] if i < len(r['curve']) else None
                v = c and c['val_loss']
                cells.append(f"{c['loss']:.3f} / {v:.3f}" if c and v is not None else (f"{c['loss']:.3f} / -" if c else '-'))
            print(f"| {s} | " + " | ".join(cells) + " |")
        print("\nExpert load per MoE layer, mean over each 50-step window: load_cv, and load_max/load_min "
              "(tokens routed to the busiest / idlest of the 8 routed experts, B*T*top_k = "
              f"{int(res['moe_config'].get('top_k', 2)) * 8 * 64} assignments per step)")
        layers = sorted(moe[0]['load_windows'][0]['layers'])
        print("| steps | " + " | ".join(f"g={r['bias_gamma']} L{l} cv (max/min)" for r in moe for l in layers) + " |")
        print("|---|" + "---|" * (len(moe) * len(layers)))
        for i, w in enumerate(moe[0]['load_windows']):
            cells = []
            for r in moe:
                ww = r['load_windows'][i]
                for l in layers:
                    e = ww['layers'][l]
                    cells.append(f"{e['load_cv_mean']:.2f} ({e['load_max_mean']:.0f}/{e['load_min_mean']:.0f})")
            print(f"| {w['steps']} | " + " | ".join(cells) + " |")
    path = json_path or os.path.join(os.path.dirname(os.path.abspath(outdir)), 'train_bench.json')
    json.dump(res, open(path, 'w'), indent=1)
    print(f"\nwrote {path}")


if __name__ == '__main__':
    a = sys.argv[1:]
    if a[:1] == ['llmc-convert']:
        llmc_convert(a[1])
    elif a[:1] == ['docs']:
        docs(a[1], a[2])
    elif a[:1] == ['llmc-run']:
        llmc_run(a[1], int(a[2]), a[3])
    elif a[:1] == ['summarize']:
        summarize(a[1], a[2] if len(a) > 2 else None)
    else:
        sys.exit(__doc__)
