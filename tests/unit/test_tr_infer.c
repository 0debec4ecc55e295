/* train: inference with the reference model (train/tr_infer.h).
 *
 * Model: tiny and random (V 50, context 32, D 16, 2 layers: 1 dense + 1 MoE with 4 routed
 * experts, top 2, 1 shared; 4 heads, 2 KV heads; MTP depth 1, which inference skips),
 * init_std 0.3 so that the logits are far from zero, and router selection biases drawn in
 * [-BIAS_RANGE, BIAS_RANGE] so that the biased selection is exercised.
 *
 * - KV cache: for a random sequence of SEQ_T tokens, tr_infer_step() on every prefix at once,
 *   on the tokens one by one, and on uneven chunks (3, 1, 5, 2, 4, ...) gives the logits of
 *   tr_model_forward() (targets all ignored) at the same positions: per row,
 *   max |infer - forward| <= LOGIT_RTOL * max |forward| (the row's scale, so logits near zero
 *   do not make the test meaningless). Measured worst: 8.7e-7 (Release and ASan alike).
 *   Inference leaves the model's expert load counters untouched.
 * - Greedy generation equals a slow reference that reruns the full forward pass on the whole
 *   sequence and takes the argmax (lowest id on ties), for GREEDY_STEPS tokens.
 * - Sampler, on a fixed logit vector: temperature 0 is the argmax (ties to the lowest id, NaN
 *   never chosen, nor by sampling); top_p 1e-6 is the argmax too; temperature 1, top_p 1 matches
 * the softmax frequencies over FREQ_DRAWS draws within FREQ_SIGMAS binomial standard deviations per
 *   token; top_p 0.7 never draws outside the nucleus and matches its renormalized
 *   probabilities the same way; the same seed repeats the same draws and another seed does
 *   not; temperature 0.5 gives the top token a higher frequency than temperature 2; bad
 *   settings and all-NaN logits are errors.
 * - Generation stops: at the end-of-text token (not delivered), at max_new (0 included), at
 *   the context limit as a clean TR_STOP_CONTEXT after context - prompt + 1 tokens, and when
 *   the callback asks; a prompt longer than the cache, a step past the context and a bad id
 *   are errors that leave the cache as it was. Sampled generation is repeatable for a seed. */
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
#include "tm_rand.h"
#include "tr_infer.h"
#include "tr_model.h"

#define SEQ_T        32 /* the whole context */
#define LOGIT_RTOL   1e-5
#define BIAS_RANGE   0.3f
#define GREEDY_STEPS 10
#define FREQ_DRAWS   20000
/* 5 standard deviations of a binomial frequency: a deterministic test (fixed seed), and a
 * correct sampler fails it with probability about 6e-7 per token for any other seed. */
#define FREQ_SIGMAS 5.0

static const char *model_ini = "[model]\n"
                               "vocab_size = 50\ncontext = 32\nlayers = 2\ndense_layers = 1\n"
                               "d_model = 16\nn_heads = 4\nn_kv_heads = 2\nd_ff = 24\n"
                               "n_routed_experts = 4\nn_shared_experts = 1\ntop_k = 2\n"
                               "d_expert = 8\nmtp_depth = 1\ninit_std = 0.3\nseed = 11\n";

struct fix {
    struct tr_model m;
    struct tr_acts a;
    struct tr_kv_cache kv;
    int V, ctx;
};

