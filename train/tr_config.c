/* tr_config.c: the [model] section of a model INI file. One table of keys with their types and
 * ranges serves parsing, --set overrides and the error messages, so they cannot drift apart. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tm_err.h"
#include "tm_ini.h"
#include "tm_log.h"
#include "tr_model.h"

#define F(field) offsetof(struct tr_config, field)

/* The ranges are sanity bounds, not tuned limits: they reject typos (a negative width, a
 * probability above one) while admitting any model this reference could plausibly run. */
static const struct tr_key keys[] = {
    {"vocab_size", TR_KEY_INT, F(vocab_size), 2, 16777216, 0},
    {"context", TR_KEY_INT, F(context), 1, 1048576, 0},
    {"layers", TR_KEY_INT, F(layers), 1, 1024, 0},
    {"dense_layers", TR_KEY_INT, F(dense_layers), 0, 1024, 0},
    {"d_model", TR_KEY_INT, F(d_model), 1, 65536, 0},
    {"n_heads", TR_KEY_INT, F(n_heads), 1, 1024, 0},
    {"n_kv_heads", TR_KEY_INT, F(n_kv_heads), 1, 1024, 0},
    {"head_dim", TR_KEY_INT, F(head_dim), 0, 4096, 0},
    {"d_ff", TR_KEY_INT, F(d_ff), 1, 1048576, 0},
    {"rope_theta", TR_KEY_DOUBLE, F(rope_theta), 1, 1e12, 1},
    {"norm_eps", TR_KEY_FLOAT, F(norm_eps), 0, 1, 1},
    {"n_routed_experts", TR_KEY_INT, F(n_routed_experts), 1, 4096, 0},
    {"n_shared_experts", TR_KEY_INT, F(n_shared_experts), 0, 64, 0},
    {"top_k", TR_KEY_INT, F(top_k), 1, 4096, 0},
    {"d_expert", TR_KEY_INT, F(d_expert), 1, 1048576, 0},
    {"route_scale", TR_KEY_FLOAT, F(route_scale), 0, 1000, 1},
    {"bias_gamma", TR_KEY_FLOAT, F(bias_gamma), 0, 1, 0},
    {"balance_alpha", TR_KEY_FLOAT, F(balance_alpha), 0, 1, 0},
    {"mtp_depth", TR_KEY_INT, F(mtp_depth), 0, 1, 0},
    {"mtp_lambda", TR_KEY_FLOAT, F(mtp_lambda), 0, 10, 0},
    {"seed", TR_KEY_U64, F(seed), 0, 0, 0},
    {"init_std", TR_KEY_FLOAT, F(init_std), 0, 10, 1},
};
#define N_KEYS ((int)(sizeof(keys) / sizeof(keys[0])))

void tr_config_defaults(struct tr_config *c)
{
    memset(c, 0, sizeof(*c));
    c->vocab_size = 256;
    c->context = 256;
    c->layers = 4;
    c->dense_layers = 1;
    c->d_model = 64;
    c->n_heads = 4;
    c->n_kv_heads = 2;
    c->head_dim = 16;
    c->d_ff = 192;
    c->rope_theta = 10000.0; /* RoFormer, LLaMA */
    c->norm_eps = 1e-6f;
    c->n_routed_experts = 8;
    c->n_shared_experts = 1;
    c->top_k = 2;
    c->d_expert = 32;
    c->route_scale = 1.0f;
    c->bias_gamma = 0.001f; /* DeepSeek-V3, section 4.2 */
    c->balance_alpha = 0.0f;
    c->mtp_depth = 1;
    c->mtp_lambda = 0.3f; /* DeepSeek-V3, section 4.2 (first 10T tokens) */
    c->seed = 1;
    c->init_std = 0.02f;
}

