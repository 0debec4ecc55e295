/* flt_run.c: `tokenmill filter`: which generations to decide, the batches that decide them on
 * worker threads, the commits that make them durable, the statistics, --explain and --export.
 *
 * Incremental and crash-safe: the stage keeps one record per generation in the store's `stages`
 * database ("filter/" + generation): partial with the id to continue from, or done, each with the
 * hash of the configuration that made its decisions. A batch's decisions and the record that
 * moves past them are committed in one LMDB transaction, so after kill -9 a rerun continues at
 * the first undecided document. Decisions depend only on the document and the configuration,
 * never on the thread count or batch borders, so the rerun ends with the same decisions as an
 * uninterrupted run. */
#include <inttypes.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "filter.h"
#include "flt_internal.h"
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

/* ---- Stage records ----------------------------------------------------------------------- */

/* The filter's progress per generation (core's tm_stage): `aux` counts documents decided. */
#define STAGE_NAME "filter"

static int stage_get(struct tm_store *st, MDB_txn *txn, uint32_t gen, struct tm_stage *r)
{
    return tm_stage_get(st, txn, STAGE_NAME, gen, r);
}

static int stage_put(struct tm_store *st, MDB_txn *txn, uint32_t gen, const struct tm_stage *r)
{
    return tm_stage_put(st, txn, STAGE_NAME, gen, r);
}

int flt_generation_done(struct tm_store *st, MDB_txn *txn, uint32_t gen, int *done)
{
    struct tm_stage r;
    int rc = stage_get(st, txn, gen, &r);
    *done = rc == TM_OK && r.state == TM_STAGE_DONE;
    return rc == TM_ERR_NOTFOUND ? TM_OK : rc;
}

int flt_document_text(struct tm_store *st, MDB_txn *txn, const struct tm_doc *doc,
                      struct tm_buf *buf, int *verdict, const char **text, size_t *len)
{
    unsigned char key[8];
    tm_be64_put(key, doc->id);
    const void *val;
    size_t vlen;
    *text = doc->text;
    *len = doc->text_len;
    int rc = tm_db_get(&st->db, txn, TM_STORE_FILTER, key, 8, &val, &vlen);
    if (rc == TM_ERR_NOTFOUND) {
        *verdict = FLT_VERDICT_NONE;
        return TM_OK;
    }
    if (rc)
        return rc;
    char what[64];
    snprintf(what, sizeof what, "filter decision %" PRIu64, doc->id);
    struct flt_decision d;
    flt_decision_init(&d);
    rc = flt_decision_decode(val, vlen, &d, NULL, what);
    if (rc == TM_OK) {
        *verdict = d.action == FLT_REMOVED ? FLT_VERDICT_REMOVED : FLT_VERDICT_KEPT;
        if (d.action == FLT_KEPT_SPANS) {
            tm_buf_reset(buf);
            rc = flt_apply_spans(doc->text, doc->text_len, d.spans.v, d.spans.n, buf);
            *text = buf->data ? buf->data : "";
            *len = buf->len;
        }
    }
    flt_decision_release(&d);
    return rc;
}

/* ---- Statistics ------------------------------------------------------------------------- */

/* Toxicity score histogram bins (upper edges; the last is open). */
static const double tox_bins[] = {0, 1, 2, 5, 10, 20, 50, 100};
#define TOX_NBINS (sizeof(tox_bins) / sizeof(tox_bins[0]) + 1)

struct agg_rule {
    uint64_t removed, removed_bytes, fired, spans, span_bytes;
};

struct agg_dom {
    uint64_t docs, bytes, kept, removed, with_spans, removed_bytes, span_bytes;
    uint64_t tox_hist[TOX_NBINS];
    struct agg_rule rule[FLT_R_COUNT];
};

struct agg {
    struct agg_dom dom[TM_DOMAIN_COUNT];
    uint64_t corrupt; /* stored decisions that did not decode (logged, skipped) */
};

