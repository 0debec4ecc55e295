/* ddp_run.c: `tokenmill dedup`. The steps are in ddp_internal.h; what is kept per document in
 * memory (struct gdoc, the union-find arrays) is about 48 bytes, band keys past the budget go to
 * disk (ddp_runs.c), and signatures are kept only for domains verified by signature. */
#include <inttypes.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "dedup.h"
#include "ddp_internal.h"
#include "../core/tm_buf.h"
#include "../core/tm_db.h"
#include "../core/tm_err.h"
#include "../core/tm_fs.h"
#include "../core/tm_ini.h"
#include "../core/tm_log.h"
#include "../core/tm_mem.h"
#include "../core/tm_progress.h"
#include "../core/tm_stats.h"
#include "../core/tm_store.h"
#include "../core/tm_thread.h"
#include "../filter/filter.h"

/* ---- Records ---------------------------------------------------------------------------- */

#define DEC_MAGIC    "TMDD"
#define DEC_VERSION  1
#define STAGE_PREFIX "dedup/"

const char *ddp_status_name(int status)
{
    return status == DDP_KEPT ? "kept" : status == DDP_EXACT ? "exact" : "near";
}

void ddp_decision_encode(const struct ddp_decision *d, uint64_t config_hash,
                         unsigned char out[DDP_DECISION_SIZE])
{
    memset(out, 0, DDP_DECISION_SIZE);
    tm_rec_header(out, DEC_MAGIC, DEC_VERSION);
    out[8] = (unsigned char)d->status;
    out[9] = (unsigned char)d->domain;
    uint32_t u;
    memcpy(&u, &d->similarity, 4);
    tm_le32_put(out + 12, u);
    tm_le64_put(out + 16, d->of);
    tm_le64_put(out + 24, config_hash);
}

int ddp_decision_decode(const void *val, size_t len, struct ddp_decision *d, uint64_t *hash,
                        const char *what)
{
    int rc = tm_rec_check(val, len, DEC_MAGIC, DEC_VERSION, what, NULL);
    if (rc)
        return rc;
    const unsigned char *p = val;
    if (len != DDP_DECISION_SIZE || p[8] > DDP_NEAR || p[9] >= TM_DOMAIN_COUNT) {
        tm_log_error("%s: malformed dedup decision (%zu bytes)", what, len);
        return TM_ERR_FORMAT;
    }
    d->status = p[8];
    d->domain = p[9];
    uint32_t u = tm_le32_get(p + 12);
    memcpy(&d->similarity, &u, 4);
    d->of = tm_le64_get(p + 16);
    if (hash)
        *hash = tm_le64_get(p + 24);
    return TM_OK;
}

/* The dedup's progress per generation (core's tm_stage): decisions written up to next_id (in id
 * order), then the band keys of its kept documents written to the LSH index, `aux` of them so
 * far (in merge order). */
#define STAGE_NAME "dedup"

static int stage_get(struct tm_store *st, MDB_txn *txn, uint32_t gen, struct tm_stage *r)
{
    return tm_stage_get(st, txn, STAGE_NAME, gen, r);
}

static int stage_put(struct tm_store *st, MDB_txn *txn, uint32_t gen, const struct tm_stage *r)
{
    return tm_stage_put(st, txn, STAGE_NAME, gen, r);
}

/* Index keys carry the domain first: domains are deduplicated separately. */
#define EXACT_KEYLEN 17
#define LSH_KEYLEN   9

static void exact_key(unsigned char out[EXACT_KEYLEN], int domain, const uint64_t h[2])
{
    out[0] = (unsigned char)domain;
    tm_be64_put(out + 1, h[0]);
    tm_be64_put(out + 9, h[1]);
}

static void lsh_key(unsigned char out[LSH_KEYLEN], int domain, uint64_t key)
{
    out[0] = (unsigned char)domain;
    tm_be64_put(out + 1, key);
}

/* ---- One generation ----------------------------------------------------------------------- */

/* A document of the generation being deduplicated, index k in id order. */
struct gdoc {
    uint64_t id;
    uint64_t exact[2];
    float sim; /* near: the best verified similarity among the pairs that joined it */
    uint8_t domain;
    uint8_t status; /* enum ddp_status */
    uint8_t has_exact, has_near;
    uint64_t of;
};

/* A candidate pair: document k and another document of this generation (other < ndocs) or an
 * older kept one (older id). */
struct edge {
    uint32_t k;
    uint32_t other_k; /* UINT32_MAX when the other is older */
    uint64_t older;
};

struct agg {
    uint64_t docs[TM_DOMAIN_COUNT], kept[TM_DOMAIN_COUNT], exact[TM_DOMAIN_COUNT],
        near[TM_DOMAIN_COUNT];
    uint64_t candidates, rejected, older_candidates;
    uint64_t sizes[12]; /* cluster-size histogram: 2, 3-4, 5-8, ..., > 1024 */
};

struct drun {
    const struct ddp_options *opt;
    struct ddp_config cfg;
    struct ddp_params params[TM_DOMAIN_COUNT];
    uint64_t hash;
    struct tm_store store;
    int nthreads;
    struct ddp_work **work;
    struct tm_progress progress;
    struct agg agg;
    uint64_t errors;
    uint64_t spilled; /* band keys written to runs, over all generations */
    /* the generation */
    uint32_t gen;
    struct gdoc *d;
    size_t n, cap;
    uint32_t **sig; /* per document, for domains verified by signature */
    struct ddp_runs runs;
    struct edge *e;
    size_t ne, ecap;
};

static int uses_signature(const struct ddp_config *c, int d)
{
    return c->dom[d].near && c->dom[d].verify == DDP_VERIFY_SIGNATURE;
}

static void edge_add(struct drun *r, uint32_t k, uint32_t other_k, uint64_t older)
{
    if (r->ne == r->ecap) {
        r->ecap = r->ecap ? r->ecap * 2 : 1024;
        r->e = tm_xreallocarray(r->e, r->ecap, sizeof(*r->e));
    }
    r->e[r->ne].k = k;
    r->e[r->ne].other_k = other_k;
    r->e[r->ne].older = older;
    r->ne++;
}