void tr_key_range(const struct tr_key *k, char *buf, size_t n)
{
    if (k->type == TR_KEY_ENUM) {
        size_t used = (size_t)snprintf(buf, n, "one of");
        for (int w = 0; k->names[w] && used < n; w++)
            used += (size_t)snprintf(buf + used, n - used, "%s %s", w ? "," : "", k->names[w]);
    } else if (k->type == TR_KEY_U64)
        snprintf(buf, n, "an unsigned 64-bit integer");
    else if (k->type == TR_KEY_INT)
        snprintf(buf, n, "an integer from %.0f to %.0f", k->min, k->max);
    else
        snprintf(buf, n, "a number %s %g and <= %g", k->min_open ? ">" : ">=", k->min, k->max);
}

int tr_config_set(void *ctx, const char *section, const char *key, const char *value, char *err,
                  size_t errlen)
{
    if (strcmp(section, "model") != 0)
        return TM_OK; /* another module's section */
    return tr_key_set(keys, N_KEYS, ctx, key, value, err, errlen);
}

int tr_key_set(const struct tr_key *table, int n, void *obj, const char *key, const char *value,
               char *err, size_t errlen)
{
    char *c = obj;
    for (int i = 0; i < n; i++) {
        const struct tr_key *k = &table[i];
        if (strcmp(k->name, key) != 0)
            continue;
        char *end = NULL;
        char range[96];
        tr_key_range(k, range, sizeof(range));
        errno = 0;
        if (k->type == TR_KEY_ENUM) {
            for (int w = 0; k->names[w]; w++)
                if (strcmp(k->names[w], value) == 0) {
                    *(int *)(c + k->off) = w;
                    return TM_OK;
                }
            snprintf(err, errlen, "%s: want %s, not '%s'", key, range, value);
            return TM_ERR_USAGE;
        }
        if (k->type == TR_KEY_U64) {
            unsigned long long u = strtoull(value, &end, 10);
            if (end == value || *end || value[0] == '-' || errno) {
                snprintf(err, errlen, "%s: want %s, not '%s'", key, range, value);
                return TM_ERR_USAGE;
            }
            *(uint64_t *)(c + k->off) = (uint64_t)u;
            return TM_OK;
        }
        double d;
        if (k->type == TR_KEY_INT) {
            long long x = strtoll(value, &end, 10);
            d = (double)x;
        } else {
            d = strtod(value, &end);
        }
        int bad = end == value || *end || errno || !isfinite(d) || d > k->max ||
                  (k->min_open ? d <= k->min : d < k->min);
        if (bad) {
            snprintf(err, errlen, "%s: want %s, not '%s'", key, range, value);
            return TM_ERR_USAGE;
        }
        if (k->type == TR_KEY_INT)
            *(int *)(c + k->off) = (int)d;
        else if (k->type == TR_KEY_FLOAT)
            *(float *)(c + k->off) = (float)d;
        else
            *(double *)(c + k->off) = d;
        return TM_OK;
    }
    size_t used = (size_t)snprintf(err, errlen, "unknown key '%s' (", key);
    for (int i = 0; i < n && used < errlen; i++)
        used += (size_t)snprintf(err + used, errlen - used, "%s%s", i ? ", " : "", table[i].name);
    if (used < errlen)
        snprintf(err + used, errlen - used, ")");
    return TM_ERR_USAGE;
}

