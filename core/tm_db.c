/* tm_db: LMDB environments with map growth, retrying write transactions, byte-order helpers
 * and versioned record headers. */
#include "tm_db.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tm_err.h"
#include "tm_fs.h"
#include "tm_log.h"
#include "tm_mem.h"

#define DB_DEFAULT_MAP     (1u << 20)
#define DB_DEFAULT_MAP_MAX ((size_t)1 << 40)
/* Another process may grow the map again between our retries; a few rounds are plenty. */
#define DB_RESIZE_RETRIES 16

/* Writers use LMDB's default write path (dirty pages in memory, written at commit). MDB_WRITEMAP
 * measured no faster on bench/ingest_bench.sh (best of 4: 0.38 s vs 0.39 s on /usr/include,
 * 0.82 s vs 0.80 s on 200 MB of JSONL), varied more, and sizes the file to the whole map. */
#define TM_DB_ENV_WRITE_FLAGS 0

static void db_refresh_map_size(struct tm_db *db)
{
    MDB_envinfo info;
    if (mdb_env_info(db->env, &info) == 0)
        db->map_size = info.me_mapsize;
}

/* mdb_txn_begin that adopts a map grown by another process (MDB_MAP_RESIZED). */
static int db_txn_begin(struct tm_db *db, unsigned flags, MDB_txn **txn)
{
    for (int i = 0; i < DB_RESIZE_RETRIES; i++) {
        int rc = mdb_txn_begin(db->env, NULL, flags, txn);
        if (rc == 0)
            return TM_OK;
        if (rc != MDB_MAP_RESIZED) {
            tm_log_error("database %s: cannot begin transaction: %s", db->path, mdb_strerror(rc));
            return TM_ERR_DB;
        }
        /* Size 0 adopts the size another process has set; legal since no txn is active. */
        rc = mdb_env_set_mapsize(db->env, 0);
        if (rc != 0) {
            tm_log_error("database %s: cannot adopt the grown map: %s", db->path, mdb_strerror(rc));
            return TM_ERR_DB;
        }
        db_refresh_map_size(db);
        if (db->map_size > db->map_max)
            db->map_max = db->map_size;
    }
    tm_log_error("database %s: map keeps being resized by another process", db->path);
    return TM_ERR_DB;
}

static int db_open_dbis(struct tm_db *db, const char *const *names, const unsigned *dbi_flags,
                        unsigned ndbs)
{
    int rdonly = (db->flags & TM_DB_RDONLY) != 0;
    MDB_txn *txn;
    int rc = db_txn_begin(db, rdonly ? MDB_RDONLY : 0, &txn);
    if (rc)
        return rc;
    for (unsigned i = 0; i < ndbs; i++) {
        unsigned extra = dbi_flags ? dbi_flags[i] : 0;
        int mrc = mdb_dbi_open(txn, names[i], (rdonly ? 0 : MDB_CREATE) | extra, &db->dbi[i]);
        if (mrc == MDB_NOTFOUND) {
            tm_log_error("database %s has no table '%s'", db->path, names[i]);
            mdb_txn_abort(txn);
            return TM_ERR_NOTFOUND;
        }
        if (mrc != 0) {
            tm_log_error("database %s: cannot open table '%s': %s", db->path, names[i],
                         mdb_strerror(mrc));
            mdb_txn_abort(txn);
            return TM_ERR_DB;
        }
    }
    /* Committing (also for a read-only txn) makes the handles usable by later transactions. */
    int mrc = mdb_txn_commit(txn);
    if (mrc != 0) {
        tm_log_error("database %s: cannot commit table creation: %s", db->path, mdb_strerror(mrc));
        return TM_ERR_DB;
    }
    db->ndbs = ndbs;
    return TM_OK;
}

int tm_db_open(struct tm_db *db, const char *dir, const char *const *names, unsigned ndbs,
               size_t map_size, size_t map_max, unsigned flags)
{
    return tm_db_open_ex(db, dir, names, NULL, ndbs, map_size, map_max, flags);
}