static int setup(void **state)
{
    struct fix *f = calloc(1, sizeof(*f));
    struct tr_config c;
    if (!f || tr_config_parse(&c, model_ini, strlen(model_ini), "infer.ini") != TM_OK ||
        tr_model_init(&f->m, &c) != TM_OK)
        return -1;
    uint64_t r = 99;
    for (int i = 0; i < f->m.n_moe_layers * c.n_routed_experts; i++)
        f->m.router_bias[i] =
            BIAS_RANGE * (2.0f * (float)((double)(tm_splitmix64(&r) >> 11) * 0x1.0p-53) - 1.0f);
    f->V = c.vocab_size;
    f->ctx = c.context;
    if (tr_acts_init(&f->a, &f->m, (size_t)c.context) != TM_OK ||
        tr_kv_cache_init(&f->kv, &f->m, 0) != TM_OK)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fix *f = *state;
    tr_kv_cache_release(&f->kv);
    tr_acts_release(&f->a);
    tr_model_release(&f->m);
    free(f);
    return 0;
}

static void random_ids(int32_t *ids, int n, int V, uint64_t seed)
{
    for (int i = 0; i < n; i++)
        ids[i] = (int32_t)(tm_splitmix64(&seed) % (uint64_t)V);
}

/* The main-model logits of every position of ids [T], by the training forward pass. */
static void reference_logits(struct fix *f, const int32_t *ids, int T, float *out)
{
    int32_t tgt[64];
    for (int i = 0; i < T; i++)
        tgt[i] = TR_XENT_IGNORE;
    assert_int_equal(tr_model_forward(&f->m, &f->a, ids, tgt, 1, T, NULL, NULL), TM_OK);
    memcpy(out, f->a.logits, (size_t)T * f->V * sizeof(float));
}

/* max |got - ref| / max |ref| over one row. */
static double row_err(const float *got, const float *ref, int V)
{
    double d = 0.0, scale = 0.0;
    for (int i = 0; i < V; i++) {
        d = fmax(d, fabs((double)got[i] - ref[i]));
        scale = fmax(scale, fabs((double)ref[i]));
    }
    assert_true(scale > 0.1); /* the check is meaningful: logits are not all near zero */
    return d / scale;
}

static int argmax(const float *x, int V)
{
    int b = 0;
    for (int i = 1; i < V; i++)
        if (x[i] > x[b])
            b = i;
    return b;
}

static void test_kv_matches_forward(void **state)
{
    struct fix *f = *state;
    int V = f->V;
    int32_t ids[SEQ_T];
    random_ids(ids, SEQ_T, V, 5);
    float *ref = malloc((size_t)SEQ_T * V * sizeof(float));
    float *got = malloc((size_t)V * sizeof(float));
    reference_logits(f, ids, SEQ_T, ref);
    int64_t load[64];
    int n_load = f->m.n_moe_layers * f->m.cfg.n_routed_experts;
    memcpy(load, f->m.load, (size_t)n_load * sizeof(int64_t));
    double worst = 0.0;

    /* Every prefix in one step. */
    for (int t = 1; t <= SEQ_T; t++) {
        tr_kv_cache_reset(&f->kv);
        assert_int_equal(tr_infer_step(&f->m, &f->kv, ids, t, got), TM_OK);
        assert_int_equal(f->kv.len, t);
        worst = fmax(worst, row_err(got, ref + (size_t)(t - 1) * V, V));
    }
    /* One token at a time. */
    tr_kv_cache_reset(&f->kv);
    for (int t = 0; t < SEQ_T; t++) {
        assert_int_equal(tr_infer_step(&f->m, &f->kv, ids + t, 1, got), TM_OK);
        worst = fmax(worst, row_err(got, ref + (size_t)t * V, V));
    }
    /* Uneven chunks. */
    static const int chunk[] = {3, 1, 5, 2, 4, 1, 6, 2};
    tr_kv_cache_reset(&f->kv);
    int pos = 0;
    for (int i = 0; pos < SEQ_T; i++) {
        int n = chunk[i % 8];
        if (n > SEQ_T - pos)
            n = SEQ_T - pos;
        assert_int_equal(tr_infer_step(&f->m, &f->kv, ids + pos, n, got), TM_OK);
        pos += n;
        assert_int_equal(f->kv.len, pos);
        worst = fmax(worst, row_err(got, ref + (size_t)(pos - 1) * V, V));
    }
    fprintf(stderr, "kv cache: worst max|infer - forward| / max|forward| = %.2e (limit %.0e)\n",
            worst, LOGIT_RTOL);
    assert_true(worst <= LOGIT_RTOL);
    assert_memory_equal(load, f->m.load, (size_t)n_load * sizeof(int64_t));
    free(ref);
    free(got);
}

