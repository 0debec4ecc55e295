/* ev_report: `tokenmill report`: one workdir's record, from corpus to evaluation, as
 * report.json (results in the spirit of lm-evaluation-harness: metric, value, stderr where it
 * means something, and the settings and versions behind them), report.md (tables) and one
 * self-contained report.html with inline SVG plots.
 *
 * Sources, each optional (a section is left out, and said to be, when its source is missing):
 *   WORKDIR/stats/<command>.json   the last run of each stage (tm_opt.c keeps them)
 *   WORKDIR/tokens                 tokens per split and domain (the shards' meta records)
 *   WORKDIR/train/metrics.jsonl    the training curves
 *   WORKDIR/eval/bpb.json          `eval bpb`
 *   WORKDIR/eval/code/summary.json `eval code --workdir`
 *   --fp8-study FILE, else WORKDIR/eval/fp8_study.json   bench/fp8_study.sh's JSON */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "eval.h"
#include "tm_buf.h"
#include "tm_err.h"
#include "tm_fs.h"
#include "tm_log.h"
#include "tm_mem.h"
#include "tm_opt.h"
#include "tm_stats.h"

#ifndef TOKENMILL_VERSION
#define TOKENMILL_VERSION "0.1.0"
#endif

struct report_options {
    char *workdir;
    char *out;
    char *fp8_study;
};

#define OPT(field) offsetof(struct report_options, field)

static const struct tm_opt report_opts[] = {
    {TM_OPT_STR, "workdir", 'w', OPT(workdir), "DIR", "the workdir to report on (required)"},
    {TM_OPT_STR, "out", 'o', OPT(out), "DIR", "where the report goes (default WORKDIR/report)"},
    {TM_OPT_STR, "fp8-study", 0, OPT(fp8_study), "FILE",
     "bench/fp8_study.sh's JSON (default WORKDIR/eval/fp8_study.json when present)"},
    {TM_OPT_END},
};

/* ---- small helpers -------------------------------------------------------------------------- */

/* Text for HTML and SVG: &, <, > and " escaped. */
static void esc(struct tm_buf *b, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&':
            tm_buf_append(b, "&amp;", 5);
            break;
        case '<':
            tm_buf_append(b, "&lt;", 4);
            break;
        case '>':
            tm_buf_append(b, "&gt;", 4);
            break;
        case '"':
            tm_buf_append(b, "&quot;", 6);
            break;
        default:
            tm_buf_append(b, s, 1);
        }
    }
}

static cJSON *read_json(const char *path)
{
    if (access(path, F_OK) != 0) /* a source that is not there is reported, not logged */
        return NULL;
    char *data = NULL;
    size_t len = 0;
    if (tm_read_file(path, (size_t)256 << 20, &data, &len) != TM_OK)
        return NULL;
    cJSON *o = cJSON_ParseWithLength(data, len);
    free(data);
    if (!o)
        tm_log_warn("report: %s does not parse as JSON; left out", path);
    return o;
}

static double num(const cJSON *o, const char *path)
{
    /* path: dotted keys, "a.b.c" */
    char key[128];
    const char *p = path;
    while (o && *p) {
        size_t k = strcspn(p, ".");
        snprintf(key, sizeof(key), "%.*s", (int)k, p);
        o = cJSON_GetObjectItemCaseSensitive(o, key);
        p += k + (p[k] == '.');
    }
    return cJSON_IsNumber(o) ? o->valuedouble : NAN;
}

/* ---- SVG charts ----------------------------------------------------------------------------- */

struct series {
    const char *name, *color;
    double *x, *y;
    size_t n;
    int dashed;
};

static const char *const palette[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd",
                                      "#ff7f0e", "#8c564b", "#17becf", "#7f7f7f"};

static void nice_range(double *lo, double *hi)
{
    if (!(*hi > *lo)) {
        *hi = *lo + 1;
        *lo -= 1;
    }
    double pad = (*hi - *lo) * 0.05;
    *lo -= pad;
    *hi += pad;
}

/* The opening of a W x H chart: white background, the title centered on top. */
static void svg_open(struct tm_buf *b, double W, double H, const char *title)
{
    tm_buf_printf(b,
                  "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
                  "font-family=\"sans-serif\" font-size=\"11\">\n<rect width=\"100%%\" "
                  "height=\"100%%\" fill=\"white\"/>\n<text x=\"%.0f\" y=\"18\" "
                  "text-anchor=\"middle\" font-size=\"13\">",
                  W, H, W / 2);
    esc(b, title);
    tm_buf_printf(b, "</text>\n");
}

