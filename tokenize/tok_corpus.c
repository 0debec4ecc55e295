/* tok_corpus.c: every shard of a workdir read as one corpus: stream positions across shards,
 * zero-copy spans and deterministic training windows. */
#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenize.h"
#include "tm_err.h"
#include "tm_log.h"
#include "tm_mem.h"
#include "tm_rand.h"

struct tok_corpus {
    struct tok_shard **shards;
    size_t n;
    /* start[a][d][i]: position in stream (a, d) of shard i's first token; [n] is the total. */
    uint64_t *start[TOK_SPLIT_COUNT][TM_DOMAIN_COUNT];
    uint64_t docs[TOK_SPLIT_COUNT][TM_DOMAIN_COUNT];
};

/* Shard directory names are "shard-" and six or more digits; anything else (a ".partial"
 * being written, stray files) is not a shard. */
static int shard_number(const char *name, uint64_t *num)
{
    if (strncmp(name, "shard-", 6) != 0 || !name[6])
        return 0;
    uint64_t v = 0;
    for (const char *p = name + 6; *p; p++) {
        if (*p < '0' || *p > '9' || v > UINT64_MAX / 10)
            return 0;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    *num = v;
    return 1;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int tok_corpus_list(const char *tokens_dir, uint64_t **nums, size_t *n)
{
    *nums = NULL;
    *n = 0;
    DIR *d = opendir(tokens_dir);
    if (!d)
        return TM_ERR_NOTFOUND;
    size_t cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        uint64_t v;
        if (!shard_number(e->d_name, &v))
            continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            *nums = tm_xreallocarray(*nums, cap, sizeof(uint64_t));
        }
        (*nums)[(*n)++] = v;
    }
    closedir(d);
    if (*n)
        qsort(*nums, *n, sizeof(uint64_t), cmp_u64);
    return TM_OK;
}

void tok_corpus_free(struct tok_corpus *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n; i++)
        tok_shard_free(c->shards[i]);
    free(c->shards);
    for (int a = 0; a < TOK_SPLIT_COUNT; a++)
        for (int d = 0; d < TM_DOMAIN_COUNT; d++)
            free(c->start[a][d]);
    free(c);
}

int tok_corpus_open(const char *workdir, uint64_t tokenizer_hash, struct tok_corpus **out)
{
    *out = NULL;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/tokens", workdir);
    uint64_t *nums;
    size_t n;
    int rc = tok_corpus_list(dir, &nums, &n);
    if (rc || n == 0) {
        free(nums);
        tm_log_error("%s: no token shards; run tokenmill tokenize first", workdir);
        return TM_ERR_NOTFOUND;
    }
    struct tok_corpus *c = tm_xcalloc(1, sizeof(*c));
    c->shards = tm_xcalloc(n, sizeof(*c->shards));
    for (size_t i = 0; i < n && !rc; i++) {
        char path[4200];
        snprintf(path, sizeof path, "%s/shard-%06" PRIu64, dir, nums[i]);
        if ((rc = tok_shard_open(path, &c->shards[i])))
            break;
        c->n++;
        const struct tok_shard_meta *m = tok_shard_get_meta(c->shards[i]);
        const struct tok_shard_meta *m0 = tok_shard_get_meta(c->shards[0]);
        if (tokenizer_hash && m->tokenizer_hash != tokenizer_hash) {
            tm_log_error("%s: made with tokenizer %016" PRIx64 ", expected %016" PRIx64, path,
                         m->tokenizer_hash, tokenizer_hash);
            rc = TM_ERR_USAGE;
        } else if (m->tokenizer_hash != m0->tokenizer_hash || m->dtype != m0->dtype ||
                   m->chunk_tokens != m0->chunk_tokens || m->eot != m0->eot) {
            tm_log_error("%s: tokenizer %016" PRIx64 ", dtype %u, chunks of %u: differs from the "
                         "first shard's (%016" PRIx64 ", %u, %u)",
                         path, m->tokenizer_hash, m->dtype, m->chunk_tokens, m0->tokenizer_hash,
                         m0->dtype, m0->chunk_tokens);
            rc = TM_ERR_FORMAT;
        }
    }
    free(nums);
    if (rc) {
        tok_corpus_free(c);
        return rc;
    }
    for (int a = 0; a < TOK_SPLIT_COUNT; a++)
        for (int d = 0; d < TM_DOMAIN_COUNT; d++) {
            c->start[a][d] = tm_xcalloc(c->n + 1, sizeof(uint64_t));
            for (size_t i = 0; i < c->n; i++) {
                const struct tok_shard_meta *m = tok_shard_get_meta(c->shards[i]);
                c->start[a][d][i + 1] = c->start[a][d][i] + m->tokens[a][d];
                c->docs[a][d] += m->docs[a][d];
            }
        }
    *out = c;
    return TM_OK;
}