/* Collects generated tokens; returns non-zero once stop_after tokens arrived (0: never). */
struct col {
    int32_t ids[64];
    int n, stop_after;
};

static int collect(void *ctx, int32_t id)
{
    struct col *c = ctx;
    c->ids[c->n++] = id;
    return c->stop_after > 0 && c->n >= c->stop_after;
}

static void test_greedy_matches_full_forward(void **state)
{
    struct fix *f = *state;
    int V = f->V;
    int32_t seq[64];
    int n_prompt = 4, n = n_prompt;
    random_ids(seq, n_prompt, V, 17);
    float *ref = malloc((size_t)f->ctx * V * sizeof(float));
    for (int i = 0; i < GREEDY_STEPS; i++) {
        reference_logits(f, seq, n, ref);
        seq[n] = argmax(ref + (size_t)(n - 1) * V, V);
        n++;
    }
    struct tr_sampler s;
    tr_sampler_init(&s, 0.0f, 1.0f, 1);
    struct col c = {.stop_after = 0};
    int n_new = -1;
    enum tr_stop why = 0;
    assert_int_equal(
        tr_generate(&f->m, &f->kv, seq, n_prompt, GREEDY_STEPS, &s, -1, collect, &c, &n_new, &why),
        TM_OK);
    assert_int_equal(why, TR_STOP_MAX_NEW);
    assert_int_equal(n_new, GREEDY_STEPS);
    assert_int_equal(c.n, GREEDY_STEPS);
    assert_memory_equal(c.ids, seq + n_prompt, GREEDY_STEPS * sizeof(int32_t));
    /* The last token is not fed back: the cache holds the prompt and all but the last one. */
    assert_int_equal(f->kv.len, n_prompt + GREEDY_STEPS - 1);
    free(ref);
}

static const float fixed_logits[] = {1.0f, 2.0f, 0.5f, -1.0f, 1.5f, 0.0f, -3.0f, 1.9f};
#define NL ((int)(sizeof(fixed_logits) / sizeof(fixed_logits[0])))

static void softmax(double *p, const float *l, int V, double T)
{
    double mx = l[0], sum = 0.0;
    for (int i = 1; i < V; i++)
        mx = fmax(mx, l[i]);
    for (int i = 0; i < V; i++)
        sum += p[i] = exp((l[i] - mx) / T);
    for (int i = 0; i < V; i++)
        p[i] /= sum;
}

static void draw_counts(struct tr_sampler *s, const float *l, int V, int draws, int *count)
{
    memset(count, 0, (size_t)V * sizeof(int));
    for (int d = 0; d < draws; d++) {
        int32_t id = -1;
        assert_int_equal(tr_sample(s, l, V, &id), TM_OK);
        assert_true(id >= 0 && id < V);
        count[id]++;
    }
}

/* Each frequency within FREQ_SIGMAS binomial standard deviations of p. */
static void check_freq(const int *count, const double *p, int V, int draws, const char *what)
{
    double worst = 0.0;
    for (int i = 0; i < V; i++) {
        double fr = (double)count[i] / draws, sd = sqrt(p[i] * (1.0 - p[i]) / draws);
        if (p[i] == 0.0) {
            assert_int_equal(count[i], 0);
            continue;
        }
        worst = fmax(worst, fabs(fr - p[i]) / sd);
    }
    fprintf(stderr, "sampler %s: worst |freq - p| = %.2f sd (limit %.0f)\n", what, worst,
            FREQ_SIGMAS);
    assert_true(worst <= FREQ_SIGMAS);
}