/* A line chart of the series, 720 x 320. */
static void svg_lines(struct tm_buf *b, const char *title, const char *xlabel,
                      const struct series *s, int ns)
{
    const double W = 720, H = 320, L = 70, R = 20, T = 34, B = 46;
    double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
    for (int i = 0; i < ns; i++)
        for (size_t k = 0; k < s[i].n; k++) {
            if (!isfinite(s[i].y[k]))
                continue;
            x0 = fmin(x0, s[i].x[k]);
            x1 = fmax(x1, s[i].x[k]);
            y0 = fmin(y0, s[i].y[k]);
            y1 = fmax(y1, s[i].y[k]);
        }
    if (!isfinite(x0))
        return;
    if (x1 <= x0)
        x1 = x0 + 1;
    nice_range(&y0, &y1);
    svg_open(b, W, H, title);
    for (int i = 0; i <= 5; i++) {
        double v = y0 + (y1 - y0) * i / 5, y = H - B - (H - T - B) * i / 5;
        tm_buf_printf(b,
                      "<line x1=\"%.0f\" x2=\"%.0f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>"
                      "<text x=\"%.0f\" y=\"%.1f\" text-anchor=\"end\">%.3g</text>\n",
                      L, W - R, y, y, L - 5, y + 4, v);
        double xv = x0 + (x1 - x0) * i / 5, xx = L + (W - L - R) * i / 5;
        tm_buf_printf(b, "<text x=\"%.1f\" y=\"%.0f\" text-anchor=\"middle\">%.6g</text>\n", xx,
                      H - B + 15, xv);
    }
    tm_buf_printf(b, "<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"middle\">", (L + W - R) / 2, H - 8);
    esc(b, xlabel);
    tm_buf_printf(b, "</text>\n");
    for (int i = 0; i < ns; i++) {
        tm_buf_printf(b, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.4\"%s points=\"",
                      s[i].color, s[i].dashed ? " stroke-dasharray=\"5,3\"" : "");
        for (size_t k = 0; k < s[i].n; k++)
            if (isfinite(s[i].y[k]))
                tm_buf_printf(b, "%.1f,%.1f ", L + (W - L - R) * (s[i].x[k] - x0) / (x1 - x0),
                              H - B - (H - T - B) * (s[i].y[k] - y0) / (y1 - y0));
        tm_buf_printf(b, "\"/>\n<text x=\"%.0f\" y=\"%.0f\" fill=\"%s\">", W - R - 220,
                      T + 14 + 14.0 * i, s[i].color);
        esc(b, s[i].name);
        tm_buf_printf(b, "</text>\n");
    }
    tm_buf_printf(b, "</svg>\n");
}

/* A horizontal bar chart: one bar per label. */
static void svg_bars(struct tm_buf *b, const char *title, const char *const *labels,
                     const double *v, int n)
{
    if (n == 0)
        return;
    const double W = 720, L = 230, R = 80, T = 34, bar = 18;
    double H = T + n * (bar + 6) + 20, mx = 0;
    for (int i = 0; i < n; i++)
        mx = fmax(mx, v[i]);
    if (mx <= 0)
        mx = 1;
    svg_open(b, W, H, title);
    for (int i = 0; i < n; i++) {
        double y = T + i * (bar + 6), w = (W - L - R) * v[i] / mx;
        tm_buf_printf(b, "<text x=\"%.0f\" y=\"%.1f\" text-anchor=\"end\">", L - 6, y + bar - 5);
        esc(b, labels[i]);
        tm_buf_printf(b,
                      "</text><rect x=\"%.0f\" y=\"%.1f\" width=\"%.1f\" height=\"%.0f\" "
                      "fill=\"%s\"/><text x=\"%.1f\" y=\"%.1f\">%.6g</text>\n",
                      L, y, w, bar, palette[0], L + w + 4, y + bar - 5, v[i]);
    }
    tm_buf_printf(b, "</svg>\n");
}

/* ---- the training curves -------------------------------------------------------------------- */

struct curves {
    size_t n, nv, cap, vcap;
    double *step, *loss, *mtp, *vstep, *val;
    int layers;    /* MoE layers seen in the metrics */
    double *cv[8]; /* load_cv per MoE layer (first 8) */
    double tps_median;
};

static void grow(double **a, size_t cap)
{
    *a = tm_xreallocarray(*a, cap, sizeof(double));
}

static int read_curves(const char *path, struct curves *c)
{
    memset(c, 0, sizeof(*c));
    FILE *f = fopen(path, "r");
    if (!f)
        return TM_ERR_NOTFOUND;
    char *line = NULL;
    size_t len = 0;
    double *tps = NULL;
    while (getline(&line, &len, f) >= 0) {
        cJSON *o = cJSON_Parse(line);
        if (!o)
            continue;
        double step = num(o, "step");
        if (isfinite(num(o, "loss"))) {
            if (c->n == c->cap) {
                c->cap = c->cap ? 2 * c->cap : 256;
                grow(&c->step, c->cap);
                grow(&c->loss, c->cap);
                grow(&c->mtp, c->cap);
                grow(&tps, c->cap);
                for (int l = 0; l < 8; l++)
                    grow(&c->cv[l], c->cap);
            }
            c->step[c->n] = step;
            c->loss[c->n] = num(o, "loss");
            c->mtp[c->n] = num(o, "loss_mtp");
            tps[c->n] = num(o, "tokens_per_s");
            const cJSON *moe = cJSON_GetObjectItemCaseSensitive(o, "moe");
            int l = 0;
            const cJSON *e;
            cJSON_ArrayForEach(e, moe)
            {
                if (l < 8)
                    c->cv[l][c->n] = num(e, "load_cv");
                l++;
            }
            for (int k = l; k < 8; k++)
                c->cv[k][c->n] = NAN;
            if (l > c->layers)
                c->layers = l < 8 ? l : 8;
            c->n++;
        }
        if (isfinite(num(o, "val_loss"))) {
            if (c->nv == c->vcap) {
                c->vcap = c->vcap ? 2 * c->vcap : 64;
                grow(&c->vstep, c->vcap);
                grow(&c->val, c->vcap);
            }
            c->vstep[c->nv] = step;
            c->val[c->nv++] = num(o, "val_loss");
        }
        cJSON_Delete(o);
    }
    free(line);
    fclose(f);
    if (c->n) {
        double *t = tm_xmalloc(c->n * sizeof(double));
        memcpy(t, tps, c->n * sizeof(double));
        for (size_t i = 1; i < c->n; i++) /* insertion sort: metrics files are small */
            for (size_t j = i; j > 0 && t[j - 1] > t[j]; j--) {
                double x = t[j];
                t[j] = t[j - 1];
                t[j - 1] = x;
            }
        c->tps_median = t[c->n / 2];
        free(t);
    }
    free(tps);
    return c->n || c->nv ? TM_OK : TM_ERR_NOTFOUND;
}

