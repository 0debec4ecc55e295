/* tr_loop.c: the [train] settings and the training loop, read top to bottom:
 * settings -> corpus -> model -> resume -> for each step: windows, forward, backward, clip,
 * AdamW, bias update, metrics, evaluation, checkpoint. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "tm_err.h"
#include "tm_fs.h"
#include "tm_ini.h"
#include "tm_log.h"
#include "tm_mem.h"
#include "tm_opt.h"
#include "tm_progress.h"
#include "tm_stats.h"
#include "tokenize.h"
#include "tr_train.h"

/* ==== Settings ============================================================================= */

#define F(field) offsetof(struct tr_train_cfg, field)

/* Sanity bounds that reject typos, not tuned limits. */
const char *const tr_precision_names[] = {"fp32", "bf16", "fp8", NULL};
const char *const tr_fp8_format_names[] = {"e4m3", "e5m2", NULL};
const char *const tr_fp8_promote_names[] = {"32", "64", "128", NULL};
const char *const tr_moments_names[] = {"auto", "fp32", "bf16", NULL};

int tr_train_moments_bf16(const struct tr_train_cfg *t)
{
    return t->moments == TR_MOMENTS_BF16 ||
           (t->moments == TR_MOMENTS_AUTO && t->precision == TR_PREC_FP8);
}

void tr_train_gemm_cfg(const struct tr_train_cfg *t, struct tr_gemm_cfg *g)
{
    static const int promote[] = {32, 64, 128};
    memset(g, 0, sizeof(*g));
    g->mode = t->precision == TR_PREC_FP8    ? TR_GEMM_FP8
              : t->precision == TR_PREC_BF16 ? TR_GEMM_BF16
                                             : TR_GEMM_F32;
    g->threads = t->threads;
    g->fp8_fmt = t->fp8_format;
    g->fp8_pow2 = t->fp8_pow2;
    g->fp8_acc.bits = t->fp8_accum_bits;
    g->fp8_acc.promote = promote[t->fp8_promote >= 0 && t->fp8_promote < 3 ? t->fp8_promote : 2];
}

static const struct tr_key keys[] = {
    {"steps", TR_KEY_INT, F(steps), 1, 100000000, 0},
    {"batch", TR_KEY_INT, F(batch), 1, 65536, 0},
    {"seq", TR_KEY_INT, F(seq), 1, 1048576, 0},
    {"lr", TR_KEY_DOUBLE, F(lr), 0, 10, 1},
    {"min_lr", TR_KEY_DOUBLE, F(min_lr), 0, 10, 0},
    {"warmup", TR_KEY_INT, F(warmup), 0, 100000000, 0},
    {"weight_decay", TR_KEY_DOUBLE, F(weight_decay), 0, 10, 0},
    {"beta1", TR_KEY_DOUBLE, F(beta1), 0, 0.999999999, 0},
    {"beta2", TR_KEY_DOUBLE, F(beta2), 0, 0.999999999, 0},
    {"eps", TR_KEY_DOUBLE, F(eps), 0, 1, 1},
    {"clip", TR_KEY_DOUBLE, F(clip), 0, 1e6, 0},
    {"seed", TR_KEY_U64, F(seed), 0, 0, 0},
    {"eval_every", TR_KEY_INT, F(eval_every), 0, 100000000, 0},
    {"eval_batches", TR_KEY_INT, F(eval_batches), 0, 100000, 0},
    {"ckpt_every", TR_KEY_INT, F(ckpt_every), 0, 100000000, 0},
    {"keep_ckpts", TR_KEY_INT, F(keep_ckpts), 1, 1000000, 0},
    {"weight_text", TR_KEY_DOUBLE, F(weights[0]), 0, 1e6, 0},
    {"weight_math", TR_KEY_DOUBLE, F(weights[1]), 0, 1e6, 0},
    {"weight_code", TR_KEY_DOUBLE, F(weights[2]), 0, 1e6, 0},
    {"precision", TR_KEY_ENUM, F(precision), 0, 0, 0, tr_precision_names},
    {"fp8_format", TR_KEY_ENUM, F(fp8_format), 0, 0, 0, tr_fp8_format_names},
    {"fp8_pow2", TR_KEY_INT, F(fp8_pow2), 0, 1, 0},
    {"fp8_accum_bits", TR_KEY_INT, F(fp8_accum_bits), 0, 24, 0},
    {"fp8_promote", TR_KEY_ENUM, F(fp8_promote), 0, 0, 0, tr_fp8_promote_names},
    {"moments", TR_KEY_ENUM, F(moments), 0, 0, 0, tr_moments_names},
    {"fp8_probe_every", TR_KEY_INT, F(fp8_probe_every), 0, 100000000, 0},
    {"threads", TR_KEY_INT, F(threads), 1, 256, 0},
};
#define N_KEYS ((int)(sizeof(keys) / sizeof(keys[0])))