int tm_db_open_ex(struct tm_db *db, const char *dir, const char *const *names,
                  const unsigned *dbi_flags, unsigned ndbs, size_t map_size, size_t map_max,
                  unsigned flags)
{
    memset(db, 0, sizeof(*db));
    if (ndbs > TM_DB_MAX_DBS) {
        tm_log_error("database %s: %u tables requested, at most %d supported", dir, ndbs,
                     TM_DB_MAX_DBS);
        return TM_ERR_INTERNAL;
    }
    int rdonly = (flags & TM_DB_RDONLY) != 0;
    db->path = tm_xstrdup(dir);
    db->flags = flags;
    db->map_max = map_max ? map_max : DB_DEFAULT_MAP_MAX;
    if (!map_size)
        map_size = DB_DEFAULT_MAP;

    int rc;
    char *data = tm_path_join(dir, "data.mdb");
    struct stat st;
    int have_data = stat(data, &st) == 0;
    free(data);
    if (rdonly && !have_data) {
        tm_log_error("no database in %s", dir);
        rc = TM_ERR_NOTFOUND;
        goto fail;
    }
    if (!rdonly && (rc = tm_mkdirs(dir)) != TM_OK)
        goto fail;
    /* Start at least at the file's size: a smaller map could not hold what is there. */
    if (have_data && (uint64_t)st.st_size > map_size)
        map_size = (size_t)st.st_size;
    if (map_size > db->map_max)
        db->map_max = map_size;

    int mrc = mdb_env_create(&db->env);
    if (mrc == 0)
        mrc = mdb_env_set_maxdbs(db->env, TM_DB_MAX_DBS);
    if (mrc == 0)
        mrc = mdb_env_set_mapsize(db->env, map_size);
    if (mrc == 0)
        mrc = mdb_env_open(db->env, dir, MDB_NOTLS | (rdonly ? MDB_RDONLY : TM_DB_ENV_WRITE_FLAGS),
                           0644);
    if (mrc != 0) {
        tm_log_error("cannot open database %s: %s", dir, mdb_strerror(mrc));
        rc = (rdonly && mrc == ENOENT) ? TM_ERR_NOTFOUND : TM_ERR_DB;
        goto fail;
    }
    db_refresh_map_size(db);
    if (db->map_size > db->map_max)
        db->map_max = db->map_size;

    rc = db_open_dbis(db, names, dbi_flags, ndbs);
    if (rc)
        goto fail;
    return TM_OK;

fail:
    tm_db_close(db);
    return rc;
}

void tm_db_close(struct tm_db *db)
{
    if (db->env)
        mdb_env_close(db->env);
    free(db->path);
    memset(db, 0, sizeof(*db));
}

/* Doubles the map, up to map_max. Only legal with no transaction active in this process. */
static int db_grow(struct tm_db *db)
{
    if (db->map_size >= db->map_max) {
        tm_log_error("database %s: map full at %zu bytes, the configured maximum", db->path,
                     db->map_size);
        return TM_ERR_MAPFULL;
    }
    size_t next = db->map_size > db->map_max / 2 ? db->map_max : db->map_size * 2;
    int mrc = mdb_env_set_mapsize(db->env, next);
    if (mrc != 0) {
        tm_log_error("database %s: cannot grow the map to %zu bytes: %s", db->path, next,
                     mdb_strerror(mrc));
        return TM_ERR_DB;
    }
    size_t old = db->map_size;
    db_refresh_map_size(db);
    if (db->map_size <= old) {
        tm_log_error("database %s: map did not grow past %zu bytes", db->path, old);
        return TM_ERR_DB;
    }
    tm_log_debug("database %s: map grown from %zu to %zu bytes", db->path, old, db->map_size);
    return TM_OK;
}