static void free_curves(struct curves *c)
{
    free(c->step);
    free(c->loss);
    free(c->mtp);
    free(c->vstep);
    free(c->val);
    for (int l = 0; l < 8; l++)
        free(c->cv[l]);
}

/* ---- sections ------------------------------------------------------------------------------- */

struct report {
    struct tm_buf md, html;
    cJSON *json, *results;
};

static void section(struct report *r, const char *title)
{
    tm_buf_printf(&r->md, "\n## %s\n\n", title);
    tm_buf_printf(&r->html, "<h2>");
    esc(&r->html, title);
    tm_buf_printf(&r->html, "</h2>\n");
}

static void missing(struct report *r, const char *what)
{
    tm_buf_printf(&r->md, "_Not available: %s._\n", what);
    tm_buf_printf(&r->html, "<p class=\"missing\">Not available: ");
    esc(&r->html, what);
    tm_buf_printf(&r->html, ".</p>\n");
}

/* A table in both formats: header cells, then rows of cells (rows * cols strings). */
static void table(struct report *r, const char *const *head, int cols, char **cells, int rows)
{
    tm_buf_printf(&r->md, "|");
    tm_buf_printf(&r->html, "<table><tr>");
    for (int c = 0; c < cols; c++) {
        tm_buf_printf(&r->md, " %s |", head[c]);
        tm_buf_printf(&r->html, "<th>");
        esc(&r->html, head[c]);
        tm_buf_printf(&r->html, "</th>");
    }
    tm_buf_printf(&r->md, "\n|");
    tm_buf_printf(&r->html, "</tr>\n");
    for (int c = 0; c < cols; c++)
        tm_buf_printf(&r->md, "%s|", c ? "---:" : "---");
    tm_buf_printf(&r->md, "\n");
    for (int i = 0; i < rows; i++) {
        tm_buf_printf(&r->md, "|");
        tm_buf_printf(&r->html, "<tr>");
        for (int c = 0; c < cols; c++) {
            const char *v = cells[i * cols + c] ? cells[i * cols + c] : "";
            tm_buf_printf(&r->md, " %s |", v);
            tm_buf_printf(&r->html, "<td>");
            esc(&r->html, v);
            tm_buf_printf(&r->html, "</td>");
        }
        tm_buf_printf(&r->md, "\n");
        tm_buf_printf(&r->html, "</tr>\n");
    }
    tm_buf_printf(&r->html, "</table>\n");
}

/* v with `decimals` digits after the point, "-" when it is missing (NaN). */
static char *fmtd(int decimals, double v)
{
    char tmp[64];
    if (!isfinite(v))
        return tm_xstrdup("-");
    snprintf(tmp, sizeof(tmp), "%.*f", decimals, v);
    return tm_xstrdup(tmp);
}

static void free_cells(char **cells, int n)
{
    for (int i = 0; i < n; i++)
        free(cells[i]);
    free(cells);
}

static void result(struct report *r, const char *task, const char *metric, double value,
                   double stderr_v)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "task", task);
    cJSON_AddStringToObject(o, "metric", metric);
    cJSON_AddNumberToObject(o, "value", value);
    if (isfinite(stderr_v))
        cJSON_AddNumberToObject(o, "stderr", stderr_v);
    else
        cJSON_AddNullToObject(o, "stderr");
    cJSON_AddItemToArray(r->results, o);
}

/* Named counts as a two-column table and a bar chart, or `empty` when there are none. */
static void counts(struct report *r, const char *what, const char *count, const char *const *names,
                   const double *v, int n, const char *empty, const char *chart)
{
    if (n == 0) {
        missing(r, empty);
        return;
    }
    char **cells = tm_xcalloc((size_t)n * 2, sizeof(char *));
    for (int i = 0; i < n; i++) {
        cells[i * 2] = tm_xstrdup(names[i]);
        cells[i * 2 + 1] = fmtd(0, v[i]);
    }
    const char *head[2] = {what, count};
    table(r, head, 2, cells, n);
    free_cells(cells, n * 2);
    svg_bars(&r->html, chart, names, v, n);
}

/* Every run of each command the corpus section sums, from WORKDIR/stats/history.jsonl (one line
 * per run), or, for a workdir from before the history, the last run's WORKDIR/stats file. */
enum { H_INGEST, H_FILTER, H_DEDUP, H_TOKENIZE, H_BPB, H_N };
static const char *const h_cmd[H_N] = {"ingest", "filter", "dedup", "tokenize", "eval bpb"};
static const char *const h_file[H_N] = {"ingest", "filter", "dedup", "tokenize", "eval-bpb"};

