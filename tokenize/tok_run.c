/* tok_run.c: `tokenmill tokenize`: kept documents of new generations into token shards.
 *
 * Shards are the record of progress. Each one's meta says which document ids it covers
 * ([first_doc, next_doc)); a shard is written in shard-N.partial/ and renamed when complete, so
 * after a crash the published shards end at a document boundary and the rerun starts at the
 * highest next_doc, removing any .partial left behind. A shard closes when it reaches
 * --shard-tokens (after the document that reached it) or when the run ends, so a rerun after a
 * kill writes the same shards as an uninterrupted run. The `stages` records ("tokenize"/gen)
 * are written last, for later runs and for pipelines to see what is done; losing them to a
 * crash only makes the next run walk those generations again and find nothing new. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <cjson/cJSON.h>

#include "tok_docs.h"
#include "tok_run.h"
#include "tokenize.h"
#include "tm_buf.h"
#include "tm_db.h"
#include "tm_err.h"
#include "tm_fs.h"
#include "tm_log.h"
#include "tm_opt.h"
#include "tm_mem.h"
#include "tm_progress.h"
#include "tm_stats.h"
#include "tm_store.h"
#include "tm_thread.h"

#define STAGE_NAME "tokenize"

/* ---- Small file-system helpers ----------------------------------------------------------- */

/* Removes a shard directory: its files, then itself (shards hold no subdirectories). */
static int remove_dir(const char *path)
{
    DIR *d = opendir(path);
    if (!d)
        return errno == ENOENT ? TM_OK : TM_ERR_IO;
    struct dirent *e;
    char p[4400];
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        if (snprintf(p, sizeof p, "%s/%s", path, e->d_name) < (int)sizeof p)
            unlink(p);
    }
    closedir(d);
    if (rmdir(path) != 0) {
        tm_log_error("%s: cannot remove: %s", path, strerror(errno));
        return TM_ERR_IO;
    }
    return TM_OK;
}