static void agg_add(struct agg *a, const struct flt_decision *d)
{
    struct agg_dom *g = &a->dom[d->domain < TM_DOMAIN_COUNT ? d->domain : 0];
    g->docs++;
    g->bytes += d->text_len;
    for (int r = 0; r < FLT_R_COUNT; r++)
        if (d->fired >> r & 1)
            g->rule[r].fired++;
    if (d->action == FLT_REMOVED) {
        g->removed++;
        g->removed_bytes += d->text_len;
        if (d->rule < FLT_R_COUNT) {
            g->rule[d->rule].removed++;
            g->rule[d->rule].removed_bytes += d->text_len;
        }
    } else {
        g->kept++;
    }
    if (d->action == FLT_KEPT_SPANS) {
        g->with_spans++;
        for (size_t k = 0; k < d->spans.n; k++) {
            const struct flt_span *s = &d->spans.v[k];
            uint64_t b = s->end - s->start;
            g->span_bytes += b;
            if (s->rule < FLT_R_COUNT) {
                g->rule[s->rule].spans++;
                g->rule[s->rule].span_bytes += b;
            }
        }
    }
    size_t bin = 0;
    while (bin < TOX_NBINS - 1 && d->tox_score > tox_bins[bin])
        bin++;
    g->tox_hist[bin]++;
}

static void hist_label(size_t bin, char *out, size_t cap)
{
    if (bin == 0)
        snprintf(out, cap, "0");
    else if (bin == TOX_NBINS - 1)
        snprintf(out, cap, ">%g", tox_bins[bin - 1]);
    else
        snprintf(out, cap, "(%g,%g]", tox_bins[bin - 1], tox_bins[bin]);
}

static void rule_json(cJSON *rules, int r, const struct agg_rule *x)
{
    if (!x->fired && !x->removed && !x->spans)
        return;
    cJSON *o = tm_stats_obj(rules, flt_rule_by_id((unsigned)r)->name);
    tm_stats_add(o, "removed", (int64_t)x->removed);
    tm_stats_add(o, "removed_bytes", (int64_t)x->removed_bytes);
    tm_stats_add(o, "fired", (int64_t)x->fired);
    tm_stats_add(o, "spans", (int64_t)x->spans);
    tm_stats_add(o, "span_bytes", (int64_t)x->span_bytes);
}

static void dom_counts_json(cJSON *o, const struct agg_dom *g)
{
    tm_stats_add(o, "documents", (int64_t)g->docs);
    tm_stats_add(o, "bytes", (int64_t)g->bytes);
    tm_stats_add(o, "kept", (int64_t)g->kept);
    tm_stats_add(o, "removed", (int64_t)g->removed);
    tm_stats_add(o, "kept_with_spans", (int64_t)g->with_spans);
    tm_stats_add(o, "removed_bytes", (int64_t)g->removed_bytes);
    tm_stats_add(o, "span_bytes", (int64_t)g->span_bytes);
}