struct history {
    cJSON *runs[H_N][1024];
    int n[H_N];
    cJSON *order[4096]; /* every run, in order (borrowed from runs[][]) */
    int n_order;
};

static void history_load(struct history *h, const char *wd)
{
    memset(h, 0, sizeof(*h));
    char path[4200];
    snprintf(path, sizeof(path), "%s/stats/history.jsonl", wd);
    FILE *f = fopen(path, "r");
    if (f) {
        char *line = NULL;
        size_t len = 0;
        while (getline(&line, &len, f) >= 0) {
            cJSON *o = cJSON_Parse(line);
            const char *cmd = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "command"));
            int k = 0;
            while (k < H_N && (!cmd || strcmp(cmd, h_cmd[k]) != 0))
                k++;
            if (k == H_N || h->n[k] == 1024 || h->n_order == 4096) {
                cJSON_Delete(o);
                continue;
            }
            h->runs[k][h->n[k]++] = o;
            h->order[h->n_order++] = o;
        }
        free(line);
        fclose(f);
        return;
    }
    for (int k = 0; k < H_N; k++) {
        snprintf(path, sizeof(path), "%s/stats/%s.json", wd, h_file[k]);
        cJSON *o = read_json(path);
        if (o) {
            h->runs[k][h->n[k]++] = o;
            h->order[h->n_order++] = o;
        }
    }
}

static void history_free(struct history *h)
{
    for (int k = 0; k < H_N; k++)
        for (int i = 0; i < h->n[k]; i++)
            cJSON_Delete(h->runs[k][i]);
}

/* The sum of a number over the runs of one command; NaN when none has it. */
static double total(const struct history *h, int k, const char *path)
{
    double t = 0;
    int any = 0;
    for (int i = 0; i < h->n[k]; i++) {
        double x = num(h->runs[k][i], path);
        if (isfinite(x)) {
            t += x;
            any = 1;
        }
    }
    return any ? t : NAN;
}

/* Adds v to the count called name in names/vals (at most cap entries). */
static void tally(const char **names, double *vals, int *n, int cap, const char *name, double v)
{
    int k = 0;
    while (k < *n && strcmp(names[k], name) != 0)
        k++;
    if (k == *n) {
        if (*n == cap)
            return;
        names[k] = name;
        vals[k] = 0;
        (*n)++;
    }
    vals[k] += v;
}

static void corpus_section(struct report *r, const char *wd, const struct history *h)
{
    section(r, "Corpus");
    cJSON *cj = cJSON_AddObjectToObject(r->json, "corpus");
    static const char *const dom[3] = {"text", "math", "code"};
    static const char *const head[] = {"domain",        "ingested",       "kept by filter",
                                       "kept by dedup", "tokens (train)", "tokens (val)"};
    struct tok_corpus *tc = NULL;
    int have_tokens = tok_corpus_open(wd, 0, &tc) == TM_OK;
    char **cells = tm_xcalloc(4 * 6, sizeof(char *));
    for (int d = 0; d < 3; d++) {
        char key[64];
        cJSON *o = cJSON_AddObjectToObject(cj, dom[d]);
        cells[d * 6] = tm_xstrdup(dom[d]);
        snprintf(key, sizeof(key), "documents.%s", dom[d]);
        double ing = total(h, H_INGEST, key);
        snprintf(key, sizeof(key), "filter.run.domains.%s.kept", dom[d]);
        double flt = total(h, H_FILTER, key);
        snprintf(key, sizeof(key), "dedup.run.domains.%s.kept", dom[d]);
        double dd = total(h, H_DEDUP, key);
        cells[d * 6 + 1] = fmtd(0, ing);
        cells[d * 6 + 2] = fmtd(0, flt);
        cells[d * 6 + 3] = fmtd(0, dd);
        if (isfinite(ing))
            cJSON_AddNumberToObject(o, "ingested", ing);
        if (isfinite(flt))
            cJSON_AddNumberToObject(o, "kept_by_filter", flt);
        if (isfinite(dd))
            cJSON_AddNumberToObject(o, "kept_by_dedup", dd);
        double tt = have_tokens ? (double)tok_corpus_tokens(tc, TOK_SPLIT_TRAIN, d) : NAN;
        double tv = have_tokens ? (double)tok_corpus_tokens(tc, TOK_SPLIT_VAL, d) : NAN;
        cells[d * 6 + 4] = fmtd(0, tt);
        cells[d * 6 + 5] = fmtd(0, tv);
        if (have_tokens) {
            cJSON_AddNumberToObject(o, "tokens_train", tt);
            cJSON_AddNumberToObject(o, "tokens_val", tv);
        }
    }
    if (!h->n[H_INGEST] && !have_tokens) {
        missing(r, "no stage statistics (WORKDIR/stats) and no token shards");
    } else {
        tm_buf_printf(&r->md,
                      "Documents summed over every run of each stage (%d ingest runs); tokens "
                      "in the shards.\n\n",
                      h->n[H_INGEST]);
        table(r, head, 6, cells, 3);
    }
    free_cells(cells, 4 * 6);
    tok_corpus_free(tc);
    /* Filter removals per rule, over every run and domain. */
    if (h->n[H_FILTER]) {
        const char *names[64];
        double v[64];
        int n = 0;
        for (int i = 0; i < h->n[H_FILTER]; i++) {
            const cJSON *domains = cJSON_GetObjectItemCaseSensitive(
                cJSON_GetObjectItemCaseSensitive(
                    cJSON_GetObjectItemCaseSensitive(h->runs[H_FILTER][i], "filter"), "run"),
                "domains");
            const cJSON *de, *rule;
            cJSON_ArrayForEach(de, domains)
            {
                cJSON_ArrayForEach(rule, cJSON_GetObjectItemCaseSensitive(de, "rules"))
                {
                    double x = num(rule, "removed");
                    if (x > 0)
                        tally(names, v, &n, 64, rule->string, x);
                }
            }
        }
        tm_buf_printf(&r->md,
                      "\nFilter: documents removed per rule (a document can fire several "
                      "rules; each removal is counted under the rule that removed it).\n\n");
        counts(r, "rule", "documents removed", names, v, n, "removals: no rule removed a document",
               "Filter: documents removed per rule");
    }
    if (h->n[H_DEDUP]) {
        const char *names[32];
        double v[32];
        int n = 0;
        for (int i = 0; i < h->n[H_DEDUP]; i++) {
            const cJSON *cs = cJSON_GetObjectItemCaseSensitive(
                cJSON_GetObjectItemCaseSensitive(
                    cJSON_GetObjectItemCaseSensitive(h->runs[H_DEDUP][i], "dedup"), "run"),
                "cluster_sizes");
            const cJSON *e;
            cJSON_ArrayForEach(e, cs)
            {
                if (cJSON_IsNumber(e))
                    tally(names, v, &n, 32, e->string, e->valuedouble);
            }
        }
        tm_buf_printf(&r->md,
                      "\nDedup: %.0f exact and %.0f near duplicates removed; clusters by size:\n\n",
                      total(h, H_DEDUP, "dedup.run.exact_duplicates"),
                      total(h, H_DEDUP, "dedup.run.near_duplicates"));
        counts(r, "cluster size", "clusters", names, v, n, "clusters: no duplicates were found",
               "Dedup: clusters by size (documents per cluster)");
    }
}