/* -- Step 1: hashes and band keys, a batch of documents on threads -- */

struct batch_item {
    const char *text;
    size_t len;
    uint32_t k;
    uint64_t *keys; /* bands entries, or NULL when the domain's near dedup is off */
    uint32_t *sig;  /* nperm entries (scratch, or kept) */
};

struct batch {
    struct drun *r;
    struct batch_item *it;
    size_t n;
    atomic_size_t next;
};

static void hash_worker(void *ctx, int idx)
{
    struct batch *b = ctx;
    struct drun *r = b->r;
    struct ddp_work *work = r->work[idx];
    for (;;) {
        size_t i = atomic_fetch_add(&b->next, 1);
        if (i >= b->n)
            break;
        struct batch_item *it = &b->it[i];
        struct gdoc *g = &r->d[it->k];
        const struct ddp_params *p = &r->params[g->domain];
        if (it->keys) {
            ddp_signature_exact(work, p, it->text, it->len, it->sig,
                                g->has_exact ? g->exact : NULL);
            ddp_band_keys(p, it->sig, it->keys);
        } else if (g->has_exact) {
            ddp_exact_hash(work, p, it->text, it->len, g->exact);
        }
    }
}

static void run_batch(struct batch *b)
{
    atomic_store(&b->next, 0);
    tm_run_threads(b->r->nthreads < (int)b->n ? b->r->nthreads : (int)b->n, hash_worker, b);
}

/* Documents decided per batch while hashing; their texts stay mapped for the batch. */
#define HASH_BATCH 2048

/* Reads the generation's documents, computes their hashes and band keys, and looks their band
 * keys up in the persistent LSH index (older generations' kept documents). */
static int step_hash(struct drun *r, MDB_txn *txn, int filtered)
{
    struct tm_store *st = &r->store;
    MDB_cursor *cur, *lc;
    int mrc = mdb_cursor_open(txn, st->db.dbi[TM_STORE_DOCS], &cur);
    if (mrc)
        return TM_ERR_DB;
    if ((mrc = mdb_cursor_open(txn, st->db.dbi[TM_STORE_DEDUP_LSH], &lc))) {
        mdb_cursor_close(cur);
        return TM_ERR_DB;
    }
    unsigned bands = r->cfg.bands;
    struct batch b = {.r = r};
    b.it = tm_xcalloc(HASH_BATCH, sizeof(*b.it));
    uint64_t *keys = tm_xmalloc(sizeof(uint64_t) * HASH_BATCH * bands);
    uint32_t *sigs = tm_xmalloc(sizeof(uint32_t) * HASH_BATCH * r->cfg.nperm);
    struct tm_buf *bufs = tm_xcalloc(HASH_BATCH, sizeof(*bufs));
    struct ddp_pair *pairs = tm_xmalloc(sizeof(*pairs) * HASH_BATCH * bands);
    unsigned char kb[8];
    tm_be64_put(kb, tm_doc_make_id(r->gen, 0));
    MDB_val k = {8, kb}, v;
    uint64_t end = tm_doc_make_id(r->gen + 1, 0);
    int rc = TM_OK;
    mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    while (rc == TM_OK) {
        b.n = 0;
        for (; mrc == 0 && b.n < HASH_BATCH; mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
            uint64_t id = tm_be64_get(k.mv_data);
            if (k.mv_size != 8 || id >= end)
                break;
            struct tm_doc doc;
            char what[64];
            snprintf(what, sizeof what, "document %" PRIu64, id);
            if (tm_doc_decode(v.mv_data, v.mv_size, &doc, what) != TM_OK) {
                r->errors++;
                continue;
            }
            int verdict;
            struct batch_item *it = &b.it[b.n];
            int frc = flt_document_text(st, txn, &doc, &bufs[b.n], &verdict, &it->text, &it->len);
            if (frc) {
                r->errors++;
                continue;
            }
            if (filtered && verdict != FLT_VERDICT_KEPT)
                continue; /* removed by the filter (or not decided: treated as removed) */
            int dom = doc.domain;
            const struct ddp_domain_cfg *dc = &r->cfg.dom[dom];
            if (!dc->exact && !dc->near)
                continue;
            if (r->n == r->cap) {
                r->cap = r->cap ? r->cap * 2 : 4096;
                r->d = tm_xreallocarray(r->d, r->cap, sizeof(*r->d));
                r->sig = tm_xreallocarray(r->sig, r->cap, sizeof(*r->sig));
            }
            struct gdoc *g = &r->d[r->n];
            memset(g, 0, sizeof(*g));
            g->id = id;
            g->domain = (uint8_t)dom;
            g->has_exact = (uint8_t)dc->exact;
            g->has_near = (uint8_t)dc->near;
            g->status = DDP_KEPT;
            g->sim = -1; /* unknown until a verified pair sets it */
            r->sig[r->n] = NULL;
            it->k = (uint32_t)r->n;
            it->keys = dc->near ? keys + b.n * bands : NULL;
            it->sig = sigs + b.n * r->cfg.nperm;
            r->n++;
            b.n++;
        }
        if (mrc != 0 && mrc != MDB_NOTFOUND) {
            rc = TM_ERR_DB;
            break;
        }
        if (b.n == 0)
            break;
        run_batch(&b);
        /* In document order, so the runs (and everything after) do not depend on threads. */
        size_t np = 0;
        for (size_t i = 0; i < b.n; i++) {
            struct batch_item *it = &b.it[i];
            struct gdoc *g = &r->d[it->k];
            if (!it->keys)
                continue;
            if (uses_signature(&r->cfg, g->domain)) {
                r->sig[it->k] = tm_xmalloc(sizeof(uint32_t) * r->cfg.nperm);
                memcpy(r->sig[it->k], it->sig, sizeof(uint32_t) * r->cfg.nperm);
            }
            for (unsigned j = 0; j < bands; j++) {
                pairs[np].key = it->keys[j] ^ ((uint64_t)g->domain << 56);
                pairs[np].k = it->k;
                np++;
                if (r->cfg.scope == DDP_SCOPE_GLOBAL) {
                    /* older generations' kept documents sharing this band */
                    unsigned char lk[LSH_KEYLEN];
                    lsh_key(lk, g->domain, it->keys[j]);
                    MDB_val lkey = {LSH_KEYLEN, lk}, lval;
                    for (int lrc = mdb_cursor_get(lc, &lkey, &lval, MDB_SET_KEY); lrc == 0;
                         lrc = mdb_cursor_get(lc, &lkey, &lval, MDB_NEXT_DUP)) {
                        uint64_t older = tm_be64_get(lval.mv_data);
                        if (tm_doc_id_generation(older) < r->gen)
                            edge_add(r, it->k, UINT32_MAX, older);
                    }
                }
            }
        }
        if ((rc = ddp_runs_add(&r->runs, pairs, np)))
            break;
        uint64_t bytes = 0;
        for (size_t i = 0; i < b.n; i++)
            bytes += b.it[i].len;
        tm_progress_add(&r->progress, b.n, bytes);
    }
    mdb_cursor_close(lc);
    mdb_cursor_close(cur);
    for (size_t i = 0; i < HASH_BATCH; i++)
        tm_buf_release(&bufs[i]);
    free(bufs);
    free(pairs);
    free(sigs);
    free(keys);
    free(b.it);
    return rc;
}