static void agg_json(const struct agg *a, cJSON *out)
{
    struct agg_dom all;
    memset(&all, 0, sizeof all);
    cJSON *doms = tm_stats_obj(out, "domains");
    for (int d = 0; d < TM_DOMAIN_COUNT; d++) {
        const struct agg_dom *g = &a->dom[d];
        all.docs += g->docs;
        all.bytes += g->bytes;
        all.kept += g->kept;
        all.removed += g->removed;
        all.with_spans += g->with_spans;
        all.removed_bytes += g->removed_bytes;
        all.span_bytes += g->span_bytes;
        for (int r = 0; r < FLT_R_COUNT; r++) {
            all.rule[r].removed += g->rule[r].removed;
            all.rule[r].removed_bytes += g->rule[r].removed_bytes;
            all.rule[r].fired += g->rule[r].fired;
            all.rule[r].spans += g->rule[r].spans;
            all.rule[r].span_bytes += g->rule[r].span_bytes;
        }
        for (size_t b = 0; b < TOX_NBINS; b++)
            all.tox_hist[b] += g->tox_hist[b];
        if (!g->docs)
            continue;
        cJSON *o = tm_stats_obj(doms, tm_domain_name(d));
        dom_counts_json(o, g);
        cJSON *rules = tm_stats_obj(o, "rules");
        for (int r = 0; r < FLT_R_COUNT; r++)
            rule_json(rules, r, &g->rule[r]);
        cJSON *h = tm_stats_obj(o, "toxicity_histogram");
        for (size_t b = 0; b < TOX_NBINS; b++) {
            char label[32];
            hist_label(b, label, sizeof label);
            tm_stats_add(h, label, (int64_t)g->tox_hist[b]);
        }
    }
    dom_counts_json(out, &all);
    tm_stats_add(out, "corrupt_decisions", (int64_t)a->corrupt);
    cJSON *rules = tm_stats_obj(out, "rules");
    for (int r = 0; r < FLT_R_COUNT; r++)
        rule_json(rules, r, &all.rule[r]);
    cJSON *h = tm_stats_obj(out, "toxicity_histogram");
    for (size_t b = 0; b < TOX_NBINS; b++) {
        char label[32];
        hist_label(b, label, sizeof label);
        tm_stats_add(h, label, (int64_t)all.tox_hist[b]);
    }
}

/* ---- The run ---------------------------------------------------------------------------- */

/* Documents handed to a worker at a time: small enough to balance, big enough that the shared
 * counter is not contended. */
#define WORK_CHUNK 4

struct frun {
    const struct flt_options *opt;
    struct flt_config cfg;
    struct flt_tox *tox;
    uint64_t hash;
    struct tm_store store;
    int nthreads;
    struct flt_engine *engines;
    /* the batch */
    struct tm_doc *docs;
    struct flt_decision *decs;
    int *rcs;
    size_t n, cap;
    atomic_size_t next;
    /* results */
    struct agg run_agg; /* this run's decisions */
    uint64_t decided, errors;
    struct tm_progress progress;
};

static void worker(void *ctx, int idx)
{
    struct frun *fr = ctx;
    for (;;) {
        size_t i = atomic_fetch_add(&fr->next, WORK_CHUNK);
        if (i >= fr->n)
            break;
        size_t e = i + WORK_CHUNK < fr->n ? i + WORK_CHUNK : fr->n;
        for (size_t k = i; k < e; k++)
            fr->rcs[k] = flt_decide(&fr->engines[idx], &fr->docs[k], &fr->decs[k]);
    }
}

static int decide_batch(struct frun *fr)
{
    atomic_store(&fr->next, 0);
    size_t chunks = (fr->n + WORK_CHUNK - 1) / WORK_CHUNK;
    tm_run_threads((size_t)fr->nthreads < chunks ? fr->nthreads : (int)chunks, worker, fr);
    for (size_t k = 0; k < fr->n; k++)
        if (fr->rcs[k])
            return fr->rcs[k];
    return TM_OK;
}

static void batch_reserve(struct frun *fr, size_t n)
{
    if (n <= fr->cap)
        return;
    size_t cap = fr->cap ? fr->cap : 64;
    while (cap < n)
        cap *= 2;
    fr->docs = tm_xreallocarray(fr->docs, cap, sizeof(*fr->docs));
    fr->rcs = tm_xreallocarray(fr->rcs, cap, sizeof(*fr->rcs));
    fr->decs = tm_xreallocarray(fr->decs, cap, sizeof(*fr->decs));
    for (size_t k = fr->cap; k < cap; k++)
        flt_decision_init(&fr->decs[k]);
    fr->cap = cap;
}

struct write_ctx {
    struct frun *fr;
    uint32_t gen;
    const struct tm_stage *rec;
    struct tm_buf buf;
};

