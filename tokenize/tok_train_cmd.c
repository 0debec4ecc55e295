/* tok_train_cmd.c: the `tokenize train-vocab` command: count the pre-tokens of the kept
 * documents on worker threads, train byte-level BPE (tok_train.c), write OUT (.tiktoken) and
 * its sidecar OUT.json.
 *
 * Counting: the calling thread reads the documents from LMDB in one read transaction (LMDB
 * wants a transaction used by its own thread) and copies their text into batches; the worker
 * threads pre-tokenize and count into their own tables, merged at the end. When no batch is
 * free but some are queued, the reader counts one itself instead of waiting (it waits only
 * while every batch is being counted), which also makes the command run on one thread when
 * no worker thread could be started. Counts are integers
 * summed per word, so the merged table, and the merges, do not depend on which thread counted
 * what (unless a table was pruned: see tok_wordtab_new). */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "tok_docs.h"
#include "tok_train.h"
#include "tm_buf.h"
#include "tm_err.h"
#include "tm_fs.h"
#include "tm_log.h"
#include "tm_mem.h"
#include "tm_progress.h"
#include "tm_stats.h"
#include "tm_store.h"
#include "tm_thread.h"

#ifndef TOKENMILL_VERSION
#define TOKENMILL_VERSION "0.1.0"
#endif

#define SIDECAR_FORMAT  "tokenmill-vocab"
#define SIDECAR_VERSION 1
#define EOT_TEXT        "<|endoftext|>"

/* Text per batch handed to a worker: large enough that the queue's locking is noise, small
 * enough that 2 * threads + 1 batches in flight stay a few MiB. A document over it is counted
 * by the reader in place, without a copy. */
#define BATCH_BYTES ((size_t)1 << 20)
/* Largest weight accepted: beyond it one domain's counts would swamp the others entirely. */
#define MAX_WEIGHT 1000.0
/* Returned by the document callback to end reading at --max-docs / --max-bytes; positive so
 * it cannot be mistaken for a tm_err. */
#define STOP_READING 1

struct train_options {
    char *workdir;
    long vocab_size;
    char *out;
    int pattern;
    char *weight;
    long min_frequency;
    long threads;
    long max_docs;
    size_t max_bytes;
    long max_words;
    int require;
};

#define OPT(field) offsetof(struct train_options, field)

static const struct tm_opt train_opts[] = {
    {TM_OPT_STR, "workdir", 'w', OPT(workdir), "DIR", "the pipeline's work directory (required)"},
    {TM_OPT_INT, "vocab-size", 0, OPT(vocab_size), "N",
     "mergeable tokens wanted, the 256 single bytes included (<|endoftext|> comes on top)", "32768",
     256, TOK_TRAIN_MAX_VOCAB},
    {TM_OPT_STR, "out", 'o', OPT(out), "FILE",
     "the .tiktoken file to write (required); its sidecar is FILE.json"},
    {TM_OPT_ENUM, "pattern", 'p', OPT(pattern), "NAME",
     "pre-tokenization pattern: r50k (GPT-2), cl100k or o200k", "cl100k", 0, 0, tok_pattern_names},
    {TM_OPT_STR, "weight", 0, OPT(weight), "LIST",
     "per-domain weights, e.g. text=1,math=2,code=0.5 (each pre-token of a document counts its "
     "domain's weight; 0 skips the domain; unnamed domains weigh 1)",
     "text=1,math=1,code=1"},
    {TM_OPT_INT, "min-frequency", 0, OPT(min_frequency), "N",
     "stop early (with a warning) when the best pair's weighted count falls below N", "2", 0, 1e15},
    {TM_OPT_INT, "threads", 'j', OPT(threads), "N", "counting threads (0: one per core)", "0", 0,
     256},
    {TM_OPT_INT, "max-docs", 0, OPT(max_docs), "N",
     "train on at most the first N kept documents (0: all)", "0", 0, 1e15},
    {TM_OPT_SIZE, "max-bytes", 0, OPT(max_bytes), "SIZE",
     "train on the first kept documents up to SIZE bytes of text (0: all)", "0", 0,
     1024.0 * 1024 * 1024 * 1024 * 1024},
    {TM_OPT_INT, "max-words", 0, OPT(max_words), "N",
     "cap on unique pre-tokens held in memory; past it the rarest (seen once first) are pruned "
     "and counted in the statistics",
     "20000000", 1, 2147483647.0},
    {TM_OPT_ENUM, "require", 0, OPT(require), "WHAT",
     "decisions: only generations filter and dedup finished, only documents both kept; none: "
     "every generation, undecided documents count as kept",
     "decisions", 0, 0, tok_require_names},
    {TM_OPT_END},
};

