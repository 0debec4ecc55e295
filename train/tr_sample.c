/* tr_sample.c: choosing the next token from logits (see tr_infer.h): greedy, temperature and
 * nucleus (top-p) sampling, with weights in double so that a vocabulary of 10^5 small
 * probabilities sums without losing the tail. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "tm_err.h"
#include "tm_log.h"
#include "tm_rand.h"
#include "tr_infer.h"

void tr_sampler_init(struct tr_sampler *s, float temperature, float top_p, uint64_t seed)
{
    s->temperature = temperature;
    s->top_p = top_p;
    s->state = seed;
    s->n_valid = 0;
}

/* A uniform double in [0, 1): the top 53 bits of one draw. */
static double uniform(uint64_t *state)
{
    return (double)(tm_splitmix64(state) >> 11) * 0x1.0p-53;
}

/* The unnormalized probability of a logit: exp((l - max) / T), 0 for NaN (never chosen). */
static double weight(float l, float mx, double temperature)
{
    if (isnan(l))
        return 0.0;
    return exp(((double)l - (double)mx) / temperature);
}

struct cand {
    double w;
    int32_t id;
};

/* Descending weight, ascending id among equals: a total order, so the nucleus is a pure
 * function of the logits whatever qsort's algorithm. */
static int cand_cmp(const void *pa, const void *pb)
{
    const struct cand *a = pa, *b = pb;
    if (a->w != b->w)
        return a->w > b->w ? -1 : 1;
    return (a->id > b->id) - (a->id < b->id);
}

int tr_sample(struct tr_sampler *s, const float *logits, int V, int32_t *out)
{
    if (V < 1 || !(s->temperature >= 0.0f) || isinf(s->temperature) || !(s->top_p > 0.0f) ||
        !(s->top_p <= 1.0f)) {
        tm_log_error("sample: V %d (need >= 1), temperature %g (need finite >= 0), top_p %g "
                     "(need (0, 1])",
                     V, (double)s->temperature, (double)s->top_p);
        return TM_ERR_USAGE;
    }
    int best = -1;
    for (int i = 0; i < V; i++)
        if (!isnan(logits[i]) && (best < 0 || logits[i] > logits[best]))
            best = i;
    if (best < 0) {
        tm_log_error("sample: all %d logits are NaN", V);
        return TM_ERR_FORMAT;
    }
    /* A +Inf logit has all the mass: exp(Inf - Inf) is NaN, so choose among them directly. */
    if (s->temperature == 0.0f || isinf(logits[best])) {
        *out = best;
        return TM_OK;
    }
    float mx = logits[best];
    double T = s->temperature;

    if (s->top_p >= 1.0f) {
        /* Every token is a candidate: walk them in id order, recomputing each weight (the same
         * value both times) instead of keeping V of them. */
        double total = 0.0;
        for (int i = 0; i < V; i++)
            total += weight(logits[i], mx, T);
        double u = uniform(&s->state) * total, acc = 0.0;
        int pick = best;
        for (int i = 0; i < V; i++) {
            double w = weight(logits[i], mx, T);
            if (w <= 0.0)
                continue;
            acc += w;
            pick = i;
            if (u < acc)
                break;
        }
        *out = pick;
        return TM_OK;
    }

    struct cand *c = malloc((size_t)V * sizeof(*c));
    if (!c) {
        tm_log_error("sample: cannot allocate %d candidates", V);
        return TM_ERR_NOMEM;
    }
    double total = 0.0;
    for (int i = 0; i < V; i++) {
        c[i].w = weight(logits[i], mx, T);
        c[i].id = i;
        total += c[i].w;
    }
    qsort(c, (size_t)V, sizeof(*c), cand_cmp);
    /* The nucleus: the shortest prefix whose mass reaches top_p of the total. The first
     * candidate (weight 1, the maximum) is always in it. */
    double want = (double)s->top_p * total, kept = 0.0;
    int nk = 0;
    while (nk < V && c[nk].w > 0.0) {
        kept += c[nk++].w;
        if (kept >= want)
            break;
    }
    double u = uniform(&s->state) * kept, acc = 0.0;
    int32_t pick = c[nk - 1].id; /* if rounding leaves u at the very end */
    for (int i = 0; i < nk; i++) {
        acc += c[i].w;
        if (u < acc) {
            pick = c[i].id;
            break;
        }
    }
    free(c);
    *out = pick;
    return TM_OK;
}