static int write_fn(MDB_txn *txn, struct tm_db *db, void *vctx)
{
    struct write_ctx *c = vctx;
    struct frun *fr = c->fr;
    for (size_t k = 0; k < fr->n; k++) {
        if (fr->rcs[k] == TM_ERR_FORMAT)
            continue;
        size_t len = flt_decision_encoded_size(&fr->decs[k]);
        unsigned char key[8];
        tm_be64_put(key, fr->docs[k].id);
        void *out;
        int rc = tm_db_reserve(db, txn, TM_STORE_FILTER, key, 8, len, &out);
        if (rc)
            return rc;
        flt_decision_encode(&fr->decs[k], fr->hash, out);
    }
    return stage_put(&fr->store, txn, c->gen, c->rec);
}

struct stage_write {
    struct frun *fr;
    uint32_t gen;
    const struct tm_stage *rec;
};

static int stage_write_fn(MDB_txn *txn, struct tm_db *db, void *vctx)
{
    (void)db;
    struct stage_write *c = vctx;
    return stage_put(&c->fr->store, txn, c->gen, c->rec);
}

/* Decides generation `gen` from document id `from`; `rec` is its stage record, updated. */
static int filter_generation(struct frun *fr, uint32_t gen, uint64_t from, struct tm_stage *rec)
{
    const struct flt_options *opt = fr->opt;
    uint64_t id = from, end = tm_doc_make_id(gen + 1, 0);
    struct tm_db *db = &fr->store.db;
    int rc = TM_OK;
    for (;;) {
        MDB_txn *rtxn;
        int mrc = mdb_txn_begin(db->env, NULL, MDB_RDONLY, &rtxn);
        if (mrc) {
            tm_log_error("%s: cannot begin a read transaction: %s", db->path, mdb_strerror(mrc));
            return TM_ERR_DB;
        }
        MDB_cursor *cur;
        if ((mrc = mdb_cursor_open(rtxn, db->dbi[TM_STORE_DOCS], &cur))) {
            mdb_txn_abort(rtxn);
            tm_log_error("%s: cannot open a cursor: %s", db->path, mdb_strerror(mrc));
            return TM_ERR_DB;
        }
        unsigned char kb[8];
        tm_be64_put(kb, id);
        MDB_val k = {8, kb}, v;
        size_t bytes = 0;
        fr->n = 0;
        for (mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); mrc == 0;
             mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
            if (k.mv_size != 8)
                continue;
            uint64_t did = tm_be64_get(k.mv_data);
            if (did >= end)
                break;
            batch_reserve(fr, fr->n + 1);
            char what[64];
            snprintf(what, sizeof what, "document %" PRIu64, did);
            int drc = tm_doc_decode(v.mv_data, v.mv_size, &fr->docs[fr->n], what);
            fr->docs[fr->n].id = did;
            fr->rcs[fr->n] = drc ? TM_ERR_FORMAT : TM_OK;
            if (drc)
                fr->errors++;
            bytes += drc ? 0 : fr->docs[fr->n].text_len;
            fr->n++;
            if ((long)fr->n >= opt->batch_docs || bytes >= opt->batch_bytes)
                break;
        }
        mdb_cursor_close(cur);
        if (mrc != 0 && mrc != MDB_NOTFOUND) {
            mdb_txn_abort(rtxn);
            tm_log_error("%s: cannot read documents: %s", db->path, mdb_strerror(mrc));
            return TM_ERR_DB;
        }
        if (fr->n == 0) {
            mdb_txn_abort(rtxn);
            break;
        }
        /* Corrupt records get no decision; the rest are decided. */
        size_t good = 0;
        for (size_t i = 0; i < fr->n; i++)
            if (fr->rcs[i] == TM_OK) {
                fr->docs[good] = fr->docs[i];
                fr->rcs[good] = TM_OK;
                good++;
            }
        uint64_t last = fr->docs[fr->n - 1].id;
        fr->n = good;
        rc = decide_batch(fr);
        mdb_txn_abort(rtxn); /* the documents' text is not needed past here */
        if (rc)
            return rc;
        for (size_t i = 0; i < fr->n; i++)
            agg_add(&fr->run_agg, &fr->decs[i]);
        rec->state = TM_STAGE_PARTIAL;
        rec->config_hash = fr->hash;
        rec->next_id = last + 1;
        rec->aux += fr->n;
        if (!opt->dry_run) {
            struct write_ctx wc = {.fr = fr, .gen = gen, .rec = rec};
            if ((rc = tm_db_write(db, write_fn, &wc)))
                return rc;
        }
        fr->decided += fr->n;
        tm_progress_add(&fr->progress, fr->n, bytes);
        id = last + 1;
    }
    rec->state = TM_STAGE_DONE;
    rec->config_hash = fr->hash;
    rec->next_id = end;
    if (!opt->dry_run) {
        struct stage_write sw = {.fr = fr, .gen = gen, .rec = rec};
        rc = tm_db_write(db, stage_write_fn, &sw);
    }
    return rc;
}