/* The workdir's runs over time: documents ingested, tokens written and BPB, one row per run of
 * ingest, tokenize and eval bpb, in order. */
static void history_section(struct report *r, const struct history *h)
{
    section(r, "History");
    if (h->n_order == 0) {
        missing(r, "no runs recorded (WORKDIR/stats/history.jsonl)");
        return;
    }
    static const char *const head[] = {"time", "command", "documents ingested", "tokens written",
                                       "bits per byte"};
    char **cells = tm_xcalloc((size_t)h->n_order * 5, sizeof(char *));
    cJSON *hist = cJSON_AddArrayToObject(r->json, "history");
    for (int i = 0; i < h->n_order; i++) {
        const cJSON *o = h->order[i];
        const char *cmd = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "command"));
        const char *when = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "time"));
        double docs = NAN, tokens = NAN, bpb = NAN;
        if (cmd && strcmp(cmd, "ingest") == 0)
            docs = num(o, "documents.total");
        if (cmd && strcmp(cmd, "tokenize") == 0) {
            tokens = 0;
            static const char *const k[6] = {
                "tokenize.train.text.tokens", "tokenize.train.math.tokens",
                "tokenize.train.code.tokens", "tokenize.val.text.tokens",
                "tokenize.val.math.tokens",   "tokenize.val.code.tokens"};
            for (int j = 0; j < 6; j++)
                tokens += isfinite(num(o, k[j])) ? num(o, k[j]) : 0;
        }
        if (cmd && strcmp(cmd, "eval bpb") == 0)
            bpb = num(o, "eval_bpb.bpb");
        cells[i * 5] = tm_xstrdup(when ? when : "-");
        cells[i * 5 + 1] = tm_xstrdup(cmd ? cmd : "-");
        cells[i * 5 + 2] = fmtd(0, docs);
        cells[i * 5 + 3] = fmtd(0, tokens);
        cells[i * 5 + 4] = fmtd(4, bpb);
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "time", when ? when : "");
        cJSON_AddStringToObject(e, "command", cmd ? cmd : "");
        if (isfinite(docs))
            cJSON_AddNumberToObject(e, "documents", docs);
        if (isfinite(tokens))
            cJSON_AddNumberToObject(e, "tokens", tokens);
        if (isfinite(bpb))
            cJSON_AddNumberToObject(e, "bpb", bpb);
        cJSON_AddItemToArray(hist, e);
    }
    table(r, head, 5, cells, h->n_order);
    free_cells(cells, h->n_order * 5);
}