/* -- Step 2: exact duplicates -- */

static struct drun *sort_ctx; /* qsort has no context argument; sorting is single-threaded */

static int exact_cmp(const void *pa, const void *pb)
{
    const struct gdoc *a = &sort_ctx->d[*(const uint32_t *)pa];
    const struct gdoc *b = &sort_ctx->d[*(const uint32_t *)pb];
    if (a->domain != b->domain)
        return a->domain < b->domain ? -1 : 1;
    for (int i = 0; i < 2; i++)
        if (a->exact[i] != b->exact[i])
            return a->exact[i] < b->exact[i] ? -1 : 1;
    return *(const uint32_t *)pa < *(const uint32_t *)pb ? -1 : 1;
}

static int step_exact(struct drun *r, MDB_txn *txn)
{
    uint32_t *order = tm_xmalloc(sizeof(uint32_t) * (r->n ? r->n : 1));
    size_t m = 0;
    for (size_t k = 0; k < r->n; k++)
        if (r->d[k].has_exact)
            order[m++] = (uint32_t)k;
    sort_ctx = r;
    qsort(order, m, sizeof(*order), exact_cmp);
    for (size_t i = 0; i < m;) {
        size_t j = i + 1;
        struct gdoc *first = &r->d[order[i]];
        while (j < m && r->d[order[j]].domain == first->domain &&
               r->d[order[j]].exact[0] == first->exact[0] &&
               r->d[order[j]].exact[1] == first->exact[1])
            j++;
        uint64_t of = 0;
        if (r->cfg.scope == DDP_SCOPE_GLOBAL) {
            unsigned char key[EXACT_KEYLEN];
            exact_key(key, first->domain, first->exact);
            const void *val;
            size_t len;
            if (tm_db_get(&r->store.db, txn, TM_STORE_DEDUP_EXACT, key, sizeof key, &val, &len) ==
                    TM_OK &&
                len == 8 && tm_doc_id_generation(tm_be64_get(val)) < r->gen)
                of = tm_be64_get(val); /* an older generation had this text first */
        }
        for (size_t x = of ? i : i + 1; x < j; x++) {
            struct gdoc *g = &r->d[order[x]];
            g->status = DDP_EXACT;
            g->of = of ? of : first->id;
        }
        i = j;
    }
    free(order);
    return TM_OK;
}

/* -- Step 3: near duplicates -- */

/* Candidate pairs from documents of this generation sharing a band key: each to the group's
 * first and to its predecessor (bounded work per group, whatever its size), exact duplicates
 * left out. */
static int group_fn(void *ctx, const struct ddp_pair *g, size_t n)
{
    struct drun *r = ctx;
    uint32_t first = UINT32_MAX, prev = UINT32_MAX;
    for (size_t i = 0; i < n; i++) {
        uint32_t k = g[i].k;
        if (r->d[k].status == DDP_EXACT || k == prev)
            continue;
        if (first != UINT32_MAX) {
            edge_add(r, k, first, 0);
            if (prev != first)
                edge_add(r, k, prev, 0);
        } else {
            first = k;
        }
        prev = k;
    }
    return TM_OK;
}

static int edge_cmp(const void *pa, const void *pb)
{
    const struct edge *a = pa, *b = pb;
    if (a->k != b->k)
        return a->k < b->k ? -1 : 1;
    if (a->other_k != b->other_k)
        return a->other_k < b->other_k ? -1 : 1;
    return a->older < b->older ? -1 : a->older > b->older;
}

static int u64_cmp(const void *pa, const void *pb)
{
    uint64_t a = *(const uint64_t *)pa, b = *(const uint64_t *)pb;
    return a < b ? -1 : a > b;
}

/* Union-find over the generation's documents (nodes 0..n-1) and the older kept documents met in
 * candidate pairs (nodes n..): a root is the cluster's earliest member, older before newer. */
struct uf {
    uint32_t *parent;
    uint64_t *older; /* node n + i is older[i] */
    size_t n, nolder;
};

static int node_before(const struct uf *u, uint32_t a, uint32_t b)
{
    int ao = a >= u->n, bo = b >= u->n;
    if (ao != bo)
        return ao; /* an older generation's document comes first */
    if (ao)
        return u->older[a - u->n] < u->older[b - u->n];
    return a < b;
}

static uint32_t uf_find(struct uf *u, uint32_t x)
{
    while (u->parent[x] != x) {
        u->parent[x] = u->parent[u->parent[x]];
        x = u->parent[x];
    }
    return x;
}

static void uf_union(struct uf *u, uint32_t a, uint32_t b)
{
    a = uf_find(u, a);
    b = uf_find(u, b);
    if (a == b)
        return;
    if (node_before(u, a, b))
        u->parent[b] = a;
    else
        u->parent[a] = b;
}

