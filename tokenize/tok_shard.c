/* tok_shard.c: one token shard: its writer, its meta record, and reading it in place. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tokenize.h"
#include "tm_buf.h"
#include "tm_db.h"
#include "tm_err.h"
#include "tm_log.h"
#include "tm_mem.h"

const char *const tok_split_names[] = {"train", "val", NULL};

enum { DB_META, DB_TOKENS, DB_DOCS, NDBS };
static const char *const db_names[NDBS] = {"meta", "tokens", "docs"};

#define NSTREAMS    (TOK_SPLIT_COUNT * TM_DOMAIN_COUNT)
#define KEYLEN      10
#define DOC_VAL_LEN 20
#define META_LEN    (TM_REC_HDR + 4 * 2 + 8 + 4 * 5 + 8 * 2 + 8 * 2 * NSTREAMS)

/* ---- Meta record ---------------------------------------------------------------------------- */

static void meta_encode(const struct tok_shard_meta *m, unsigned char out[META_LEN])
{
    unsigned char *p = out;
    tm_rec_header(p, "TMTS", TOK_SHARD_FORMAT);
    p += TM_REC_HDR;
    tm_le32_put(p, m->dtype);
    tm_le32_put(p + 4, m->chunk_tokens);
    tm_le64_put(p + 8, m->tokenizer_hash);
    tm_le32_put(p + 16, m->eot);
    tm_le32_put(p + 20, m->id_end);
    tm_le32_put(p + 24, m->val_ppm);
    tm_le32_put(p + 28, m->first_gen);
    tm_le32_put(p + 32, m->last_gen);
    tm_le64_put(p + 36, m->first_doc);
    tm_le64_put(p + 44, m->next_doc);
    p += 52;
    for (int s = 0; s < TOK_SPLIT_COUNT; s++)
        for (int d = 0; d < TM_DOMAIN_COUNT; d++) {
            tm_le64_put(p, m->tokens[s][d]);
            tm_le64_put(p + 8, m->docs[s][d]);
            p += 16;
        }
}

static int meta_decode(const void *val, size_t len, struct tok_shard_meta *m, const char *what)
{
    int rc = tm_rec_check(val, len, "TMTS", TOK_SHARD_FORMAT, what, NULL);
    if (rc)
        return rc;
    if (len != META_LEN) {
        tm_log_error("%s: shard record of %zu bytes, expected %d", what, len, META_LEN);
        return TM_ERR_FORMAT;
    }
    const unsigned char *p = (const unsigned char *)val + TM_REC_HDR;
    memset(m, 0, sizeof(*m));
    m->dtype = tm_le32_get(p);
    m->chunk_tokens = tm_le32_get(p + 4);
    m->tokenizer_hash = tm_le64_get(p + 8);
    m->eot = tm_le32_get(p + 16);
    m->id_end = tm_le32_get(p + 20);
    m->val_ppm = tm_le32_get(p + 24);
    m->first_gen = tm_le32_get(p + 28);
    m->last_gen = tm_le32_get(p + 32);
    m->first_doc = tm_le64_get(p + 36);
    m->next_doc = tm_le64_get(p + 44);
    p += 52;
    for (int s = 0; s < TOK_SPLIT_COUNT; s++)
        for (int d = 0; d < TM_DOMAIN_COUNT; d++) {
            m->tokens[s][d] = tm_le64_get(p);
            m->docs[s][d] = tm_le64_get(p + 8);
            p += 16;
        }
    if ((m->dtype != 2 && m->dtype != 4) || m->chunk_tokens == 0 ||
        (m->dtype == 2 && m->id_end > 65536)) {
        tm_log_error("%s: dtype %u, chunk of %u tokens, %u ids: not a valid shard", what, m->dtype,
                     m->chunk_tokens, m->id_end);
        return TM_ERR_FORMAT;
    }
    return TM_OK;
}

static void stream_key(unsigned char key[KEYLEN], int split, int domain, uint64_t n)
{
    key[0] = (unsigned char)split;
    key[1] = (unsigned char)domain;
    tm_be64_put(key + 2, n);
}

/* ---- Writer -----------------------------------------------------------------------------------
 */

struct stream_buf {
    unsigned char *chunk; /* chunk_tokens * dtype bytes */
    size_t n;             /* ids in chunk */
    uint64_t next_chunk;  /* number of the next chunk written */
};

