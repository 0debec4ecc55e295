/* tr_router: DeepSeek-V3's sigmoid top-K router, its balance loss and the bias update of
 * auxiliary-loss-free load balancing (see tr_ops.h). */
#include "tr_ops.h"

#include <math.h>
#include <stdlib.h>

#include "tm_err.h"
#include "tm_log.h"
#include "tm_mem.h"

static float sigmoidf(float a)
{
    if (a >= 0.0f)
        return 1.0f / (1.0f + expf(-a));
    float e = expf(a); /* exp of a non-positive number: no overflow */
    return e / (1.0f + e);
}

/* The selection order: 1 when expert a (score sa) comes before expert b (score sb): a higher
 * score first, a NaN after every number, and the lower index first among equals. A strict
 * total order, so the top-K is unique. */
static int before(float sa, int a, float sb, int b)
{
    int na = isnan(sa), nb = isnan(sb);
    if (na != nb)
        return nb;
    if (!na && sa != sb)
        return sa > sb;
    return a < b;
}

int tr_router_fwd(float *s, int32_t *sel, float *gate, const float *u, const float *bias, int N,
                  int E, int K, float route_scale)
{
    if (N < 0 || E <= 0 || K < 1 || K > E) {
        tm_log_error("tr_router_fwd: bad shape N %d E %d K %d (need 1 <= K <= E)", N, E, K);
        return TM_ERR_USAGE;
    }
    for (int i = 0; i < N; i++) {
        const float *ur = u + (size_t)i * E;
        float *sr = s + (size_t)i * E;
        int32_t *selr = sel + (size_t)i * K;
        float *gr = gate + (size_t)i * K;
        for (int e = 0; e < E; e++)
            sr[e] = sigmoidf(ur[e]);
        /* K passes, each taking the best expert ordered after the previous pick: O(K E) with
         * no scratch, fine for the K and E of a router (8 of 256 in DeepSeek-V3). */
        int prev = -1;
        float prev_score = 0.0f;
        double sum = 0.0;
        for (int k = 0; k < K; k++) {
            int best = -1;
            float best_score = 0.0f;
            for (int e = 0; e < E; e++) {
                float sc = sr[e] + (bias ? bias[e] : 0.0f);
                if (prev >= 0 && !before(prev_score, prev, sc, e))
                    continue;
                if (best < 0 || before(sc, e, best_score, best)) {
                    best = e;
                    best_score = sc;
                }
            }
            selr[k] = best;
            sum += sr[best];
            prev = best;
            prev_score = best_score;
        }
        /* sum is 0 only when every selected sigmoid underflowed; the gates are 0 then. */
        for (int k = 0; k < K; k++)
            gr[k] = sum > 0.0 ? (float)(route_scale * sr[selr[k]] / sum) : 0.0f;
    }
    return TM_OK;
}

void tr_router_bwd(float *du, const float *dgate, const float *s, const int32_t *sel, int N, int E,
                   int K, float route_scale)
{
    for (int i = 0; i < N; i++) {
        const float *sr = s + (size_t)i * E, *dg = dgate + (size_t)i * K;
        const int32_t *selr = sel + (size_t)i * K;
        float *dur = du + (size_t)i * E;
        for (int e = 0; e < E; e++)
            dur[e] = 0.0f;
        double sum = 0.0, dot = 0.0;
        for (int k = 0; k < K; k++) {
            sum += sr[selr[k]];
            dot += (double)dg[k] * sr[selr[k]];
        }
        if (sum <= 0.0)
            continue; /* the forward pass gave constant 0 gates */
        for (int k = 0; k < K; k++) {
            int e = selr[k];
            double ds = route_scale / sum * (dg[k] - dot / sum);
            dur[e] = (float)(ds * sr[e] * (1.0 - sr[e]));
        }
    }
}

int tr_router_balance(float *loss, float *du, const float *s, const int32_t *sel, int B, int T,
                      int E, int K, float alpha)
{
    size_t N = (size_t)B * T;
    for (size_t i = 0; i < N * K; i++) {
        if (sel[i] < 0 || sel[i] >= E) {
            tm_log_error("tr_router_balance: selected expert %d at token %zu slot %zu is "
                         "outside [0, %d)",
                         (int)sel[i], i / K, i % K, E);
            return TM_ERR_USAGE;
        }
    }
    /* Per sequence: f_i (as a count), P_i, then c_i = d(L)/d(s'_i) for each token. */
    double *f = tm_xcalloc((size_t)E * 3, sizeof(double));
    double *P = f + E, *c = P + E;
    double total = 0.0;
    for (int b = 0; b < B; b++) {
        const float *sb = s + (size_t)b * T * E;
        const int32_t *selb = sel + (size_t)b * T * K;
        for (int e = 0; e < E; e++)
            f[e] = P[e] = 0.0;
        for (size_t i = 0; i < (size_t)T * K; i++)
            f[selb[i]] += 1.0;
        for (int t = 0; t < T; t++) {
            const float *st = sb + (size_t)t * E;
            double sum = 0.0;
            for (int e = 0; e < E; e++)
                sum += st[e];
            for (int e = 0; e < E; e++)
                P[e] += st[e] / sum;
        }
        double lb = 0.0;
        for (int e = 0; e < E; e++) {
            f[e] *= (double)E / ((double)K * T);
            P[e] /= T;
            lb += f[e] * P[e];
            c[e] = (double)alpha * f[e] / ((double)T * B);
        }
        total += alpha * lb;
        if (!du)
            continue;
        /* s'_i = s_i / sum_j s_j, so d(L)/d(s_j) = c_j / sum - (sum_i c_i s_i) / sum^2. */
        for (int t = 0; t < T; t++) {
            const float *st = sb + (size_t)t * E;
            float *dut = du + ((size_t)b * T + t) * E;
            double sum = 0.0, cs = 0.0;
            for (int e = 0; e < E; e++) {
                sum += st[e];
                cs += c[e] * st[e];
            }
            for (int e = 0; e < E; e++) {
                double ds = c[e] / sum - cs / (sum * sum);
                dut[e] = (float)(ds * st[e] * (1.0 - st[e]));
            }
        }
    }
    *loss = B > 0 ? (float)(total / B) : 0.0f;
    free(f);
    return TM_OK;
}

void tr_router_count_load(int64_t *load, const int32_t *sel, int N, int K, int E)
{
    for (int e = 0; e < E; e++)
        load[e] = 0;
    for (size_t i = 0; i < (size_t)N * K; i++)
        if (sel[i] >= 0 && sel[i] < E)
            load[sel[i]]++;
}

void tr_router_bias_update(float *bias, const int64_t *load, int E, float gamma)
{
    if (E <= 0)
        return;
    double mean = 0.0;
    for (int e = 0; e < E; e++)
        mean += (double)load[e];
    mean /= E;
    for (int e = 0; e < E; e++) {
        double diff = mean - (double)load[e];
        bias[e] += diff > 0.0 ? gamma : diff < 0.0 ? -gamma : 0.0f;
    }
}