/* The text dedup compares for document `id`: its text without the filter's spans. */
static int text_of(struct drun *r, MDB_txn *txn, uint64_t id, struct tm_buf *buf, const char **text,
                   size_t *len)
{
    struct tm_doc doc;
    int rc = tm_store_get_doc(&r->store, txn, id, &doc);
    if (rc)
        return rc;
    int verdict;
    return flt_document_text(&r->store, txn, &doc, buf, &verdict, text, len);
}

/* The similarity of candidate pair `e` as its domain verifies it (-1 when it does not). */
static double edge_sim(struct drun *r, MDB_txn *txn, struct ddp_work *w, const struct edge *e,
                       struct tm_buf *b1, struct tm_buf *b2)
{
    const struct gdoc *g = &r->d[e->k];
    const struct ddp_domain_cfg *dc = &r->cfg.dom[g->domain];
    const struct ddp_params *p = &r->params[g->domain];
    if (dc->verify == DDP_VERIFY_SIGNATURE) {
        if (e->other_k != UINT32_MAX)
            return ddp_jaccard_estimate(p, r->sig[e->k], r->sig[e->other_k]);
        const char *t;
        size_t len;
        if (text_of(r, txn, e->older, b2, &t, &len) != TM_OK)
            return 0;
        uint32_t *tmp = tm_xmalloc(sizeof(uint32_t) * r->cfg.nperm);
        ddp_signature(w, p, t, len, tmp);
        double sim = ddp_jaccard_estimate(p, r->sig[e->k], tmp);
        free(tmp);
        return sim;
    }
    if (dc->verify == DDP_VERIFY_EXACT) {
        const char *t1, *t2;
        size_t l1, l2;
        uint64_t other_id = e->other_k == UINT32_MAX ? e->older : r->d[e->other_k].id;
        if (text_of(r, txn, g->id, b1, &t1, &l1) != TM_OK ||
            text_of(r, txn, other_id, b2, &t2, &l2) != TM_OK)
            return 0;
        return ddp_jaccard_exact(w, p, t1, l1, t2, l2);
    }
    return -1;
}

/* Verification on the worker threads: each candidate pair's similarity into sim[i], each thread
 * with its own read transaction; the union-find that follows uses them in edge order, so the
 * clusters do not depend on the threads. */
struct verify_job {
    struct drun *r;
    double *sim;
    atomic_size_t next;
};

/* Pairs handed to a thread at a time. */
#define VERIFY_CHUNK 16

static int edge_needed(const struct drun *r, size_t i)
{
    const struct edge *e = &r->e[i];
    return !(i > 0 && edge_cmp(e, &r->e[i - 1]) == 0) && r->d[e->k].status != DDP_EXACT;
}

static void verify_worker(void *ctx, int idx)
{
    struct verify_job *j = ctx;
    struct drun *r = j->r;
    MDB_txn *txn;
    if (mdb_txn_begin(r->store.db.env, NULL, MDB_RDONLY, &txn) != 0)
        return; /* its pairs stay at NAN: the caller notices */
    struct tm_buf b1, b2;
    tm_buf_init(&b1, 0);
    tm_buf_init(&b2, 0);
    for (;;) {
        size_t i0 = atomic_fetch_add(&j->next, VERIFY_CHUNK);
        if (i0 >= r->ne)
            break;
        size_t i1 = i0 + VERIFY_CHUNK < r->ne ? i0 + VERIFY_CHUNK : r->ne;
        for (size_t i = i0; i < i1; i++)
            if (edge_needed(r, i))
                j->sim[i] = edge_sim(r, txn, r->work[idx], &r->e[i], &b1, &b2);
    }
    tm_buf_release(&b1);
    tm_buf_release(&b2);
    mdb_txn_abort(txn);
}

static int verify_edges(struct drun *r, double *sim)
{
    for (size_t i = 0; i < r->ne; i++)
        sim[i] = NAN;
    struct verify_job job = {.r = r, .sim = sim};
    atomic_store(&job.next, 0);
    tm_run_threads(r->nthreads, verify_worker, &job);
    for (size_t i = 0; i < r->ne; i++)
        if (edge_needed(r, i) && isnan(sim[i])) {
            tm_log_error("%s: cannot begin a read transaction to verify pairs", r->store.db.path);
            return TM_ERR_DB;
        }
    return TM_OK;
}

static int step_near(struct drun *r)
{
    int rc = ddp_runs_groups(&r->runs, 2, group_fn, r);
    if (rc)
        return rc;
    if (r->ne)
        qsort(r->e, r->ne, sizeof(*r->e), edge_cmp);
    struct uf u = {.n = r->n};
    u.older = tm_xmalloc(sizeof(uint64_t) * (r->ne + 1));
    for (size_t i = 0; i < r->ne; i++)
        if (r->e[i].other_k == UINT32_MAX)
            u.older[u.nolder++] = r->e[i].older;
    qsort(u.older, u.nolder, sizeof(*u.older), u64_cmp);
    size_t uniq = 0;
    for (size_t i = 0; i < u.nolder; i++)
        if (i == 0 || u.older[i] != u.older[i - 1])
            u.older[uniq++] = u.older[i];
    u.nolder = uniq;
    u.parent = tm_xmalloc(sizeof(uint32_t) * (r->n + u.nolder + 1));
    for (size_t i = 0; i < r->n + u.nolder; i++)
        u.parent[i] = (uint32_t)i;
    double *sims = tm_xmalloc(sizeof(double) * (r->ne + 1));
    rc = verify_edges(r, sims);
    for (size_t i = 0; i < r->ne && rc == TM_OK; i++) {
        if (!edge_needed(r, i))
            continue; /* the same pair from another band, or an exact duplicate */
        struct edge *e = &r->e[i];
        struct gdoc *g = &r->d[e->k];
        r->agg.candidates++;
        r->agg.older_candidates += e->other_k == UINT32_MAX;
        const struct ddp_domain_cfg *dc = &r->cfg.dom[g->domain];
        double sim = sims[i];
        if (dc->verify != DDP_VERIFY_OFF && sim < dc->threshold) {
            r->agg.rejected++;
            continue;
        }
        uint32_t other;
        if (e->other_k != UINT32_MAX) {
            other = e->other_k;
        } else {
            const uint64_t *o = bsearch(&e->older, u.older, u.nolder, sizeof(*u.older), u64_cmp);
            other = (uint32_t)(u.n + (size_t)(o - u.older));
        }
        uf_union(&u, e->k, other);
        if (sim > g->sim)
            g->sim = (float)sim;
        if (other < u.n && sim > r->d[other].sim)
            r->d[other].sim = (float)sim;
    }
    free(sims);
    for (size_t k = 0; k < r->n; k++) {
        struct gdoc *g = &r->d[k];
        if (g->status == DDP_EXACT)
            continue;
        uint32_t root = uf_find(&u, (uint32_t)k);
        if (root == k)
            continue;
        g->status = DDP_NEAR;
        g->of = root >= u.n ? u.older[root - u.n] : r->d[root].id;
    }
    free(u.parent);
    free(u.older);
    return rc;
}

