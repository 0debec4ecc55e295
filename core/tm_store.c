/* tm_store: opening the document store and its fixed-size records. */
#include "tm_store.h"

#include <cjson/cJSON.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#include "tm_err.h"
#include "tm_fs.h"
#include "tm_log.h"
#include "tm_mem.h"
#include "tm_opt.h"

static const char *const store_db_names[TM_STORE_NDBS] = {
    "meta",   "docs",  "inputs",      "gens",      "filter",
    "stages", "dedup", "dedup_exact", "dedup_lsh", "dedup_members"};
/* Sorted fixed-size duplicates: a band key or a cluster maps to many document ids. */
static const unsigned store_db_flags[TM_STORE_NDBS] = {
    [TM_STORE_DEDUP_LSH] = MDB_DUPSORT | MDB_DUPFIXED,
    [TM_STORE_DEDUP_MEMBERS] = MDB_DUPSORT | MDB_DUPFIXED,
};

/* The map starts small and doubles on demand (tm_db_write); 1 TiB of address space is only a
 * ceiling, nothing is reserved on disk. */
#define STORE_MAP_INITIAL (64u << 20)
#define STORE_MAP_MAX     ((size_t)1 << 40)

#define FORMAT_KEY "format"

struct format_ctx {
    int created;
};

static int store_format_fn(MDB_txn *txn, struct tm_db *db, void *vctx)
{
    struct format_ctx *ctx = vctx;
    const void *val;
    size_t len;
    int rc = tm_db_get(db, txn, TM_STORE_META, FORMAT_KEY, strlen(FORMAT_KEY), &val, &len);
    if (rc == TM_ERR_NOTFOUND && !(db->flags & TM_DB_RDONLY)) {
        unsigned char rec[TM_REC_HDR];
        tm_rec_header(rec, "TMST", TM_STORE_FORMAT);
        ctx->created = 1;
        return tm_db_put(db, txn, TM_STORE_META, FORMAT_KEY, strlen(FORMAT_KEY), rec, sizeof(rec),
                         0);
    }
    if (rc == TM_ERR_NOTFOUND) {
        tm_log_error("store %s has no format record", db->path);
        return TM_ERR_FORMAT;
    }
    if (rc)
        return rc;
    return tm_rec_check(val, len, "TMST", TM_STORE_FORMAT, db->path, NULL);
}

int tm_store_open(struct tm_store *s, const char *workdir, unsigned flags)
{
    memset(s, 0, sizeof(*s));
    char *dir = tm_path_join(workdir, "store");
    int rc;
    if ((flags & TM_DB_RDONLY)) {
        char *data = tm_path_join(dir, "data.mdb");
        int missing = access(data, F_OK) != 0;
        free(data);
        if (missing) {
            tm_log_error("no document store in %s (run 'tokenmill ingest --workdir %s' first)",
                         workdir, workdir);
            free(dir);
            return TM_ERR_NOTFOUND;
        }
    }
    rc = tm_db_open_ex(&s->db, dir, store_db_names, store_db_flags, TM_STORE_NDBS,
                       STORE_MAP_INITIAL, STORE_MAP_MAX, flags);
    free(dir);
    if (rc)
        return rc;
    struct format_ctx ctx = {0};
    rc = (flags & TM_DB_RDONLY) ? tm_db_read(&s->db, store_format_fn, &ctx)
                                : tm_db_write(&s->db, store_format_fn, &ctx);
    if (rc) {
        tm_db_close(&s->db);
        return rc;
    }
    s->workdir = tm_xstrdup(workdir);
    return TM_OK;
}

void tm_store_close(struct tm_store *s)
{
    if (!s)
        return;
    tm_db_close(&s->db);
    free(s->workdir);
    s->workdir = NULL;
}

void tm_input_encode(const struct tm_input *in, unsigned char out[TM_INPUT_REC_SIZE])
{
    unsigned char *p = out;
    tm_rec_header(p, "TMIN", 1);
    p += TM_REC_HDR;
    tm_le64_put(p, in->size);
    tm_le64_put(p + 8, (uint64_t)in->mtime_ns);
    memcpy(p + 16, in->hash, 16);
    tm_le32_put(p + 32, in->generation);
    tm_le32_put(p + 36, in->state);
    tm_le64_put(p + 40, in->units);
    tm_le64_put(p + 48, in->docs);
    tm_le64_put(p + 56, in->bytes);
    tm_le64_put(p + 64, in->errors);
}