void tr_train_defaults(struct tr_train_cfg *t)
{
    memset(t, 0, sizeof(*t));
    t->steps = 1000;
    t->batch = 8;
    t->seq = 128;
    t->lr = 3e-4;
    t->min_lr = 3e-5; /* a tenth of the peak, as GPT-3 and LLaMA decay to */
    t->warmup = 100;
    t->weight_decay = 0.1; /* GPT-3, LLaMA, DeepSeek-V3 */
    t->beta1 = 0.9;
    t->beta2 = 0.95; /* GPT-3, LLaMA, DeepSeek-V3 */
    t->eps = 1e-8;
    t->clip = 1.0; /* GPT-3, LLaMA, DeepSeek-V3 */
    t->seed = 1;
    t->eval_every = 100;
    t->eval_batches = 8;
    t->ckpt_every = 500;
    t->keep_ckpts = 2;
    t->weights[0] = t->weights[1] = t->weights[2] = -1;
    t->precision = TR_PREC_FP32;
    t->fp8_format = TR_FP8_E4M3;
    t->fp8_accum_bits = 14;
    t->fp8_promote = 2; /* tr_fp8_promote_names[2]: 128 */
    t->moments = TR_MOMENTS_AUTO;
    t->threads = 1;
}

int tr_train_set(void *ctx, const char *section, const char *key, const char *value, char *err,
                 size_t errlen)
{
    if (strcmp(section, "train") != 0)
        return TM_OK; /* another module's section */
    return tr_key_set(keys, N_KEYS, ctx, key, value, err, errlen);
}

int tr_train_check(const struct tr_train_cfg *t, const struct tr_config *mc)
{
    if (t->seq > mc->context) {
        tm_log_error("[train] seq: want at most the model's context %d, not %d", mc->context,
                     t->seq);
        return TM_ERR_USAGE;
    }
    if (t->min_lr > t->lr) {
        tm_log_error("[train] min_lr: want at most lr %g, not %g", t->lr, t->min_lr);
        return TM_ERR_USAGE;
    }
    if (t->warmup > t->steps) {
        tm_log_error("[train] warmup: want at most steps %d, not %d", t->steps, t->warmup);
        return TM_ERR_USAGE;
    }
    int given = 0;
    double sum = 0;
    for (int d = 0; d < 3; d++)
        if (t->weights[d] >= 0) {
            given = 1;
            sum += t->weights[d];
        }
    if (given && !(sum > 0)) {
        tm_log_error("[train] weight_text, weight_math, weight_code: want a positive sum");
        return TM_ERR_USAGE;
    }
    return TM_OK;
}

int tr_train_load(const char *path, struct tr_config *mc, struct tr_train_cfg *t)
{
    tr_train_defaults(t);
    int rc = tr_config_load(mc, path);
    if (rc == TM_OK)
        rc = tm_ini_load(path, tr_train_set, t);
    if (rc == TM_OK)
        rc = tr_train_check(t, mc);
    return rc;
}

/* ==== The loop ============================================================================== */

/* Validation windows come from this fixed seed, so every evaluation of every run sees the same
 * windows whatever the training seed; it is an arbitrary constant ("val" in ASCII). */
#define TR_VAL_SEED UINT64_C(0x76616c)

struct trainer {
    const struct tr_run_opts *o;
    struct tr_config mc;
    struct tr_train_cfg tc;
    struct tok_corpus *corpus;
    const double *weights; /* NULL: by token counts */
    double wbuf[3];
    struct tr_model m;
    struct tr_acts acts;
    float *grads, *mom, *vel;
    uint32_t *win;          /* [seq + 1] */
    int32_t *ids, *targets; /* [batch seq] */
    char *train_dir, *metrics_path;
    FILE *metrics;
    int has_val;
};