int tr_config_check(struct tr_config *c)
{
    /* The single-key ranges again: a config built in code never went through tr_config_set. */
    for (int i = 0; i < N_KEYS; i++) {
        const struct tr_key *k = &keys[i];
        double d;
        if (k->type == TR_KEY_U64)
            continue;
        if (k->type == TR_KEY_INT)
            d = *(const int *)((const char *)c + k->off);
        else if (k->type == TR_KEY_FLOAT)
            d = *(const float *)((const char *)c + k->off);
        else
            d = *(const double *)((const char *)c + k->off);
        if (!isfinite(d) || d > k->max || (k->min_open ? d <= k->min : d < k->min)) {
            char range[96];
            tr_key_range(k, range, sizeof(range));
            tm_log_error("model config: %s: want %s, not %g", k->name, range, d);
            return TM_ERR_USAGE;
        }
    }
    if (c->dense_layers > c->layers) {
        tm_log_error("model config: dense_layers: want 0 to layers (%d), not %d", c->layers,
                     c->dense_layers);
        return TM_ERR_USAGE;
    }
    if (c->n_kv_heads > c->n_heads || c->n_heads % c->n_kv_heads != 0) {
        tm_log_error("model config: n_kv_heads: want a divisor of n_heads (%d), not %d", c->n_heads,
                     c->n_kv_heads);
        return TM_ERR_USAGE;
    }
    if (c->head_dim == 0) {
        if (c->d_model % c->n_heads != 0 || (c->d_model / c->n_heads) % 2 != 0) {
            tm_log_error("model config: head_dim: d_model / n_heads (%d / %d) is not an even "
                         "integer; set head_dim (even, 2 to 4096)",
                         c->d_model, c->n_heads);
            return TM_ERR_USAGE;
        }
        c->head_dim = c->d_model / c->n_heads;
    }
    if (c->head_dim % 2 != 0 || c->head_dim < 2) {
        tm_log_error("model config: head_dim: want an even integer from 2 to 4096 (RoPE turns "
                     "pairs), not %d",
                     c->head_dim);
        return TM_ERR_USAGE;
    }
    if (c->dense_layers < c->layers && c->top_k > c->n_routed_experts) {
        tm_log_error("model config: top_k: want 1 to n_routed_experts (%d), not %d",
                     c->n_routed_experts, c->top_k);
        return TM_ERR_USAGE;
    }
    /* The count in double first: a wild configuration must not wrap size_t unnoticed. */
    double D = c->d_model, V = c->vocab_size, qd = (double)c->n_heads * c->head_dim,
           kvd = (double)c->n_kv_heads * c->head_dim;
    double attn = 2 * D + 2 * qd * D + 2 * kvd * D;
    double moe = (double)c->n_routed_experts * D +
                 3.0 * (c->n_shared_experts + c->n_routed_experts) * c->d_expert * D;
    double total = 2 * V * D + D + c->dense_layers * (attn + 3.0 * c->d_ff * D) +
                   (c->layers - c->dense_layers) * (attn + moe) +
                   (c->mtp_depth ? 2 * D + 2 * D * D + attn + 3.0 * c->d_ff * D + D : 0);
    if (total > (double)(SIZE_MAX / sizeof(float)) / 2 || total > 1e12) {
        tm_log_error("model config: the model has %.3g parameters, more than this reference "
                     "handles (1e12); reduce d_model, layers or the expert counts",
                     total);
        return TM_ERR_USAGE;
    }
    return TM_OK;
}

int tr_config_parse(struct tr_config *c, const char *text, size_t len, const char *name)
{
    tr_config_defaults(c);
    int rc = tm_ini_parse(text, len, name, tr_config_set, c);
    if (rc != TM_OK)
        return rc;
    return tr_config_check(c);
}

int tr_config_load(struct tr_config *c, const char *path)
{
    tr_config_defaults(c);
    int rc = tm_ini_load(path, tr_config_set, c);
    if (rc != TM_OK)
        return rc;
    return tr_config_check(c);
}

size_t tr_config_param_count(const struct tr_config *c)
{
    size_t D = (size_t)c->d_model, V = (size_t)c->vocab_size;
    size_t qd = (size_t)c->n_heads * (size_t)c->head_dim;
    size_t kvd = (size_t)c->n_kv_heads * (size_t)c->head_dim;
    size_t attn = 2 * D + 2 * qd * D + 2 * kvd * D;
    size_t dense = 3 * (size_t)c->d_ff * D;
    size_t moe = (size_t)c->n_routed_experts * D +
                 3 * (size_t)(c->n_shared_experts + c->n_routed_experts) * (size_t)c->d_expert * D;
    size_t L = (size_t)c->layers, Ld = (size_t)c->dense_layers;
    size_t n = 2 * V * D + D + Ld * (attn + dense) + (L - Ld) * (attn + moe);
    if (c->mtp_depth)
        n += 2 * D + 2 * D * D + attn + dense + D;
    return n;
}
