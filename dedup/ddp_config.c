/* ddp_config.c: dedup settings. Global keys in [dedup], per-domain keys in [text], [math],
 * [code] (or [all]); --set SECTION.KEY=VALUE uses the same keys. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "ddp_internal.h"
#include "../core/tm_err.h"
#include "../core/tm_ini.h"
#include "../core/tm_log.h"
#include "../core/tm_mem.h"

/* FineWeb's MinHash: 112 hashes as 14 bands of 8 rows over word 5-grams (Penedo et al. 2024). */
#define DEF_NPERM 112
#define DEF_BANDS 14
#define DEF_ROWS  8
#define DEF_NGRAM 5
/* Verification threshold: pairs under this Jaccard are not duplicates; 0.8 is where the 14x8
 * S-curve is steep (a pair at 0.8 shares a band with probability 0.92). */
#define DEF_THRESHOLD 0.8

static const char *const domain_sections[TM_DOMAIN_COUNT] = {"text", "math", "code"};
static const char *const verify_names[] = {"off", "exact", "signature"};
static const char *const scope_names[] = {"global", "generation"};

void ddp_config_defaults(struct ddp_config *c)
{
    memset(c, 0, sizeof(*c));
    c->scope = DDP_SCOPE_GLOBAL;
    c->norm.casefold = c->norm.strip_punct = c->norm.collapse_ws = 1;
    c->nperm = DEF_NPERM;
    c->bands = DEF_BANDS;
    c->rows = DEF_ROWS;
    c->seed = 1;
    for (int d = 0; d < TM_DOMAIN_COUNT; d++) {
        struct ddp_domain_cfg *dc = &c->dom[d];
        dc->exact = dc->near = 1;
        dc->kind = DDP_SHINGLE_WORDS;
        dc->n = DEF_NGRAM;
        /* Verification on for text, where shared templates (boilerplate around little content)
         * would otherwise chain unrelated pages into one cluster. */
        dc->verify = d == TM_DOMAIN_TEXT ? DDP_VERIFY_EXACT : DDP_VERIFY_OFF;
        dc->threshold = DEF_THRESHOLD;
    }
}

static int parse_uint(const char *v, unsigned long long max, unsigned long long *out)
{
    char *end;
    unsigned long long x = strtoull(v, &end, 10);
    if (end == v || *end || v[0] == '-' || x > max)
        return -1;
    *out = x;
    return 0;
}

static int pick(const char *v, const char *const *names, int n)
{
    for (int k = 0; k < n; k++)
        if (!strcmp(v, names[k]))
            return k;
    return -1;
}

static int set_domain(struct ddp_domain_cfg *dc, const char *key, const char *value, char *err,
                      size_t errlen)
{
    unsigned long long u;
    int k;
    if (!strcmp(key, "exact") || !strcmp(key, "near")) {
        if (tm_parse_bool(value, key[0] == 'e' ? &dc->exact : &dc->near) == 0)
            return TM_OK;
        snprintf(err, errlen, "%s: want on or off, not '%s'", key, value);
    } else if (!strcmp(key, "shingles")) {
        static const char *const kinds[] = {"words", "chars"};
        if ((k = pick(value, kinds, 2)) >= 0) {
            dc->kind = (enum ddp_shingle_kind)k;
            return TM_OK;
        }
        snprintf(err, errlen, "shingles: want words or chars, not '%s'", value);
    } else if (!strcmp(key, "ngram")) {
        if (parse_uint(value, 64, &u) == 0 && u >= 1) {
            dc->n = (unsigned)u;
            return TM_OK;
        }
        snprintf(err, errlen, "ngram: want 1 to 64, not '%s'", value);
    } else if (!strcmp(key, "verify")) {
        if ((k = pick(value, verify_names, 3)) >= 0) {
            dc->verify = (enum ddp_verify)k;
            return TM_OK;
        }
        snprintf(err, errlen, "verify: want exact, signature or off, not '%s'", value);
    } else if (!strcmp(key, "threshold")) {
        char *end;
        double x = strtod(value, &end);
        if (end != value && !*end && x >= 0 && x <= 1) {
            dc->threshold = x;
            return TM_OK;
        }
        snprintf(err, errlen, "threshold: want a number from 0 to 1, not '%s'", value);
    } else {
        snprintf(err, errlen, "unknown key '%s' (exact, near, shingles, ngram, verify, threshold)",
                 key);
    }
    return TM_ERR_USAGE;
}

