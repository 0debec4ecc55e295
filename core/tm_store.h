/* tm_store: the workdir's document store, the LMDB environment WORKDIR/store.
 *
 * Named databases:
 *   meta    "format" -> the store's format record ("TMST", version); checked on open
 *   docs    big-endian uint64 document id -> document record (tm_doc.h)
 *   inputs  input key (absolute path, or "tokenmill:<name>" for generated inputs) -> input
 *           fingerprint record (struct tm_input)
 *   gens    big-endian uint32 generation -> generation record (struct tm_gen)
 *   filter  big-endian uint64 document id -> the filter's decision (filter/flt_internal.h)
 *   stages  "<stage>/" + big-endian uint32 generation -> that stage's progress on the
 *           generation (struct tm_stage, record "TMSG")
 *   dedup          document id -> dedup's decision (dedup/ddp_internal.h)
 *   dedup_exact    domain byte + xxh3-128 of normalized text -> first document id with it
 *   dedup_lsh      domain byte + 64-bit band key -> kept document ids (sorted duplicates)
 *   dedup_members  cluster's kept document id -> member document ids (sorted duplicates)
 * Generation numbers start at 1. A generation is "open" from the first document written in it
 * until its ingest run finishes; a run that finds an open generation (its predecessor was
 * killed) continues it, which is what makes a rerun end in the same state as an uninterrupted
 * run. Later stages add their own databases to the same environment. */
#ifndef TM_STORE_H
#define TM_STORE_H

#include <stdint.h>

#include "tm_db.h"
#include "tm_doc.h"

#define TM_STORE_FORMAT 1

enum tm_store_dbi {
    TM_STORE_META = 0,
    TM_STORE_DOCS,
    TM_STORE_INPUTS,
    TM_STORE_GENS,
    TM_STORE_FILTER,
    TM_STORE_STAGES,
    TM_STORE_DEDUP,
    TM_STORE_DEDUP_EXACT,
    TM_STORE_DEDUP_LSH,
    TM_STORE_DEDUP_MEMBERS,
    TM_STORE_NDBS
};

struct tm_store {
    struct tm_db db;
    char *workdir; /* owned */
};

/* Opens WORKDIR/store, creating the workdir and store unless TM_DB_RDONLY is in `flags`.
 * Checks (or, when new, writes) the format record. TM_OK, TM_ERR_NOTFOUND (read-only and no
 * store yet: "no store in W; run tokenmill ingest first" is logged), TM_ERR_VERSION,
 * TM_ERR_FORMAT, TM_ERR_DB, TM_ERR_IO. */
int tm_store_open(struct tm_store *s, const char *workdir, unsigned flags);
void tm_store_close(struct tm_store *s);

enum tm_input_state {
    TM_INPUT_PARTIAL = 1, /* being ingested: `units` are committed, the rest is not */
    TM_INPUT_DONE = 2,    /* fully read (possibly with errors, counted in `errors`) */
};

/* An input's fingerprint and progress: record "TMIN" version 1. */
struct tm_input {
    uint64_t size;
    int64_t mtime_ns;
    unsigned char hash[16]; /* xxh3-128 of the content, big-endian canonical form */
    uint32_t generation;    /* the generation its documents went into */
    uint32_t state;         /* enum tm_input_state */
    uint64_t units;         /* records and problems met so far, in reading order */
    uint64_t docs;          /* documents written */
    uint64_t bytes;         /* text bytes written */
    uint64_t errors;        /* problems and read errors */
};
#define TM_INPUT_REC_SIZE (8 + 8 + 8 + 16 + 4 + 4 + 8 * 4)
void tm_input_encode(const struct tm_input *in, unsigned char out[TM_INPUT_REC_SIZE]);
int tm_input_decode(const void *val, size_t len, struct tm_input *in, const char *what);

enum tm_gen_state {
    TM_GEN_OPEN = 1,
    TM_GEN_CLOSED = 2,
};

/* A generation: record "TMGN" version 1. */
struct tm_gen {
    uint32_t state;    /* enum tm_gen_state */
    uint32_t inputs;   /* inputs whose documents went into it */
    int64_t started;   /* unix seconds */
    int64_t finished;  /* unix seconds, 0 while open */
    uint64_t next_seq; /* sequence number of its next document */
    uint64_t docs[TM_DOMAIN_COUNT];
    uint64_t bytes[TM_DOMAIN_COUNT];
};
#define TM_GEN_REC_SIZE (8 + 4 + 4 + 8 + 8 + 8 + 16 * TM_DOMAIN_COUNT)
void tm_gen_encode(const struct tm_gen *g, unsigned char out[TM_GEN_REC_SIZE]);
int tm_gen_decode(const void *val, size_t len, struct tm_gen *g, const char *what);