/* -- Step 4: decisions and indexes -- */

/* Decisions written per transaction. */
#define WRITE_BATCH 4096
/* LSH index entries written per transaction. */
#define LSH_BATCH 65536

/* mdb_put that treats "already there" as done: a rerun rewrites what a killed run wrote. */
static int put_once(struct tm_db *db, MDB_txn *txn, unsigned dbi, const void *key, size_t klen,
                    const void *val, size_t vlen, unsigned flags)
{
    MDB_val k = {klen, (void *)key}, v = {vlen, (void *)val};
    int mrc = mdb_put(txn, db->dbi[dbi], &k, &v, flags);
    if (mrc == 0 || mrc == MDB_KEYEXIST)
        return TM_OK;
    if (mrc == MDB_MAP_FULL || mrc == MDB_TXN_FULL)
        return TM_ERR_MAPFULL;
    tm_log_error("%s: cannot write a dedup index entry: %s", db->path, mdb_strerror(mrc));
    return TM_ERR_DB;
}

struct write_ctx {
    struct drun *r;
    size_t from, to; /* documents [from, to) */
    struct tm_stage rec;
};

static int write_fn(MDB_txn *txn, struct tm_db *db, void *vctx)
{
    struct write_ctx *c = vctx;
    struct drun *r = c->r;
    int rc = TM_OK;
    for (size_t k = c->from; k < c->to && rc == TM_OK; k++) {
        const struct gdoc *g = &r->d[k];
        struct ddp_decision d = {g->status, g->domain, g->sim, g->of};
        unsigned char key[8], val[DDP_DECISION_SIZE];
        tm_be64_put(key, g->id);
        ddp_decision_encode(&d, r->hash, val);
        rc = tm_db_put(db, txn, TM_STORE_DEDUP, key, 8, val, sizeof val, 0);
        if (rc == TM_OK && g->has_exact && g->status != DDP_EXACT) {
            unsigned char ek[EXACT_KEYLEN];
            exact_key(ek, g->domain, g->exact);
            rc = put_once(db, txn, TM_STORE_DEDUP_EXACT, ek, sizeof ek, key, 8, MDB_NOOVERWRITE);
        }
        if (rc == TM_OK && g->status != DDP_KEPT) {
            unsigned char rep[8];
            tm_be64_put(rep, g->of);
            rc = put_once(db, txn, TM_STORE_DEDUP_MEMBERS, rep, 8, key, 8, MDB_NODUPDATA);
        }
    }
    return rc ? rc : stage_put(&r->store, txn, r->gen, &c->rec);
}

