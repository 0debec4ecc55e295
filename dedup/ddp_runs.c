/* ddp_runs.c: band keys past the memory budget go to disk as sorted runs, merged back in key
 * order. This bounds the memory of a generation of any size: what stays in memory per document
 * is its exact hash and bookkeeping, not its band keys (FineWeb's dedup sorts band keys on disk
 * the same way). */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ddp_internal.h"
#include "../core/tm_err.h"
#include "../core/tm_fs.h"
#include "../core/tm_log.h"
#include "../core/tm_mem.h"

/* Pairs read at a time from each run while merging. */
#define READ_CHUNK 8192

/* Removes run files a killed process left in `dir`. */
static void remove_stale(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, "run-", 4) != 0)
            continue;
        size_t len = strlen(dir) + strlen(e->d_name) + 2;
        char *p = tm_xmalloc(len);
        snprintf(p, len, "%s/%s", dir, e->d_name);
        unlink(p);
        free(p);
    }
    closedir(d);
}

void ddp_runs_init(struct ddp_runs *r, const char *dir, size_t budget)
{
    remove_stale(dir);
    memset(r, 0, sizeof(*r));
    r->dir = tm_xstrdup(dir);
    r->budget = budget < 64 * sizeof(struct ddp_pair) ? 64 * sizeof(struct ddp_pair) : budget;
}

static int pair_cmp(const void *pa, const void *pb)
{
    const struct ddp_pair *a = pa, *b = pb;
    if (a->key != b->key)
        return a->key < b->key ? -1 : 1;
    return a->k < b->k ? -1 : a->k > b->k;
}

/* Sorts pairs by key, keeping the order of equal keys (LSD radix sort, four passes of 16 bits,
 * a pass skipped when every key has the same digit). Pairs are added in document order, so the
 * result is in (key, k) order, as pair_cmp defines it, in linear time: qsort with a comparator
 * was a fifth of a million-document dedup. `tmp` has room for n pairs. */
static void radix_sort(struct ddp_pair *v, struct ddp_pair *tmp, size_t n, size_t *count)
{
    struct ddp_pair *src = v, *dst = tmp;
    for (unsigned shift = 0; shift < 64; shift += 16) {
        memset(count, 0, sizeof(size_t) << 16);
        for (size_t i = 0; i < n; i++)
            count[(src[i].key >> shift) & 0xffff]++;
        if (n && count[(src[0].key >> shift) & 0xffff] == n)
            continue; /* one digit for all: nothing moves */
        size_t sum = 0;
        for (size_t d = 0; d < (1u << 16); d++) {
            size_t c = count[d];
            count[d] = sum;
            sum += c;
        }
        for (size_t i = 0; i < n; i++)
            dst[count[(src[i].key >> shift) & 0xffff]++] = src[i];
        struct ddp_pair *t = src;
        src = dst;
        dst = t;
    }
    if (src != v)
        memcpy(v, src, n * sizeof(*v));
}

static void sort_pairs(struct ddp_pair *v, size_t n)
{
    if (n < 2)
        return;
    struct ddp_pair *tmp = tm_xmalloc(n * sizeof(*tmp));
    size_t *count = tm_xmalloc(sizeof(size_t) << 16);
    radix_sort(v, tmp, n, count);
    free(count);
    free(tmp);
}

static char *run_path(const struct ddp_runs *r, unsigned i)
{
    size_t len = strlen(r->dir) + 32;
    char *p = tm_xmalloc(len);
    snprintf(p, len, "%s/run-%06u", r->dir, i);
    return p;
}

static int spill(struct ddp_runs *r)
{
    if (r->n == 0)
        return TM_OK;
    sort_pairs(r->v, r->n);
    int rc = tm_mkdirs(r->dir);
    if (rc)
        return rc;
    char *path = run_path(r, r->nruns);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(r->v, sizeof(*r->v), r->n, f) != r->n || fclose(f) != 0) {
        tm_log_error("%s: cannot write a run of band keys: %s", path, strerror(errno));
        if (f)
            fclose(f);
        free(path);
        return TM_ERR_IO;
    }
    free(path);
    r->nruns++;
    r->spilled += r->n;
    r->n = 0;
    return TM_OK;
}