/* Fills t->ids and t->targets with B windows of the split. */
static int load_batch(struct trainer *t, int split, const double *weights, uint64_t seed,
                      uint64_t step, uint64_t index0)
{
    int B = t->tc.batch, T = t->tc.seq;
    for (int b = 0; b < B; b++) {
        int rc = tok_corpus_window(t->corpus, split, weights, seed, step, index0 + (uint64_t)b,
                                   (size_t)T + 1, t->win, NULL);
        if (rc) {
            tm_log_error("%s split: no window of %d tokens (seq + 1) in a domain with weight > 0",
                         tok_split_names[split], T + 1);
            return rc;
        }
        for (int i = 0; i < T; i++) {
            t->ids[(size_t)b * T + i] = (int32_t)t->win[i];
            t->targets[(size_t)b * T + i] = (int32_t)t->win[i + 1];
        }
    }
    return TM_OK;
}

/* The mean main loss over eval_batches batches of validation windows. The forward passes
 * count expert loads, which are not training's: the counters are saved and restored. */
static int evaluate(struct trainer *t, double *val)
{
    size_t nl = (size_t)t->m.n_moe_layers * (size_t)t->mc.n_routed_experts;
    int64_t *saved = tm_xmalloc(nl * sizeof(int64_t) + 1);
    memcpy(saved, t->m.load, nl * sizeof(int64_t));
    double sum = 0;
    int rc = TM_OK;
    for (int e = 0; rc == TM_OK && e < t->tc.eval_batches; e++) {
        rc =
            load_batch(t, TOK_SPLIT_VAL, NULL, TR_VAL_SEED, 0, (uint64_t)e * (uint64_t)t->tc.batch);
        float loss = 0;
        t->acts.grad_in_forward = 0; /* loss only */
        if (rc == TM_OK)
            rc = tr_model_forward(&t->m, &t->acts, t->ids, t->targets, t->tc.batch, t->tc.seq,
                                  &loss, NULL);
        sum += loss;
    }
    memcpy(t->m.load, saved, nl * sizeof(int64_t));
    free(saved);
    *val = sum / t->tc.eval_batches;
    return rc;
}

/* Appends one JSON line to metrics.jsonl and flushes it, so a killed run keeps its lines. */
static int metrics_line(struct trainer *t, cJSON *line)
{
    char *s = cJSON_PrintUnformatted(line);
    cJSON_Delete(line);
    if (!s)
        return TM_ERR_NOMEM;
    int ok = fputs(s, t->metrics) >= 0 && fputc('\n', t->metrics) != EOF && fflush(t->metrics) == 0;
    cJSON_free(s);
    if (!ok) {
        tm_log_error("%s: write: %s", t->metrics_path, strerror(errno));
        return TM_ERR_IO;
    }
    return TM_OK;
}

/* Keeps the metrics lines of steps <= done (an interrupted run may have written later ones,
 * which the resumed run writes again) and rewrites the file atomically. */
static int metrics_trim(const char *path, int64_t done)
{
    char *text = NULL;
    size_t len = 0;
    struct stat sb;
    if (stat(path, &sb) != 0 && errno == ENOENT)
        return TM_OK; /* a first run */
    int rc = tm_read_file(path, (size_t)1 << 34, &text, &len);
    if (rc)
        return rc;
    size_t w = 0;
    for (size_t r = 0; r < len;) {
        char *nl = memchr(text + r, '\n', len - r);
        size_t e = nl ? (size_t)(nl - text) + 1 : len;
        cJSON *j = nl ? cJSON_ParseWithLength(text + r, e - r - 1) : NULL; /* drop a torn line */
        const cJSON *st = cJSON_GetObjectItemCaseSensitive(j, "step");
        if (cJSON_IsNumber(st) && st->valuedouble <= (double)done) {
            memmove(text + w, text + r, e - r);
            w += e - r;
        }
        cJSON_Delete(j);
        r = e;
    }
    rc = tm_write_atomic(path, text, w);
    free(text);
    return rc;
}

/* The per-layer expert statistics of this step (from the loads counted so far) for the
 * metrics line. */
/* {"fprop": e, "dgrad": e, "wgrad": e}: each role's relative error of the FP8 product against
 * FP32, sqrt(sum ||C_fp8 - C_fp32||^2 / sum ||C_fp32||^2) over the step's Linear products. */