/* ---- Statistics over the store ------------------------------------------------------------ */

static int total_fn(MDB_txn *txn, struct tm_db *db, void *vctx)
{
    struct agg *a = vctx;
    MDB_cursor *cur;
    int mrc = mdb_cursor_open(txn, db->dbi[TM_STORE_FILTER], &cur);
    if (mrc)
        return TM_ERR_DB;
    struct flt_decision d;
    flt_decision_init(&d);
    MDB_val k, v;
    int rc = TM_OK;
    for (mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); mrc == 0;
         mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        char what[64];
        snprintf(what, sizeof what, "decision %" PRIu64,
                 k.mv_size == 8 ? tm_be64_get(k.mv_data) : 0);
        if (flt_decision_decode(v.mv_data, v.mv_size, &d, NULL, what) == TM_OK)
            agg_add(a, &d);
        else
            a->corrupt++;
    }
    flt_decision_release(&d);
    mdb_cursor_close(cur);
    return rc;
}

/* ---- Export --------------------------------------------------------------------------------- */

/* One line of --export: the decision's fields (tm_store_export_jsonl adds id, source, meta). */
static int export_row(void *ctx, uint64_t id, const void *val, size_t len, cJSON *o)
{
    struct flt_decision *d = ctx;
    char what[64];
    snprintf(what, sizeof what, "decision %" PRIu64, id);
    if (flt_decision_decode(val, len, d, NULL, what) != TM_OK)
        return 1;
    cJSON_AddStringToObject(o, "domain", tm_domain_name(d->domain));
    cJSON_AddStringToObject(o, "action", flt_action_name(d->action));
    if (d->rule < FLT_R_COUNT)
        cJSON_AddStringToObject(o, "rule", flt_rule_by_id(d->rule)->name);
    else
        cJSON_AddNullToObject(o, "rule");
    cJSON_AddNumberToObject(o, "toxicity", d->tox_score);
    cJSON_AddNumberToObject(o, "tox_hits", d->tox_hits);
    cJSON *spans = cJSON_AddArrayToObject(o, "spans");
    cJSON *srules = cJSON_AddArrayToObject(o, "span_rules");
    for (size_t s = 0; s < d->spans.n; s++) {
        cJSON *pair = cJSON_CreateArray();
        cJSON_AddItemToArray(pair, cJSON_CreateNumber((double)d->spans.v[s].start));
        cJSON_AddItemToArray(pair, cJSON_CreateNumber((double)d->spans.v[s].end));
        cJSON_AddItemToArray(spans, pair);
        const struct flt_rule *r = flt_rule_by_id(d->spans.v[s].rule);
        cJSON_AddItemToArray(srules, cJSON_CreateString(r ? r->name : "?"));
    }
    cJSON *fired = cJSON_AddArrayToObject(o, "fired");
    for (int r = 0; r < FLT_R_COUNT; r++)
        if (d->fired >> r & 1)
            cJSON_AddItemToArray(fired, cJSON_CreateString(flt_rule_by_id((unsigned)r)->name));
    cJSON *vals = cJSON_AddObjectToObject(o, "values");
    for (int r = 0; r < FLT_R_COUNT; r++)
        if (!isnan(d->values[r]))
            cJSON_AddNumberToObject(vals, flt_rule_by_id((unsigned)r)->name, d->values[r]);
    return 0;
}