/* ---- Weights ---------------------------------------------------------------------------- */

struct weights {
    uint64_t milli[TM_DOMAIN_COUNT]; /* round(weight * 1000) */
    uint64_t mult[TM_DOMAIN_COUNT];  /* milli / gcd: what a pre-token counts */
    uint64_t gcd;
};

static uint64_t gcd_u64(uint64_t a, uint64_t b)
{
    while (b) {
        uint64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/* Parses "domain=w,..." over the defaults (1 each). */
static int parse_weights(const char *spec, struct weights *w)
{
    memset(w, 0, sizeof(*w));
    for (int d = 0; d < TM_DOMAIN_COUNT; d++)
        w->milli[d] = TOK_TRAIN_WEIGHT_SCALE;
    const char *p = spec ? spec : "";
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        char item[64];
        if (n == 0 || n >= sizeof(item)) {
            tm_log_error("--weight: bad item '%.*s' (want DOMAIN=WEIGHT)", (int)n, p);
            return TM_ERR_USAGE;
        }
        memcpy(item, p, n);
        item[n] = '\0';
        char *eq = strchr(item, '=');
        if (!eq) {
            tm_log_error("--weight: '%s' has no '=' (want DOMAIN=WEIGHT)", item);
            return TM_ERR_USAGE;
        }
        *eq = '\0';
        int d = tm_domain_parse(item);
        char *end;
        errno = 0;
        double v = strtod(eq + 1, &end);
        if (d < 0) {
            tm_log_error("--weight: unknown domain '%s' (text, math, code)", item);
            return TM_ERR_USAGE;
        }
        if (end == eq + 1 || *end || errno || !(v >= 0) || v > MAX_WEIGHT) {
            tm_log_error("--weight: %s=%s: want a number from 0 to %g", item, eq + 1, MAX_WEIGHT);
            return TM_ERR_USAGE;
        }
        w->milli[d] = (uint64_t)llround(v * TOK_TRAIN_WEIGHT_SCALE);
        if (v > 0 && w->milli[d] == 0) {
            tm_log_error("--weight: %s=%s is below the resolution of 1/%d", item, eq + 1,
                         TOK_TRAIN_WEIGHT_SCALE);
            return TM_ERR_USAGE;
        }
        p += n + (comma ? 1 : 0);
    }
    for (int d = 0; d < TM_DOMAIN_COUNT; d++)
        w->gcd = gcd_u64(w->gcd, w->milli[d]);
    if (w->gcd == 0) {
        tm_log_error("--weight: every domain weighs 0; nothing to train on");
        return TM_ERR_USAGE;
    }
    for (int d = 0; d < TM_DOMAIN_COUNT; d++)
        w->mult[d] = w->milli[d] / w->gcd;
    return TM_OK;
}

/* ---- Counting ----------------------------------------------------------------------------- */

struct bdoc {
    size_t off, len;
    uint64_t mult;
    uint64_t id;
};

struct batch {
    char *text;
    size_t len;
    struct bdoc *docs;
    size_t n, cap;
};

/* Aligned to a cache line: each thread writes its own, and sharing a line between two
 * threads' counters costs more than the counting (measured: twice the CPU time with -j2). */
struct worker {
    _Alignas(64) struct tok_pretok *pt;
    struct tok_wordtab *wt;
    struct tok_pretok_stats ps;
    uint64_t bad_utf8;
    int rc;
};

struct count_ctx {
    const struct train_options *opt;
    const struct weights *wts;
    struct tm_store *st;
    int nthreads;
    struct worker *w;

    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct batch *batches;
    size_t nbatches;
    size_t *freeq, nfree;
    size_t *fullq, fhead, nfull; /* a ring of nbatches */
    int done;
    int failed; /* a worker failed: the reader stops */

    /* The reader's (thread 0's) own. */
    size_t cur; /* the batch being filled, SIZE_MAX when none */
    struct tm_progress progress;
    struct tok_kept_stats kept;
    uint64_t docs, bytes;
    uint64_t dom_docs[TM_DOMAIN_COUNT], dom_bytes[TM_DOMAIN_COUNT];
    uint64_t skipped_weight;
    uint32_t gens_read, gens_skipped;
    int read_rc;
};

/* Counts one document's text in worker `wk`. */
static int count_doc(struct worker *wk, const char *text, size_t len, uint64_t mult, uint64_t id)
{
    int rc = tok_pretok_count(wk->pt, text, len, mult, wk->wt, &wk->ps);
    if (rc == TM_ERR_FORMAT) {
        /* ingest stores valid UTF-8, so this is a damaged record: skip it, say which. */
        tm_log_warn("train-vocab: document %" PRIu32 ":%" PRIu64 " is not valid UTF-8; skipped",
                    tm_doc_id_generation(id), id & (((uint64_t)1 << TM_DOC_SEQ_BITS) - 1));
        wk->bad_utf8++;
        return TM_OK;
    }
    return rc;
}

static int count_batch(struct worker *wk, const struct batch *b)
{
    for (size_t i = 0; i < b->n; i++) {
        const struct bdoc *d = &b->docs[i];
        int rc = count_doc(wk, b->text + d->off, d->len, d->mult, d->id);
        if (rc != TM_OK)
            return rc;
    }
    return TM_OK;
}

/* Takes a full batch off the queue, counts it in `wk` and returns it to the free list. Called
 * with the lock held; returns with it held. */
static void run_one(struct count_ctx *c, struct worker *wk)
{
    size_t b = c->fullq[c->fhead];
    c->fhead = (c->fhead + 1) % c->nbatches;
    c->nfull--;
    pthread_mutex_unlock(&c->mu);
    int rc = wk->rc == TM_OK ? count_batch(wk, &c->batches[b]) : TM_OK;
    pthread_mutex_lock(&c->mu);
    if (rc != TM_OK) {
        wk->rc = rc;
        c->failed = 1;
    }
    c->freeq[c->nfree++] = b;
    pthread_cond_broadcast(&c->cv);
}

/* A free batch for the reader: waits only while every batch is being counted by a worker;
 * when batches are queued but none is free, counts one itself. */
static size_t take_free(struct count_ctx *c)
{
    pthread_mutex_lock(&c->mu);
    while (!c->nfree) {
        if (c->nfull)
            run_one(c, &c->w[0]);
        else
            pthread_cond_wait(&c->cv, &c->mu);
    }
    size_t b = c->freeq[--c->nfree];
    pthread_mutex_unlock(&c->mu);
    c->batches[b].len = 0;
    c->batches[b].n = 0;
    return b;
}

static void submit(struct count_ctx *c)
{
    if (c->cur == SIZE_MAX)
        return;
    pthread_mutex_lock(&c->mu);
    c->fullq[(c->fhead + c->nfull) % c->nbatches] = c->cur;
    c->nfull++;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
    c->cur = SIZE_MAX;
}

static int on_doc(void *vctx, const struct tm_doc *doc, const char *text, size_t len)
{
    struct count_ctx *c = vctx;
    pthread_mutex_lock(&c->mu);
    int failed = c->failed;
    pthread_mutex_unlock(&c->mu);
    if (failed || c->w[0].rc != TM_OK)
        return TM_ERR_INTERNAL;
    int d = doc->domain;
    if (d < 0 || d >= TM_DOMAIN_COUNT || c->wts->mult[d] == 0) {
        c->skipped_weight++;
        return TM_OK;
    }
    if (c->opt->max_docs > 0 && c->docs >= (uint64_t)c->opt->max_docs)
        return STOP_READING;
    if (c->opt->max_bytes > 0 && c->bytes + len > c->opt->max_bytes)
        return STOP_READING;
    c->docs++;
    c->bytes += len;
    c->dom_docs[d]++;
    c->dom_bytes[d] += len;
    tm_progress_add(&c->progress, 1, len);
    if (len >= BATCH_BYTES)
        return count_doc(&c->w[0], text, len, c->wts->mult[d], doc->id);
    if (c->cur != SIZE_MAX && c->batches[c->cur].len + len > BATCH_BYTES)
        submit(c);
    if (c->cur == SIZE_MAX)
        c->cur = take_free(c);
    struct batch *b = &c->batches[c->cur];
    if (b->n == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 256;
        b->docs = tm_xreallocarray(b->docs, b->cap, sizeof(*b->docs));
    }
    memcpy(b->text + b->len, text, len);
    b->docs[b->n++] = (struct bdoc){b->len, len, c->wts->mult[d], doc->id};
    b->len += len;
    return TM_OK;
}

/* The reading, in one read transaction: every generation that is ready, in order. */
static int read_txn(MDB_txn *txn, struct tm_db *db, void *vctx)
{
    (void)db;
    struct count_ctx *c = vctx;
    uint32_t last;
    int rc = tm_store_last_gen(c->st, txn, &last);
    if (rc != TM_OK)
        return rc;
    /* Under --require none every document is given, so the generations' byte counts are the
     * progress total; otherwise the filter's removals make them only an upper bound. */
    if (c->opt->require == TOK_REQUIRE_NONE) {
        uint64_t total = 0;
        for (uint32_t g = 1; g <= last; g++) {
            struct tm_gen gen;
            if (tm_store_get_gen(c->st, txn, g, &gen) != TM_OK)
                continue;
            for (int d = 0; d < TM_DOMAIN_COUNT; d++)
                if (c->wts->mult[d])
                    total += gen.bytes[d];
        }
        if (c->opt->max_bytes && total > c->opt->max_bytes)
            total = c->opt->max_bytes;
        tm_progress_set_total(&c->progress, 0, total);
    }
    for (uint32_t g = 1; g <= last; g++) {
        int ready;
        const char *why;
        if ((rc = tok_generation_ready(c->st, txn, g, c->opt->require, &ready, &why)))
            return rc;
        if (!ready) {
            tm_log_info("train-vocab: generation %" PRIu32 " skipped: %s (--require none reads "
                        "it anyway)",
                        g, why);
            c->gens_skipped++;
            continue;
        }
        c->gens_read++;
        rc = tok_kept_foreach(c->st, txn, g, c->opt->require, on_doc, c, &c->kept);
        if (rc == STOP_READING)
            return TM_OK;
        if (rc != TM_OK)
            return rc;
    }
    return TM_OK;
}

static void count_thread(void *vctx, int idx)
{
    struct count_ctx *c = vctx;
    if (idx == 0) {
        c->read_rc = tm_db_read(&c->st->db, read_txn, c);
        submit(c);
        pthread_mutex_lock(&c->mu);
        c->done = 1;
        pthread_cond_broadcast(&c->cv);
        pthread_mutex_unlock(&c->mu);
    }
    /* Every thread, the reader too once it is done, counts until the queue is empty. */
    pthread_mutex_lock(&c->mu);
    for (;;) {
        while (!c->nfull && !c->done)
            pthread_cond_wait(&c->cv, &c->mu);
        if (!c->nfull)
            break;
        run_one(c, &c->w[idx]);
    }
    pthread_mutex_unlock(&c->mu);
}

/* ---- Output -----------------------------------------------------------------------------------
 */

static const char *stop_name(enum tok_train_stop s)
{
    static const char *const names[] = {"vocab_size", "no_pairs", "min_frequency"};
    return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s] : "?";
}

