/* train: the model of the CPU reference trainer (train/tr_model.h).
 *
 * - Configuration: defaults, a full valid file (read from disk), and every kind of bad value
 *   (out of range, not a number, unknown key, and the relations between keys) rejected with
 *   TM_ERR_USAGE and the key named in the log.
 * - Layout: the parameter count equals a closed form written out here from the configuration;
 *   the named tensors cover the array exactly once, without overlap, with unique names.
 * - Whole-model gradient check on a tiny model (V 37, D 16, 2 layers: 1 dense + 1 MoE with
 *   4 routed experts, top-2, 1 shared; 4 heads, 2 KV heads; B 2, T 6; MTP depth 1; balance loss
 *   on with alpha 0.5, init_std 0.3, nonzero selection biases, one ignored target): the
 *   analytic gradient of the total loss against central differences (L(p + h) - L(p - h)) / 2h,
 *   h = FD_STEP, for FD_SAMPLES parameters, at least FD_PER_TENSOR from every named tensor.
 *   A sample passes when
 *   |analytic - numeric| <= FD_ATOL + FD_RTOL |numeric|; all must pass, and over all samples
 *   ||analytic - numeric|| / ||numeric|| < FD_REL_NORM. A sample whose perturbation changes the
 *   router's top-K selection (at +h or -h) is skipped, since the loss is not differentiable
 *   there; skips are counted and must stay below FD_MAX_SKIPS (0 happen with this seed). Per
 *   tensor, the sampled numeric gradient must carry signal (norm > FD_MIN_SIGNAL) and match to
 *   FD_REL_NORM_TENSOR. Routed experts that received tokens have nonzero gradients, the others
 *   exactly zero. Measured (Release and ASan alike): worst err/limit 0.12, overall relative
 *   error 3.9e-4, per tensor at most 3e-3. The check fails (verified by hand-made mutations)
 *   when the gate gradient, the balance-loss gradient or the MTP path's gradient into h_L is
 *   dropped.
 * - A tiny model overfits one batch with Adam (written here) and MTP on: the total loss drops
 *   below OVERFIT_LOSS within OVERFIT_STEPS steps (measured: 4.69 -> 0.049 in 48 steps).
 * - Determinism: two forward + backward passes give identical bits, and so do 1 and 2
 *   attention and cross-entropy threads (these products are too small to be split, see
 *   tr_ops.h), and the gradient written by the forward pass (grad_in_forward). The bf16 GEMM
 *   mode changes the loss only slightly.
 * - Errors: T over the context, B T over the activations, ids and targets out of range; T 1
 *   (no MTP position) works with an MTP loss of 0.
 * - The bias update through the model: with routing skewed by a +1 bias on expert 0, repeated
 *   forward passes and tr_model_bias_update() (no weight updates) bring every expert's load
 *   within 10% of the mean within BALANCE_STEPS steps (gamma 0.01, measured 54 steps); with
 *   gamma 0 they never do. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"
#include "tm_err.h"
#include "tm_log.h"
#include "tm_rand.h"
#include "tr_model.h"

/* Finite differences. The losses come back as float, whose rounding (~2e-7 of a loss near 3.6)
 * divided by 2h sets the noise floor: 4e-5 at h = 1e-2 (h = 1e-3 would make it 4e-4). The
 * truncation error of the central difference is O(h^2). The gradient check model uses
 * init_std 0.3 so that the gradients sit well above that floor. The worst values measured are
 * printed; see the report in the test. */
#define FD_STEP       1e-2f
#define FD_SAMPLES    300
#define FD_PER_TENSOR 4
#define FD_ATOL       3e-4
#define FD_RTOL       3e-2
#define FD_REL_NORM   1e-2
#define FD_MAX_SKIPS  15 /* 5% of the samples */
/* Per tensor: the norm of its sampled numeric gradients must exceed FD_MIN_SIGNAL (so every
 * tensor's check means something: 25 times the noise floor above), and the relative error of
 * its samples must stay under FD_REL_NORM_TENSOR. */
#define FD_MIN_SIGNAL      1e-3
#define FD_REL_NORM_TENSOR 3e-2