int tm_input_decode(const void *val, size_t len, struct tm_input *in, const char *what)
{
    int rc = tm_rec_check(val, len, "TMIN", 1, what, NULL);
    if (rc)
        return rc;
    if (len != TM_INPUT_REC_SIZE) {
        tm_log_error("%s: input record has %zu bytes, expected %d", what, len, TM_INPUT_REC_SIZE);
        return TM_ERR_FORMAT;
    }
    const unsigned char *p = (const unsigned char *)val + TM_REC_HDR;
    in->size = tm_le64_get(p);
    in->mtime_ns = (int64_t)tm_le64_get(p + 8);
    memcpy(in->hash, p + 16, 16);
    in->generation = tm_le32_get(p + 32);
    in->state = tm_le32_get(p + 36);
    in->units = tm_le64_get(p + 40);
    in->docs = tm_le64_get(p + 48);
    in->bytes = tm_le64_get(p + 56);
    in->errors = tm_le64_get(p + 64);
    if (in->state != TM_INPUT_PARTIAL && in->state != TM_INPUT_DONE) {
        tm_log_error("%s: input record has unknown state %u", what, in->state);
        return TM_ERR_FORMAT;
    }
    return TM_OK;
}

void tm_gen_encode(const struct tm_gen *g, unsigned char out[TM_GEN_REC_SIZE])
{
    unsigned char *p = out;
    tm_rec_header(p, "TMGN", 1);
    p += TM_REC_HDR;
    tm_le32_put(p, g->state);
    tm_le32_put(p + 4, g->inputs);
    tm_le64_put(p + 8, (uint64_t)g->started);
    tm_le64_put(p + 16, (uint64_t)g->finished);
    tm_le64_put(p + 24, g->next_seq);
    p += 32;
    for (int d = 0; d < TM_DOMAIN_COUNT; d++) {
        tm_le64_put(p, g->docs[d]);
        tm_le64_put(p + 8, g->bytes[d]);
        p += 16;
    }
}

int tm_gen_decode(const void *val, size_t len, struct tm_gen *g, const char *what)
{
    int rc = tm_rec_check(val, len, "TMGN", 1, what, NULL);
    if (rc)
        return rc;
    if (len != TM_GEN_REC_SIZE) {
        tm_log_error("%s: generation record has %zu bytes, expected %d", what, len,
                     TM_GEN_REC_SIZE);
        return TM_ERR_FORMAT;
    }
    const unsigned char *p = (const unsigned char *)val + TM_REC_HDR;
    g->state = tm_le32_get(p);
    g->inputs = tm_le32_get(p + 4);
    g->started = (int64_t)tm_le64_get(p + 8);
    g->finished = (int64_t)tm_le64_get(p + 16);
    g->next_seq = tm_le64_get(p + 24);
    p += 32;
    for (int d = 0; d < TM_DOMAIN_COUNT; d++) {
        g->docs[d] = tm_le64_get(p);
        g->bytes[d] = tm_le64_get(p + 8);
        p += 16;
    }
    if (g->state != TM_GEN_OPEN && g->state != TM_GEN_CLOSED) {
        tm_log_error("%s: generation record has unknown state %u", what, g->state);
        return TM_ERR_FORMAT;
    }
    return TM_OK;
}

int tm_store_get_gen(struct tm_store *s, MDB_txn *txn, uint32_t gen, struct tm_gen *g)
{
    unsigned char key[4];
    const void *val;
    size_t len;
    char what[64];
    tm_be32_put(key, gen);
    int rc = tm_db_get(&s->db, txn, TM_STORE_GENS, key, sizeof(key), &val, &len);
    if (rc)
        return rc;
    snprintf(what, sizeof(what), "generation %u", gen);
    return tm_gen_decode(val, len, g, what);
}

int tm_store_last_gen(struct tm_store *s, MDB_txn *txn, uint32_t *gen)
{
    MDB_cursor *cur;
    MDB_val k, v;
    *gen = 0;
    int rc = mdb_cursor_open(txn, s->db.dbi[TM_STORE_GENS], &cur);
    if (rc) {
        tm_log_error("%s: cannot open cursor: %s", s->db.path, mdb_strerror(rc));
        return TM_ERR_DB;
    }
    rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
    mdb_cursor_close(cur);
    if (rc == MDB_NOTFOUND)
        return TM_OK;
    if (rc) {
        tm_log_error("%s: cannot read generations: %s", s->db.path, mdb_strerror(rc));
        return TM_ERR_DB;
    }
    if (k.mv_size != 4) {
        tm_log_error("%s: generation key of %zu bytes", s->db.path, k.mv_size);
        return TM_ERR_FORMAT;
    }
    *gen = tm_be32_get(k.mv_data);
    return TM_OK;
}