static void test_sampler(void **state)
{
    (void)state;
    struct tr_sampler s;
    int32_t id = -1;
    int count[NL];
    double p[NL];

    /* Greedy: the argmax, ties to the lowest id, NaN never chosen; state untouched. */
    float ties[] = {0.1f, NAN, 2.0f, -1.0f, 2.0f, 0.5f};
    tr_sampler_init(&s, 0.0f, 1.0f, 42);
    assert_int_equal(tr_sample(&s, fixed_logits, NL, &id), TM_OK);
    assert_int_equal(id, 1);
    assert_int_equal(tr_sample(&s, ties, 6, &id), TM_OK);
    assert_int_equal(id, 2);
    assert_true(s.state == 42);
    /* A tiny nucleus is the argmax too, ties included, whatever the seed. */
    for (uint64_t seed = 0; seed < 50; seed++) {
        tr_sampler_init(&s, 1.0f, 1e-6f, seed);
        assert_int_equal(tr_sample(&s, fixed_logits, NL, &id), TM_OK);
        assert_int_equal(id, 1);
        assert_int_equal(tr_sample(&s, ties, 6, &id), TM_OK);
        assert_int_equal(id, 2);
    }

    /* Sampling never picks a NaN logit either, with or without a nucleus. */
    for (uint64_t seed = 0; seed < 200; seed++) {
        tr_sampler_init(&s, 2.0f, seed % 2 ? 1.0f : 0.99f, seed);
        assert_int_equal(tr_sample(&s, ties, 6, &id), TM_OK);
        assert_true(id >= 0 && id < 6 && id != 1);
    }

    /* Temperature 1, every token: the softmax frequencies. */
    tr_sampler_init(&s, 1.0f, 1.0f, 2024);
    draw_counts(&s, fixed_logits, NL, FREQ_DRAWS, count);
    softmax(p, fixed_logits, NL, 1.0);
    check_freq(count, p, NL, FREQ_DRAWS, "T 1 top_p 1");

    /* top_p 0.7: by descending probability 1, 7, 4 have 0.304, 0.275, 0.184 (cumulated 0.578
     * < 0.7, then 0.762 >= 0.7), so the nucleus is {1, 7, 4} and nothing else is drawn. */
    tr_sampler_init(&s, 1.0f, 0.7f, 7);
    draw_counts(&s, fixed_logits, NL, FREQ_DRAWS, count);
    double kept = p[1] + p[7] + p[4];
    assert_true(p[1] + p[7] < 0.7 && kept >= 0.7);
    for (int i = 0; i < NL; i++)
        p[i] = (i == 1 || i == 7 || i == 4) ? p[i] / kept : 0.0;
    check_freq(count, p, NL, FREQ_DRAWS, "T 1 top_p 0.7");

    /* Same seed, same draws; another seed, other draws. */
    int32_t a[100], b[100], c[100];
    struct tr_sampler s1, s2, s3;
    tr_sampler_init(&s1, 0.8f, 0.9f, 5);
    tr_sampler_init(&s2, 0.8f, 0.9f, 5);
    tr_sampler_init(&s3, 0.8f, 0.9f, 6);
    for (int i = 0; i < 100; i++) {
        assert_int_equal(tr_sample(&s1, fixed_logits, NL, &a[i]), TM_OK);
        assert_int_equal(tr_sample(&s2, fixed_logits, NL, &b[i]), TM_OK);
        assert_int_equal(tr_sample(&s3, fixed_logits, NL, &c[i]), TM_OK);
    }
    assert_memory_equal(a, b, sizeof(a));
    assert_memory_not_equal(a, c, sizeof(a));

    /* Temperature sharpens: the top token is drawn more often at 0.5 than at 2. */
    int sharp[NL], flat[NL];
    tr_sampler_init(&s, 0.5f, 1.0f, 3);
    draw_counts(&s, fixed_logits, NL, 4000, sharp);
    tr_sampler_init(&s, 2.0f, 1.0f, 3);
    draw_counts(&s, fixed_logits, NL, 4000, flat);
    fprintf(stderr, "sampler: top token %d/4000 at T 0.5, %d/4000 at T 2\n", sharp[1], flat[1]);
    assert_true(sharp[1] > flat[1]);

    /* Errors. */
    FILE *q = tu_log_quiet();
    float nans[] = {NAN, NAN};
    tr_sampler_init(&s, -1.0f, 1.0f, 1);
    assert_int_equal(tr_sample(&s, fixed_logits, NL, &id), TM_ERR_USAGE);
    tr_sampler_init(&s, INFINITY, 1.0f, 1);
    assert_int_equal(tr_sample(&s, fixed_logits, NL, &id), TM_ERR_USAGE);
    tr_sampler_init(&s, 1.0f, 0.0f, 1);
    assert_int_equal(tr_sample(&s, fixed_logits, NL, &id), TM_ERR_USAGE);
    tr_sampler_init(&s, 1.0f, 1.5f, 1);
    assert_int_equal(tr_sample(&s, fixed_logits, NL, &id), TM_ERR_USAGE);
    tr_sampler_init(&s, 1.0f, 1.0f, 1);
    assert_int_equal(tr_sample(&s, fixed_logits, 0, &id), TM_ERR_USAGE);
    assert_int_equal(tr_sample(&s, nans, 2, &id), TM_ERR_FORMAT);
    tu_log_restore(q);
}