static cJSON *probe_json(const struct tr_gemm_probe *p)
{
    static const char *const names[TR_N_ROLES] = {"fprop", "dgrad", "wgrad"};
    cJSON *o = cJSON_CreateObject();
    for (int r = 0; r < TR_N_ROLES; r++)
        cJSON_AddNumberToObject(o, names[r], p->ref2[r] > 0 ? sqrt(p->err2[r] / p->ref2[r]) : 0.0);
    return o;
}

static cJSON *moe_stats(const struct trainer *t)
{
    cJSON *arr = cJSON_CreateArray();
    int E = t->mc.n_routed_experts;
    for (int l = 0; l < t->mc.layers; l++) {
        int mi = t->m.blocks[l].moe_index;
        if (mi < 0)
            continue;
        const int64_t *ld = t->m.load + (size_t)mi * E;
        const float *bias = t->m.router_bias + (size_t)mi * E;
        double mn = (double)ld[0], mx = (double)ld[0], sum = 0, sq = 0, bsum = 0, bmax = 0;
        for (int e = 0; e < E; e++) {
            double x = (double)ld[e];
            mn = x < mn ? x : mn;
            mx = x > mx ? x : mx;
            sum += x;
            bsum += bias[e];
            bmax = fabs(bias[e]) > bmax ? fabs(bias[e]) : bmax;
        }
        double mean = sum / E;
        for (int e = 0; e < E; e++)
            sq += ((double)ld[e] - mean) * ((double)ld[e] - mean);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "layer", l);
        cJSON_AddNumberToObject(o, "load_min", mn);
        cJSON_AddNumberToObject(o, "load_max", mx);
        cJSON_AddNumberToObject(o, "load_cv", mean > 0 ? sqrt(sq / E) / mean : 0);
        /* The biases start at zero, so their values are their drift. */
        cJSON_AddNumberToObject(o, "bias_mean", bsum / E);
        cJSON_AddNumberToObject(o, "bias_maxabs", bmax);
        cJSON_AddItemToArray(arr, o);
    }
    return arr;
}

static int run_eval(struct trainer *t, int64_t done, double *val)
{
    if (!t->has_val)
        return TM_OK;
    int rc = evaluate(t, val);
    if (rc)
        return rc;
    cJSON *line = cJSON_CreateObject();
    cJSON_AddNumberToObject(line, "step", (double)done);
    cJSON_AddNumberToObject(line, "val_loss", *val);
    if (t->o->progress)
        tm_log_info("train: step %" PRId64 "/%d val_loss %.4f", done, t->tc.steps, *val);
    return metrics_line(t, line);
}

static int setup(struct trainer *t)
{
    int rc = tr_train_load(t->o->config, &t->mc, &t->tc);
    if (rc)
        return rc;
    rc = tok_corpus_open(t->o->workdir, 0, &t->corpus);
    if (rc)
        return rc;
    const struct tok_shard_meta *meta = tok_corpus_meta(t->corpus);
    if ((uint64_t)t->mc.vocab_size < meta->id_end) {
        tm_log_error("%s: [model] vocab_size %d is smaller than the token shards' vocabulary "
                     "(%" PRIu32 " ids, special tokens included); set vocab_size >= %" PRIu32,
                     t->o->config, t->mc.vocab_size, meta->id_end, meta->id_end);
        return TM_ERR_USAGE;
    }
    int given = 0;
    for (int d = 0; d < 3; d++) {
        given |= t->tc.weights[d] >= 0;
        t->wbuf[d] = t->tc.weights[d] >= 0 ? t->tc.weights[d] : 0;
    }
    t->weights = given ? t->wbuf : NULL;
    rc = tr_model_init(&t->m, &t->mc);
    if (rc)
        return rc;
    t->m.threads = t->tc.threads;
    tr_train_gemm_cfg(&t->tc, &t->m.gemm);
    size_t N = (size_t)t->tc.batch * (size_t)t->tc.seq;
    rc = tr_acts_init(&t->acts, &t->m, N);
    if (rc)
        return rc;
    t->grads = tm_xcalloc(t->m.n_params, sizeof(float));
    t->mom = tm_xcalloc(t->m.n_params, sizeof(float));
    t->vel = tm_xcalloc(t->m.n_params, sizeof(float));
    t->win = tm_xmalloc(((size_t)t->tc.seq + 1) * sizeof(uint32_t));
    t->ids = tm_xmalloc(N * sizeof(int32_t));
    t->targets = tm_xmalloc(N * sizeof(int32_t));
    /* Whether the validation split can give a window at all; without one, training goes on
     * without validation losses. */
    t->has_val = t->tc.eval_batches > 0 &&
                 tok_corpus_window(t->corpus, TOK_SPLIT_VAL, NULL, TR_VAL_SEED, 0, 0,
                                   (size_t)t->tc.seq + 1, t->win, NULL) == TM_OK;
    if (t->tc.eval_batches > 0 && !t->has_val)
        tm_log_warn("train: the validation split has no domain with %d tokens (seq + 1); no "
                    "validation loss will be computed",
                    t->tc.seq + 1);
    return TM_OK;
}