static int export_decisions(struct frun *fr, const char *path)
{
    struct flt_decision d;
    flt_decision_init(&d);
    int rc = tm_store_export_jsonl(&fr->store, TM_STORE_FILTER, path, export_row, &d);
    flt_decision_release(&d);
    return rc;
}

/* ---- Setup ----------------------------------------------------------------------------------- */

static int build_config(const struct flt_options *opt, struct flt_config *cfg)
{
    flt_config_defaults(cfg);
    cfg->all_rules = opt->all_rules;
    int rc;
    if (opt->config && (rc = flt_config_load(cfg, opt->config)))
        return rc;
    char err[256];
    for (size_t k = 0; k < opt->lexicons.count; k++)
        if (flt_config_set(cfg, "lexicons", "lexicon", opt->lexicons.items[k], err, sizeof err)) {
            tm_log_error("--lexicon: %s", err);
            return TM_ERR_USAGE;
        }
    for (size_t k = 0; k < opt->allow.count; k++)
        if (flt_config_set(cfg, "lexicons", "allow", opt->allow.items[k], err, sizeof err)) {
            tm_log_error("--allow: %s", err);
            return TM_ERR_USAGE;
        }
    return tm_ini_apply_sets(&opt->set, "--set", flt_config_set_fn, cfg);
}

static int build_tox(const struct flt_config *cfg, struct flt_tox **out)
{
    struct flt_lexicon_spec *specs = tm_xcalloc(cfg->nlexicons + 1, sizeof(*specs));
    for (size_t k = 0; k < cfg->nlexicons; k++) {
        specs[k].path = cfg->lexicons[k].path;
        specs[k].lang = cfg->lexicons[k].lang;
        specs[k].weight = cfg->lexicons[k].weight;
        specs[k].category = cfg->lexicons[k].category;
    }
    struct flt_tox_spec spec = {
        .lexicons = specs,
        .nlexicons = cfg->nlexicons,
        .allow_paths = (const char *const *)cfg->allow,
        .nallow = cfg->nallow,
        .builtin_allow = cfg->builtin_allow,
        .obfuscation = cfg->obfuscation,
    };
    int rc = flt_tox_new(&spec, out);
    free(specs);
    return rc;
}

int flt_setup(const struct flt_options *opt, struct flt_config *cfg, struct flt_tox **tox,
              uint64_t *hash)
{
    int rc = build_config(opt, cfg);
    if (rc)
        return rc;
    int any_tox = 0;
    for (int d = 0; d < TM_DOMAIN_COUNT; d++)
        any_tox |= cfg->dom[d].tox.enabled;
    *tox = NULL;
    if (any_tox && cfg->nlexicons > 0 && (rc = build_tox(cfg, tox)))
        return rc;
    *hash = flt_config_hash(cfg, *tox ? flt_tox_hash(*tox) : 0);
    return TM_OK;
}

/* ---- Entry ------------------------------------------------------------------------------ */

struct plan_item {
    uint32_t gen;
    uint64_t from;
    struct tm_stage rec;
};

struct plan_ctx {
    struct frun *fr;
    struct plan_item *items;
    size_t n;
    uint64_t docs_total;
    uint32_t open_gens, stale_gens;
};