#define OVERFIT_STEPS 300
#define OVERFIT_LOSS  0.05f

#define BALANCE_STEPS 300
#define BALANCE_TOL   0.10

static uint64_t rng = 7;

static int rand_int(int n)
{
    return (int)(tm_splitmix64(&rng) % (uint64_t)n);
}

/* The configuration of the gradient check. */
static void tiny_config(struct tr_config *c)
{
    tr_config_defaults(c);
    c->vocab_size = 37;
    c->context = 8;
    c->layers = 2;
    c->dense_layers = 1;
    c->d_model = 16;
    c->n_heads = 4;
    c->n_kv_heads = 2;
    c->head_dim = 0;
    c->d_ff = 24;
    c->n_routed_experts = 4;
    c->n_shared_experts = 1;
    c->top_k = 2;
    c->d_expert = 8;
    c->route_scale = 2.5f;
    c->balance_alpha = 0.5f; /* far above DeepSeek-V3's 1e-4, so its gradient is visible */
    c->mtp_depth = 1;
    c->mtp_lambda = 0.3f;
    c->seed = 11;
    c->init_std = 0.3f;
}

static void random_batch(int32_t *ids, int32_t *tgt, int B, int T, int V)
{
    for (int b = 0; b < B; b++) {
        int32_t seq[64];
        for (int t = 0; t <= T; t++)
            seq[t] = rand_int(V);
        for (int t = 0; t < T; t++) {
            ids[b * T + t] = seq[t];
            tgt[b * T + t] = seq[t + 1];
        }
    }
}

/* ---- configuration ------------------------------------------------------------------------- */

static void test_config_defaults(void **state)
{
    (void)state;
    struct tr_config c;
    assert_int_equal(tr_config_parse(&c, "", 0, "empty"), TM_OK);
    assert_int_equal(c.vocab_size, 256);
    assert_int_equal(c.head_dim, 16);
    assert_int_equal(c.mtp_depth, 1);
    assert_true(c.mtp_lambda == 0.3f);
    assert_true(c.bias_gamma == 0.001f);
    assert_true(c.balance_alpha == 0.0f);
    assert_true(c.init_std == 0.02f);
    /* head_dim 0 resolves to d_model / n_heads. */
    const char *t = "[model]\nd_model = 48\nn_heads = 4\nn_kv_heads = 4\nhead_dim = 0\n";
    assert_int_equal(tr_config_parse(&c, t, strlen(t), "t"), TM_OK);
    assert_int_equal(c.head_dim, 12);
}

