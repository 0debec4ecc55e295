"""Summarizes bench/fp8_study.sh: the bf16 and fp8 training runs, the probe's per-role errors,
the dot-product numerics, bytes per parameter and peak RSS. Writes a JSON file and an SVG plot
(stdlib only) and prints the tables.

usage: fp8_study.py OUT JSON SVG PRECISION...
"""
import json
import math
import os
import re
import sys

TAIL = 100  # final training loss: the mean of the last TAIL steps (one step's loss is one batch)


def read_run(d):
    lines = [json.loads(l) for l in open(os.path.join(d, "metrics.jsonl"))]
    steps = [x for x in lines if "loss" in x]
    vals = [x for x in lines if "val_loss" in x]
    probes = [x for x in steps if "fp8_rel_err" in x]
    err = open(os.path.join(d, "train.err")).read()
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", err)
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", err)
    tps = sorted(x["tokens_per_s"] for x in steps if "fp8_rel_err" not in x)
    params = None
    m = re.search(r"(\d+) parameters", open(os.path.join(d, "train.err")).read())
    if m:
        params = int(m.group(1))
    return {
        "steps": [x["step"] for x in steps],
        "loss": [x["loss"] for x in steps],
        "val_steps": [x["step"] for x in vals],
        "val_loss": [x["val_loss"] for x in vals],
        "final_loss_tail_mean": sum(x["loss"] for x in steps[-TAIL:]) / min(TAIL, len(steps)),
        "final_loss": steps[-1]["loss"],
        "final_val_loss": vals[-1]["val_loss"],
        "probe": [{"step": x["step"], **x["fp8_rel_err"]} for x in probes],
        "peak_rss_mb": int(rss.group(1)) / 1024 if rss else None,
        "wall": wall.group(1) if wall else None,
        "tokens_per_s_median": tps[len(tps) // 2] if tps else None,
        "n_params": params,
    }


# Bytes per parameter of each mode, as a GPU implementation of the recipe stores them (the
# emulator itself keeps every array in FP32: see "emulator" below). FP8 weights carry one FP32
# scale per 128 x 128 block (4 / 16384 bytes per parameter).
BYTES = {
    "fp32": {"weights": 4, "gradients": 4, "optimizer": 8,
             "note": "FP32 weights, gradients, AdamW moments"},
    "bf16": {"weights": 4 + 2, "gradients": 4, "optimizer": 8,
             "note": "FP32 master + BF16 copy for the products; FP32 gradients and moments"},
    "fp8": {"weights": 4 + 1 + 4 / 16384, "gradients": 4, "optimizer": 4,
            "note": "FP32 master + FP8 copy with 128x128 block scales (Linear layers); FP32 "
                    "gradients; BF16 AdamW moments (DeepSeek-V3)"},
}
EMULATOR = {"weights": 4, "gradients": 4, "optimizer": 8,
            "note": "this CPU emulator stores FP32 arrays in every mode (BF16/FP8 values are "
                    "held in floats), so its memory does not show the savings"}


def panel(out, top, h, w, pad, series, title, fmt, xmax, ylo=None, yhi=None):
    """One line chart at vertical offset `top`: series = [(name, color, xs, ys, dashed)]."""
    ys_all = [v for _, _, _, ys, _ in series for v in ys]
    y0 = min(ys_all) if ylo is None else ylo
    y1 = max(ys_all) if yhi is None else yhi
    if y1 <= y0:
        y1 = y0 + 1
    sx = lambda s: pad + (w - 2 * pad) * s / xmax
    sy = lambda v: top + h - pad - (h - 2 * pad) * (min(max(v, y0), y1) - y0) / (y1 - y0)
    out.append(f'<text x="{w/2}" y="{top + 20}" text-anchor="middle" font-size="14">{title}</text>')
    for i in range(6):
        v = y0 + (y1 - y0) * i / 5
        out.append(f'<line x1="{pad}" x2="{w-pad}" y1="{sy(v):.1f}" y2="{sy(v):.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{pad-6}" y="{sy(v)+4:.1f}" text-anchor="end">{fmt(v)}</text>')
    for i in range(6):
        x = xmax * i / 5
        out.append(f'<text x="{sx(x):.1f}" y="{top+h-pad+16}" text-anchor="middle">{int(x)}</text>')
    out.append(f'<text x="{w/2}" y="{top+h-15}" text-anchor="middle">step</text>')
    for k, (name, color, xs, ys, dashed) in enumerate(series):
        pts = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in zip(xs, ys))
        dash = ' stroke-dasharray="5,3"' if dashed else ""
        out.append(f'<polyline fill="none" stroke="{color}" stroke-width="1.5"{dash} points="{pts}"/>')
        out.append(f'<text x="{w-pad-230}" y="{top+45+16*k}" fill="{color}">{name}</text>')