static int plan_fn(MDB_txn *txn, struct tm_db *db, void *vctx)
{
    (void)db;
    struct plan_ctx *p = vctx;
    struct frun *fr = p->fr;
    uint32_t last;
    int rc = tm_store_last_gen(&fr->store, txn, &last);
    if (rc)
        return rc;
    p->items = tm_xcalloc(last + 1, sizeof(*p->items));
    for (uint32_t g = 1; g <= last; g++) {
        struct tm_gen gr;
        rc = tm_store_get_gen(&fr->store, txn, g, &gr);
        if (rc == TM_ERR_NOTFOUND)
            continue;
        if (rc)
            return rc;
        if (gr.state != TM_GEN_CLOSED) {
            p->open_gens++;
            tm_log_warn("generation %u is still being ingested (or its ingest was interrupted): "
                        "skipped; run ingest again, then filter",
                        g);
            continue;
        }
        struct tm_stage rec = {0};
        rc = stage_get(&fr->store, txn, g, &rec);
        if (rc && rc != TM_ERR_NOTFOUND)
            return rc;
        uint64_t from = tm_doc_make_id(g, 0);
        if (rc == TM_OK) {
            int same = rec.config_hash == fr->hash;
            if (rec.state == TM_STAGE_DONE && !fr->opt->redo && (same || !fr->opt->redo_stale)) {
                if (!same)
                    p->stale_gens++;
                continue;
            }
            if (rec.state == TM_STAGE_PARTIAL && same && !fr->opt->redo)
                from = rec.next_id; /* continue where a killed run stopped */
            else
                rec.aux = 0;
        }
        uint64_t gdocs = 0;
        for (int d = 0; d < TM_DOMAIN_COUNT; d++)
            gdocs += gr.docs[d];
        p->docs_total += gdocs > rec.aux ? gdocs - rec.aux : 0;
        p->items[p->n].gen = g;
        p->items[p->n].from = from;
        p->items[p->n].rec = rec;
        p->n++;
    }
    return TM_OK;
}

static void print_summary(const struct agg *a, const char *what)
{
    struct agg_dom all;
    memset(&all, 0, sizeof all);
    for (int d = 0; d < TM_DOMAIN_COUNT; d++) {
        all.docs += a->dom[d].docs;
        all.bytes += a->dom[d].bytes;
        all.kept += a->dom[d].kept;
        all.removed += a->dom[d].removed;
        all.with_spans += a->dom[d].with_spans;
        all.removed_bytes += a->dom[d].removed_bytes;
        all.span_bytes += a->dom[d].span_bytes;
        for (int r = 0; r < FLT_R_COUNT; r++) {
            all.rule[r].removed += a->dom[d].rule[r].removed;
            all.rule[r].spans += a->dom[d].rule[r].spans;
        }
    }
    printf("filter: %s: %" PRIu64 " documents, %.1f MB: kept %" PRIu64 " (%" PRIu64
           " with spans removed), removed %" PRIu64 " (%.1f MB); spans %.2f MB\n",
           what, all.docs, (double)all.bytes / 1e6, all.kept, all.with_spans, all.removed,
           (double)all.removed_bytes / 1e6, (double)all.span_bytes / 1e6);
    for (int d = 0; d < TM_DOMAIN_COUNT; d++)
        if (a->dom[d].docs)
            printf("  %s: %" PRIu64 " documents, removed %" PRIu64 ", with spans %" PRIu64 "\n",
                   tm_domain_name(d), a->dom[d].docs, a->dom[d].removed, a->dom[d].with_spans);
    int any = 0;
    for (int r = 0; r < FLT_R_COUNT; r++) {
        if (!all.rule[r].removed && !all.rule[r].spans)
            continue;
        printf("%s %s %" PRIu64, any ? "," : "  by rule:", flt_rule_by_id((unsigned)r)->name,
               all.rule[r].removed + all.rule[r].spans);
        any = 1;
    }
    if (any)
        printf("\n");
}