/* Reads generation `gen` (TM_ERR_NOTFOUND when absent). */
int tm_store_get_gen(struct tm_store *s, MDB_txn *txn, uint32_t gen, struct tm_gen *g);
/* The highest generation number, 0 when there is none. */
int tm_store_last_gen(struct tm_store *s, MDB_txn *txn, uint32_t *gen);
/* Reads document `id`; fields borrow from the map until the transaction ends. */
int tm_store_get_doc(struct tm_store *s, MDB_txn *txn, uint64_t id, struct tm_doc *doc);

/* Calls fn(ctx, doc) for every document of generations [first_gen, last_gen], in id order
 * (generation, then the order ingest met them). The document's fields borrow from the map until
 * fn returns. A non-zero return from fn stops the walk and is returned; a record that does not
 * decode stops it with TM_ERR_FORMAT or TM_ERR_VERSION (logged with its id). */
int tm_store_foreach(struct tm_store *s, MDB_txn *txn, uint32_t first_gen, uint32_t last_gen,
                     int (*fn)(void *ctx, const struct tm_doc *doc), void *ctx);

struct cJSON;
/* Writes one JSON line per record of database `dbi` (keys: big-endian document ids), in id
 * order, to `path`: written to "path.partial", synced and renamed, so the file appears whole or
 * not at all. Each line holds "id" and the document's "source", then what row(ctx, id, val,
 * obj) adds (a non-zero return skips the record), then the document's "meta". TM_OK, TM_ERR_IO
 * (logged), or a store error. */
int tm_store_export_jsonl(struct tm_store *s, unsigned dbi, const char *path,
                          int (*row)(void *ctx, uint64_t id, const void *val, size_t len,
                                     struct cJSON *obj),
                          void *ctx);

/* A stage's progress on one generation: record "TMSG" version 1 under "<stage>/" + big-endian
 * generation in the `stages` database. */
enum tm_stage_state { TM_STAGE_PARTIAL = 1, TM_STAGE_DONE = 2 };
struct tm_stage {
    uint32_t state;       /* enum tm_stage_state */
    uint64_t config_hash; /* the settings its decisions were made with */
    uint64_t next_id;     /* partial: the first document id not written yet */
    uint64_t aux;         /* the stage's own counter (filter: documents decided; dedup: LSH
                             entries handled) */
};
/* Reads stage `stage`'s record for generation `gen`: TM_OK, TM_ERR_NOTFOUND, TM_ERR_FORMAT,
 * TM_ERR_VERSION (logged). */
int tm_stage_get(struct tm_store *s, MDB_txn *txn, const char *stage, uint32_t gen,
                 struct tm_stage *out);
int tm_stage_put(struct tm_store *s, MDB_txn *txn, const char *stage, uint32_t gen,
                 const struct tm_stage *in);

/* ---- Plans ------------------------------------------------------------------------------ */

/* A stage's settings hash with `epoch` mixed in: the label of the earlier stages' decisions it
 * read (`tokenmill run` passes one, --input-epoch, and changes it when they are redone), so
 * that generations done under another label are stale. NULL or "" leaves the hash as it is. */
uint64_t tm_stage_hash_epoch(uint64_t hash, const char *epoch);

struct tm_plan;
/* Whether WORKDIR/store exists (nothing is logged). */
int tm_store_exists(const char *workdir);

enum tm_redo {
    TM_REDO_NONE,  /* generations done with other settings are left (stale) */
    TM_REDO_ALL,   /* every closed generation again */
    TM_REDO_STALE, /* the generations done with other settings again */
};
/* Appends to `out` what stage `stage` (whose settings hash to `hash`) would do over the
 * store's generations, from its records: closed generations without a record are new, partial
 * ones are finished, those done with another hash are stale (redone only as `redo` says), open
 * ones (ingest not finished) wait. Sets out->work and out->stale (stale generations left).
 * Reads only; TM_OK or a store error. */
int tm_stage_plan(const char *workdir, const char *stage, uint64_t hash, enum tm_redo redo,
                  struct tm_plan *out);

#endif