struct tok_shard_writer {
    struct tm_db db;
    char *dir;
    struct tok_shard_meta meta;
    struct stream_buf s[TOK_SPLIT_COUNT][TM_DOMAIN_COUNT];
    struct tm_buf docs; /* pending doc records: key then value, KEYLEN + DOC_VAL_LEN each */
    uint64_t total;
};

int tok_shard_writer_new(const char *dir, const struct tok_shard_meta *init,
                         struct tok_shard_writer **out)
{
    *out = NULL;
    struct tok_shard_writer *w = tm_xcalloc(1, sizeof(*w));
    w->dir = tm_xstrdup(dir);
    w->meta.dtype = init->dtype;
    w->meta.chunk_tokens = init->chunk_tokens;
    w->meta.tokenizer_hash = init->tokenizer_hash;
    w->meta.eot = init->eot;
    w->meta.id_end = init->id_end;
    w->meta.val_ppm = init->val_ppm;
    tm_buf_init(&w->docs, 0);
    int rc = tm_db_open(&w->db, dir, db_names, NDBS, (size_t)64 << 20, 0, 0);
    if (rc) {
        tok_shard_writer_free(w);
        return rc;
    }
    /* Durability comes from the one sync in finish(): a shard is published only after it. */
    mdb_env_set_flags(w->db.env, MDB_NOSYNC, 1);
    *out = w;
    return TM_OK;
}

void tok_shard_writer_free(struct tok_shard_writer *w)
{
    if (!w)
        return;
    tm_db_close(&w->db);
    for (int s = 0; s < TOK_SPLIT_COUNT; s++)
        for (int d = 0; d < TM_DOMAIN_COUNT; d++)
            free(w->s[s][d].chunk);
    tm_buf_release(&w->docs);
    free(w->dir);
    free(w);
}

uint64_t tok_shard_writer_tokens(const struct tok_shard_writer *w)
{
    return w->total;
}

struct flush_ctx {
    struct tok_shard_writer *w;
    int split, domain; /* the stream whose chunk is written, or -1 */
    int meta;          /* write the meta record too */
};

/* One write transaction: the pending document records, then a chunk, then the meta record.
 * Repeatable (tm_db_write may run it again after growing the map): it only reads the buffers. */
static int flush_body(MDB_txn *txn, struct tm_db *db, void *vctx)
{
    struct flush_ctx *f = vctx;
    struct tok_shard_writer *w = f->w;
    int rc;
    for (size_t off = 0; off < w->docs.len; off += KEYLEN + DOC_VAL_LEN) {
        const char *rec = w->docs.data + off;
        if ((rc = tm_db_put(db, txn, DB_DOCS, rec, KEYLEN, rec + KEYLEN, DOC_VAL_LEN, 0)))
            return rc;
    }
    if (f->split >= 0) {
        struct stream_buf *sb = &w->s[f->split][f->domain];
        unsigned char key[KEYLEN];
        stream_key(key, f->split, f->domain, sb->next_chunk);
        if ((rc = tm_db_put(db, txn, DB_TOKENS, key, KEYLEN, sb->chunk, sb->n * w->meta.dtype, 0)))
            return rc;
    }
    if (f->meta) {
        unsigned char rec[META_LEN];
        meta_encode(&w->meta, rec);
        if ((rc = tm_db_put(db, txn, DB_META, "shard", 5, rec, META_LEN, 0)))
            return rc;
    }
    return TM_OK;
}

static int flush_chunk(struct tok_shard_writer *w, int split, int domain)
{
    struct flush_ctx f = {w, split, domain, 0};
    int rc = tm_db_write(&w->db, flush_body, &f);
    if (rc)
        return rc;
    tm_buf_reset(&w->docs);
    w->s[split][domain].n = 0;
    w->s[split][domain].next_chunk++;
    return TM_OK;
}

static int push_id(struct tok_shard_writer *w, int split, int domain, uint32_t id)
{
    struct stream_buf *sb = &w->s[split][domain];
    if (!sb->chunk)
        sb->chunk = tm_xmalloc((size_t)w->meta.chunk_tokens * w->meta.dtype);
    unsigned char *p = sb->chunk + sb->n * w->meta.dtype;
    if (w->meta.dtype == 2) {
        p[0] = (unsigned char)id;
        p[1] = (unsigned char)(id >> 8);
    } else
        tm_le32_put(p, id);
    if (++sb->n == w->meta.chunk_tokens)
        return flush_chunk(w, split, domain);
    return TM_OK;
}