int tm_store_get_doc(struct tm_store *s, MDB_txn *txn, uint64_t id, struct tm_doc *doc)
{
    unsigned char key[8];
    const void *val;
    size_t len;
    char what[64];
    tm_be64_put(key, id);
    int rc = tm_db_get(&s->db, txn, TM_STORE_DOCS, key, sizeof(key), &val, &len);
    if (rc)
        return rc;
    snprintf(what, sizeof(what), "document %llu", (unsigned long long)id);
    return tm_doc_decode(val, len, doc, what);
}

int tm_store_foreach(struct tm_store *s, MDB_txn *txn, uint32_t first_gen, uint32_t last_gen,
                     int (*fn)(void *ctx, const struct tm_doc *doc), void *ctx)
{
    MDB_cursor *cur;
    unsigned char start[8];
    MDB_val k = {sizeof(start), start}, v;
    int rc = mdb_cursor_open(txn, s->db.dbi[TM_STORE_DOCS], &cur);
    if (rc) {
        tm_log_error("%s: cannot open cursor: %s", s->db.path, mdb_strerror(rc));
        return TM_ERR_DB;
    }
    tm_be64_put(start, tm_doc_make_id(first_gen, 0));
    int err = TM_OK;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size != 8) {
            tm_log_error("%s: document key of %zu bytes", s->db.path, k.mv_size);
            err = TM_ERR_FORMAT;
            break;
        }
        uint64_t id = tm_be64_get(k.mv_data);
        if (tm_doc_id_generation(id) > last_gen)
            break;
        struct tm_doc doc;
        char what[64];
        snprintf(what, sizeof(what), "document %llu", (unsigned long long)id);
        err = tm_doc_decode(v.mv_data, v.mv_size, &doc, what);
        if (err == TM_OK)
            err = fn(ctx, &doc);
        if (err)
            break;
    }
    mdb_cursor_close(cur);
    if (err == TM_OK && rc != 0 && rc != MDB_NOTFOUND) {
        tm_log_error("%s: cannot read documents: %s", s->db.path, mdb_strerror(rc));
        err = TM_ERR_DB;
    }
    return err;
}

/* ---- Stage records ------------------------------------------------------------------------ */

#define STAGE_MAGIC    "TMSG"
#define STAGE_VERSION  1
#define STAGE_SIZE     (TM_REC_HDR + 4 + 4 + 8 + 8 + 8)
#define STAGE_NAME_MAX 32

static size_t stage_key(unsigned char *key, const char *stage, uint32_t gen)
{
    size_t n = strlen(stage);
    if (n > STAGE_NAME_MAX)
        n = STAGE_NAME_MAX;
    memcpy(key, stage, n);
    key[n] = '/';
    tm_be32_put(key + n + 1, gen);
    return n + 5;
}

int tm_stage_get(struct tm_store *s, MDB_txn *txn, const char *stage, uint32_t gen,
                 struct tm_stage *out)
{
    unsigned char key[STAGE_NAME_MAX + 5];
    size_t klen = stage_key(key, stage, gen);
    const void *val;
    size_t len;
    int rc = tm_db_get(&s->db, txn, TM_STORE_STAGES, key, klen, &val, &len);
    if (rc)
        return rc;
    char what[96];
    snprintf(what, sizeof what, "%s state of generation %u in %s", stage, gen, s->db.path);
    if ((rc = tm_rec_check(val, len, STAGE_MAGIC, STAGE_VERSION, what, NULL)))
        return rc;
    if (len != STAGE_SIZE) {
        tm_log_error("%s: record of %zu bytes, expected %d", what, len, STAGE_SIZE);
        return TM_ERR_FORMAT;
    }
    const unsigned char *p = (const unsigned char *)val + TM_REC_HDR;
    out->state = tm_le32_get(p);
    out->config_hash = tm_le64_get(p + 8);
    out->next_id = tm_le64_get(p + 16);
    out->aux = tm_le64_get(p + 24);
    return TM_OK;
}