static void test_config_full_file(void **state)
{
    (void)state;
    const char *text = "# a full model file\n"
                       "[model]\n"
                       "vocab_size = 1000\ncontext = 128\nlayers = 3\ndense_layers = 2\n"
                       "d_model = 32\nn_heads = 8\nn_kv_heads = 2\nhead_dim = 6\nd_ff = 80\n"
                       "rope_theta = 50000\nnorm_eps = 1e-5\nn_routed_experts = 16\n"
                       "n_shared_experts = 2\ntop_k = 4\nd_expert = 12\nroute_scale = 2.5\n"
                       "bias_gamma = 0.002\nbalance_alpha = 0.0001\nmtp_depth = 0\n"
                       "mtp_lambda = 0.1\nseed = 18446744073709551615\ninit_std = 0.006\n"
                       "[train]\nlr = 3e-4\n";
    char *dir = tu_new_tmpdir("tr_model");
    char path[4200];
    snprintf(path, sizeof(path), "%s/model.ini", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    struct tr_config c;
    assert_int_equal(tr_config_load(&c, path), TM_OK);
    assert_int_equal(tu_remove_tmpdir(dir), 0);
    assert_int_equal(c.vocab_size, 1000);
    assert_int_equal(c.context, 128);
    assert_int_equal(c.layers, 3);
    assert_int_equal(c.dense_layers, 2);
    assert_int_equal(c.d_model, 32);
    assert_int_equal(c.n_heads, 8);
    assert_int_equal(c.n_kv_heads, 2);
    assert_int_equal(c.head_dim, 6);
    assert_int_equal(c.d_ff, 80);
    assert_true(c.rope_theta == 50000.0);
    assert_true(c.norm_eps == 1e-5f);
    assert_int_equal(c.n_routed_experts, 16);
    assert_int_equal(c.n_shared_experts, 2);
    assert_int_equal(c.top_k, 4);
    assert_int_equal(c.d_expert, 12);
    assert_true(c.route_scale == 2.5f);
    assert_true(c.bias_gamma == 0.002f);
    assert_true(c.balance_alpha == 0.0001f);
    assert_int_equal(c.mtp_depth, 0);
    assert_true(c.mtp_lambda == 0.1f);
    assert_true(c.seed == UINT64_MAX);
    assert_true(c.init_std == 0.006f);
    FILE *q = tu_log_quiet();
    assert_int_equal(tr_config_load(&c, "/nonexistent/model.ini"), TM_ERR_IO);
    tu_log_restore(q);
}

static void test_config_invalid(void **state)
{
    (void)state;
    static const struct {
        const char *text, *key;
    } bad[] = {
        {"vocab_size = 1", "vocab_size"},
        {"vocab_size = 12x", "vocab_size"},
        {"context = 0", "context"},
        {"layers = 0", "layers"},
        {"layers = 2000", "layers"},
        {"d_model = -3", "d_model"},
        {"n_heads = 2.5", "n_heads"},
        {"d_ff = ", "d_ff"},
        {"rope_theta = abc", "rope_theta"},
        {"rope_theta = 1", "rope_theta"},
        {"norm_eps = 0", "norm_eps"},
        {"norm_eps = nan", "norm_eps"},
        {"n_routed_experts = 0", "n_routed_experts"},
        {"n_shared_experts = 65", "n_shared_experts"},
        {"top_k = 0", "top_k"},
        {"d_expert = 0", "d_expert"},
        {"route_scale = 0", "route_scale"},
        {"bias_gamma = 1.5", "bias_gamma"},
        {"balance_alpha = -0.1", "balance_alpha"},
        {"mtp_depth = 2", "mtp_depth"},
        {"mtp_lambda = 11", "mtp_lambda"},
        {"seed = -1", "seed"},
        {"init_std = 0", "init_std"},
        {"n_experts = 4", "n_experts"},
        /* relations between keys */
        {"n_heads = 4\nn_kv_heads = 3", "n_kv_heads"},
        {"n_heads = 2\nn_kv_heads = 4", "n_kv_heads"},
        {"n_routed_experts = 8\ntop_k = 9", "top_k"},
        {"layers = 4\ndense_layers = 5", "dense_layers"},
        {"head_dim = 7", "head_dim"},
        {"d_model = 30\nn_heads = 4\nn_kv_heads = 4\nhead_dim = 0", "head_dim"},
        {"vocab_size = 16777216\nd_model = 65536", "parameters"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char text[256];
        snprintf(text, sizeof(text), "[model]\n%s\n", bad[i].text);
        struct tu_capture cap;
        tu_capture_start(&cap, 0);
        struct tr_config c;
        int rc = tr_config_parse(&c, text, strlen(text), "bad.ini");
        const char *log = tu_capture_text(&cap);
        int named = strstr(log, bad[i].key) != NULL;
        if (rc != TM_ERR_USAGE || !named)
            fprintf(stderr, "case %zu '%s': rc %d, log: %s\n", i, bad[i].text, rc, log);
        tu_capture_stop(&cap);
        free(cap.text);
        assert_int_equal(rc, TM_ERR_USAGE);
        assert_true(named);
    }
    /* A model built in code goes through the same checks. */
    struct tr_config c;
    tiny_config(&c);
    c.top_k = 5;
    struct tr_model m;
    FILE *q = tu_log_quiet();
    assert_int_equal(tr_model_init(&m, &c), TM_ERR_USAGE);
    tu_log_restore(q);
}

/* ---- layout -------------------------------------------------------------------------------- */

static int by_offset(const void *a, const void *b)
{
    const struct tr_tensor *x = *(const struct tr_tensor *const *)a;
    const struct tr_tensor *y = *(const struct tr_tensor *const *)b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

static void test_layout(void **state)
{
    (void)state;
    struct tr_config c;
    tiny_config(&c);
    c.layers = 3; /* two MoE layers */
    c.n_shared_experts = 2;
    for (int mtp = 0; mtp <= 1; mtp++) {
        c.mtp_depth = mtp;
        struct tr_model m;
        assert_int_equal(tr_model_init(&m, &c), TM_OK);
        /* The closed form, written out: V 37, D 16, hd 4, H 4, Hkv 2, F 24, E 4, S 2, De 8. */
        size_t V = 37, D = 16, qd = 16, kvd = 8, F = 24, E = 4, S = 2, De = 8;
        size_t attn = D + qd * D + 2 * kvd * D + D * qd + D;
        size_t dense = 3 * F * D, moe = E * D + 3 * (S + E) * De * D;
        size_t want = V * D + (attn + dense) + 2 * (attn + moe) + D + V * D;
        if (mtp)
            want += 2 * D + D * 2 * D + attn + dense + D;
        assert_int_equal(m.n_params, want);
        assert_int_equal(tr_config_param_count(&m.cfg), want);
        assert_int_equal(m.n_moe_layers, 2);

        const struct tr_tensor **sorted = malloc((size_t)m.n_tensors * sizeof(*sorted));
        assert_non_null(sorted);
        for (int i = 0; i < m.n_tensors; i++)
            sorted[i] = &m.tensors[i];
        qsort(sorted, (size_t)m.n_tensors, sizeof(*sorted), by_offset);
        size_t end = 0;
        for (int i = 0; i < m.n_tensors; i++) {
            const struct tr_tensor *t = sorted[i];
            assert_int_equal(t->offset, end);
            size_t n = 1;
            for (int d = 0; d < t->ndim; d++)
                n *= (size_t)t->shape[d];
            assert_int_equal(n, t->numel);
            assert_true(t->numel > 0);
            end += t->numel;
            for (int j = 0; j < i; j++)
                assert_string_not_equal(t->name, sorted[j]->name);
        }
        assert_int_equal(end, m.n_params);
        free(sorted);

        const struct tr_tensor *t = tr_model_tensor(&m, "layers.2.moe.experts.w2");
        assert_non_null(t);
        assert_int_equal(t->ndim, 3);
        assert_int_equal(t->shape[0], 4);
        assert_int_equal(t->shape[1], 16);
        assert_int_equal(t->shape[2], 8);
        assert_non_null(tr_model_tensor(&m, "layers.0.ffn.w1"));
        assert_null(tr_model_tensor(&m, "layers.0.moe.router"));
        assert_non_null(tr_model_tensor(&m, "layers.1.attn.wk"));
        assert_non_null(tr_model_tensor(&m, "embed"));
        assert_non_null(tr_model_tensor(&m, "head"));
        if (mtp) {
            t = tr_model_tensor(&m, "mtp.proj");
            assert_non_null(t);
            assert_int_equal(t->shape[0], 16);
            assert_int_equal(t->shape[1], 32);
            assert_non_null(tr_model_tensor(&m, "mtp.block.ffn.w2"));
            assert_non_null(tr_model_tensor(&m, "mtp.norm"));
        } else {
            assert_null(tr_model_tensor(&m, "mtp.proj"));
        }
        tr_model_release(&m);
    }
}

/* ---- gradient check ------------------------------------------------------------------------ */

struct fixture {
    struct tr_model m;
    struct tr_acts a;
    int32_t ids[64], tgt[64];
    int B, T;
};

static float total_loss(struct fixture *f)
{
    assert_int_equal(tr_model_forward(&f->m, &f->a, f->ids, f->tgt, f->B, f->T, NULL, NULL), TM_OK);
    return f->a.loss_total;
}

/* Whether the MoE selections of the last forward pass equal `sel` (saved from the baseline). */
static int same_selection(const struct fixture *f, const int32_t *sel)
{
    size_t nk = (size_t)f->B * f->T * f->m.cfg.top_k, at = 0;
    for (int l = 0; l < f->m.cfg.layers; l++) {
        if (!f->m.blocks[l].moe)
            continue;
        if (memcmp(f->a.blk[l].sel, sel + at, nk * sizeof(*sel)) != 0)
            return 0;
        at += nk;
    }
    return 1;
}

static void test_gradcheck(void **state)
{
    (void)state;
    rng = 7; /* each test draws the same data whatever ran before */
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    struct tr_config c;
    tiny_config(&c);
    assert_int_equal(tr_model_init(&f->m, &c), TM_OK);
    f->B = 2;
    f->T = 6;
    assert_int_equal(tr_acts_init(&f->a, &f->m, (size_t)(f->B * f->T)), TM_OK);
    random_batch(f->ids, f->tgt, f->B, f->T, c.vocab_size);
    f->tgt[3] = TR_XENT_IGNORE; /* an ignored position in each loss */
    /* Nonzero selection biases, so the check covers a selection that differs from plain top-K. */
    for (int e = 0; e < c.n_routed_experts; e++)
        f->m.router_bias[e] = 0.05f * (float)(e - 1);

    size_t P = f->m.n_params;
    float *grad = calloc(P, sizeof(float));
    assert_non_null(grad);
    total_loss(f);
    assert_true(f->a.loss_bal > 0.0f);
    assert_int_equal(tr_model_backward(&f->m, &f->a, grad), TM_OK);
    size_t nk = (size_t)f->B * f->T * c.top_k;
    int32_t *sel0 = malloc(nk * sizeof(*sel0));
    assert_non_null(sel0);
    memcpy(sel0, f->a.blk[1].sel, nk * sizeof(*sel0));

    /* The skip guard sees a selection change: a bias that turns every token to expert 3. */
    float bias3 = f->m.router_bias[3];
    f->m.router_bias[3] = 10.0f;
    total_loss(f);
    assert_false(same_selection(f, sel0));
    f->m.router_bias[3] = bias3;
    total_loss(f);
    assert_true(same_selection(f, sel0));

    /* Experts that got tokens have gradients; the others none. */
    const struct tr_tensor *ew1 = tr_model_tensor(&f->m, "layers.1.moe.experts.w1");
    int64_t load[4] = {0};
    tr_router_count_load(load, sel0, f->B * f->T, c.top_k, c.n_routed_experts);
    for (int e = 0; e < c.n_routed_experts; e++) {
        size_t per = ew1->numel / (size_t)c.n_routed_experts;
        double sq = 0;
        for (size_t j = 0; j < per; j++)
            sq += (double)grad[ew1->offset + e * per + j] * grad[ew1->offset + e * per + j];
        assert_true(load[e] > 0 ? sq > 0 : sq == 0);
    }

    /* The sample: FD_PER_TENSOR from each tensor, the rest anywhere. */
    size_t idx[FD_SAMPLES];
    int n = 0;
    for (int t = 0; t < f->m.n_tensors; t++)
        for (int k = 0; k < FD_PER_TENSOR; k++)
            idx[n++] = f->m.tensors[t].offset + (size_t)rand_int((int)f->m.tensors[t].numel);
    assert_true(n <= FD_SAMPLES);
    while (n < FD_SAMPLES)
        idx[n++] = (size_t)rand_int((int)P);

    int skips = 0, fails = 0;
    double worst = 0, num2 = 0, diff2 = 0;
    double *t_num2 = calloc((size_t)f->m.n_tensors, sizeof(double));
    double *t_diff2 = calloc((size_t)f->m.n_tensors, sizeof(double));
    assert_true(t_num2 && t_diff2);
    for (int s = 0; s < FD_SAMPLES; s++) {
        float *p = &f->m.params[idx[s]];
        float keep = *p;
        *p = keep + FD_STEP;
        double lp = total_loss(f);
        int same = same_selection(f, sel0);
        *p = keep - FD_STEP;
        double lm = total_loss(f);
        same = same && same_selection(f, sel0);
        *p = keep;
        if (!same) {
            skips++;
            continue;
        }
        double num = (lp - lm) / (2.0 * FD_STEP), an = grad[idx[s]];
        double err = fabs(an - num), lim = FD_ATOL + FD_RTOL * fabs(num);
        if (err / lim > worst)
            worst = err / lim;
        num2 += num * num;
        diff2 += (an - num) * (an - num);
        int t = 0;
        while (t + 1 < f->m.n_tensors && f->m.tensors[t + 1].offset <= idx[s])
            t++;
        t_num2[t] += num * num;
        t_diff2[t] += (an - num) * (an - num);
        if (err > lim) {
            fails++;
            fprintf(stderr, "gradcheck: param %zu: analytic %.6g numeric %.6g\n", idx[s], an, num);
        }
    }
    double rel = sqrt(diff2 / num2);
    fprintf(stderr,
            "gradcheck: %d samples over %d tensors, %d skipped for a selection change, worst "
            "err/limit %.3f, ||a - n|| / ||n|| = %.2e\n",
            FD_SAMPLES, f->m.n_tensors, skips, worst, rel);
    /* Per tensor: the sampled gradient carries signal, and matches to FD_REL_NORM_TENSOR. */
    for (int t = 0; t < f->m.n_tensors; t++) {
        double r = t_num2[t] > 0 ? sqrt(t_diff2[t] / t_num2[t]) : INFINITY;
        if (!(sqrt(t_num2[t]) > FD_MIN_SIGNAL && r < FD_REL_NORM_TENSOR))
            fprintf(stderr, "gradcheck: tensor %s: |numeric| %.3g, relative error %.3g\n",
                    f->m.tensors[t].name, sqrt(t_num2[t]), r);
        if (getenv("TR_GRADCHECK_VERBOSE"))
            fprintf(stderr, "  %-28s |numeric| %.3g rel %.3g\n", f->m.tensors[t].name,
                    sqrt(t_num2[t]), r);
        assert_true(sqrt(t_num2[t]) > FD_MIN_SIGNAL);
        assert_true(r < FD_REL_NORM_TENSOR);
    }
    assert_int_equal(fails, 0);
    assert_true(skips <= FD_MAX_SKIPS);
    assert_true(rel < FD_REL_NORM);
    free(t_num2);
    free(t_diff2);

    free(sel0);
    free(grad);
    tr_acts_release(&f->a);
    tr_model_release(&f->m);
    free(f);
}

/* ---- overfitting one batch ------------------------------------------------------------------ */

static void test_overfit(void **state)
{
    (void)state;
    rng = 8; /* each test draws the same data whatever ran before */
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    struct tr_config c;
    tiny_config(&c);
    c.init_std = 0.02f;
    c.balance_alpha = 0.0f;
    c.context = 16;
    assert_int_equal(tr_model_init(&f->m, &c), TM_OK);
    f->B = 2;
    f->T = 16;
    assert_int_equal(tr_acts_init(&f->a, &f->m, (size_t)(f->B * f->T)), TM_OK);
    random_batch(f->ids, f->tgt, f->B, f->T, c.vocab_size);

    /* Adam (Kingma and Ba 2015) with its usual betas, no weight decay. */
    const float lr = 1e-2f, b1 = 0.9f, b2 = 0.999f, eps = 1e-8f;
    size_t P = f->m.n_params;
    float *g = calloc(P, sizeof(float)), *mom = calloc(P, sizeof(float));
    float *var = calloc(P, sizeof(float));
    assert_true(g && mom && var);
    float first = 0, loss = 0;
    int step;
    for (step = 1; step <= OVERFIT_STEPS; step++) {
        loss = total_loss(f);
        if (step == 1)
            first = loss;
        if (loss < OVERFIT_LOSS)
            break;
        memset(g, 0, P * sizeof(float));
        assert_int_equal(tr_model_backward(&f->m, &f->a, g), TM_OK);
        float c1 = 1.0f - powf(b1, (float)step), c2 = 1.0f - powf(b2, (float)step);
        for (size_t i = 0; i < P; i++) {
            mom[i] = b1 * mom[i] + (1 - b1) * g[i];
            var[i] = b2 * var[i] + (1 - b2) * g[i] * g[i];
            f->m.params[i] -= lr * (mom[i] / c1) / (sqrtf(var[i] / c2) + eps);
        }
        tr_model_bias_update(&f->m, c.bias_gamma);
    }
    fprintf(stderr, "overfit: total loss %.4f -> %.4f (main %.4f, mtp %.4f) after %d steps\n",
            first, loss, f->a.loss_main, f->a.loss_mtp, step);
    assert_true(loss < OVERFIT_LOSS);
    assert_true(f->a.loss_mtp > 0.0f && f->a.loss_mtp < OVERFIT_LOSS / c.mtp_lambda);
    free(g);
    free(mom);
    free(var);
    tr_acts_release(&f->a);
    tr_model_release(&f->m);
    free(f);
}

/* ---- determinism ---------------------------------------------------------------------------- */

static void run_once(struct fixture *f, float *grad, float *loss)
{
    memset(grad, 0, f->m.n_params * sizeof(float));
    *loss = total_loss(f);
    assert_int_equal(tr_model_backward(&f->m, &f->a, grad), TM_OK);
}

static void test_determinism(void **state)
{
    (void)state;
    rng = 9; /* each test draws the same data whatever ran before */
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    struct tr_config c;
    tiny_config(&c);
    c.context = 16;
    assert_int_equal(tr_model_init(&f->m, &c), TM_OK);
    f->B = 3;
    f->T = 16;
    assert_int_equal(tr_acts_init(&f->a, &f->m, (size_t)(f->B * f->T)), TM_OK);
    random_batch(f->ids, f->tgt, f->B, f->T, c.vocab_size);
    size_t P = f->m.n_params;
    float *g1 = malloc(P * sizeof(float)), *g2 = malloc(P * sizeof(float));
    assert_true(g1 && g2);
    float l1, l2;
    run_once(f, g1, &l1);
    run_once(f, g2, &l2);
    assert_memory_equal(&l1, &l2, sizeof(float));
    assert_memory_equal(g1, g2, P * sizeof(float));
    f->m.threads = 2;
    run_once(f, g2, &l2);
    assert_memory_equal(&l1, &l2, sizeof(float));
    assert_memory_equal(g1, g2, P * sizeof(float));
    /* The cross-entropy gradients written by the forward pass (the trainer's steps) are the
     * same bits as those the backward pass computes, for the main and the MTP loss. */
    f->a.grad_in_forward = 1;
    run_once(f, g2, &l2);
    assert_true(f->a.logits_hold_grad == 0); /* consumed by the backward pass */
    f->a.grad_in_forward = 0;
    assert_memory_equal(&l1, &l2, sizeof(float));
    assert_memory_equal(g1, g2, P * sizeof(float));

    /* The bf16 GEMM mode is one switch on the model: it changes the bits, and the loss by
     * about bf16's relative precision (2^-8) times the logits' scale (measured 2.3e-3 here). */
    f->m.gemm.mode = TR_GEMM_BF16;
    run_once(f, g2, &l2);
    fprintf(stderr, "determinism: loss f32 %.6f, bf16 %.6f\n", l1, l2);
    assert_true(l1 != l2 && fabsf(l1 - l2) < 2e-2f);
    f->m.gemm.mode = TR_GEMM_F32;

    /* The same seed builds the same parameters. */
    struct tr_model m2;
    assert_int_equal(tr_model_init(&m2, &c), TM_OK);
    assert_memory_equal(m2.params, f->m.params, P * sizeof(float));
    tr_model_release(&m2);
    free(g1);
    free(g2);
    tr_acts_release(&f->a);
    tr_model_release(&f->m);
    free(f);
}

static void test_forward_errors(void **state)
{
    (void)state;
    rng = 10; /* each test draws the same data whatever ran before */
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    struct tr_config c;
    tiny_config(&c);
    assert_int_equal(tr_model_init(&f->m, &c), TM_OK);
    FILE *q = tu_log_quiet();
    assert_int_equal(tr_acts_init(&f->a, &f->m, 0), TM_ERR_USAGE);
    assert_int_equal(tr_acts_init(&f->a, &f->m, 16), TM_OK);
    random_batch(f->ids, f->tgt, 2, 8, c.vocab_size);
    float lm = -1, lt = -1;
    /* T over the context, B T over the activations, T 0. */
    assert_int_equal(tr_model_forward(&f->m, &f->a, f->ids, f->tgt, 1, 9, &lm, &lt), TM_ERR_USAGE);
    assert_int_equal(tr_model_forward(&f->m, &f->a, f->ids, f->tgt, 3, 8, &lm, &lt), TM_ERR_USAGE);
    assert_int_equal(tr_model_forward(&f->m, &f->a, f->ids, f->tgt, 2, 0, &lm, &lt), TM_ERR_USAGE);
    /* An id and a target outside the vocabulary. */
    f->ids[5] = c.vocab_size;
    assert_int_equal(tr_model_forward(&f->m, &f->a, f->ids, f->tgt, 2, 8, &lm, &lt), TM_ERR_USAGE);
    f->ids[5] = 0;
    f->tgt[5] = -2;
    assert_int_equal(tr_model_forward(&f->m, &f->a, f->ids, f->tgt, 2, 8, &lm, &lt), TM_ERR_USAGE);
    tu_log_restore(q);
    /* T 1: no MTP position, so its loss is 0 and the backward pass skips it. */
    f->tgt[5] = 3;
    assert_int_equal(tr_model_forward(&f->m, &f->a, f->ids, f->tgt, 2, 1, &lm, &lt), TM_OK);
    assert_true(lm > 0 && lt == 0.0f);
    float *g = calloc(f->m.n_params, sizeof(float));
    assert_non_null(g);
    assert_int_equal(tr_model_backward(&f->m, &f->a, g), TM_OK);
    assert_true(g[tr_model_tensor(&f->m, "mtp.proj")->offset] == 0.0f);
    free(g);
    tr_acts_release(&f->a);
    tr_model_release(&f->m);
    free(f);
}

/* ---- bias update ------------------------------------------------------------------------------
 */

/* Runs up to BALANCE_STEPS forward passes with bias updates; returns the first step at which
 * every expert's load was within BALANCE_TOL of the mean, or 0 if none was. */
static int steps_to_balance(float gamma)
{
    rng = 11; /* each test draws the same data whatever ran before */
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    struct tr_config c;
    tiny_config(&c);
    c.init_std = 0.2f;
    c.balance_alpha = 0.0f;
    c.context = 16;
    assert_int_equal(tr_model_init(&f->m, &c), TM_OK);
    f->B = 4;
    f->T = 16;
    assert_int_equal(tr_acts_init(&f->a, &f->m, (size_t)(f->B * f->T)), TM_OK);
    random_batch(f->ids, f->tgt, f->B, f->T, c.vocab_size);
    int E = c.n_routed_experts, found = 0;
    f->m.router_bias[0] = 1.0f; /* every token picks expert 0 */
    for (int step = 1; step <= BALANCE_STEPS && !found; step++) {
        total_loss(f);
        double mean = (double)f->B * f->T * c.top_k / E;
        int ok = 1;
        for (int e = 0; e < E; e++)
            ok = ok && fabs((double)f->m.load[e] - mean) <= BALANCE_TOL * mean;
        if (step == 1)
            assert_int_equal(f->m.load[0], f->B * f->T);
        if (ok)
            found = step;
        tr_model_bias_update(&f->m, gamma);
    }
    tr_acts_release(&f->a);
    tr_model_release(&f->m);
    free(f);
    return found;
}

static void test_bias_balance(void **state)
{
    (void)state;
    int steps = steps_to_balance(0.01f);
    fprintf(stderr, "bias update: loads within %.0f%% of the mean after %d steps (gamma 0.01)\n",
            100 * BALANCE_TOL, steps);
    assert_true(steps > 0);
    assert_int_equal(steps_to_balance(0.0f), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_defaults), cmocka_unit_test(test_config_full_file),
        cmocka_unit_test(test_config_invalid),  cmocka_unit_test(test_layout),
        cmocka_unit_test(test_gradcheck),       cmocka_unit_test(test_overfit),
        cmocka_unit_test(test_determinism),     cmocka_unit_test(test_forward_errors),
        cmocka_unit_test(test_bias_balance),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