struct summary {
    const struct train_options *opt;
    const struct weights *wts;
    const struct count_ctx *c;
    const struct tok_trained *tr;
    size_t unique;
    struct tok_wordtab_stats pruned;
    struct tok_pretok_stats ps;
    uint64_t bad_utf8;
    double t_count, t_merge, t_write, t_total;
};

static void add_weights(cJSON *o, const struct weights *w)
{
    cJSON *ws = tm_stats_obj(o, "weights");
    for (int d = 0; d < TM_DOMAIN_COUNT; d++)
        tm_stats_set_num(ws, tm_domain_name(d), (double)w->milli[d] / TOK_TRAIN_WEIGHT_SCALE);
}

/* The sidecar: what a loader needs (pattern, special tokens) and how the file was made. */
static char *sidecar_json(const struct summary *s)
{
    cJSON *o = cJSON_CreateObject();
    tm_stats_set_str(o, "format", SIDECAR_FORMAT);
    tm_stats_set_num(o, "version", SIDECAR_VERSION);
    tm_stats_set_str(o, "pattern", tok_pattern_names[s->opt->pattern]);
    tm_stats_set_num(o, "vocab_size", (double)s->tr->ntokens + 1);
    cJSON *sp = tm_stats_obj(o, "special_tokens");
    tm_stats_set_num(sp, EOT_TEXT, s->tr->ntokens);
    cJSON *t = tm_stats_obj(o, "training");
    tm_stats_set_num(t, "vocab_size", (double)s->opt->vocab_size);
    tm_stats_set_num(t, "mergeable_tokens", s->tr->ntokens);
    add_weights(t, s->wts);
    tm_stats_set_num(t, "min_frequency", (double)s->opt->min_frequency);
    tm_stats_set_str(t, "require", tok_require_names[s->opt->require]);
    tm_stats_set_num(t, "docs", (double)s->c->docs);
    tm_stats_set_num(t, "bytes", (double)s->c->bytes);
    tm_stats_set_num(t, "unique_pretokens", (double)s->unique);
    tm_stats_set_num(t, "pruned_pretokens", (double)s->pruned.pruned_words);
    tm_stats_set_num(t, "merges", (double)s->tr->nmerges);
    tm_stats_set_str(t, "stop", stop_name(s->tr->stop));
    tm_stats_set_num(t, "seconds", s->t_count + s->t_merge);
    tm_stats_set_str(t, "tokenmill_version", TOKENMILL_VERSION);
    char *text = cJSON_Print(o);
    cJSON_Delete(o);
    return text;
}