size_t tok_corpus_shards(const struct tok_corpus *c)
{
    return c->n;
}

const struct tok_shard *tok_corpus_shard(const struct tok_corpus *c, size_t i)
{
    return i < c->n ? c->shards[i] : NULL;
}

const struct tok_shard_meta *tok_corpus_meta(const struct tok_corpus *c)
{
    return tok_shard_get_meta(c->shards[0]);
}

static int bad_stream(int split, int domain)
{
    return (unsigned)split >= TOK_SPLIT_COUNT || (unsigned)domain >= TM_DOMAIN_COUNT;
}

uint64_t tok_corpus_tokens(const struct tok_corpus *c, int split, int domain)
{
    return bad_stream(split, domain) ? 0 : c->start[split][domain][c->n];
}

uint64_t tok_corpus_docs(const struct tok_corpus *c, int split, int domain)
{
    return bad_stream(split, domain) ? 0 : c->docs[split][domain];
}

/* The shard holding stream position `pos` (< the stream's total): the last i with
 * start[i] <= pos and a non-empty share. */
static size_t find_shard(const uint64_t *start, size_t n, uint64_t pos)
{
    size_t lo = 0, hi = n; /* start[lo] <= pos < start[hi] */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (start[mid] <= pos)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

int tok_corpus_read(const struct tok_corpus *c, int split, int domain, uint64_t pos, size_t n,
                    uint32_t *out)
{
    if (bad_stream(split, domain))
        return TM_ERR_USAGE;
    const uint64_t *start = c->start[split][domain];
    if (pos > start[c->n] || n > start[c->n] - pos)
        return TM_ERR_USAGE;
    while (n) {
        size_t i = find_shard(start, c->n, pos);
        uint64_t local = pos - start[i];
        uint64_t room = start[i + 1] - pos;
        size_t take = n < room ? n : (size_t)room;
        int rc = tok_shard_read(c->shards[i], split, domain, local, take, out);
        if (rc)
            return rc;
        out += take;
        pos += take;
        n -= take;
    }
    return TM_OK;
}

int tok_corpus_span(const struct tok_corpus *c, int split, int domain, uint64_t pos, size_t n,
                    const void **ids)
{
    *ids = NULL;
    if (bad_stream(split, domain))
        return TM_ERR_USAGE;
    const uint64_t *start = c->start[split][domain];
    if (pos > start[c->n] || n > start[c->n] - pos || n == 0)
        return TM_ERR_USAGE;
    size_t i = find_shard(start, c->n, pos);
    if (pos + n > start[i + 1])
        return TM_ERR_NOTFOUND;
    *ids = tok_shard_span(c->shards[i], split, domain, pos - start[i], n);
    return *ids ? TM_OK : TM_ERR_NOTFOUND;
}

/* A uniform integer in [0, m) (m > 0) from the generator, without modulo bias. */
static uint64_t uniform_below(uint64_t *state, uint64_t m)
{
    uint64_t limit = UINT64_MAX - UINT64_MAX % m;
    for (;;) {
        uint64_t x = tm_splitmix64(state);
        if (x < limit)
            return x % m;
    }
}

int tok_corpus_window(const struct tok_corpus *c, int split, const double *weights, uint64_t seed,
                      uint64_t step, uint64_t index, size_t n, uint32_t *out, int *domain)
{
    if ((unsigned)split >= TOK_SPLIT_COUNT || n == 0)
        return TM_ERR_USAGE;
    double w[TM_DOMAIN_COUNT], sum = 0;
    for (int d = 0; d < TM_DOMAIN_COUNT; d++) {
        uint64_t t = tok_corpus_tokens(c, split, d);
        w[d] = t < n ? 0 : weights ? (weights[d] > 0 ? weights[d] : 0) : (double)(t - n + 1);
        sum += w[d];
    }
    if (!(sum > 0))
        return TM_ERR_NOTFOUND;
    /* Each (seed, step, index) seeds its own stream: splitmix64 scrambles the combination, so
     * neighbouring steps and indices give unrelated draws. */
    uint64_t st = seed;
    uint64_t s1 = tm_splitmix64(&st) ^ step;
    uint64_t s2 = tm_splitmix64(&s1) ^ index;
    uint64_t state = tm_splitmix64(&s2);
    double u = (double)(tm_splitmix64(&state) >> 11) * 0x1p-53 * sum;
    int d = 0;
    while (d < TM_DOMAIN_COUNT - 1 && (w[d] == 0 || u >= w[d])) {
        u -= w[d];
        d++;
    }
    while (w[d] == 0) /* rounding left u past the last positive weight */
        d--;
    uint64_t pos = uniform_below(&state, tok_corpus_tokens(c, split, d) - n + 1);
    if (domain)
        *domain = d;
    return tok_corpus_read(c, split, d, pos, n, out);
}