static void training_section(struct report *r, const char *wd)
{
    section(r, "Training");
    char path[4200];
    snprintf(path, sizeof(path), "%s/train/metrics.jsonl", wd);
    struct curves c;
    if (read_curves(path, &c) != TM_OK) {
        missing(r, "no training metrics (WORKDIR/train/metrics.jsonl)");
        free_curves(&c);
        return;
    }
    cJSON *tj = cJSON_AddObjectToObject(r->json, "training");
    double last = c.n ? c.loss[c.n - 1] : NAN, val = c.nv ? c.val[c.nv - 1] : NAN;
    cJSON_AddNumberToObject(tj, "steps", c.n ? c.step[c.n - 1] : 0);
    cJSON_AddNumberToObject(tj, "final_loss", last);
    if (isfinite(val))
        cJSON_AddNumberToObject(tj, "final_val_loss", val);
    cJSON_AddNumberToObject(tj, "tokens_per_s_median", c.tps_median);
    static const char *const head[] = {"steps", "final train loss", "final validation loss",
                                       "tokens/s (median)"};
    char *cells[4] = {fmtd(0, c.n ? c.step[c.n - 1] : 0), fmtd(4, last), fmtd(4, val),
                      fmtd(0, c.tps_median)};
    table(r, head, 4, cells, 1);
    for (int i = 0; i < 4; i++)
        free(cells[i]);
    if (isfinite(val))
        result(r, "validation", "loss", val, NAN);
    struct series s[2] = {{"train loss", palette[0], c.step, c.loss, c.n, 0},
                          {"validation loss", palette[1], c.vstep, c.val, c.nv, 1}};
    svg_lines(&r->html, "Training and validation loss", "step", s, 2);
    int have_mtp = 0;
    for (size_t i = 0; i < c.n; i++)
        have_mtp |= isfinite(c.mtp[i]) && c.mtp[i] != 0;
    if (have_mtp) {
        struct series m = {"MTP loss (token i+2)", palette[2], c.step, c.mtp, c.n, 0};
        svg_lines(&r->html, "Multi-token prediction loss", "step", &m, 1);
    }
    if (c.layers) {
        struct series ls[8];
        char names[8][32];
        for (int l = 0; l < c.layers; l++) {
            snprintf(names[l], sizeof(names[l]), "MoE layer %d load cv", l + 1);
            ls[l] = (struct series){names[l], palette[l % 8], c.step, c.cv[l], c.n, 0};
        }
        svg_lines(&r->html, "Expert load balance (coefficient of variation of the routed loads)",
                  "step", ls, c.layers);
        tm_buf_printf(&r->md,
                      "\nExpert load balance: final coefficient of variation per MoE layer:");
        for (int l = 0; l < c.layers; l++)
            tm_buf_printf(&r->md, " %.3f", c.cv[l][c.n - 1]);
        tm_buf_printf(&r->md, "\n");
    }
    free_curves(&c);
}

/* WORKDIR/rel parsed, or NULL after saying in the report that `what` is missing. */
static cJSON *source(struct report *r, const char *wd, const char *rel, const char *what)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/%s", wd, rel);
    cJSON *o = read_json(path);
    if (!o)
        missing(r, what);
    return o;
}

static void bpb_section(struct report *r, const char *wd)
{
    section(r, "Bits per byte");
    cJSON *b =
        source(r, wd, "eval/bpb.json", "no WORKDIR/eval/bpb.json (run `tokenmill eval bpb`)");
    if (!b)
        return;
    cJSON_AddItemToObject(r->json, "bpb", cJSON_Duplicate(b, 1));
    static const char *const head[] = {"domain",     "bits per byte", "loss per token",
                                       "perplexity", "tokens",        "bytes"};
    const char *names[4];
    double v[4];
    char **cells = tm_xcalloc(4 * 6, sizeof(char *));
    int n = 0;
    const cJSON *doms = cJSON_GetObjectItemCaseSensitive(b, "domains"), *d;
    cJSON_ArrayForEach(d, doms)
    {
        if (n >= 3)
            break;
        names[n] = d->string;
        v[n] = num(d, "bpb");
        cells[n * 6] = tm_xstrdup(d->string);
        cells[n * 6 + 1] = fmtd(4, v[n]);
        cells[n * 6 + 2] = fmtd(4, num(d, "loss"));
        cells[n * 6 + 3] = fmtd(2, num(d, "perplexity"));
        cells[n * 6 + 4] = fmtd(0, num(d, "tokens"));
        cells[n * 6 + 5] = fmtd(0, num(d, "bytes"));
        char task[64];
        snprintf(task, sizeof(task), "bpb/%s", d->string);
        result(r, task, "bpb", v[n], NAN);
        n++;
    }
    names[n] = "overall";
    v[n] = num(b, "overall.bpb");
    cells[n * 6] = tm_xstrdup("overall");
    cells[n * 6 + 1] = fmtd(4, v[n]);
    cells[n * 6 + 2] = fmtd(4, num(b, "overall.loss"));
    cells[n * 6 + 3] = fmtd(2, num(b, "overall.perplexity"));
    cells[n * 6 + 4] = fmtd(0, num(b, "overall.tokens"));
    cells[n * 6 + 5] = fmtd(0, num(b, "overall.bytes"));
    result(r, "bpb/overall", "bpb", v[n], NAN);
    n++;
    tm_buf_printf(&r->md, "Split %s, window %.0f, stride %.0f.\n\n",
                  cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(b, "split"))
                      ? cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(b, "split"))
                      : "?",
                  num(b, "window"), num(b, "stride"));
    table(r, head, 6, cells, n);
    free_cells(cells, 4 * 6);
    svg_bars(&r->html, "Bits per byte per domain", names, v, n);
    cJSON_Delete(b);
}