static void fill_stats(cJSON *stats, const struct summary *s)
{
    const struct count_ctx *c = s->c;
    cJSON *o = tm_stats_obj(stats, "train_vocab");
    tm_stats_set_str(o, "out", s->opt->out);
    tm_stats_set_str(o, "pattern", tok_pattern_names[s->opt->pattern]);
    tm_stats_set_num(o, "threads", c->nthreads);
    add_weights(o, s->wts);
    tm_stats_add(o, "generations_read", c->gens_read);
    tm_stats_add(o, "generations_skipped", c->gens_skipped);
    tm_stats_add(o, "docs", (int64_t)c->docs);
    tm_stats_add(o, "bytes", (int64_t)c->bytes);
    cJSON *doms = tm_stats_obj(o, "domains");
    for (int d = 0; d < TM_DOMAIN_COUNT; d++) {
        cJSON *x = tm_stats_obj(doms, tm_domain_name(d));
        tm_stats_add(x, "docs", (int64_t)c->dom_docs[d]);
        tm_stats_add(x, "bytes", (int64_t)c->dom_bytes[d]);
    }
    tm_stats_add(o, "docs_skipped_weight_0", (int64_t)c->skipped_weight);
    tm_stats_add(o, "docs_invalid_utf8", (int64_t)s->bad_utf8);
    cJSON *k = tm_stats_obj(o, "store");
    tm_stats_add(k, "docs", (int64_t)c->kept.docs);
    tm_stats_add(k, "kept", (int64_t)c->kept.kept);
    tm_stats_add(k, "filtered", (int64_t)c->kept.filtered);
    tm_stats_add(k, "duplicates", (int64_t)c->kept.duplicates);
    tm_stats_add(k, "undecided", (int64_t)c->kept.undecided);
    tm_stats_add(k, "errors", (int64_t)c->kept.errors);
    tm_stats_add(o, "pretokens", (int64_t)s->ps.pieces);
    tm_stats_add(o, "long_pretokens_skipped", (int64_t)s->ps.long_skipped);
    tm_stats_add(o, "pretokens_ascii_matcher", (int64_t)s->ps.scanned);
    tm_stats_add(o, "unique_pretokens", (int64_t)s->unique);
    tm_stats_add(o, "prunes", (int64_t)s->pruned.prunes);
    tm_stats_add(o, "pruned_pretokens", (int64_t)s->pruned.pruned_words);
    tm_stats_add(o, "pruned_count", (int64_t)s->pruned.pruned_count);
    if (s->tr) {
        tm_stats_add(o, "symbols", (int64_t)s->tr->symbols);
        tm_stats_add(o, "initial_pairs", (int64_t)s->tr->initial_pairs);
        tm_stats_add(o, "peak_pairs", (int64_t)s->tr->peak_pairs);
        tm_stats_add(o, "merges", (int64_t)s->tr->nmerges);
        tm_stats_add(o, "aliased_merges", (int64_t)s->tr->naliased);
        tm_stats_add(o, "mergeable_tokens", s->tr->ntokens);
        tm_stats_add(o, "last_merge_count", (int64_t)s->tr->last_count);
        tm_stats_set_str(o, "stop", stop_name(s->tr->stop));
    }
    cJSON *sec = tm_stats_obj(o, "seconds");
    tm_stats_set_num(sec, "count", s->t_count);
    tm_stats_set_num(sec, "merge", s->t_merge);
    tm_stats_set_num(sec, "write", s->t_write);
    tm_stats_set_num(sec, "total", s->t_total);
}