static void test_stops(void **state)
{
    struct fix *f = *state;
    int V = f->V;
    int32_t prompt[64];
    random_ids(prompt, 40, V, 23);
    struct tr_sampler greedy;
    tr_sampler_init(&greedy, 0.0f, 1.0f, 1);
    int n_new;
    enum tr_stop why;

    /* A free greedy run to know what comes. */
    struct col g = {.stop_after = 0};
    assert_int_equal(
        tr_generate(&f->m, &f->kv, prompt, 3, 12, &greedy, -1, collect, &g, &n_new, &why), TM_OK);
    assert_int_equal(n_new, 12);

    /* End of text: the first occurrence of g.ids[5] stops, and is not delivered. */
    int32_t eot = g.ids[5];
    int first = 0;
    while (g.ids[first] != eot)
        first++;
    struct col c = {.stop_after = 0};
    assert_int_equal(
        tr_generate(&f->m, &f->kv, prompt, 3, 12, &greedy, eot, collect, &c, &n_new, &why), TM_OK);
    assert_int_equal(why, TR_STOP_EOT);
    assert_int_equal(n_new, first);
    assert_int_equal(c.n, first);
    assert_memory_equal(c.ids, g.ids, (size_t)first * sizeof(int32_t));

    /* max_new, and max_new 0 (the prompt still runs). */
    memset(&c, 0, sizeof(c));
    assert_int_equal(
        tr_generate(&f->m, &f->kv, prompt, 3, 4, &greedy, -1, collect, &c, &n_new, &why), TM_OK);
    assert_int_equal(why, TR_STOP_MAX_NEW);
    assert_int_equal(n_new, 4);
    assert_memory_equal(c.ids, g.ids, 4 * sizeof(int32_t));
    memset(&c, 0, sizeof(c));
    assert_int_equal(
        tr_generate(&f->m, &f->kv, prompt, 3, 0, &greedy, -1, collect, &c, &n_new, &why), TM_OK);
    assert_int_equal(why, TR_STOP_MAX_NEW);
    assert_int_equal(n_new, 0);
    assert_int_equal(c.n, 0);
    assert_int_equal(f->kv.len, 3);

    /* The callback stops it. */
    memset(&c, 0, sizeof(c));
    c.stop_after = 3;
    assert_int_equal(
        tr_generate(&f->m, &f->kv, prompt, 3, 12, &greedy, -1, collect, &c, &n_new, &why), TM_OK);
    assert_int_equal(why, TR_STOP_CALLBACK);
    assert_int_equal(n_new, 3);
    assert_memory_equal(c.ids, g.ids, 3 * sizeof(int32_t));

    /* The context: a prompt of ctx - 4 leaves room for 4 fed tokens plus a last one. */
    int np = f->ctx - 4;
    memset(&c, 0, sizeof(c));
    assert_int_equal(
        tr_generate(&f->m, &f->kv, prompt, np, 50, &greedy, -1, collect, &c, &n_new, &why), TM_OK);
    assert_int_equal(why, TR_STOP_CONTEXT);
    assert_int_equal(n_new, 5);
    assert_int_equal(f->kv.len, f->ctx);

    /* Sampled generation repeats for a seed, and the sampler given is not changed. */
    struct tr_sampler smp;
    tr_sampler_init(&smp, 1.0f, 0.9f, 77);
    struct col s1 = {.stop_after = 0}, s2 = {.stop_after = 0};
    assert_int_equal(tr_generate(&f->m, &f->kv, prompt, 3, 12, &smp, -1, collect, &s1, NULL, NULL),
                     TM_OK);
    assert_int_equal(tr_generate(&f->m, &f->kv, prompt, 3, 12, &smp, -1, collect, &s2, NULL, NULL),
                     TM_OK);
    assert_true(smp.state == 77);
    assert_int_equal(s1.n, 12);
    assert_memory_equal(s1.ids, s2.ids, sizeof(s1.ids));

    /* Errors leave the cache as it was. */
    FILE *q = tu_log_quiet();
    float *logits = malloc((size_t)V * sizeof(float));
    struct tr_kv_cache small;
    assert_int_equal(tr_kv_cache_init(&small, &f->m, f->ctx + 1), TM_ERR_USAGE);
    assert_int_equal(tr_kv_cache_init(&small, &f->m, -1), TM_ERR_USAGE);
    assert_int_equal(tr_kv_cache_init(&small, &f->m, 8), TM_OK);
    assert_int_equal(small.context, 8);
    assert_int_equal(
        tr_generate(&f->m, &small, prompt, 9, 5, &greedy, -1, collect, &c, &n_new, &why),
        TM_ERR_TOOBIG);
    assert_int_equal(n_new, 0);
    tr_kv_cache_reset(&small);
    assert_int_equal(tr_infer_step(&f->m, &small, prompt, 6, logits), TM_OK);
    assert_int_equal(tr_infer_step(&f->m, &small, prompt, 3, logits), TM_ERR_TOOBIG);
    assert_int_equal(small.len, 6);
    assert_int_equal(tr_infer_step(&f->m, &small, prompt, 0, logits), TM_ERR_USAGE);
    int32_t bad[2] = {1, V};
    assert_int_equal(tr_infer_step(&f->m, &small, bad, 2, logits), TM_ERR_USAGE);
    assert_int_equal(small.len, 6);
    assert_int_equal(tr_infer_step(&f->m, &small, prompt, 2, logits), TM_OK);
    assert_int_equal(small.len, 8);
    assert_int_equal(tr_generate(&f->m, &small, prompt, 0, 5, &greedy, -1, NULL, NULL, NULL, NULL),
                     TM_ERR_USAGE);
    assert_int_equal(tr_generate(&f->m, &small, prompt, 2, -1, &greedy, -1, NULL, NULL, NULL, NULL),
                     TM_ERR_USAGE);
    tr_kv_cache_release(&small);
    tr_kv_cache_release(&small); /* twice is fine */
    free(logits);
    tu_log_restore(q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kv_matches_forward),
        cmocka_unit_test(test_greedy_matches_full_forward),
        cmocka_unit_test(test_sampler),
        cmocka_unit_test(test_stops),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