int tok_shard_writer_add(struct tok_shard_writer *w, int split, int domain, uint64_t doc_id,
                         const uint32_t *ids, size_t n)
{
    if ((unsigned)split >= TOK_SPLIT_COUNT || (unsigned)domain >= TM_DOMAIN_COUNT)
        return TM_ERR_USAGE;
    for (size_t i = 0; i < n; i++)
        if (ids[i] >= w->meta.id_end) {
            tm_log_error("%s: document %" PRIu64 ": id %u is past the tokenizer's %u ids", w->dir,
                         doc_id, ids[i], w->meta.id_end);
            return TM_ERR_USAGE;
        }
    uint64_t pos = w->meta.tokens[split][domain];
    unsigned char rec[KEYLEN + DOC_VAL_LEN];
    stream_key(rec, split, domain, w->meta.docs[split][domain]);
    tm_le64_put(rec + KEYLEN, doc_id);
    tm_le64_put(rec + KEYLEN + 8, pos);
    tm_le32_put(rec + KEYLEN + 16, (uint32_t)(n + 1));
    tm_buf_append(&w->docs, rec, sizeof rec);
    int rc;
    for (size_t i = 0; i < n; i++)
        if ((rc = push_id(w, split, domain, ids[i])))
            return rc;
    if ((rc = push_id(w, split, domain, w->meta.eot)))
        return rc;
    w->meta.tokens[split][domain] += n + 1;
    w->meta.docs[split][domain]++;
    w->total += n + 1;
    return TM_OK;
}

int tok_shard_writer_finish(struct tok_shard_writer *w, uint32_t first_gen, uint32_t last_gen,
                            uint64_t first_doc, uint64_t next_doc)
{
    int rc = TM_OK;
    for (int s = 0; s < TOK_SPLIT_COUNT && !rc; s++)
        for (int d = 0; d < TM_DOMAIN_COUNT && !rc; d++)
            if (w->s[s][d].n)
                rc = flush_chunk(w, s, d);
    w->meta.first_gen = first_gen;
    w->meta.last_gen = last_gen;
    w->meta.first_doc = first_doc;
    w->meta.next_doc = next_doc;
    if (!rc) {
        struct flush_ctx f = {w, -1, -1, 1};
        rc = tm_db_write(&w->db, flush_body, &f);
    }
    if (!rc && mdb_env_sync(w->db.env, 1) != 0) {
        tm_log_error("%s: sync failed", w->dir);
        rc = TM_ERR_IO;
    }
    tm_db_close(&w->db);
    if (!rc) {
        char lock[4096];
        snprintf(lock, sizeof lock, "%s/lock.mdb", w->dir);
        unlink(lock); /* readers open published shards without a lock */
    }
    tok_shard_writer_free(w);
    return rc;
}

/* ---- Reader -----------------------------------------------------------------------------------
 */

struct chunk_ref {
    const unsigned char *p;
    uint32_t n;
};

struct tok_shard {
    MDB_env *env;
    MDB_txn *txn; /* held open: the chunk pointers below live as long as it does */
    MDB_dbi dbi[NDBS];
    char *dir;
    struct tok_shard_meta meta;
    struct chunk_ref *chunks[TOK_SPLIT_COUNT][TM_DOMAIN_COUNT];
    size_t nchunks[TOK_SPLIT_COUNT][TM_DOMAIN_COUNT];
};

void tok_shard_free(struct tok_shard *s)
{
    if (!s)
        return;
    if (s->txn)
        mdb_txn_abort(s->txn);
    if (s->env)
        mdb_env_close(s->env);
    for (int a = 0; a < TOK_SPLIT_COUNT; a++)
        for (int d = 0; d < TM_DOMAIN_COUNT; d++)
            free(s->chunks[a][d]);
    free(s->dir);
    free(s);
}

const struct tok_shard_meta *tok_shard_get_meta(const struct tok_shard *s)
{
    return &s->meta;
}

static int lmdb_fail(const char *dir, const char *op, int e)
{
    tm_log_error("%s: %s: %s", dir, op, mdb_strerror(e));
    return e == ENOENT || e == MDB_NOTFOUND ? TM_ERR_NOTFOUND : TM_ERR_DB;
}

/* Walks the `tokens` database once and keeps a pointer to every chunk, checking that each
 * stream's chunks are numbered 0, 1, ... and full but for the last. */
