/* tm_db: LMDB helpers: environments with map growth, named databases, write transactions that
 * retry after growing a full map, big-endian integer keys, and versioned records.
 *
 * Threading: one tm_db may be shared by threads for reading (each thread its own read txn, as
 * LMDB requires, MDB_NOTLS is set); write transactions are serialized by LMDB itself. */
#ifndef TM_DB_H
#define TM_DB_H

#include <stddef.h>
#include <stdint.h>
#include <lmdb.h>

#define TM_DB_MAX_DBS 32

/* Flags for tm_db_open(). */
#define TM_DB_RDONLY 0x1u

struct tm_db {
    MDB_env *env;
    char *path;      /* the environment directory (owned) */
    size_t map_size; /* current map size in bytes */
    size_t map_max;  /* growth stops here: TM_ERR_MAPFULL is returned instead */
    unsigned ndbs;
    MDB_dbi dbi[TM_DB_MAX_DBS]; /* handles in the order of the names given to tm_db_open */
    unsigned flags;
};

/* Opens (creating when not TM_DB_RDONLY) the LMDB environment in directory `dir` (created if
 * missing) and the named databases `names[0..ndbs)` (created when writable). The map starts at
 * max(map_size, the file's current size) and may grow up to map_max (0: 1 TiB). TM_OK,
 * TM_ERR_IO (directory), TM_ERR_DB (LMDB error, logged with the path), TM_ERR_NOTFOUND (read-only
 * and the environment or a database does not exist). On error `db` is left released. */
int tm_db_open(struct tm_db *db, const char *dir, const char *const *names, unsigned ndbs,
               size_t map_size, size_t map_max, unsigned flags);
/* tm_db_open, with LMDB flags for each named database (dbi_flags[i], e.g. MDB_DUPSORT |
 * MDB_DUPFIXED; NULL for none). A database must always be opened with the same flags. */
int tm_db_open_ex(struct tm_db *db, const char *dir, const char *const *names,
                  const unsigned *dbi_flags, unsigned ndbs, size_t map_size, size_t map_max,
                  unsigned flags);
/* Closes the environment; accepts a zeroed or already closed db. */
void tm_db_close(struct tm_db *db);

/* Body of a write or read transaction. Return TM_OK to commit (write) / finish (read), any
 * error to abort. TM_ERR_MAPFULL from a write body makes tm_db_write() abort, grow the map and
 * run the body again, so a body must be safe to repeat: it may read and write the txn and its
 * own context, but must not consume input it cannot replay. */
typedef int (*tm_db_fn)(MDB_txn *txn, struct tm_db *db, void *ctx);

/* Runs `fn` in a write transaction and commits. Grows the map (doubling, up to map_max) and
 * retries on MDB_MAP_FULL from a put or from the commit. Returns fn's error, TM_ERR_DB, or
 * TM_ERR_MAPFULL when map_max is reached. */
int tm_db_write(struct tm_db *db, tm_db_fn fn, void *ctx);
/* For a writer that cannot replay its work (documents streamed into the transaction as they are
 * read): grows the map first, if needed, so that `room` more bytes fit beyond the pages in use
 * (only legal with no transaction active in this process), then begins a write transaction in
 * *txn. The caller commits it with tm_db_commit() or ends it with mdb_txn_abort(). A put that
 * still finds the map full returns TM_ERR_MAPFULL; the caller aborts and reports it. */
int tm_db_begin_write(struct tm_db *db, size_t room, MDB_txn **txn);
/* Commits `txn` (freed whether or not it succeeds): TM_OK, TM_ERR_MAPFULL or TM_ERR_DB, logged. */
int tm_db_commit(struct tm_db *db, MDB_txn *txn);

/* Runs `fn` in a read-only transaction. */
int tm_db_read(struct tm_db *db, tm_db_fn fn, void *ctx);

/* mdb_put / mdb_get / mdb_del wrappers mapping LMDB errors to tm_err: MDB_MAP_FULL and
 * MDB_TXN_FULL to TM_ERR_MAPFULL, MDB_NOTFOUND to TM_ERR_NOTFOUND, others to TM_ERR_DB (logged
 * with the environment path and the database index). `dbi_index` indexes db->dbi. The value
 * returned by tm_db_get is borrowed from the map and valid until the transaction ends. */
int tm_db_put(struct tm_db *db, MDB_txn *txn, unsigned dbi_index, const void *key, size_t klen,
              const void *val, size_t vlen, unsigned flags);
/* Reserves `vlen` bytes for a value (MDB_RESERVE) and returns a pointer to fill before the
 * transaction ends: saves one copy for large values. */
int tm_db_reserve(struct tm_db *db, MDB_txn *txn, unsigned dbi_index, const void *key, size_t klen,
                  size_t vlen, void **out);
int tm_db_get(struct tm_db *db, MDB_txn *txn, unsigned dbi_index, const void *key, size_t klen,
              const void **val, size_t *vlen);
int tm_db_del(struct tm_db *db, MDB_txn *txn, unsigned dbi_index, const void *key, size_t klen);

/* Big-endian 64/32-bit keys: byte order equals numeric order under LMDB's memcmp. */
void tm_be64_put(unsigned char out[8], uint64_t v);
uint64_t tm_be64_get(const unsigned char in[8]);
void tm_be32_put(unsigned char out[4], uint32_t v);
uint32_t tm_be32_get(const unsigned char in[4]);
/* Little-endian, for record bodies. */
void tm_le64_put(unsigned char out[8], uint64_t v);
uint64_t tm_le64_get(const unsigned char in[8]);
void tm_le32_put(unsigned char out[4], uint32_t v);
uint32_t tm_le32_get(const unsigned char in[4]);

/* Versioned records: every stored value starts with this 8-byte header (STYLE.md rule 8):
 * a 4-byte magic naming the record kind, a little-endian uint16 version, and 2 bytes reserved
 * (zero). */
#define TM_REC_HDR 8
void tm_rec_header(unsigned char out[TM_REC_HDR], const char magic[4], unsigned version);
/* Checks a stored value: TM_OK; TM_ERR_FORMAT when shorter than the header or the magic
 * differs; TM_ERR_VERSION when the version is above `max_version`. Logs `what` (e.g. "document
 * 42 in /w/store") with the problem. Stores the version in *version when not NULL. */
int tm_rec_check(const void *val, size_t len, const char magic[4], unsigned max_version,
                 const char *what, unsigned *version);

#endif