/* The corpus as a continued run compares it: shards, tokens of both splits, and the document
 * id the last shard ends before (tokenize appends shards, never rewrites one in place except
 * with --redo, which renumbers and so changes the tokens or the end). */
static void corpus_id(const struct tok_corpus *c, char *out, size_t n)
{
    uint64_t tokens = 0;
    for (int sp = 0; sp < 2; sp++)
        for (int d = 0; d < 3; d++)
            tokens += tok_corpus_tokens(c, sp, d);
    size_t k = tok_corpus_shards(c);
    uint64_t end = k ? tok_shard_get_meta(tok_corpus_shard(c, k - 1))->next_doc : 0;
    snprintf(out, n, "%zu:%" PRIu64 ":%016" PRIx64, k, tokens, end);
}

/* The step a run stops at before --until: [train] steps; for a continued run whose corpus
 * differs from the one the newest checkpoint (at step done) was trained towards, continue_steps
 * past it (*changed = 1); with the same corpus, what that run was training towards. */
static int64_t target_step(const struct tr_run_opts *o, const struct tr_train_cfg *tc, int64_t done,
                           const char *ck_corpus, int64_t ck_target, const char *now, int *changed)
{
    int64_t target = tc->steps;
    *changed = 0;
    if (done > 0 && o->continue_steps > 0) {
        if (strcmp(ck_corpus, now) != 0) {
            *changed = 1;
            if (done + o->continue_steps > target)
                target = done + o->continue_steps;
        } else if (ck_target > target) {
            target = ck_target;
        }
    }
    return target;
}

int tr_train_plan(const struct tr_run_opts *o, struct tm_plan *out)
{
    struct tr_config mc;
    struct tr_train_cfg tc;
    int rc = tr_train_load(o->config, &mc, &tc);
    if (rc)
        return rc;
    char *tokens = tm_path_join(o->workdir, "tokens");
    uint64_t *nums = NULL;
    size_t nshards = 0;
    tok_corpus_list(tokens, &nums, &nshards);
    free(nums);
    free(tokens);
    if (nshards == 0) {
        tm_plan_add(out, "steps 0 to %d, on the token shards to come", tc.steps);
        out->work = 1;
        return TM_OK;
    }
    struct tok_corpus *c = NULL;
    if ((rc = tok_corpus_open(o->workdir, 0, &c)))
        return rc;
    char now[64], want[32];
    corpus_id(c, now, sizeof(now));
    snprintf(want, sizeof(want), "%016" PRIx64, tok_corpus_meta(c)->tokenizer_hash);
    tok_corpus_free(c);
    char *train_dir = tm_path_join(o->workdir, "train");
    int64_t latest = -1;
    struct tr_ckpt_info info;
    rc = tr_ckpt_newest(train_dir, &latest);
    if (rc == TM_OK && latest >= 0 && !o->fresh)
        rc = tr_ckpt_info(train_dir, latest, &mc, &info);
    if (rc) {
        free(train_dir);
        return rc;
    }
    int64_t stop = tc.steps;
    if (o->fresh || latest < 0) {
        tm_plan_add(out, "steps 0 to %" PRId64 " (%s)",
                    o->until > 0 && o->until < stop ? o->until : stop,
                    o->fresh ? "--fresh: earlier checkpoints are deleted" : "no checkpoint yet");
        out->work = 1;
    } else if (!info.model_same) {
        tm_plan_add(out, "ckpt-%" PRId64 " has other [model] settings", latest);
        out->stale = 1;
    } else if (strcmp(info.tokenizer, want) != 0) {
        tm_plan_add(out, "ckpt-%" PRId64 " was trained on shards of another tokenizer", latest);
        out->stale = 1;
    } else {
        int changed;
        stop = target_step(o, &tc, latest, info.corpus, info.target, now, &changed);
        if (o->until > 0 && o->until < stop)
            stop = o->until;
        if (latest >= stop && o->continue_steps > 0)
            tm_plan_add(out,
                        "ckpt-%" PRId64 " is the end of the run (the shards did not change "
                        "since; new shards would train it to step %" PRId64 ")",
                        latest, latest + o->continue_steps);
        else if (latest >= stop)
            tm_plan_add(out, "ckpt-%" PRId64 " is the end of the run", latest);
        else
            tm_plan_add(out, "steps %" PRId64 " to %" PRId64 " (%s)", latest, stop,
                        changed                ? "the shards changed since the newest checkpoint"
                        : latest < info.target ? "finishing an interrupted run"
                                               : "towards [train] steps");
        out->work = latest < stop;
    }
    free(train_dir);
    return TM_OK;
}