static int index_chunks(struct tok_shard *s)
{
    MDB_cursor *cur;
    int e = mdb_cursor_open(s->txn, s->dbi[DB_TOKENS], &cur);
    if (e)
        return lmdb_fail(s->dir, "cursor", e);
    MDB_val k, v;
    int rc = TM_OK;
    size_t cap[TOK_SPLIT_COUNT][TM_DOMAIN_COUNT] = {{0}};
    uint64_t seen[TOK_SPLIT_COUNT][TM_DOMAIN_COUNT] = {{0}};
    for (e = mdb_cursor_get(cur, &k, &v, MDB_FIRST); e == 0;
         e = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        const unsigned char *key = k.mv_data;
        if (k.mv_size != KEYLEN || key[0] >= TOK_SPLIT_COUNT || key[1] >= TM_DOMAIN_COUNT ||
            v.mv_size % s->meta.dtype || v.mv_size == 0 ||
            v.mv_size / s->meta.dtype > s->meta.chunk_tokens) {
            tm_log_error("%s: malformed token chunk", s->dir);
            rc = TM_ERR_FORMAT;
            break;
        }
        int a = key[0], d = key[1];
        size_t i = s->nchunks[a][d];
        if (tm_be64_get(key + 2) != i || (i && s->chunks[a][d][i - 1].n != s->meta.chunk_tokens)) {
            tm_log_error("%s: chunks of stream %s/%s out of sequence", s->dir, tok_split_names[a],
                         tm_domain_name(d));
            rc = TM_ERR_FORMAT;
            break;
        }
        if (i == cap[a][d]) {
            cap[a][d] = cap[a][d] ? cap[a][d] * 2 : 16;
            s->chunks[a][d] =
                tm_xreallocarray(s->chunks[a][d], cap[a][d], sizeof(struct chunk_ref));
        }
        s->chunks[a][d][i].p = v.mv_data;
        s->chunks[a][d][i].n = (uint32_t)(v.mv_size / s->meta.dtype);
        s->nchunks[a][d]++;
        seen[a][d] += v.mv_size / s->meta.dtype;
    }
    mdb_cursor_close(cur);
    if (rc)
        return rc;
    if (e != MDB_NOTFOUND)
        return lmdb_fail(s->dir, "read tokens", e);
    for (int a = 0; a < TOK_SPLIT_COUNT; a++)
        for (int d = 0; d < TM_DOMAIN_COUNT; d++)
            if (seen[a][d] != s->meta.tokens[a][d]) {
                tm_log_error("%s: stream %s/%s holds %" PRIu64 " tokens, its record says %" PRIu64,
                             s->dir, tok_split_names[a], tm_domain_name(d), seen[a][d],
                             s->meta.tokens[a][d]);
                return TM_ERR_FORMAT;
            }
    return TM_OK;
}

static int is_little_endian(void)
{
    const uint16_t one = 1;
    return *(const unsigned char *)&one == 1;
}

int tok_shard_open(const char *dir, struct tok_shard **out)
{
    *out = NULL;
    if (!is_little_endian()) {
        tm_log_error("%s: token shards are read in place and need a little-endian host", dir);
        return TM_ERR_USAGE;
    }
    struct tok_shard *s = tm_xcalloc(1, sizeof(*s));
    s->dir = tm_xstrdup(dir);
    int rc = TM_OK, e;
    if ((e = mdb_env_create(&s->env))) {
        rc = lmdb_fail(dir, "create", e);
        goto fail;
    }
    mdb_env_set_maxdbs(s->env, NDBS);
    /* The map must cover the file; 0 lets LMDB take the size the file records. */
    e = mdb_env_open(s->env, dir, MDB_RDONLY | MDB_NOLOCK | MDB_NOTLS | MDB_NORDAHEAD, 0644);
    if (e) {
        rc = lmdb_fail(dir, "open", e);
        goto fail;
    }
    if ((e = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &s->txn))) {
        rc = lmdb_fail(dir, "read", e);
        goto fail;
    }
    for (int i = 0; i < NDBS; i++)
        if ((e = mdb_dbi_open(s->txn, db_names[i], 0, &s->dbi[i]))) {
            rc = lmdb_fail(dir, db_names[i], e);
            goto fail;
        }
    MDB_val k = {5, (void *)"shard"}, v;
    if ((e = mdb_get(s->txn, s->dbi[DB_META], &k, &v))) {
        rc = lmdb_fail(dir, "shard record", e);
        goto fail;
    }
    if ((rc = meta_decode(v.mv_data, v.mv_size, &s->meta, dir)))
        goto fail;
    if ((rc = index_chunks(s)))
        goto fail;
    *out = s;
    return TM_OK;
fail:
    tok_shard_free(s);
    return rc;
}