int tm_stage_put(struct tm_store *s, MDB_txn *txn, const char *stage, uint32_t gen,
                 const struct tm_stage *in)
{
    unsigned char key[STAGE_NAME_MAX + 5], val[STAGE_SIZE] = {0};
    size_t klen = stage_key(key, stage, gen);
    tm_rec_header(val, STAGE_MAGIC, STAGE_VERSION);
    tm_le32_put(val + TM_REC_HDR, in->state);
    tm_le64_put(val + TM_REC_HDR + 8, in->config_hash);
    tm_le64_put(val + TM_REC_HDR + 16, in->next_id);
    tm_le64_put(val + TM_REC_HDR + 24, in->aux);
    return tm_db_put(&s->db, txn, TM_STORE_STAGES, key, klen, val, sizeof val, 0);
}

/* ---- JSON Lines export ------------------------------------------------------------------- */

struct export_ctx {
    struct tm_store *s;
    unsigned dbi;
    FILE *out;
    int (*row)(void *ctx, uint64_t id, const void *val, size_t len, cJSON *obj);
    void *ctx;
};

static int export_fn(MDB_txn *txn, struct tm_db *db, void *vctx)
{
    struct export_ctx *c = vctx;
    MDB_cursor *cur;
    if (mdb_cursor_open(txn, db->dbi[c->dbi], &cur))
        return TM_ERR_DB;
    MDB_val k, v;
    int rc = TM_OK;
    for (int mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); mrc == 0 && rc == TM_OK;
         mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size != 8)
            continue;
        uint64_t id = tm_be64_get(k.mv_data);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "id", (double)id);
        struct tm_doc doc;
        int have_doc = tm_store_get_doc(c->s, txn, id, &doc) == TM_OK;
        if (have_doc)
            cJSON_AddStringToObject(o, "source", doc.source);
        if (c->row(c->ctx, id, v.mv_data, v.mv_size, o) != 0) {
            cJSON_Delete(o);
            continue;
        }
        if (have_doc) {
            cJSON *meta = cJSON_ParseWithLength(doc.meta, doc.meta_len);
            if (meta)
                cJSON_AddItemToObject(o, "meta", meta);
        }
        char *line = cJSON_PrintUnformatted(o);
        cJSON_Delete(o);
        if (!line || fprintf(c->out, "%s\n", line) < 0)
            rc = TM_ERR_IO;
        free(line);
    }
    mdb_cursor_close(cur);
    return rc;
}

int tm_store_export_jsonl(struct tm_store *s, unsigned dbi, const char *path,
                          int (*row)(void *ctx, uint64_t id, const void *val, size_t len,
                                     cJSON *obj),
                          void *ctx)
{
    size_t plen = strlen(path) + 16;
    char *tmp = tm_xmalloc(plen);
    snprintf(tmp, plen, "%s.partial", path);
    struct export_ctx c = {.s = s, .dbi = dbi, .out = fopen(tmp, "w"), .row = row, .ctx = ctx};
    if (!c.out) {
        tm_log_error("%s: cannot create: %m", tmp);
        free(tmp);
        return TM_ERR_IO;
    }
    int rc = tm_db_read(&s->db, export_fn, &c);
    if (fflush(c.out) != 0 || fsync(fileno(c.out)) != 0)
        rc = rc ? rc : TM_ERR_IO;
    fclose(c.out);
    if (rc == TM_OK && rename(tmp, path) != 0)
        rc = TM_ERR_IO;
    if (rc) {
        tm_log_error("%s: cannot write the export", path);
        unlink(tmp);
    }
    free(tmp);
    return rc;
}

/* ---- Plans ------------------------------------------------------------------------------ */

uint64_t tm_stage_hash_epoch(uint64_t hash, const char *epoch)
{
    if (!epoch || !*epoch)
        return hash;
    return hash ^ (XXH3_64bits(epoch, strlen(epoch)) * 0x9E3779B97F4A7C15ull + 1);
}

int tm_store_exists(const char *workdir)
{
    char *data = tm_path_join(workdir, "store/data.mdb");
    int ok = access(data, F_OK) == 0;
    free(data);
    return ok;
}

enum { SV_NEW, SV_PARTIAL, SV_DONE, SV_STALE, SV_OPEN, SV_N };

struct survey {
    struct tm_store *st;
    const char *stage;
    uint64_t hash;
    uint32_t *gens[SV_N]; /* each class's generations, ascending */
    uint32_t n[SV_N];
};