int ddp_runs_add(struct ddp_runs *r, const struct ddp_pair *pairs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if ((r->n + 1) * sizeof(*r->v) > r->budget / 2) { /* sorting needs as much again */
            int rc = spill(r);
            if (rc)
                return rc;
        }
        if (r->n == r->cap) {
            size_t cap = r->cap ? r->cap * 2 : 4096;
            if (cap * sizeof(*r->v) > r->budget / 2)
                cap = r->budget / 2 / sizeof(*r->v);
            r->v = tm_xreallocarray(r->v, cap, sizeof(*r->v));
            r->cap = cap;
        }
        r->v[r->n++] = pairs[i];
    }
    return TM_OK;
}

/* One source of the merge: a run file read in chunks, or the sorted in-memory pairs. */
struct source {
    FILE *f;
    struct ddp_pair *buf;
    size_t n, at;
    int done;
};

static int source_fill(struct source *s, const char *what)
{
    if (!s->f) {
        s->done = s->at >= s->n;
        return TM_OK;
    }
    if (s->at < s->n)
        return TM_OK;
    s->n = fread(s->buf, sizeof(*s->buf), READ_CHUNK, s->f);
    s->at = 0;
    if (s->n == 0) {
        if (ferror(s->f)) {
            tm_log_error("%s: cannot read a run of band keys", what);
            return TM_ERR_IO;
        }
        s->done = 1;
    }
    return TM_OK;
}

int ddp_runs_groups(struct ddp_runs *r, size_t min_size,
                    int (*fn)(void *ctx, const struct ddp_pair *g, size_t n), void *ctx)
{
    sort_pairs(r->v, r->n);
    unsigned ns = r->nruns + 1;
    struct source *src = tm_xcalloc(ns, sizeof(*src));
    int rc = TM_OK;
    for (unsigned i = 0; i < r->nruns && rc == TM_OK; i++) {
        char *path = run_path(r, i);
        src[i].f = fopen(path, "rb");
        src[i].buf = tm_xmalloc(READ_CHUNK * sizeof(struct ddp_pair));
        if (!src[i].f) {
            tm_log_error("%s: cannot open a run of band keys: %s", path, strerror(errno));
            rc = TM_ERR_IO;
        }
        free(path);
    }
    src[r->nruns].buf = r->v;
    src[r->nruns].n = r->n;
    for (unsigned i = 0; i < ns && rc == TM_OK; i++)
        rc = source_fill(&src[i], r->dir);

    struct ddp_pair *group = NULL;
    size_t gn = 0, gcap = 0;
    while (rc == TM_OK) {
        /* the smallest head; runs are few, a scan is enough */
        int best = -1;
        for (unsigned i = 0; i < ns; i++)
            if (!src[i].done &&
                (best < 0 || pair_cmp(&src[i].buf[src[i].at], &src[best].buf[src[best].at]) < 0))
                best = (int)i;
        if (best >= 0 && gn > 0 && src[best].buf[src[best].at].key == group[0].key) {
            /* same key: extend the group */
        } else {
            if (gn >= min_size && gn > 0)
                rc = fn(ctx, group, gn);
            gn = 0;
            if (best < 0 || rc)
                break;
        }
        if (gn == gcap) {
            gcap = gcap ? gcap * 2 : 64;
            group = tm_xreallocarray(group, gcap, sizeof(*group));
        }
        group[gn++] = src[best].buf[src[best].at++];
        rc = source_fill(&src[best], r->dir);
    }
    free(group);
    for (unsigned i = 0; i < r->nruns; i++) {
        if (src[i].f)
            fclose(src[i].f);
        free(src[i].buf);
    }
    free(src);
    return rc;
}

void ddp_runs_release(struct ddp_runs *r)
{
    for (unsigned i = 0; i < r->nruns; i++) {
        char *path = run_path(r, i);
        unlink(path);
        free(path);
    }
    rmdir(r->dir); /* fails harmlessly when it was never made */
    free(r->v);
    free(r->dir);
    memset(r, 0, sizeof(*r));
}