static void sync_dir(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

/* Removes every shard-*.partial (and, with `all`, every shard) in `dir`. */
static int clean_tokens_dir(const char *dir, int all, uint64_t *removed)
{
    DIR *d = opendir(dir);
    if (!d)
        return TM_OK;
    struct dirent *e;
    int rc = TM_OK;
    char p[4400];
    while ((e = readdir(d)) && !rc) {
        size_t n = strlen(e->d_name);
        int partial = n > 8 && !strcmp(e->d_name + n - 8, ".partial");
        if (strncmp(e->d_name, "shard-", 6) != 0 || !(partial || all))
            continue;
        if (snprintf(p, sizeof p, "%s/%s", dir, e->d_name) >= (int)sizeof p)
            continue;
        rc = remove_dir(p);
        (*removed)++;
    }
    closedir(d);
    return rc;
}

/* The hash the stage records carry: the tokenizer, the validation fraction (parts per million)
 * and the decisions' epoch label. */
static uint64_t settings_hash(uint64_t tokenizer, uint32_t val_ppm, const char *epoch)
{
    return tm_stage_hash_epoch(tokenizer ^ ((uint64_t)val_ppm * 0x9E3779B97F4A7C15ull), epoch);
}

/* ---- The run ------------------------------------------------------------------------------ */

struct bdoc {
    uint64_t id;
    uint32_t gen;
    uint8_t domain, split;
    size_t off, len; /* text in batch.text */
};

struct run {
    const struct tok_run_options *opt;
    struct tm_store store;
    struct tok_tokenizer tk;
    char tokens_dir[4096];
    uint64_t cfg_hash;
    uint32_t val_ppm;
    int nthreads;
    struct tok_encoder **enc; /* one per thread */
    /* The batch being gathered. */
    struct bdoc *docs;
    size_t ndocs, cap;
    struct tm_buf text;
    struct tok_ids *ids; /* per document of the batch */
    size_t ids_cap;
    _Atomic size_t next; /* work counter of the encoding threads */
    _Atomic int enc_errors;
    /* The shard being written. */
    struct tok_shard_writer *w;
    uint64_t shard_num;
    uint64_t range_start; /* first document id the next shard covers */
    uint32_t first_gen, last_gen;
    uint64_t resume; /* documents below this id are in published shards */
    /* Counters. */
    uint64_t shards_written, tokens[TOK_SPLIT_COUNT][TM_DOMAIN_COUNT],
        docs_out[TOK_SPLIT_COUNT][TM_DOMAIN_COUNT], empty_docs, bad_docs, bytes_in;
    struct tok_kept_stats kept;
    struct tm_progress progress;
};

/* Which split a document goes to: a stable hash of its id, so a document stays in the same
 * split in every run and in every workdir that gives it the same id. */
static int split_of(uint64_t id, uint32_t val_ppm)
{
    unsigned char key[8];
    tm_be64_put(key, id);
    uint64_t h = XXH3_64bits_withSeed(key, 8, 0x746f6b73706c6974ull /* "toksplit" */);
    return h % 1000000u < val_ppm ? TOK_SPLIT_VAL : TOK_SPLIT_TRAIN;
}

static void encode_worker(void *ctx, int idx)
{
    struct run *r = ctx;
    for (;;) {
        size_t i = atomic_fetch_add(&r->next, 1);
        if (i >= r->ndocs)
            return;
        const struct bdoc *d = &r->docs[i];
        r->ids[i].n = 0;
        int rc = tok_encode_ordinary(r->enc[idx], r->text.data + d->off, d->len, &r->ids[i]);
        if (rc) {
            tm_log_error("tokenize: document %" PRIu32 ":%" PRIu64 " not encoded (%s); skipped",
                         d->gen, tm_doc_id_seq(d->id), tm_strerror(rc));
            r->ids[i].n = SIZE_MAX; /* marks the failure for the writer */
            atomic_fetch_add(&r->enc_errors, 1);
        }
    }
}

static int publish_shard(struct run *r, uint64_t next_doc)
{
    char part[4200], final[4200];
    snprintf(part, sizeof part, "%s/shard-%06" PRIu64 ".partial", r->tokens_dir, r->shard_num);
    snprintf(final, sizeof final, "%s/shard-%06" PRIu64, r->tokens_dir, r->shard_num);
    int rc = tok_shard_writer_finish(r->w, r->first_gen, r->last_gen, r->range_start, next_doc);
    r->w = NULL;
    if (rc)
        return rc;
    sync_dir(part);
    if (rename(part, final) != 0) {
        tm_log_error("%s: cannot rename to %s: %s", part, final, strerror(errno));
        return TM_ERR_IO;
    }
    sync_dir(r->tokens_dir);
    tm_log_info("tokenize: wrote %s (documents %" PRIu32 ":%" PRIu64 " to %" PRIu32 ":%" PRIu64 ")",
                final, tm_doc_id_generation(r->range_start), tm_doc_id_seq(r->range_start),
                tm_doc_id_generation(next_doc), tm_doc_id_seq(next_doc));
    r->shards_written++;
    r->shard_num++;
    r->range_start = next_doc;
    r->resume = next_doc;
    return TM_OK;
}

static int open_shard(struct run *r, uint32_t gen)
{
    char part[4200];
    snprintf(part, sizeof part, "%s/shard-%06" PRIu64 ".partial", r->tokens_dir, r->shard_num);
    struct tok_shard_meta init = {0};
    init.dtype = r->tk.id_end <= 65536 ? 2 : 4;
    init.chunk_tokens = (uint32_t)r->opt->chunk_tokens;
    init.tokenizer_hash = r->tk.hash;
    init.eot = r->tk.eot;
    init.id_end = r->tk.id_end;
    init.val_ppm = r->val_ppm;
    r->first_gen = gen;
    return tok_shard_writer_new(part, &init, &r->w);
}

/* Encodes the gathered documents on the threads, then appends them in id order. */
static int flush_batch(struct run *r)
{
    if (!r->ndocs)
        return TM_OK;
    if (r->ids_cap < r->ndocs) {
        r->ids = tm_xreallocarray(r->ids, r->ndocs, sizeof(*r->ids));
        for (size_t i = r->ids_cap; i < r->ndocs; i++)
            tok_ids_init(&r->ids[i], 0);
        r->ids_cap = r->ndocs;
    }
    atomic_store(&r->next, 0);
    tm_run_threads(r->nthreads, encode_worker, r);
    int rc = TM_OK;
    for (size_t i = 0; i < r->ndocs && !rc; i++) {
        const struct bdoc *d = &r->docs[i];
        struct tok_ids *ids = &r->ids[i];
        if (ids->n == SIZE_MAX) {
            r->bad_docs++;
            continue;
        }
        if (ids->n == 0) {
            r->empty_docs++; /* nothing but an end-of-text token: not worth a record */
            continue;
        }
        if (!r->w && (rc = open_shard(r, d->gen)))
            break;
        if ((rc = tok_shard_writer_add(r->w, d->split, d->domain, d->id, ids->v, ids->n)))
            break;
        r->last_gen = d->gen;
        r->tokens[d->split][d->domain] += ids->n + 1;
        r->docs_out[d->split][d->domain]++;
        if (tok_shard_writer_tokens(r->w) >= r->opt->shard_tokens)
            rc = publish_shard(r, d->id + 1);
    }
    /* Keep the id arrays' memory only when it is modest: one huge document must not pin it. */
    for (size_t i = 0; i < r->ndocs; i++)
        if (r->ids[i].cap > ((size_t)1 << 20)) {
            tok_ids_release(&r->ids[i]);
            tok_ids_init(&r->ids[i], 0);
        }
    r->ndocs = 0;
    tm_buf_reset(&r->text);
    return rc;
}

struct gather {
    struct run *r;
    uint32_t gen;
};

static int gather_doc(void *ctx, const struct tm_doc *doc, const char *text, size_t len)
{
    struct gather *g = ctx;
    struct run *r = g->r;
    if (doc->id < r->resume)
        return TM_OK; /* already in a published shard */
    if (r->ndocs == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 1024;
        r->docs = tm_xreallocarray(r->docs, r->cap, sizeof(*r->docs));
    }
    struct bdoc *d = &r->docs[r->ndocs++];
    d->id = doc->id;
    d->gen = g->gen;
    d->domain = (uint8_t)doc->domain;
    d->split = (uint8_t)split_of(doc->id, r->val_ppm);
    d->off = r->text.len;
    d->len = len;
    int rc = tm_buf_append(&r->text, text, len);
    if (rc)
        return rc;
    r->bytes_in += len;
    tm_progress_add(&r->progress, 1, len);
    if (r->text.len >= r->opt->batch_bytes || r->ndocs >= 65536)
        return flush_batch(r);
    return TM_OK;
}

/* Checks the published shards against this tokenizer and finds where to continue. */
static int survey_shards(struct run *r)
{
    uint64_t *nums;
    size_t n;
    tok_corpus_list(r->tokens_dir, &nums, &n);
    int rc = TM_OK;
    r->shard_num = 1;
    for (size_t i = 0; i < n && !rc; i++) {
        char path[4200];
        snprintf(path, sizeof path, "%s/shard-%06" PRIu64, r->tokens_dir, nums[i]);
        struct tok_shard_meta m;
        if ((rc = tok_shard_read_meta(path, &m)))
            break;
        if (m.tokenizer_hash != r->tk.hash || m.val_ppm != r->val_ppm) {
            tm_log_error("%s was made with tokenizer %016" PRIx64 " and validation fraction "
                         "%.6f; this run has %016" PRIx64 " (%s) and %.6f. Use the same "
                         "--vocab and --val-fraction, or --redo to tokenize everything again",
                         path, m.tokenizer_hash, m.val_ppm / 1e6, r->tk.hash, r->opt->vocab,
                         r->val_ppm / 1e6);
            rc = TM_ERR_USAGE;
            break;
        }
        if (m.next_doc > r->resume)
            r->resume = m.next_doc;
        r->shard_num = nums[i] + 1;
    }
    free(nums);
    r->range_start = r->resume;
    return rc;
}

/* Deletes the "tokenize" stage records of every generation (for --redo). */
static int forget_stages(MDB_txn *txn, struct tm_db *db, void *ctx)
{
    struct run *r = ctx;
    (void)db;
    uint32_t last;
    int rc = tm_store_last_gen(&r->store, txn, &last);
    for (uint32_t g = 1; g <= last && !rc; g++) {
        unsigned char key[sizeof(STAGE_NAME) + 4];
        memcpy(key, STAGE_NAME "/", sizeof(STAGE_NAME));
        tm_be32_put(key + sizeof(STAGE_NAME), g);
        rc = tm_db_del(&r->store.db, txn, TM_STORE_STAGES, key, sizeof key);
        if (rc == TM_ERR_NOTFOUND)
            rc = TM_OK;
    }
    return rc;
}

struct mark_ctx {
    struct run *r;
    const uint32_t *gens;
    size_t n;
};

static int mark_done(MDB_txn *txn, struct tm_db *db, void *ctx)
{
    struct mark_ctx *m = ctx;
    (void)db;
    for (size_t i = 0; i < m->n; i++) {
        struct tm_stage s = {TM_STAGE_DONE, m->r->cfg_hash, 0, 0};
        int rc = tm_stage_put(&m->r->store, txn, STAGE_NAME, m->gens[i], &s);
        if (rc)
            return rc;
    }
    return TM_OK;
}

static int opt_require_decisions(const struct run *r)
{
    return r->opt->require == TOK_REQUIRE_DECISIONS;
}

static void fill_stats(struct run *r, cJSON *stats, const uint32_t *gens, size_t ngens, double secs)
{
    cJSON *o = tm_stats_obj(stats, "tokenize");
    tm_stats_set_str(o, "tokenizer", r->opt->vocab);
    char hex[17];
    snprintf(hex, sizeof hex, "%016" PRIx64, r->tk.hash);
    tm_stats_set_str(o, "tokenizer_hash", hex);
    tm_stats_set_num(o, "generations", (double)ngens);
    tm_stats_set_num(o, "first_generation", ngens ? gens[0] : 0);
    tm_stats_set_num(o, "last_generation", ngens ? gens[ngens - 1] : 0);
    tm_stats_set_num(o, "docs_seen", (double)r->kept.docs);
    tm_stats_set_num(o, "docs_filtered", (double)r->kept.filtered);
    tm_stats_set_num(o, "docs_duplicate", (double)r->kept.duplicates);
    tm_stats_set_num(o, "docs_undecided", (double)r->kept.undecided);
    tm_stats_set_num(o, "decision_errors", (double)r->kept.errors);
    tm_stats_set_num(o, "docs_empty", (double)r->empty_docs);
    tm_stats_set_num(o, "docs_unencodable", (double)r->bad_docs);
    tm_stats_set_num(o, "bytes", (double)r->bytes_in);
    tm_stats_set_num(o, "shards_written", (double)r->shards_written);
    tm_stats_set_num(o, "seconds", secs);
    tm_stats_set_num(o, "mb_per_s", secs > 0 ? r->bytes_in / secs / 1e6 : 0);
    uint64_t total = 0;
    for (int s = 0; s < TOK_SPLIT_COUNT; s++) {
        cJSON *so = tm_stats_obj(o, tok_split_names[s]);
        for (int d = 0; d < TM_DOMAIN_COUNT; d++) {
            cJSON *dd = tm_stats_obj(so, tm_domain_name(d));
            tm_stats_set_num(dd, "docs", (double)r->docs_out[s][d]);
            tm_stats_set_num(dd, "tokens", (double)r->tokens[s][d]);
            total += r->tokens[s][d];
        }
    }
    tm_stats_set_num(o, "tokens", (double)total);
    /* The command's output: one summary line, then the tokens per split and domain. */
    printf("tokenize: %u generation(s), %" PRIu64 " documents, %.1f MB -> %" PRIu64
           " tokens in %" PRIu64 " new shard(s), %.1f s (%.1f MB/s)\n",
           (unsigned)ngens, r->kept.kept, r->bytes_in / 1e6, total, r->shards_written, secs,
           secs > 0 ? r->bytes_in / secs / 1e6 : 0.0);
    for (int s = 0; s < TOK_SPLIT_COUNT; s++)
        printf("  %-5s text %" PRIu64 ", math %" PRIu64 ", code %" PRIu64 " tokens\n",
               tok_split_names[s], r->tokens[s][TM_DOMAIN_TEXT], r->tokens[s][TM_DOMAIN_MATH],
               r->tokens[s][TM_DOMAIN_CODE]);
    printf("  skipped: %" PRIu64 " filtered, %" PRIu64 " duplicates, %" PRIu64
           " undecided, %" PRIu64 " empty, %" PRIu64 " unencodable\n",
           r->kept.filtered, r->kept.duplicates, opt_require_decisions(r) ? r->kept.undecided : 0,
           r->empty_docs, r->bad_docs);
}

static void run_release(struct run *r)
{
    tok_shard_writer_free(r->w);
    for (int i = 0; r->enc && i < r->nthreads; i++)
        tok_encoder_free(r->enc[i]);
    free(r->enc);
    for (size_t i = 0; i < r->ids_cap; i++)
        tok_ids_release(&r->ids[i]);
    free(r->ids);
    free(r->docs);
    tm_buf_release(&r->text);
    tok_tokenizer_release(&r->tk);
    tm_store_close(&r->store);
}

int tok_tokenize_run(const struct tok_run_options *opt, int progress, cJSON *stats)
{
    struct run r;
    memset(&r, 0, sizeof r);
    r.opt = opt;
    tm_buf_init(&r.text, 0);
    double t0 = tm_now();
    uint32_t *gens = NULL;
    size_t ngens = 0;
    MDB_txn *txn = NULL;
    int lock = tm_lock_workdir(opt->workdir);
    if (lock < 0)
        return lock;
    int rc = tm_store_open(&r.store, opt->workdir, 0);
    if (rc)
        goto out;
    if ((rc = tok_tokenizer_load(opt->vocab, opt->pattern - 1, &r.tk)))
        goto out;
    r.val_ppm = (uint32_t)llround(opt->val_fraction * 1e6);
    r.cfg_hash = settings_hash(r.tk.hash, r.val_ppm, opt->input_epoch);
    snprintf(r.tokens_dir, sizeof r.tokens_dir, "%s/tokens", opt->workdir);
    if ((rc = tm_mkdirs(r.tokens_dir)))
        goto out;
    uint64_t removed = 0;
    if ((rc = clean_tokens_dir(r.tokens_dir, opt->redo, &removed)))
        goto out;
    if (removed && !opt->redo)
        tm_log_info("tokenize: removed %" PRIu64 " unfinished shard(s) of an interrupted run",
                    removed);
    if (opt->redo && (rc = tm_db_write(&r.store.db, forget_stages, &r)))
        goto out;
    if ((rc = survey_shards(&r)))
        goto out;

    r.nthreads = tm_thread_count(opt->threads);
    r.enc = tm_xcalloc((size_t)r.nthreads, sizeof(*r.enc));
    /* Clones share the first encoder's rank map (8 MiB for o200k) and specials. */
    if ((rc = tok_tokenizer_encoder(&r.tk, &r.enc[0])))
        goto out;
    for (int i = 1; i < r.nthreads; i++)
        if ((rc = tok_encoder_clone(r.enc[0], &r.enc[i])))
            goto out;

    tm_progress_init(&r.progress, "tokenize", 0, 0, progress, 0);
    int e = mdb_txn_begin(r.store.db.env, NULL, MDB_RDONLY, &txn);
    if (e) {
        tm_log_error("%s: %s", opt->workdir, mdb_strerror(e));
        rc = TM_ERR_DB;
        goto out;
    }
    uint32_t last;
    if ((rc = tm_store_last_gen(&r.store, txn, &last)))
        goto out;
    gens = tm_xcalloc(last + 1, sizeof(*gens));
    for (uint32_t g = 1; g <= last && !rc; g++) {
        struct tm_stage s;
        int src = tm_stage_get(&r.store, txn, STAGE_NAME, g, &s);
        if (src == TM_OK && s.state == TM_STAGE_DONE && s.config_hash == r.cfg_hash)
            continue;
        if (src != TM_OK && src != TM_ERR_NOTFOUND) {
            rc = src;
            break;
        }
        int ready;
        const char *why;
        if ((rc = tok_generation_ready(&r.store, txn, g, opt->require, &ready, &why)))
            break;
        if (!ready) {
            tm_log_warn("tokenize: generation %" PRIu32 " is %s; stopping before it (later "
                        "generations wait for it)",
                        g, why);
            break;
        }
        struct gather ga = {&r, g};
        rc = tok_kept_foreach(&r.store, txn, g, opt->require, gather_doc, &ga, &r.kept);
        if (rc == TM_OK)
            rc = flush_batch(&r);
        if (rc == TM_OK)
            gens[ngens++] = g;
    }
    mdb_txn_abort(txn);
    txn = NULL;
    if (rc)
        goto out;
    if (r.w && (rc = publish_shard(&r, tm_doc_make_id(gens[ngens - 1] + 1, 0))))
        goto out;
    if (ngens) {
        struct mark_ctx m = {&r, gens, ngens};
        if ((rc = tm_db_write(&r.store.db, mark_done, &m)))
            goto out;
    }
    tm_progress_finish(&r.progress);
    fill_stats(&r, stats, gens, ngens, tm_now() - t0);
    if (r.bad_docs || r.kept.errors)
        rc = TM_ERR_PARTIAL;
out:
    if (txn)
        mdb_txn_abort(txn);
    free(gens);
    run_release(&r);
    tm_unlock(lock);
    return rc;
}

int tok_tokenize_plan(const struct tok_run_options *opt, struct tm_plan *out)
{
    struct stat sb;
    if (stat(opt->vocab, &sb) != 0) {
        /* Made by an earlier stage of the same pipeline: everything is new to it. */
        tm_plan_add(out, "every generation, with the vocabulary %s (not made yet)", opt->vocab);
        out->work = 1;
        return TM_OK;
    }
    struct tok_tokenizer tk;
    memset(&tk, 0, sizeof tk);
    int rc = tok_tokenizer_load(opt->vocab, opt->pattern - 1, &tk);
    if (rc) {
        tok_tokenizer_release(&tk);
        return rc;
    }
    uint32_t val_ppm = (uint32_t)llround(opt->val_fraction * 1e6);
    uint64_t hash = settings_hash(tk.hash, val_ppm, opt->input_epoch);
    /* The shards' tokenizer: another one (or another validation fraction) takes --redo. */
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/tokens", opt->workdir);
    uint64_t *nums = NULL;
    size_t n = 0;
    tok_corpus_list(dir, &nums, &n);
    int other = 0;
    for (size_t i = 0; i < n && !other && rc == TM_OK; i++) {
        char path[4300];
        snprintf(path, sizeof path, "%s/shard-%06" PRIu64, dir, nums[i]);
        struct tok_shard_meta m;
        if ((rc = tok_shard_read_meta(path, &m)) == TM_OK)
            other = m.tokenizer_hash != tk.hash || m.val_ppm != val_ppm;
    }
    free(nums);
    if (rc == TM_OK)
        rc = tm_stage_plan(opt->workdir, STAGE_NAME, hash, opt->redo ? TM_REDO_ALL : TM_REDO_NONE,
                           out);
    if (rc == TM_OK && other && !opt->redo) {
        tm_plan_add(out, "; the shards were made with another tokenizer or validation fraction");
        out->stale = 1;
    }
    if (rc == TM_OK)
        tm_plan_add(out, " (%zu shard%s now)", n, n == 1 ? "" : "s");
    tok_tokenizer_release(&tk);
    return rc;
}