static int survey_fn(MDB_txn *txn, struct tm_db *db, void *vctx)
{
    (void)db;
    struct survey *sv = vctx;
    uint32_t last;
    int rc = tm_store_last_gen(sv->st, txn, &last);
    if (rc)
        return rc;
    for (int c = 0; c < SV_N; c++)
        sv->gens[c] = tm_xcalloc((size_t)last + 1, sizeof(uint32_t));
    for (uint32_t g = 1; g <= last; g++) {
        struct tm_gen gr;
        rc = tm_store_get_gen(sv->st, txn, g, &gr);
        if (rc == TM_ERR_NOTFOUND)
            continue;
        if (rc)
            return rc;
        int c;
        struct tm_stage rec;
        if (gr.state != TM_GEN_CLOSED) {
            c = SV_OPEN;
        } else {
            rc = tm_stage_get(sv->st, txn, sv->stage, g, &rec);
            if (rc && rc != TM_ERR_NOTFOUND)
                return rc;
            c = rc == TM_ERR_NOTFOUND         ? SV_NEW
                : rec.state != TM_STAGE_DONE  ? SV_PARTIAL
                : rec.config_hash == sv->hash ? SV_DONE
                                              : SV_STALE;
        }
        sv->gens[c][sv->n[c]++] = g;
    }
    return TM_OK;
}

/* "1-3, 5" */
static void add_ranges(struct tm_plan *out, const uint32_t *g, uint32_t n)
{
    for (uint32_t i = 0; i < n;) {
        uint32_t j = i;
        while (j + 1 < n && g[j + 1] == g[j] + 1)
            j++;
        tm_plan_add(out, "%s%u", i ? ", " : "", g[i]);
        if (j > i)
            tm_plan_add(out, "-%u", g[j]);
        i = j + 1;
    }
}

static void add_class(struct tm_plan *out, int *first, const uint32_t *g, uint32_t n,
                      const char *what)
{
    if (!n)
        return;
    tm_plan_add(out, "%sgeneration%s ", *first ? "" : "; ", n > 1 ? "s" : "");
    add_ranges(out, g, n);
    tm_plan_add(out, " %s", what);
    *first = 0;
}

int tm_stage_plan(const char *workdir, const char *stage, uint64_t hash, enum tm_redo redo,
                  struct tm_plan *out)
{
    if (!tm_store_exists(workdir)) {
        tm_plan_add(out, "no documents yet");
        return TM_OK;
    }
    struct tm_store st;
    int rc = tm_store_open(&st, workdir, TM_DB_RDONLY);
    if (rc)
        return rc;
    struct survey sv = {.st = &st, .stage = stage, .hash = hash};
    rc = tm_db_read(&st.db, survey_fn, &sv);
    if (rc == TM_OK) {
        int first = 1;
        uint32_t closed = sv.n[SV_NEW] + sv.n[SV_PARTIAL] + sv.n[SV_DONE] + sv.n[SV_STALE];
        if (redo == TM_REDO_ALL && closed) {
            uint32_t *all = tm_xcalloc(closed, sizeof(uint32_t)), k = 0;
            for (int c = 0; c < SV_OPEN; c++)
                for (uint32_t i = 0; i < sv.n[c]; i++)
                    all[k++] = sv.gens[c][i];
            for (uint32_t i = 1; i < k; i++) /* insertion sort: the classes interleave */
                for (uint32_t j = i; j > 0 && all[j - 1] > all[j]; j--) {
                    uint32_t t = all[j];
                    all[j] = all[j - 1];
                    all[j - 1] = t;
                }
            add_class(out, &first, all, k, "again, from scratch");
            free(all);
            out->work = 1;
        } else {
            add_class(out, &first, sv.gens[SV_NEW], sv.n[SV_NEW], "new");
            add_class(out, &first, sv.gens[SV_PARTIAL], sv.n[SV_PARTIAL],
                      "to finish (an interrupted run)");
            add_class(out, &first, sv.gens[SV_DONE], sv.n[SV_DONE], "done");
            int again = redo == TM_REDO_STALE;
            add_class(out, &first, sv.gens[SV_STALE], sv.n[SV_STALE],
                      again ? "again (done with other settings)" : "done with other settings");
            out->work = sv.n[SV_NEW] + sv.n[SV_PARTIAL] + (again ? sv.n[SV_STALE] : 0) > 0;
            out->stale = !again && sv.n[SV_STALE] > 0;
        }
        add_class(out, &first, sv.gens[SV_OPEN], sv.n[SV_OPEN],
                  "still open (its ingest did not finish)");
        if (first)
            tm_plan_add(out, "no generations yet");
    }
    for (int c = 0; c < SV_N; c++)
        free(sv.gens[c]);
    tm_store_close(&st);
    return rc;
}