/* The sidecar first, then the vocabulary: a kill between the two leaves no vocabulary, so a
 * rerun (or a pipeline, which trains the vocabulary while its file is missing) makes both again;
 * the other order could leave a vocabulary whose pattern and special tokens are lost. */
static int write_outputs(const struct summary *s)
{
    struct tm_buf b;
    char *json = sidecar_json(s);
    char *path = tm_xmalloc(strlen(s->opt->out) + 6);
    sprintf(path, "%s.json", s->opt->out);
    tm_buf_init(&b, 0);
    tm_buf_puts(&b, json);
    tm_buf_putc(&b, '\n');
    int rc = tm_write_atomic(path, b.data, b.len);
    tm_buf_release(&b);
    free(path);
    free(json);
    if (rc != TM_OK)
        return rc;
    tm_buf_init(&b, 0);
    rc = tok_trained_write_tiktoken(s->tr, &b);
    if (rc == TM_OK)
        rc = tm_write_atomic(s->opt->out, b.data ? b.data : "", b.len);
    tm_buf_release(&b);
    return rc;
}

/* ---- The command ---------------------------------------------------------------------------- */

static int train_run(void *vcfg, struct tm_run *run)
{
    struct train_options *opt = vcfg;
    if (!opt->workdir || !opt->out) {
        tm_log_error("train-vocab: --workdir and --out are required");
        return TM_ERR_USAGE;
    }
    struct weights wts;
    int rc = parse_weights(opt->weight, &wts);
    if (rc != TM_OK)
        return rc;
    double t0 = tm_now();
    int progress = !run->common.no_progress && !run->common.quiet;

    struct tm_store st;
    memset(&st, 0, sizeof(st));
    if ((rc = tm_store_open(&st, opt->workdir, TM_DB_RDONLY)))
        return rc;

    struct count_ctx c;
    memset(&c, 0, sizeof(c));
    c.opt = opt;
    c.wts = &wts;
    c.st = &st;
    c.cur = SIZE_MAX;
    c.nthreads = tm_thread_count(opt->threads);
    /* Cache-line aligned (see struct worker). */
    c.w = aligned_alloc(_Alignof(struct worker), (size_t)c.nthreads * sizeof(*c.w));
    if (!c.w) {
        tm_log_error("train-vocab: no memory for %d workers", c.nthreads);
        tm_store_close(&st);
        return TM_ERR_NOMEM;
    }
    memset(c.w, 0, (size_t)c.nthreads * sizeof(*c.w));
    /* One occurrence at the smallest multiplier in use: what "seen once" means for pruning. */
    uint64_t unit = UINT64_MAX;
    for (int d = 0; d < TM_DOMAIN_COUNT; d++)
        if (wts.mult[d] && wts.mult[d] < unit)
            unit = wts.mult[d];
    size_t per_thread = (size_t)opt->max_words / (size_t)c.nthreads;
    for (int t = 0; t < c.nthreads && rc == TM_OK; t++) {
        c.w[t].wt = tok_wordtab_new(per_thread ? per_thread : 1, unit);
        rc = tok_pretok_new((enum tok_pattern)opt->pattern, &c.w[t].pt);
    }
    c.nbatches = 2 * (size_t)c.nthreads + 1;
    c.batches = tm_xcalloc(c.nbatches, sizeof(*c.batches));
    c.freeq = tm_xcalloc(c.nbatches, sizeof(*c.freeq));
    c.fullq = tm_xcalloc(c.nbatches, sizeof(*c.fullq));
    for (size_t b = 0; b < c.nbatches; b++) {
        c.batches[b].text = tm_xmalloc(BATCH_BYTES);
        c.freeq[c.nfree++] = b;
    }
    pthread_mutex_init(&c.mu, NULL);
    pthread_cond_init(&c.cv, NULL);

    struct summary s = {.opt = opt, .wts = &wts, .c = &c};
    struct tok_trained tr;
    memset(&tr, 0, sizeof(tr));
    struct tok_word *words = NULL;
    size_t nwords = 0;
    if (rc != TM_OK)
        goto out;

    /* 1. Count. */
    tm_progress_init(&c.progress, "train-vocab count", 0, 0, progress, 0);
    tm_run_threads(c.nthreads, count_thread, &c);
    tm_progress_finish(&c.progress);
    /* A worker's error first: the reader's is then only the stop it caused. */
    rc = TM_OK;
    for (int t = 0; t < c.nthreads; t++) {
        if (rc == TM_OK && c.w[t].rc != TM_OK)
            rc = c.w[t].rc;
        s.ps.pieces += c.w[t].ps.pieces;
        s.ps.long_skipped += c.w[t].ps.long_skipped;
        s.ps.scanned += c.w[t].ps.scanned;
        s.bad_utf8 += c.w[t].bad_utf8;
    }
    if (rc == TM_OK)
        rc = c.read_rc;
    if (rc != TM_OK)
        goto out;
    struct tok_wordtab *all = c.w[0].wt;
    tok_wordtab_set_max(all, (size_t)opt->max_words);
    for (int t = 1; t < c.nthreads; t++) {
        tok_wordtab_merge(all, c.w[t].wt);
        const struct tok_wordtab_stats *ws = tok_wordtab_get_stats(c.w[t].wt);
        s.pruned.prunes += ws->prunes;
        s.pruned.pruned_words += ws->pruned_words;
        s.pruned.pruned_count += ws->pruned_count;
        /* Freed as merged: peak memory is one table more, not all of them twice. */
        tok_wordtab_free(c.w[t].wt);
        c.w[t].wt = NULL;
    }
    const struct tok_wordtab_stats *ws = tok_wordtab_get_stats(all);
    s.pruned.prunes += ws->prunes;
    s.pruned.pruned_words += ws->pruned_words;
    s.pruned.pruned_count += ws->pruned_count;
    s.unique = tok_wordtab_size(all);
    s.t_count = tm_now() - t0;
    if (c.docs == 0) {
        tm_log_error("train-vocab: no documents to train on in %s (%" PRIu32 " generation(s) "
                     "read, %" PRIu32 " not ready)",
                     opt->workdir, c.gens_read, c.gens_skipped);
        rc = TM_ERR_NOTFOUND;
        goto out;
    }
    if (s.pruned.pruned_words)
        tm_log_warn("train-vocab: %" PRIu64 " rare pre-tokens pruned at --max-words %ld; the "
                    "result may depend on the thread count",
                    s.pruned.pruned_words, opt->max_words);

    /* 2. Merge. */
    double t1 = tm_now();
    words = tok_wordtab_words(all, &nwords);
    struct tok_train_params prm = {(uint32_t)opt->vocab_size, 0};
    /* --min-frequency is in occurrences of weight 1: TOK_TRAIN_WEIGHT_SCALE / gcd units. */
    prm.min_count =
        (uint64_t)(((double)opt->min_frequency * TOK_TRAIN_WEIGHT_SCALE + (double)wts.gcd - 1) /
                   (double)wts.gcd);
    struct tm_progress mp;
    tm_progress_init(&mp, "train-vocab merge", (uint64_t)opt->vocab_size - 256, 0, progress, 0);
    rc = tok_train_bpe(words, nwords, &prm, &mp, &tr);
    tm_progress_finish(&mp);
    if (rc != TM_OK)
        goto out;
    s.tr = &tr;
    s.t_merge = tm_now() - t1;
    if (tr.stop == TOK_STOP_MIN_COUNT)
        tm_log_warn("train-vocab: stopped at %u tokens: the best pair occurs fewer than "
                    "--min-frequency %ld times",
                    tr.ntokens, opt->min_frequency);
    else if (tr.stop == TOK_STOP_NO_PAIRS)
        tm_log_warn("train-vocab: stopped at %u tokens: every pre-token is a single token",
                    tr.ntokens);

    /* 3. Write. */
    double t2 = tm_now();
    rc = write_outputs(&s);
    s.t_write = tm_now() - t2;
    if (rc != TM_OK)
        goto out;
    s.t_total = tm_now() - t0;
    printf("train-vocab: %" PRIu64 " documents, %.1f MB, %zu unique pre-tokens; %u tokens (%zu "
           "merges) + %s = %u ids in %s (%.1f s)\n",
           c.docs, (double)c.bytes / 1e6, s.unique, tr.ntokens, tr.nmerges, EOT_TEXT,
           tr.ntokens + 1, opt->out, s.t_total);
    if (fflush(stdout) != 0) {
        tm_log_error("stdout: %s", strerror(errno));
        rc = TM_ERR_IO;
    }
out:
    s.t_total = tm_now() - t0;
    fill_stats(run->stats, &s);
    free(words);
    tok_trained_release(&tr);
    pthread_cond_destroy(&c.cv);
    pthread_mutex_destroy(&c.mu);
    for (size_t b = 0; b < c.nbatches; b++) {
        free(c.batches[b].text);
        free(c.batches[b].docs);
    }
    free(c.batches);
    free(c.freeq);
    free(c.fullq);
    for (int t = 0; t < c.nthreads; t++) {
        tok_pretok_free(c.w[t].pt);
        tok_wordtab_free(c.w[t].wt);
    }
    free(c.w);
    tm_store_close(&st);
    return rc;
}

const struct tm_command tok_train_vocab_command = {
    .name = "tokenize train-vocab",
    .summary = "train a byte-level BPE vocabulary (.tiktoken) on the kept documents",
    .synopsis = "",
    .description =
        "Counts the pre-tokens (split by --pattern) of the documents filter and dedup kept,\n"
        "every domain weighted by --weight, and learns byte-level BPE merges until the\n"
        "vocabulary has --vocab-size tokens: each step merges the pair with the highest\n"
        "weighted count (ties: the smallest token ids). Writes FILE (base64 token, space, rank;\n"
        "ranks 0-255 are the bytes) and FILE.json (pattern, <|endoftext|> = the next id, how it\n"
        "was trained), each atomically. The result does not depend on --threads unless\n"
        "--max-words pruned rare pre-tokens (reported). Reads the store only.",
    .opts = train_opts,
    .cfg_size = sizeof(struct train_options),
    .min_args = 0,
    .max_args = 0,
    .run = train_run,
};