int ddp_config_set(struct ddp_config *c, const char *section, const char *key, const char *value,
                   char *err, size_t errlen)
{
    unsigned long long u;
    int k;
    if (!strcmp(section, "dedup")) {
        if (!strcmp(key, "scope")) {
            if ((k = pick(value, scope_names, 2)) >= 0) {
                c->scope = (enum ddp_scope)k;
                return TM_OK;
            }
            snprintf(err, errlen, "scope: want global or generation, not '%s'", value);
            return TM_ERR_USAGE;
        }
        int *flag = !strcmp(key, "casefold")      ? &c->norm.casefold
                    : !strcmp(key, "strip_punct") ? &c->norm.strip_punct
                    : !strcmp(key, "collapse_ws") ? &c->norm.collapse_ws
                                                  : NULL;
        if (flag) {
            if (tm_parse_bool(value, flag) == 0)
                return TM_OK;
            snprintf(err, errlen, "%s: want on or off, not '%s'", key, value);
            return TM_ERR_USAGE;
        }
        unsigned *num = !strcmp(key, "permutations") ? &c->nperm
                        : !strcmp(key, "bands")      ? &c->bands
                        : !strcmp(key, "rows")       ? &c->rows
                                                     : NULL;
        if (num) {
            if (parse_uint(value, DDP_MAX_PERM, &u) == 0 && u >= 1) {
                *num = (unsigned)u;
                return TM_OK;
            }
            snprintf(err, errlen, "%s: want 1 to %d, not '%s'", key, DDP_MAX_PERM, value);
            return TM_ERR_USAGE;
        }
        if (!strcmp(key, "seed")) {
            if (parse_uint(value, UINT64_MAX, &u) == 0) {
                c->seed = u;
                return TM_OK;
            }
            snprintf(err, errlen, "seed: want a non-negative integer, not '%s'", value);
            return TM_ERR_USAGE;
        }
        snprintf(err, errlen,
                 "unknown key '%s' in [dedup] (scope, casefold, strip_punct, "
                 "collapse_ws, permutations, bands, rows, seed)",
                 key);
        return TM_ERR_USAGE;
    }
    if (!strcmp(section, "all")) {
        for (int d = 0; d < TM_DOMAIN_COUNT; d++) {
            int rc = set_domain(&c->dom[d], key, value, err, errlen);
            if (rc)
                return rc;
        }
        return TM_OK;
    }
    for (int d = 0; d < TM_DOMAIN_COUNT; d++)
        if (!strcmp(section, domain_sections[d]))
            return set_domain(&c->dom[d], key, value, err, errlen);
    snprintf(err, errlen, "unknown section [%s] (dedup, text, math, code, all)", section);
    return TM_ERR_USAGE;
}

int ddp_config_set_fn(void *ctx, const char *section, const char *key, const char *value, char *err,
                      size_t errlen)
{
    return ddp_config_set(ctx, section, key, value, err, errlen);
}

int ddp_config_parse(struct ddp_config *c, const char *text, size_t len, const char *name)
{
    return tm_ini_parse(text, len, name, ddp_config_set_fn, c);
}

int ddp_config_load(struct ddp_config *c, const char *path)
{
    return tm_ini_load(path, ddp_config_set_fn, c);
}

int ddp_config_check(const struct ddp_config *c)
{
    if ((unsigned long long)c->bands * c->rows > c->nperm) {
        tm_log_error("dedup: %u bands of %u rows need %u permutations, only %u configured",
                     c->bands, c->rows, c->bands * c->rows, c->nperm);
        return TM_ERR_USAGE;
    }
    if (c->bands > 255) {
        tm_log_error("dedup: at most 255 bands, not %u", c->bands);
        return TM_ERR_USAGE;
    }
    return TM_OK;
}

int ddp_config_params(const struct ddp_config *c, int d, struct ddp_params *p)
{
    ddp_params_default(p);
    p->norm = c->norm;
    p->kind = c->dom[d].kind;
    p->n = c->dom[d].n;
    p->nperm = c->nperm;
    p->bands = c->bands;
    p->rows = c->rows;
    p->seed = c->seed;
    return ddp_params_init(p);
}

void ddp_config_print(const struct ddp_config *c, FILE *out)
{
    fprintf(out,
            "# tokenmill dedup configuration (tokenmill dedup --print-config)\n"
            "# MinHash LSH: FineWeb's 112 hashes as 14 bands of 8 rows over word 5-grams\n"
            "# (Penedo et al. 2024); a pair sharing a band is a candidate, verified by the\n"
            "# Jaccard similarity of its shingle sets (exact) or signatures when configured.\n"
            "[dedup]\nscope = %s\ncasefold = %s\nstrip_punct = %s\ncollapse_ws = %s\n"
            "permutations = %u\nbands = %u\nrows = %u\nseed = %llu\n",
            scope_names[c->scope], c->norm.casefold ? "on" : "off",
            c->norm.strip_punct ? "on" : "off", c->norm.collapse_ws ? "on" : "off", c->nperm,
            c->bands, c->rows, (unsigned long long)c->seed);
    for (int d = 0; d < TM_DOMAIN_COUNT; d++) {
        const struct ddp_domain_cfg *dc = &c->dom[d];
        fprintf(out,
                "\n[%s]\nexact = %s\nnear = %s\nshingles = %s\nngram = %u\nverify = %s\n"
                "threshold = %g\n",
                domain_sections[d], dc->exact ? "on" : "off", dc->near ? "on" : "off",
                dc->kind == DDP_SHINGLE_WORDS ? "words" : "chars", dc->n, verify_names[dc->verify],
                dc->threshold);
    }
}

uint64_t ddp_config_hash(const struct ddp_config *c)
{
    /* Every field that changes a decision, in a fixed layout (no struct padding hashed). */
    uint64_t v[8 + 6 * TM_DOMAIN_COUNT];
    size_t k = 0;
    v[k++] = DDP_CONFIG_VERSION;
    v[k++] = (uint64_t)c->scope;
    v[k++] = (uint64_t)c->norm.casefold << 2 | (uint64_t)c->norm.strip_punct << 1 |
             (uint64_t)c->norm.collapse_ws;
    v[k++] = c->nperm;
    v[k++] = c->bands;
    v[k++] = c->rows;
    v[k++] = c->seed;
    v[k++] = 0;
    for (int d = 0; d < TM_DOMAIN_COUNT; d++) {
        const struct ddp_domain_cfg *dc = &c->dom[d];
        uint64_t thr;
        memcpy(&thr, &dc->threshold, 8);
        v[k++] = (uint64_t)dc->exact;
        v[k++] = (uint64_t)dc->near;
        v[k++] = (uint64_t)dc->kind;
        v[k++] = dc->n;
        v[k++] = (uint64_t)dc->verify;
        v[k++] = thr;
    }
    return XXH3_64bits(v, sizeof v);
}