static void code_section(struct report *r, const char *wd)
{
    section(r, "Code tasks");
    cJSON *s = source(r, wd, "eval/code/summary.json",
                      "no WORKDIR/eval/code/summary.json (run `tokenmill eval code --workdir`)");
    if (!s)
        return;
    cJSON_AddItemToObject(r->json, "code", cJSON_Duplicate(s, 1));
    double tasks = num(s, "tasks");
    const cJSON *pk = cJSON_GetObjectItemCaseSensitive(s, "pass_at_k"), *e;
    int n = cJSON_GetArraySize(pk);
    char **cells = tm_xcalloc((size_t)(n ? n : 1) * 3, sizeof(char *));
    int i = 0;
    cJSON_ArrayForEach(e, pk)
    {
        double p = e->valuedouble;
        /* A binomial standard error over the tasks: what another draw of tasks would move. */
        double se = tasks > 1 ? sqrt(p * (1 - p) / (tasks - 1)) : NAN;
        char metric[32];
        snprintf(metric, sizeof(metric), "pass@%s", e->string);
        result(r, "code", metric, p, se);
        cells[i * 3] = tm_xstrdup(metric);
        cells[i * 3 + 1] = fmtd(4, p);
        cells[i * 3 + 2] = fmtd(4, se);
        i++;
    }
    tm_buf_printf(&r->md, "%.0f tasks, %.0f samples (%s); sandbox: %s.\n\n", tasks,
                  num(s, "samples"),
                  cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(s, "source"))
                      ? cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(s, "source"))
                      : "?",
                  cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(s, "sandbox"))
                      ? cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(s, "sandbox"))
                      : "?");
    static const char *const head[] = {"metric", "value", "stderr"};
    table(r, head, 3, cells, i);
    free_cells(cells, i * 3);
    const char *names[EV_N_OUTCOMES];
    double v[EV_N_OUTCOMES];
    char **oc = tm_xcalloc(EV_N_OUTCOMES * 2, sizeof(char *));
    for (int k = 0; k < EV_N_OUTCOMES; k++) {
        char key[64];
        snprintf(key, sizeof(key), "outcomes.%s", ev_outcome_names[k]);
        names[k] = ev_outcome_names[k];
        v[k] = num(s, key);
        oc[k * 2] = tm_xstrdup(names[k]);
        oc[k * 2 + 1] = fmtd(0, v[k]);
    }
    tm_buf_printf(&r->md, "\n");
    static const char *const oh[] = {"outcome", "samples"};
    table(r, oh, 2, oc, EV_N_OUTCOMES);
    free_cells(oc, EV_N_OUTCOMES * 2);
    svg_bars(&r->html, "Code tasks: outcomes", names, v, EV_N_OUTCOMES);
    cJSON_Delete(s);
}

static void fp8_section(struct report *r, const char *wd, const char *file)
{
    char path[4200];
    if (!file) {
        snprintf(path, sizeof(path), "%s/eval/fp8_study.json", wd);
        file = path;
    }
    cJSON *f = read_json(file);
    if (!f)
        return; /* the study is a benchmark: no section without it */
    section(r, "FP8 study");
    const cJSON *runs = cJSON_GetObjectItemCaseSensitive(f, "runs"), *run;
    static const char *const head[] = {"precision", "final train loss", "mean of last steps",
                                       "final validation loss"};
    int n = cJSON_GetArraySize(runs), i = 0;
    char **cells = tm_xcalloc((size_t)(n ? n : 1) * 4, sizeof(char *));
    struct series s[8];
    double *xs[8], *ys[8];
    int ns = 0;
    cJSON_ArrayForEach(run, runs)
    {
        cells[i * 4] = tm_xstrdup(run->string);
        cells[i * 4 + 1] = fmtd(4, num(run, "final_loss"));
        cells[i * 4 + 2] = fmtd(4, num(run, "final_loss_tail_mean"));
        cells[i * 4 + 3] = fmtd(4, num(run, "final_val_loss"));
        const cJSON *vs = cJSON_GetObjectItemCaseSensitive(run, "val_steps");
        const cJSON *vl = cJSON_GetObjectItemCaseSensitive(run, "val_loss");
        int m = cJSON_GetArraySize(vl);
        if (ns < 8 && m > 0) {
            xs[ns] = tm_xmalloc((size_t)m * sizeof(double));
            ys[ns] = tm_xmalloc((size_t)m * sizeof(double));
            for (int k = 0; k < m; k++) {
                xs[ns][k] = cJSON_GetArrayItem(vs, k)->valuedouble;
                ys[ns][k] = cJSON_GetArrayItem(vl, k)->valuedouble;
            }
            s[ns] = (struct series){run->string, palette[ns % 8], xs[ns], ys[ns], (size_t)m, 0};
            ns++;
        }
        i++;
    }
    table(r, head, 4, cells, i);
    free_cells(cells, i * 4);
    double gt = num(f, "gap.final_loss"), gm = num(f, "gap.final_loss_tail_mean"),
           gv = num(f, "gap.final_val_loss");
    if (isfinite(gv)) {
        tm_buf_printf(&r->md,
                      "\nfp8 against bf16, relative gap: final train loss %+.3f%% (last step), "
                      "%+.3f%% (mean of the last steps), final validation loss %+.3f%% "
                      "(DeepSeek-V3's bound: 0.25%%).\n",
                      100 * gt, 100 * gm, 100 * gv);
        tm_buf_printf(&r->html,
                      "<p>fp8 against bf16, relative gap: final train loss %+.3f%% (last "
                      "step), %+.3f%% (mean of the last steps), final validation loss "
                      "%+.3f%% (DeepSeek-V3's bound: 0.25%%).</p>\n",
                      100 * gt, 100 * gm, 100 * gv);
        result(r, "fp8_study", "val_loss_gap_vs_bf16", gv, NAN);
        cJSON *fj = cJSON_AddObjectToObject(r->json, "fp8_study");
        cJSON_AddNumberToObject(fj, "final_loss_gap", gt);
        cJSON_AddNumberToObject(fj, "final_loss_tail_mean_gap", gm);
        cJSON_AddNumberToObject(fj, "final_val_loss_gap", gv);
    }
    svg_lines(&r->html, "FP8 study: validation loss per precision", "step", s, ns);
    for (int k = 0; k < ns; k++) {
        free(xs[k]);
        free(ys[k]);
    }
    cJSON_Delete(f);
}