def svg(runs, path):
    w, h, pad = 760, 420, 60
    colors = {"bf16": "#1f77b4", "fp8": "#d62728", "fp32": "#2ca02c"}
    xmax = max(s for r in runs.values() for s in r["steps"])
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{2*h}" '
           f'font-family="sans-serif" font-size="12">', f'<rect width="{w}" height="{2*h}" fill="white"/>']
    series = []
    for name, r in runs.items():
        c = colors.get(name, "#555")
        series.append((f"{name} train (mean of 50 steps)", c, r["steps"], smooth(r["loss"]), False))
        series.append((f"{name} validation", c, r["val_steps"], r["val_loss"], True))
    lo = min(min(r["val_loss"] + smooth(r["loss"])) for r in runs.values())
    panel(out, 0, h, w, pad, series, "Training and validation loss, " + ", ".join(runs),
          lambda v: f"{v:.2f}", xmax, lo, lo + 2.0)
    if "bf16" in runs and "fp8" in runs:
        b, f = runs["bf16"], runs["fp8"]
        sb, sf = smooth(b["loss"], 100), smooth(f["loss"], 100)
        gap_t = [100 * (y - x) / x for x, y in zip(sb, sf)]
        gap_v = [100 * (y - x) / x for x, y in zip(b["val_loss"], f["val_loss"])]
        bound = [(0.25, "#999")]
        gs = [("fp8 vs bf16, train (mean of 100 steps)", "#d62728", b["steps"], gap_t, False),
              ("fp8 vs bf16, validation", "#9467bd", b["val_steps"], gap_v, True),
              ("+0.25% (the seed's bound)", "#999", [0, xmax], [0.25, 0.25], True),
              ("-0.25%", "#999", [0, xmax], [-0.25, -0.25], True)]
        del bound
        panel(out, h, h, w, pad, gs, "Relative loss gap, fp8 against bf16 (%)",
              lambda v: f"{v:+.2f}", xmax, -1.0, 1.0)
    out.append("</svg>")
    open(path, "w").write("\n".join(out) + "\n")


def smooth(xs, n=50):
    out, acc = [], 0.0
    for i, x in enumerate(xs):
        acc += x
        if i >= n:
            acc -= xs[i - n]
        out.append(acc / min(i + 1, n))
    return out


def main():
    out_dir, json_path, svg_path = sys.argv[1:4]
    precisions = sys.argv[4:]
    runs = {p: read_run(os.path.join(out_dir, p)) for p in precisions}
    numerics = json.load(open(os.path.join(out_dir, "numerics.json")))
    res = {"runs": runs, "numerics": numerics, "bytes_per_param": BYTES,
           "bytes_per_param_emulator": EMULATOR, "tail": TAIL}
    if "bf16" in runs and "fp8" in runs:
        b, f = runs["bf16"], runs["fp8"]
        res["gap"] = {
            "final_loss_tail_mean": (f["final_loss_tail_mean"] - b["final_loss_tail_mean"]) / b["final_loss_tail_mean"],
            "final_loss": (f["final_loss"] - b["final_loss"]) / b["final_loss"],
            "final_val_loss": (f["final_val_loss"] - b["final_val_loss"]) / b["final_val_loss"],
        }
    json.dump(res, open(json_path, "w"), indent=1)
    svg(runs, svg_path)

    print("| precision | steps | final train loss (last step) | mean of last %d | final val loss | tok/s median | peak RSS MB | wall |" % TAIL)
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for p, r in runs.items():
        print(f"| {p} | {r['steps'][-1]} | {r['final_loss']:.4f} | {r['final_loss_tail_mean']:.4f} | "
              f"{r['final_val_loss']:.4f} | {r['tokens_per_s_median']:,.0f} | {r['peak_rss_mb']:.0f} | {r['wall']} |")
    if "gap" in res:
        g = res["gap"]
        print(f"\nfp8 vs bf16, relative gap: final train loss {g['final_loss']:+.3%} (last step), "
              f"{g['final_loss_tail_mean']:+.3%} (mean of last {TAIL}); final val loss "
              f"{g['final_val_loss']:+.3%} (bound: 0.25%)")
    print("\nFP8 product vs FP32, relative error (probe), per role:")
    print("| run | step | fprop | dgrad | wgrad |")
    print("|---|---:|---:|---:|---:|")
    for p, r in runs.items():
        for x in r["probe"]:
            print(f"| {p} | {x['step']} | {x['fprop']:.4f} | {x['dgrad']:.4f} | {x['wgrad']:.4f} |")
    print("\nK-long dot products of E4M3 values, mean (max) relative error:")
    print("| inputs | K | promote every 128 | no promotion | ideal FP32 |")
    print("|---|---:|---|---|---|")
    rows = {}
    for x in numerics["results"]:
        rows.setdefault((x["inputs"], x["K"]), {})[x["accumulator"]] = x
    for (inp, K), d in rows.items():
        cell = lambda a: f"{d[a]['mean_rel_err']:.2e} ({d[a]['max_rel_err']:.2e})"
        print(f"| {inp} | {K} | {cell('promote128')} | {cell('no_promotion')} | {cell('ideal_fp32')} |")
    print("\nBytes per parameter (GPU layout of the recipe):")
    print("| mode | weights | gradients | optimizer | total |")
    print("|---|---:|---:|---:|---:|")
    for m, b in BYTES.items():
        print(f"| {m} | {b['weights']:.4g} | {b['gradients']} | {b['optimizer']} | {b['weights'] + b['gradients'] + b['optimizer']:.4g} |")


if __name__ == "__main__":
    main()