int tm_db_write(struct tm_db *db, tm_db_fn fn, void *ctx)
{
    if (db->flags & TM_DB_RDONLY) {
        tm_log_error("database %s: write to a read-only environment", db->path);
        return TM_ERR_INTERNAL;
    }
    for (;;) {
        MDB_txn *txn;
        int rc = db_txn_begin(db, 0, &txn);
        if (rc)
            return rc;
        rc = fn(txn, db, ctx);
        if (rc == TM_OK) {
            /* The commit frees the txn whether it succeeds or not. */
            int mrc = mdb_txn_commit(txn);
            if (mrc == 0)
                return TM_OK;
            if (mrc != MDB_MAP_FULL) {
                tm_log_error("database %s: commit failed: %s", db->path, mdb_strerror(mrc));
                return TM_ERR_DB;
            }
            rc = TM_ERR_MAPFULL;
        } else {
            mdb_txn_abort(txn);
        }
        if (rc != TM_ERR_MAPFULL)
            return rc;
        rc = db_grow(db);
        if (rc)
            return rc;
    }
}

int tm_db_begin_write(struct tm_db *db, size_t room, MDB_txn **txn)
{
    MDB_envinfo info;
    MDB_stat st;
    if (db->flags & TM_DB_RDONLY) {
        tm_log_error("database %s: write to a read-only environment", db->path);
        return TM_ERR_INTERNAL;
    }
    for (;;) {
        if (mdb_env_info(db->env, &info) != 0 || mdb_env_stat(db->env, &st) != 0) {
            tm_log_error("database %s: cannot read the map's use", db->path);
            return TM_ERR_DB;
        }
        size_t used = ((size_t)info.me_last_pgno + 1) * st.ms_psize;
        if (info.me_mapsize >= used && info.me_mapsize - used >= room)
            break;
        int rc = db_grow(db);
        if (rc)
            return rc;
    }
    return db_txn_begin(db, 0, txn);
}

int tm_db_commit(struct tm_db *db, MDB_txn *txn)
{
    int mrc = mdb_txn_commit(txn);
    if (mrc == 0)
        return TM_OK;
    tm_log_error("database %s: commit failed: %s", db->path, mdb_strerror(mrc));
    return mrc == MDB_MAP_FULL ? TM_ERR_MAPFULL : TM_ERR_DB;
}

int tm_db_read(struct tm_db *db, tm_db_fn fn, void *ctx)
{
    MDB_txn *txn;
    int rc = db_txn_begin(db, MDB_RDONLY, &txn);
    if (rc)
        return rc;
    rc = fn(txn, db, ctx);
    mdb_txn_abort(txn);
    return rc;
}

static int db_map_err(struct tm_db *db, unsigned dbi_index, const char *op, int mrc)
{
    switch (mrc) {
    case 0:
        return TM_OK;
    case MDB_NOTFOUND:
        return TM_ERR_NOTFOUND;
    case MDB_MAP_FULL:
    case MDB_TXN_FULL:
        /* Expected: tm_db_write grows the map and retries, so no error is logged here. */
        tm_log_debug("database %s table %u: %s: %s", db->path, dbi_index, op, mdb_strerror(mrc));
        return TM_ERR_MAPFULL;
    default:
        tm_log_error("database %s table %u: %s failed: %s", db->path, dbi_index, op,
                     mdb_strerror(mrc));
        return TM_ERR_DB;
    }
}

static int db_check_index(struct tm_db *db, unsigned dbi_index)
{
    if (dbi_index < db->ndbs)
        return TM_OK;
    tm_log_error("database %s: table index %u out of range (%u tables)", db->path, dbi_index,
                 db->ndbs);
    return TM_ERR_INTERNAL;
}

int tm_db_put(struct tm_db *db, MDB_txn *txn, unsigned dbi_index, const void *key, size_t klen,
              const void *val, size_t vlen, unsigned flags)
{
    int rc = db_check_index(db, dbi_index);
    if (rc)
        return rc;
    MDB_val k = {klen, (void *)key}, v = {vlen, (void *)val};
    return db_map_err(db, dbi_index, "put", mdb_put(txn, db->dbi[dbi_index], &k, &v, flags));
}