/* ---- the command ---------------------------------------------------------------------------- */

static int write_buf(const char *dir, const char *name, const struct tm_buf *b)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return tm_write_atomic(path, b->data, b->len);
}

static int report_cmd(void *vcfg, struct tm_run *run)
{
    struct report_options *opt = vcfg;
    if (!opt->workdir) {
        tm_log_error("report: --workdir is required");
        return TM_ERR_USAGE;
    }
    char out[4000];
    snprintf(out, sizeof(out), "%s", opt->out ? opt->out : "");
    if (!opt->out)
        snprintf(out, sizeof(out), "%s/report", opt->workdir);
    int rc = tm_mkdirs(out);
    if (rc)
        return rc;
    struct report r;
    tm_buf_init(&r.md, 0);
    tm_buf_init(&r.html, 0);
    r.json = cJSON_CreateObject();
    char when[32];
    time_t now = time(NULL);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
    cJSON_AddStringToObject(r.json, "workdir", opt->workdir);
    cJSON_AddStringToObject(r.json, "generated", when);
    cJSON *ver = cJSON_AddObjectToObject(r.json, "versions");
    cJSON_AddStringToObject(ver, "tokenmill", TOKENMILL_VERSION);
    r.results = cJSON_AddArrayToObject(r.json, "results");
    tm_buf_printf(&r.md, "# tokenmill report\n\nWorkdir `%s`, generated %s by tokenmill %s.\n",
                  opt->workdir, when, TOKENMILL_VERSION);
    tm_buf_printf(&r.html,
                  "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                  "<title>tokenmill report</title>\n<style>body{font-family:sans-serif;"
                  "max-width:960px;margin:2em auto;color:#222}table{border-collapse:collapse;"
                  "margin:0.5em 0 1em}td,th{border:1px solid #ccc;padding:3px 8px;"
                  "text-align:right}td:first-child,th:first-child{text-align:left}"
                  "th{background:#f3f3f3}svg{display:block;margin:0.5em 0 1.5em}"
                  ".missing{color:#888;font-style:italic}</style></head><body>\n"
                  "<h1>tokenmill report</h1>\n<p>Workdir <code>");
    esc(&r.html, opt->workdir);
    tm_buf_printf(&r.html, "</code>, generated %s by tokenmill %s.</p>\n", when, TOKENMILL_VERSION);
    struct history *h = tm_xmalloc(sizeof(*h));
    history_load(h, opt->workdir);
    corpus_section(&r, opt->workdir, h);
    history_section(&r, h);
    training_section(&r, opt->workdir);
    bpb_section(&r, opt->workdir);
    code_section(&r, opt->workdir);
    fp8_section(&r, opt->workdir, opt->fp8_study);
    history_free(h);
    free(h);
    tm_buf_printf(&r.html, "</body></html>\n");
    char *json = cJSON_Print(r.json);
    size_t jl = strlen(json);
    char path[4200];
    snprintf(path, sizeof(path), "%s/report.json", out);
    rc = tm_write_atomic(path, json, jl);
    cJSON_free(json);
    if (rc == TM_OK)
        rc = write_buf(out, "report.md", &r.md);
    if (rc == TM_OK)
        rc = write_buf(out, "report.html", &r.html);
    if (rc == TM_OK)
        printf("%s/report.json\n%s/report.md\n%s/report.html\n", out, out, out);
    cJSON *st = tm_stats_obj(run->stats, "report");
    tm_stats_set_num(st, "results", cJSON_GetArraySize(r.results));
    cJSON_Delete(r.json);
    tm_buf_release(&r.md);
    tm_buf_release(&r.html);
    return rc;
}

const struct tm_command ev_report_command = {
    .name = "report",
    .summary = "report.json, report.md and report.html for a workdir: corpus, training, eval",
    .synopsis = "",
    .description =
        "Gathers what the workdir holds: each stage's last statistics (WORKDIR/stats), the\n"
        "token shards, the training metrics, `eval bpb` and `eval code --workdir` results and\n"
        "the FP8 study's JSON when given, and writes report.json (results: metric, value,\n"
        "stderr; settings; versions), report.md (tables) and a self-contained report.html\n"
        "(inline SVG plots) into --out (default WORKDIR/report). A missing source is named in\n"
        "the report, not an error.",
    .opts = report_opts,
    .cfg_size = sizeof(struct report_options),
    .min_args = 0,
    .max_args = 0,
    .run = report_cmd,
};