int flt_filter_run(const struct flt_options *opt, int progress, cJSON *stats)
{
    struct frun fr;
    memset(&fr, 0, sizeof fr);
    fr.opt = opt;
    int rc = flt_setup(opt, &fr.cfg, &fr.tox, &fr.hash);
    int lock = -1;
    if (rc)
        goto out;
    if (opt->print_config) {
        flt_config_print(&fr.cfg, stdout);
        goto out;
    }
    if (!opt->dry_run && !opt->explain) {
        lock = tm_lock_workdir(opt->workdir);
        if (lock < 0) {
            rc = lock;
            goto out;
        }
    }
    if ((rc = tm_store_open(&fr.store, opt->workdir, 0)))
        goto out;
    if (opt->explain) {
        rc = flt_explain(&fr.store, &fr.cfg, fr.tox, fr.hash, opt->explain);
        goto out;
    }

    fr.nthreads = tm_thread_count(opt->threads);
    fr.engines = tm_xcalloc((size_t)fr.nthreads, sizeof(*fr.engines));
    for (int t = 0; t < fr.nthreads; t++)
        flt_engine_init(&fr.engines[t], &fr.cfg, fr.tox);

    struct plan_ctx plan = {.fr = &fr};
    if ((rc = tm_db_read(&fr.store.db, plan_fn, &plan)))
        goto out_plan;
    if (plan.stale_gens)
        tm_log_warn("%u generation(s) were filtered with a different configuration and are left "
                    "as they are; --redo-stale decides them again",
                    plan.stale_gens);
    double t0 = tm_now();
    tm_progress_init(&fr.progress, "filter", plan.docs_total, 0, progress, 0);
    cJSON *fs = tm_stats_obj(stats, "filter");
    char hex[20];
    snprintf(hex, sizeof hex, "%016" PRIx64, fr.hash);
    tm_stats_set_str(fs, "config_hash", hex);
    tm_stats_set_num(fs, "threads", fr.nthreads);
    tm_stats_set_num(fs, "dry_run", opt->dry_run);
    cJSON *gens = cJSON_AddArrayToObject(fs, "generations");
    for (size_t k = 0; k < plan.n && rc == TM_OK; k++) {
        cJSON_AddItemToArray(gens, cJSON_CreateNumber(plan.items[k].gen));
        rc = filter_generation(&fr, plan.items[k].gen, plan.items[k].from, &plan.items[k].rec);
    }
    tm_progress_finish(&fr.progress);
    double secs = tm_now() - t0;
    tm_stats_set_num(fs, "seconds", secs);
    tm_stats_add(fs, "decided", (int64_t)fr.decided);
    tm_stats_add(fs, "errors", (int64_t)fr.errors);
    tm_stats_add(fs, "open_generations_skipped", plan.open_gens);
    cJSON *runo = tm_stats_obj(fs, "run");
    agg_json(&fr.run_agg, runo);
    if (rc == TM_OK) {
        if (opt->dry_run) {
            print_summary(&fr.run_agg, "dry run (nothing written)");
        } else {
            struct agg total;
            memset(&total, 0, sizeof total);
            if ((rc = tm_db_read(&fr.store.db, total_fn, &total)) == TM_OK) {
                agg_json(&total, tm_stats_obj(fs, "total"));
                char what[96];
                snprintf(what, sizeof what, "decided %" PRIu64 " now; all filtered", fr.decided);
                print_summary(&total, what);
            }
        }
    }
    if (rc == TM_OK && opt->export_path)
        rc = export_decisions(&fr, opt->export_path);
    if (rc == TM_OK && fr.errors)
        rc = TM_ERR_PARTIAL;
out_plan:
    free(plan.items);
out:
    if (fr.engines)
        for (int t = 0; t < fr.nthreads; t++)
            flt_engine_release(&fr.engines[t]);
    free(fr.engines);
    for (size_t k = 0; k < fr.cap; k++)
        flt_decision_release(&fr.decs[k]);
    free(fr.decs);
    free(fr.docs);
    free(fr.rcs);
    if (fr.store.db.env)
        tm_store_close(&fr.store);
    if (lock >= 0)
        tm_unlock(lock);
    flt_tox_free(fr.tox);
    flt_config_release(&fr.cfg);
    return rc;
}