int tm_db_reserve(struct tm_db *db, MDB_txn *txn, unsigned dbi_index, const void *key, size_t klen,
                  size_t vlen, void **out)
{
    *out = NULL;
    int rc = db_check_index(db, dbi_index);
    if (rc)
        return rc;
    MDB_val k = {klen, (void *)key}, v = {vlen, NULL};
    rc =
        db_map_err(db, dbi_index, "reserve", mdb_put(txn, db->dbi[dbi_index], &k, &v, MDB_RESERVE));
    if (rc == TM_OK)
        *out = v.mv_data;
    return rc;
}

int tm_db_get(struct tm_db *db, MDB_txn *txn, unsigned dbi_index, const void *key, size_t klen,
              const void **val, size_t *vlen)
{
    *val = NULL;
    *vlen = 0;
    int rc = db_check_index(db, dbi_index);
    if (rc)
        return rc;
    MDB_val k = {klen, (void *)key}, v = {0, NULL};
    rc = db_map_err(db, dbi_index, "get", mdb_get(txn, db->dbi[dbi_index], &k, &v));
    if (rc == TM_OK) {
        *val = v.mv_data;
        *vlen = v.mv_size;
    }
    return rc;
}

int tm_db_del(struct tm_db *db, MDB_txn *txn, unsigned dbi_index, const void *key, size_t klen)
{
    int rc = db_check_index(db, dbi_index);
    if (rc)
        return rc;
    MDB_val k = {klen, (void *)key};
    return db_map_err(db, dbi_index, "del", mdb_del(txn, db->dbi[dbi_index], &k, NULL));
}

/* ---- byte order ---- */

void tm_be64_put(unsigned char out[8], uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        out[i] = (unsigned char)v;
}

uint64_t tm_be64_get(const unsigned char in[8])
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | in[i];
    return v;
}

void tm_be32_put(unsigned char out[4], uint32_t v)
{
    for (int i = 3; i >= 0; i--, v >>= 8)
        out[i] = (unsigned char)v;
}

uint32_t tm_be32_get(const unsigned char in[4])
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++)
        v = (v << 8) | in[i];
    return v;
}

void tm_le64_put(unsigned char out[8], uint64_t v)
{
    for (int i = 0; i < 8; i++, v >>= 8)
        out[i] = (unsigned char)v;
}

uint64_t tm_le64_get(const unsigned char in[8])
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | in[i];
    return v;
}

void tm_le32_put(unsigned char out[4], uint32_t v)
{
    for (int i = 0; i < 4; i++, v >>= 8)
        out[i] = (unsigned char)v;
}

uint32_t tm_le32_get(const unsigned char in[4])
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = (v << 8) | in[i];
    return v;
}

/* ---- record headers ---- */

void tm_rec_header(unsigned char out[TM_REC_HDR], const char magic[4], unsigned version)
{
    memcpy(out, magic, 4);
    out[4] = (unsigned char)(version & 0xff);
    out[5] = (unsigned char)((version >> 8) & 0xff);
    out[6] = 0;
    out[7] = 0;
}

int tm_rec_check(const void *val, size_t len, const char magic[4], unsigned max_version,
                 const char *what, unsigned *version)
{
    const unsigned char *p = val;
    if (!what)
        what = "record";
    if (len < TM_REC_HDR) {
        tm_log_error("%s: record is %zu bytes, shorter than its %d-byte header", what, len,
                     TM_REC_HDR);
        return TM_ERR_FORMAT;
    }
    if (memcmp(p, magic, 4) != 0) {
        tm_log_error("%s: wrong record magic (expected %.4s)", what, magic);
        return TM_ERR_FORMAT;
    }
    unsigned v = (unsigned)p[4] | ((unsigned)p[5] << 8);
    if (v > max_version) {
        tm_log_error("%s: %.4s record version %u is newer than this build reads (%u)", what, magic,
                     v, max_version);
        return TM_ERR_VERSION;
    }
    if (version)
        *version = v;
    return TM_OK;
}