int tr_train_run(const struct tr_run_opts *o, cJSON *stats)
{
    struct trainer t;
    memset(&t, 0, sizeof(t));
    t.o = o;
    int lock = -1;
    int rc = TM_OK;
    int64_t done = 0, latest = -1, stop = 0, first = 0;
    struct tr_state st = {0};
    double val = NAN;
    float loss = NAN, loss_mtp = NAN;
    t.train_dir = tm_path_join(o->workdir, "train");
    t.metrics_path = tm_path_join(t.train_dir, "metrics.jsonl");
    rc = setup(&t);
    if (rc)
        goto out;
    rc = tm_mkdirs(t.train_dir);
    if (rc)
        goto out;
    lock = tm_lock_workdir(t.train_dir);
    if (lock < 0) {
        rc = lock;
        goto out;
    }

    /* Resume, or start over. */
    rc = tr_ckpt_latest(t.train_dir, &latest);
    if (rc)
        goto out;
    st.mom = t.mom;
    st.vel = t.vel;
    st.n_params = t.m.n_params;
    st.tokenizer_hash = tok_corpus_meta(t.corpus)->tokenizer_hash;
    if (o->fresh) {
        rc = tr_ckpt_remove_all(t.train_dir);
        if (rc == TM_OK && unlink(t.metrics_path) != 0 && errno != ENOENT) {
            tm_log_error("%s: unlink: %s", t.metrics_path, strerror(errno));
            rc = TM_ERR_IO;
        }
    } else if (latest >= 0) {
        rc = tr_ckpt_load(t.train_dir, latest, &t.m, &st, &t.mc);
        if (rc == TM_OK) {
            done = st.step;
            tm_log_info("train: resuming from %s/ckpt-%" PRId64, t.train_dir, latest);
        }
    }
    /* Where to stop: `steps`, or for a continued run on a corpus that changed since the
     * newest checkpoint's run, continue_steps past it; the same corpus finishes that run. */
    char now[sizeof(st.corpus)];
    corpus_id(t.corpus, now, sizeof(now));
    int changed;
    int64_t target = target_step(o, &t.tc, done, st.corpus, st.target, now, &changed);
    if (changed)
        tm_log_info("train: the token shards changed since step %" PRId64
                    " was trained: training to step %" PRId64,
                    done, target);
    st.target = target;
    memcpy(st.corpus, now, sizeof(now));
    if (rc == TM_OK)
        rc = metrics_trim(t.metrics_path, done > 0 ? done : -1); /* step 0's eval runs again */
    if (rc)
        goto out;
    t.metrics = fopen(t.metrics_path, "a");
    if (!t.metrics) {
        tm_log_error("%s: open: %s", t.metrics_path, strerror(errno));
        rc = TM_ERR_IO;
        goto out;
    }

    stop = target;
    if (o->until > 0 && o->until < stop)
        stop = o->until;
    int B = t.tc.batch, T = t.tc.seq;
    first = done;
    if (done == 0)
        rc = run_eval(&t, 0, &val);
    for (int64_t s = done; rc == TM_OK && s < stop; s++) {
        double t0 = tm_now();
        rc = load_batch(&t, TOK_SPLIT_TRAIN, t.weights, t.tc.seed, (uint64_t)s, 0);
        if (rc)
            break;
        memset(t.grads, 0, t.m.n_params * sizeof(float));
        /* On probe steps every Linear product is also computed in FP32 and in FP8 to measure
         * what FP8 does to it (tr_gemm_probe); the step's own products are unchanged. */
        struct tr_gemm_probe probe;
        int probing = t.tc.fp8_probe_every > 0 && s % t.tc.fp8_probe_every == 0;
        if (probing) {
            memset(&probe, 0, sizeof(probe));
            t.m.gemm.probe = &probe;
        }
        t.acts.grad_in_forward = 1; /* a backward pass follows: one softmax pass, not two */
        rc = tr_model_forward(&t.m, &t.acts, t.ids, t.targets, B, T, &loss, &loss_mtp);
        if (rc == TM_OK)
            rc = tr_model_backward(&t.m, &t.acts, t.grads);
        t.m.gemm.probe = NULL;
        if (rc)
            break;
        struct tr_span span = {t.grads, t.m.n_params};
        /* Clipping by global norm, its factor applied inside the update (one pass less over
         * the gradients than tr_grad_clip(), the same bits). */
        double norm = tr_grad_norm(&span, 1, t.tc.threads);
        float clip = t.tc.clip > 0.0 && norm > t.tc.clip ? (float)(t.tc.clip / norm) : 1.0f;
        double lr = tr_lr_at(&t.tc, s);
        if (isfinite(norm))
            tr_optim_step(&t.m, t.grads, t.mom, t.vel, &t.tc, (float)lr, clip, s + 1);
        else /* a diverging step: skip the update rather than write NaN into the weights */
            tm_log_warn("train: step %" PRId64 ": gradient norm %g, update skipped", s + 1, norm);
        cJSON *moe = moe_stats(&t); /* the loads of this step, before the update clears them */
        tr_model_bias_update(&t.m, t.mc.bias_gamma);
        double dt = tm_now() - t0;
        cJSON *line = cJSON_CreateObject();
        cJSON_AddNumberToObject(line, "step", (double)(s + 1));
        cJSON_AddNumberToObject(line, "loss", loss);
        cJSON_AddNumberToObject(line, "loss_mtp", loss_mtp);
        cJSON_AddNumberToObject(line, "lr", lr);
        cJSON_AddNumberToObject(line, "grad_norm", norm);
        cJSON_AddNumberToObject(line, "tokens_per_s", dt > 0 ? (double)B * T / dt : 0);
        cJSON_AddItemToObject(line, "moe", moe);
        if (probing)
            cJSON_AddItemToObject(line, "fp8_rel_err", probe_json(&probe));
        rc = metrics_line(&t, line);
        done = s + 1;
        if (rc == TM_OK && (done == target || (t.tc.eval_every && done % t.tc.eval_every == 0)))
            rc = run_eval(&t, done, &val);
        if (rc == TM_OK && (done == stop || (t.tc.ckpt_every && done % t.tc.ckpt_every == 0))) {
            st.step = done;
            rc = tr_ckpt_save(t.train_dir, &t.m, &st, &t.mc, &t.tc, t.tc.keep_ckpts);
        }
    }
    if (stats) {
        cJSON *js = tm_stats_obj(stats, "train");
        tm_stats_set_num(js, "steps_done", (double)done);
        tm_stats_set_num(js, "steps_run", (double)(done - first));
        tm_stats_set_num(js, "target_step", (double)target);
        tm_stats_set_num(js, "loss", loss);
        tm_stats_set_num(js, "val_loss", val);
        tm_stats_set_num(js, "tokens", (double)done * B * T);
    }
out:
    if (t.metrics && fclose(t.metrics) != 0 && rc == TM_OK)
        rc = TM_ERR_IO;
    if (lock >= 0)
        tm_unlock(lock);
    free(t.targets);
    free(t.ids);
    free(t.win);
    free(t.vel);
    free(t.mom);
    free(t.grads);
    tr_acts_release(&t.acts);
    tr_model_release(&t.m);
    tok_corpus_free(t.corpus);
    free(t.metrics_path);
    free(t.train_dir);
    return rc;
}