static size_t first_at_or_after(const struct drun *r, uint64_t id)
{
    size_t lo = 0, hi = r->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (r->d[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static int step_write(struct drun *r, struct tm_stage *rec)
{
    for (size_t k = first_at_or_after(r, rec->next_id); k < r->n;) {
        size_t to = k + WRITE_BATCH < r->n ? k + WRITE_BATCH : r->n;
        struct write_ctx c = {.r = r, .from = k, .to = to, .rec = *rec};
        c.rec.state = TM_STAGE_PARTIAL;
        c.rec.config_hash = r->hash;
        c.rec.next_id = to < r->n ? r->d[to].id : tm_doc_make_id(r->gen + 1, 0);
        int rc = tm_db_write(&r->store.db, write_fn, &c);
        if (rc)
            return rc;
        *rec = c.rec;
        k = to;
    }
    if (rec->next_id < tm_doc_make_id(r->gen + 1, 0)) {
        struct write_ctx c = {.r = r, .from = 0, .to = 0, .rec = *rec};
        c.rec.state = TM_STAGE_PARTIAL;
        c.rec.config_hash = r->hash;
        c.rec.next_id = tm_doc_make_id(r->gen + 1, 0);
        int rc = tm_db_write(&r->store.db, write_fn, &c);
        if (rc)
            return rc;
        *rec = c.rec;
    }
    return TM_OK;
}

/* The LSH index gets the band keys of the generation's kept documents, read back from the runs
 * in key order (sequential writes), LSH_BATCH per transaction; rec->aux counts the pairs
 * of the merge already handled, so a rerun skips them. */
struct lsh_ctx {
    struct drun *r;
    struct tm_stage *rec;
    uint64_t seen;
    struct ddp_pair *buf;
    size_t n;
    int rc;
};

static int lsh_flush_fn(MDB_txn *txn, struct tm_db *db, void *vctx)
{
    struct lsh_ctx *c = vctx;
    int rc = TM_OK;
    for (size_t i = 0; i < c->n && rc == TM_OK; i++) {
        const struct gdoc *g = &c->r->d[c->buf[i].k];
        unsigned char lk[LSH_KEYLEN], id[8];
        lsh_key(lk, g->domain, c->buf[i].key ^ ((uint64_t)g->domain << 56));
        tm_be64_put(id, g->id);
        rc = put_once(db, txn, TM_STORE_DEDUP_LSH, lk, sizeof lk, id, 8, MDB_NODUPDATA);
    }
    if (rc)
        return rc;
    struct tm_stage rec = *c->rec;
    rec.aux = c->seen;
    return stage_put(&c->r->store, txn, c->r->gen, &rec);
}

static int lsh_flush(struct lsh_ctx *c)
{
    int rc = tm_db_write(&c->r->store.db, lsh_flush_fn, c);
    if (rc == TM_OK)
        c->rec->aux = c->seen;
    c->n = 0;
    return rc;
}

static int lsh_fn(void *ctx, const struct ddp_pair *g, size_t n)
{
    struct lsh_ctx *c = ctx;
    for (size_t i = 0; i < n; i++) {
        c->seen++;
        if (c->seen <= c->rec->aux)
            continue; /* written before a kill */
        if (c->r->d[g[i].k].status != DDP_KEPT)
            continue;
        c->buf[c->n++] = g[i];
        if (c->n == LSH_BATCH) {
            int rc = lsh_flush(c);
            if (rc)
                return rc;
        }
    }
    return TM_OK;
}

static int step_lsh(struct drun *r, struct tm_stage *rec)
{
    struct lsh_ctx c = {.r = r, .rec = rec};
    c.buf = tm_xmalloc(sizeof(*c.buf) * LSH_BATCH);
    int rc = ddp_runs_groups(&r->runs, 1, lsh_fn, &c);
    if (rc == TM_OK && c.n)
        rc = lsh_flush(&c);
    free(c.buf);
    return rc;
}

struct done_ctx {
    struct drun *r;
    struct tm_stage rec;
};

static int done_fn(MDB_txn *txn, struct tm_db *db, void *vctx)
{
    (void)db;
    struct done_ctx *c = vctx;
    return stage_put(&c->r->store, txn, c->r->gen, &c->rec);
}

static void cluster_sizes(struct drun *r)
{
    uint64_t *reps = tm_xmalloc(sizeof(uint64_t) * (r->n + 1));
    size_t m = 0;
    for (size_t k = 0; k < r->n; k++) {
        const struct gdoc *g = &r->d[k];
        r->agg.docs[g->domain]++;
        if (g->status == DDP_KEPT)
            r->agg.kept[g->domain]++;
        else if (g->status == DDP_EXACT)
            r->agg.exact[g->domain]++;
        else
            r->agg.near[g->domain]++;
        if (g->status != DDP_KEPT)
            reps[m++] = g->of;
    }
    qsort(reps, m, sizeof(*reps), u64_cmp);
    for (size_t i = 0; i < m;) {
        size_t j = i;
        while (j < m && reps[j] == reps[i])
            j++;
        uint64_t size = j - i + 1; /* the members and the kept document */
        unsigned bin = 0;
        while (bin < 11 && size > (2ull << bin))
            bin++;
        r->agg.sizes[bin]++;
        i = j;
    }
    free(reps);
}

static void gen_release(struct drun *r)
{
    for (size_t k = 0; k < r->n; k++)
        free(r->sig[k]);
    r->n = 0;
    r->ne = 0;
    r->spilled += r->runs.spilled;
    ddp_runs_release(&r->runs);
}

static int dedup_generation(struct drun *r, uint32_t gen, struct tm_stage *rec, int filtered)
{
    r->gen = gen;
    r->n = r->ne = 0;
    char *tmp = tm_path_join(r->opt->workdir, "tmp");
    char name[32];
    snprintf(name, sizeof name, "dedup-runs-%u", gen);
    char *dir = tm_path_join(tmp, name);
    ddp_runs_init(&r->runs, dir, r->opt->memory);
    free(dir);
    free(tmp);
    MDB_txn *txn;
    int mrc = mdb_txn_begin(r->store.db.env, NULL, MDB_RDONLY, &txn);
    if (mrc) {
        tm_log_error("%s: cannot begin a read transaction: %s", r->store.db.path,
                     mdb_strerror(mrc));
        return TM_ERR_DB;
    }
    int rc = step_hash(r, txn, filtered);
    if (rc == TM_OK)
        rc = step_exact(r, txn);
    mdb_txn_abort(txn);
    if (rc == TM_OK)
        rc = step_near(r);
    if (rc == TM_OK)
        cluster_sizes(r);
    if (rc == TM_OK && !r->opt->dry_run) {
        rc = step_write(r, rec);
        if (rc == TM_OK)
            rc = step_lsh(r, rec);
        if (rc == TM_OK) {
            struct done_ctx c = {.r = r, .rec = *rec};
            c.rec.state = TM_STAGE_DONE;
            rc = tm_db_write(&r->store.db, done_fn, &c);
        }
    }
    gen_release(r);
    return rc;
}

/* ---- Statistics ----------------------------------------------------------------------------- */

static void agg_json(const struct agg *a, cJSON *o)
{
    uint64_t docs = 0, kept = 0, exact = 0, near = 0;
    cJSON *doms = tm_stats_obj(o, "domains");
    for (int d = 0; d < TM_DOMAIN_COUNT; d++) {
        docs += a->docs[d];
        kept += a->kept[d];
        exact += a->exact[d];
        near += a->near[d];
        if (!a->docs[d])
            continue;
        cJSON *x = tm_stats_obj(doms, tm_domain_name(d));
        tm_stats_add(x, "documents", (int64_t)a->docs[d]);
        tm_stats_add(x, "kept", (int64_t)a->kept[d]);
        tm_stats_add(x, "exact_duplicates", (int64_t)a->exact[d]);
        tm_stats_add(x, "near_duplicates", (int64_t)a->near[d]);
    }
    tm_stats_add(o, "documents", (int64_t)docs);
    tm_stats_add(o, "kept", (int64_t)kept);
    tm_stats_add(o, "exact_duplicates", (int64_t)exact);
    tm_stats_add(o, "near_duplicates", (int64_t)near);
    tm_stats_add(o, "candidate_pairs", (int64_t)a->candidates);
    tm_stats_add(o, "candidate_pairs_with_older", (int64_t)a->older_candidates);
    tm_stats_add(o, "rejected_by_verification", (int64_t)a->rejected);
    cJSON *h = tm_stats_obj(o, "cluster_sizes");
    for (unsigned b = 0; b < 12; b++) {
        if (!a->sizes[b])
            continue;
        char label[32];
        if (b == 0)
            snprintf(label, sizeof label, "2");
        else if (b == 11)
            snprintf(label, sizeof label, ">%llu", 2ull << 10);
        else
            snprintf(label, sizeof label, "%llu-%llu", (1ull << b) + 1, 2ull << b);
        tm_stats_add(h, label, (int64_t)a->sizes[b]);
    }
}

/* ---- --show-cluster and --export ------------------------------------------------------------ */

static void print_member(struct tm_store *st, MDB_txn *txn, uint64_t id, const char *role)
{
    unsigned char key[8];
    tm_be64_put(key, id);
    const void *val;
    size_t len;
    struct ddp_decision d = {0};
    int have = tm_db_get(&st->db, txn, TM_STORE_DEDUP, key, 8, &val, &len) == TM_OK &&
               ddp_decision_decode(val, len, &d, NULL, "decision") == TM_OK;
    struct tm_doc doc;
    int have_doc = tm_store_get_doc(st, txn, id, &doc) == TM_OK;
    printf("%-6s %" PRIu64 "\t%s", role, id, have ? ddp_status_name(d.status) : "-");
    if (have && d.status == DDP_NEAR && d.similarity >= 0)
        printf(" %.3f", d.similarity);
    printf("\t%zu bytes\t%s\n", have_doc ? doc.text_len : 0, have_doc ? doc.source : "?");
}

struct show_ctx {
    struct drun *r;
    uint64_t id;
};

static int show_fn(MDB_txn *txn, struct tm_db *db, void *vctx)
{
    struct show_ctx *c = vctx;
    struct tm_store *st = &c->r->store;
    unsigned char key[8];
    tm_be64_put(key, c->id);
    const void *val;
    size_t len;
    struct ddp_decision d;
    int rc = tm_db_get(db, txn, TM_STORE_DEDUP, key, 8, &val, &len);
    if (rc == TM_ERR_NOTFOUND) {
        tm_log_error("document %" PRIu64 " has no dedup decision (not deduplicated yet, removed "
                     "by the filter, or no such document)",
                     c->id);
        return rc;
    }
    if (rc || (rc = ddp_decision_decode(val, len, &d, NULL, "decision")))
        return rc;
    uint64_t rep = d.status == DDP_KEPT ? c->id : d.of;
    printf("cluster of %" PRIu64 ":\n", rep);
    print_member(st, txn, rep, "kept");
    MDB_cursor *cur;
    if (mdb_cursor_open(txn, db->dbi[TM_STORE_DEDUP_MEMBERS], &cur))
        return TM_ERR_DB;
    tm_be64_put(key, rep);
    MDB_val k = {8, key}, v;
    size_t members = 0;
    for (int mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_KEY); mrc == 0;
         mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT_DUP)) {
        print_member(st, txn, tm_be64_get(v.mv_data), "member");
        members++;
    }
    mdb_cursor_close(cur);
    printf("%zu member(s) besides the kept document\n", members);
    return TM_OK;
}

/* One line of --export: the decision's fields (tm_store_export_jsonl adds id, source, meta). */
static int export_row(void *ctx, uint64_t id, const void *val, size_t len, cJSON *o)
{
    (void)ctx;
    (void)id;
    struct ddp_decision d;
    if (ddp_decision_decode(val, len, &d, NULL, "decision") != TM_OK)
        return 1;
    cJSON_AddStringToObject(o, "domain", tm_domain_name(d.domain));
    cJSON_AddStringToObject(o, "status", ddp_status_name(d.status));
    if (d.status != DDP_KEPT)
        cJSON_AddNumberToObject(o, "of", (double)d.of);
    if (d.status == DDP_NEAR && d.similarity >= 0)
        cJSON_AddNumberToObject(o, "similarity", d.similarity);
    return 0;
}

/* ---- The run ----------------------------------------------------------------------------------
 */

struct plan_item {
    uint32_t gen;
    struct tm_stage rec;
    int filtered;
};

struct plan_ctx {
    struct drun *r;
    struct plan_item *items;
    size_t n;
    uint64_t docs;
    unsigned stale;
};

static int plan_fn(MDB_txn *txn, struct tm_db *db, void *vctx)
{
    (void)db;
    struct plan_ctx *p = vctx;
    struct drun *r = p->r;
    uint32_t last;
    int rc = tm_store_last_gen(&r->store, txn, &last);
    if (rc)
        return rc;
    p->items = tm_xcalloc((size_t)last + 1, sizeof(*p->items));
    for (uint32_t g = 1; g <= last; g++) {
        struct tm_gen gr;
        rc = tm_store_get_gen(&r->store, txn, g, &gr);
        if (rc == TM_ERR_NOTFOUND)
            continue;
        if (rc)
            return rc;
        if (gr.state != TM_GEN_CLOSED) {
            tm_log_warn("generation %u is still being ingested: skipped", g);
            continue;
        }
        struct tm_stage rec = {0};
        rc = stage_get(&r->store, txn, g, &rec);
        if (rc && rc != TM_ERR_NOTFOUND)
            return rc;
        if (rc == TM_OK && rec.state == TM_STAGE_DONE) {
            p->stale += rec.config_hash != r->hash;
            continue;
        }
        if (rc == TM_OK && rec.config_hash != r->hash)
            memset(&rec, 0, sizeof rec); /* a partial run with other settings: start over */
        int filtered = 0;
        if ((rc = flt_generation_done(&r->store, txn, g, &filtered)))
            return rc;
        if (!filtered)
            tm_log_warn("generation %u was not filtered: all its documents take part (run "
                        "tokenmill filter first to dedup only what it keeps)",
                        g);
        for (int d = 0; d < TM_DOMAIN_COUNT; d++)
            p->docs += gr.docs[d];
        p->items[p->n].gen = g;
        p->items[p->n].rec = rec;
        p->items[p->n].filtered = filtered;
        p->n++;
    }
    return TM_OK;
}

/* --redo: every dedup decision, index entry and stage record goes. */
static int clear_fn(MDB_txn *txn, struct tm_db *db, void *vctx)
{
    (void)vctx;
    static const unsigned dbis[] = {TM_STORE_DEDUP, TM_STORE_DEDUP_EXACT, TM_STORE_DEDUP_LSH,
                                    TM_STORE_DEDUP_MEMBERS};
    for (size_t i = 0; i < sizeof dbis / sizeof dbis[0]; i++)
        if (mdb_drop(txn, db->dbi[dbis[i]], 0) != 0)
            return TM_ERR_DB;
    MDB_cursor *cur;
    if (mdb_cursor_open(txn, db->dbi[TM_STORE_STAGES], &cur))
        return TM_ERR_DB;
    MDB_val k = {sizeof(STAGE_PREFIX) - 1, (void *)STAGE_PREFIX}, v;
    int mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    while (mrc == 0 && k.mv_size >= sizeof(STAGE_PREFIX) - 1 &&
           memcmp(k.mv_data, STAGE_PREFIX, sizeof(STAGE_PREFIX) - 1) == 0) {
        if (mdb_cursor_del(cur, 0) != 0) {
            mdb_cursor_close(cur);
            return TM_ERR_DB;
        }
        mrc = mdb_cursor_get(cur, &k, &v, MDB_GET_CURRENT);
        if (mrc != 0)
            mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    }
    mdb_cursor_close(cur);
    return TM_OK;
}

int ddp_settings(const struct ddp_options *opt, struct ddp_config *cfg, uint64_t *hash)
{
    ddp_config_defaults(cfg);
    int rc = TM_OK;
    if (opt->config && (rc = ddp_config_load(cfg, opt->config)))
        return rc;
    if ((rc = tm_ini_apply_sets(&opt->set, "--set", ddp_config_set_fn, cfg)))
        return rc;
    if ((rc = ddp_config_check(cfg)))
        return rc;
    *hash = tm_stage_hash_epoch(ddp_config_hash(cfg), opt->input_epoch);
    return TM_OK;
}

int ddp_dedup_run(const struct ddp_options *opt, int progress, cJSON *stats)
{
    struct drun r;
    memset(&r, 0, sizeof r);
    r.opt = opt;
    int rc, lock = -1;
    if ((rc = ddp_settings(opt, &r.cfg, &r.hash)))
        return rc;
    for (int d = 0; d < TM_DOMAIN_COUNT; d++)
        if ((rc = ddp_config_params(&r.cfg, d, &r.params[d])))
            return rc;
    if (opt->print_config) {
        ddp_config_print(&r.cfg, stdout);
        return TM_OK;
    }
    if (!opt->show_cluster && !opt->dry_run) {
        lock = tm_lock_workdir(opt->workdir);
        if (lock < 0)
            return lock;
    }
    if ((rc = tm_store_open(&r.store, opt->workdir, 0)))
        goto out;
    if (opt->show_cluster) {
        struct show_ctx c = {.r = &r};
        if (tm_doc_parse_id(opt->show_cluster, &c.id) != 0) {
            tm_log_error("--show-cluster '%s': want a document id (a number or GEN:SEQ)",
                         opt->show_cluster);
            rc = TM_ERR_USAGE;
            goto out;
        }
        rc = tm_db_read(&r.store.db, show_fn, &c);
        goto out;
    }
    if (opt->redo && !opt->dry_run && (rc = tm_db_write(&r.store.db, clear_fn, NULL)))
        goto out;
    r.nthreads = tm_thread_count(opt->threads);
    r.work = tm_xcalloc((size_t)r.nthreads, sizeof(*r.work));
    for (int t = 0; t < r.nthreads; t++)
        r.work[t] = ddp_work_new();

    struct plan_ctx plan = {.r = &r};
    if ((rc = tm_db_read(&r.store.db, plan_fn, &plan)))
        goto out_plan;
    if (plan.stale)
        tm_log_warn("%u generation(s) were deduplicated with other settings and are left as "
                    "they are; --redo deduplicates everything again",
                    plan.stale);
    double t0 = tm_now();
    tm_progress_init(&r.progress, "dedup", plan.docs, 0, progress, 0);
    cJSON *ds = tm_stats_obj(stats, "dedup");
    char hex[20];
    snprintf(hex, sizeof hex, "%016" PRIx64, r.hash);
    tm_stats_set_str(ds, "config_hash", hex);
    tm_stats_set_num(ds, "threads", r.nthreads);
    cJSON *gens = cJSON_AddArrayToObject(ds, "generations");
    for (size_t i = 0; i < plan.n && rc == TM_OK; i++) {
        cJSON_AddItemToArray(gens, cJSON_CreateNumber(plan.items[i].gen));
        rc = dedup_generation(&r, plan.items[i].gen, &plan.items[i].rec, plan.items[i].filtered);
    }
    tm_progress_finish(&r.progress);
    tm_stats_set_num(ds, "seconds", tm_now() - t0);
    tm_stats_add(ds, "errors", (int64_t)r.errors);
    tm_stats_add(ds, "spilled_band_keys", (int64_t)r.spilled);
    agg_json(&r.agg, tm_stats_obj(ds, "run"));
    if (rc == TM_OK) {
        uint64_t docs = 0, kept = 0, exact = 0, near = 0;
        for (int d = 0; d < TM_DOMAIN_COUNT; d++) {
            docs += r.agg.docs[d];
            kept += r.agg.kept[d];
            exact += r.agg.exact[d];
            near += r.agg.near[d];
        }
        printf("dedup%s: %zu generation(s), %" PRIu64 " documents: kept %" PRIu64
               ", exact duplicates %" PRIu64 ", near duplicates %" PRIu64 "\n",
               opt->dry_run ? " (dry run, nothing written)" : "", plan.n, docs, kept, exact, near);
        printf("  candidate pairs %" PRIu64 " (%" PRIu64 " with older generations), rejected by "
               "verification %" PRIu64 "\n",
               r.agg.candidates, r.agg.older_candidates, r.agg.rejected);
    }
    if (rc == TM_OK && opt->export_path)
        rc = tm_store_export_jsonl(&r.store, TM_STORE_DEDUP, opt->export_path, export_row, NULL);
    if (rc == TM_OK && r.errors)
        rc = TM_ERR_PARTIAL;
out_plan:
    free(plan.items);
    for (int t = 0; t < r.nthreads; t++)
        ddp_work_free(r.work[t]);
    free(r.work);
out:
    free(r.d);
    free(r.sig);
    free(r.e);
    if (r.store.db.env)
        tm_store_close(&r.store);
    if (lock >= 0)
        tm_unlock(lock);
    return rc;
}