int tok_shard_read_meta(const char *dir, struct tok_shard_meta *meta)
{
    struct tok_shard *s;
    int rc = tok_shard_open(dir, &s);
    if (rc)
        return rc;
    *meta = s->meta;
    tok_shard_free(s);
    return TM_OK;
}

/* Copies n ids starting at id `off` of chunk `c` into out, widening uint16 ids. */
static void copy_ids(const struct tok_shard *s, const struct chunk_ref *c, size_t off, size_t n,
                     uint32_t *out)
{
    const unsigned char *p = c->p + off * s->meta.dtype;
    if (s->meta.dtype == 4) {
        memcpy(out, p, n * 4);
        return;
    }
    for (size_t i = 0; i < n; i++)
        out[i] = (uint32_t)p[2 * i] | (uint32_t)p[2 * i + 1] << 8;
}

int tok_shard_read(const struct tok_shard *s, int split, int domain, uint64_t pos, size_t n,
                   uint32_t *out)
{
    if ((unsigned)split >= TOK_SPLIT_COUNT || (unsigned)domain >= TM_DOMAIN_COUNT ||
        pos > s->meta.tokens[split][domain] || n > s->meta.tokens[split][domain] - pos)
        return TM_ERR_USAGE;
    const struct chunk_ref *ch = s->chunks[split][domain];
    while (n) {
        uint64_t ci = pos / s->meta.chunk_tokens;
        size_t off = (size_t)(pos % s->meta.chunk_tokens);
        size_t take = ch[ci].n - off;
        if (take > n)
            take = n;
        copy_ids(s, &ch[ci], off, take, out);
        out += take;
        pos += take;
        n -= take;
    }
    return TM_OK;
}

const unsigned char *tok_shard_bytes(const struct tok_shard *s, int split, int domain, uint64_t pos,
                                     size_t n)
{
    uint64_t ci = pos / s->meta.chunk_tokens;
    size_t off = (size_t)(pos % s->meta.chunk_tokens);
    const struct chunk_ref *c = &s->chunks[split][domain][ci];
    if (off + n > c->n)
        return NULL;
    return c->p + off * s->meta.dtype;
}

const void *tok_shard_span(const struct tok_shard *s, int split, int domain, uint64_t pos, size_t n)
{
    /* Chunks bigger than half a page live on overflow pages, which start 16 bytes into a page;
     * a smaller value (a stream's short last chunk) sits inside a leaf with 2-byte alignment. */
    const unsigned char *p = tok_shard_bytes(s, split, domain, pos, n);
    return p && (uintptr_t)p % s->meta.dtype == 0 ? p : NULL;
}

int tok_shard_foreach_doc(const struct tok_shard *s, int split, int domain,
                          int (*fn)(void *ctx, uint64_t doc_id, uint64_t pos, uint32_t ntokens),
                          void *ctx)
{
    MDB_cursor *cur;
    int e = mdb_cursor_open(s->txn, s->dbi[DB_DOCS], &cur);
    if (e)
        return lmdb_fail(s->dir, "cursor", e);
    unsigned char key[KEYLEN];
    stream_key(key, split, domain, 0);
    MDB_val k = {KEYLEN, key}, v;
    int rc = TM_OK;
    uint64_t expect = 0, next_pos = 0;
    for (e = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); e == 0;
         e = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        const unsigned char *kk = k.mv_data;
        if (k.mv_size != KEYLEN || kk[0] != split || kk[1] != domain)
            break;
        const unsigned char *p = v.mv_data;
        if (v.mv_size != DOC_VAL_LEN || tm_be64_get(kk + 2) != expect ||
            tm_le64_get(p + 8) != next_pos) {
            tm_log_error("%s: document records of stream %s/%s out of sequence", s->dir,
                         tok_split_names[split], tm_domain_name(domain));
            rc = TM_ERR_FORMAT;
            break;
        }
        uint32_t nt = tm_le32_get(p + 16);
        expect++;
        next_pos += nt;
        if (next_pos > s->meta.tokens[split][domain]) {
            tm_log_error("%s: a document record points past its stream", s->dir);
            rc = TM_ERR_FORMAT;
            break;
        }
        if ((rc = fn(ctx, tm_le64_get(p), tm_le64_get(p + 8), nt)))
            break;
    }
    mdb_cursor_close(cur);
    if (!rc && e != 0 && e != MDB_NOTFOUND)
        rc = lmdb_fail(s->dir, "read docs", e);
    return rc;
}
