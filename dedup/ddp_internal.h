/* ddp_internal.h: the dedup stage's internal interfaces, shared by its files and tests.
 *
 *   ddp_minhash.c  normalization, shingles, signatures, band keys, Jaccard (ddp_minhash.h)
 *   ddp_config.c   settings: global (scope, permutations, bands) and per domain (shingles,
 *                  verification); INI files and --set; the configuration hash
 *   ddp_runs.c     band keys collected in memory, spilled to disk as sorted runs past a budget,
 *                  and merged back into groups of equal keys
 *   ddp_run.c      the command: generations, signatures on threads, exact and near-duplicate
 *                  clustering, the records and indexes, --show-cluster, --export
 *
 * How a generation is deduplicated (ddp_run.c has the details):
 *   1. its documents (those the filter kept, when the filter has run on the generation; their
 *      text without the spans the filter removed) get an exact hash and band keys, on threads;
 *   2. exact: a document whose normalized text hash was seen before (in an older generation, in
 *      the persistent index, or earlier in this one) is an exact duplicate of the first;
 *   3. near: band keys are looked up in the persistent LSH index (kept documents of older
 *      generations) and grouped within the generation (sorted runs); each candidate pair is
 *      verified (Jaccard of the shingle sets, or of the signatures) when configured, and joined
 *      by union-find; a cluster's kept document is its earliest (older generations first, then
 *      the lowest id, i.e. the order ingest met them);
 *   4. decisions and the indexes' new entries are written in id order in batches, each with the
 *      stage record that moves past it; a rerun after kill -9 recomputes 1-3 (deterministic, and
 *      blind to this generation's own index entries) and continues writing where it stopped. */
#ifndef DDP_INTERNAL_H
#define DDP_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "ddp_minhash.h"
#include "../core/tm_doc.h"

/* ---- Configuration ----------------------------------------------------------------------- */

/* Bumped when a decision's meaning changes (normalization, shingles, clustering), so stores
 * deduplicated by an older tokenmill report a different configuration. */
#define DDP_CONFIG_VERSION 1

enum ddp_verify { DDP_VERIFY_OFF = 0, DDP_VERIFY_EXACT, DDP_VERIFY_SIGNATURE };
enum ddp_scope { DDP_SCOPE_GLOBAL = 0, DDP_SCOPE_GENERATION };

struct ddp_domain_cfg {
    int exact;                  /* exact dedup on */
    int near;                   /* near-duplicate dedup on */
    enum ddp_shingle_kind kind; /* word or character n-grams */
    unsigned n;                 /* shingle size */
    enum ddp_verify verify;     /* how candidate pairs are checked */
    double threshold;           /* minimum Jaccard for a verified pair */
};

struct ddp_config {
    enum ddp_scope scope;
    struct ddp_norm norm;
    unsigned nperm, bands, rows;
    uint64_t seed;
    struct ddp_domain_cfg dom[TM_DOMAIN_COUNT];
};

/* Defaults: global scope, normalization on, 112 permutations as 14 bands of 8 rows (FineWeb),
 * word 5-grams; text verified by exact Jaccard >= 0.8, math and code unverified. */
void ddp_config_defaults(struct ddp_config *c);
/* Sets one key: section "dedup" (scope, casefold, strip_punct, collapse_ws, permutations, bands,
 * rows, seed) or "text", "math", "code", "all" (exact, near, shingles = words|chars,
 * ngram, verify = exact|signature|off, threshold). TM_OK or TM_ERR_USAGE with err. */
int ddp_config_set(struct ddp_config *c, const char *section, const char *key, const char *value,
                   char *err, size_t errlen);
/* ddp_config_set with a void context: the tm_ini_set_fn for files and --set. */
int ddp_config_set_fn(void *ctx, const char *section, const char *key, const char *value, char *err,
                      size_t errlen);
/* Reads an INI file (errors logged as path:line: reason). TM_OK, TM_ERR_USAGE, TM_ERR_IO. */
int ddp_config_load(struct ddp_config *c, const char *path);
int ddp_config_parse(struct ddp_config *c, const char *text, size_t len, const char *name);
/* Checks the combination (bands * rows <= permutations, ...). TM_OK or TM_ERR_USAGE (logged). */
int ddp_config_check(const struct ddp_config *c);
/* Writes the configuration as an INI file that ddp_config_load reads back. */
void ddp_config_print(const struct ddp_config *c, FILE *out);
/* Hash of every setting that changes decisions. */
uint64_t ddp_config_hash(const struct ddp_config *c);
/* The MinHash parameters of domain `d` (ddp_params_init already applied). TM_OK or
 * TM_ERR_USAGE. */
int ddp_config_params(const struct ddp_config *c, int d, struct ddp_params *p);

/* ---- Band-key runs ---------------------------------------------------------------------- */

/* One band key of one document of the generation (index k in id order). */
struct ddp_pair {
    uint64_t key;
    uint32_t k;
};

/* Band keys, kept in memory up to `budget` bytes, then sorted and written to files in `dir` as
 * sorted runs; read back merged, in key order then k order. */
struct ddp_runs {
    char *dir;     /* owned; created on the first spill */
    size_t budget; /* bytes of pairs held in memory */
    struct ddp_pair *v;
    size_t n, cap;
    unsigned nruns;   /* files written */
    uint64_t spilled; /* pairs written to files */
};
/* Prepares `r`; run files a killed process left in `dir` are removed first. */
void ddp_runs_init(struct ddp_runs *r, const char *dir, size_t budget);
/* Adds pairs (not thread-safe; callers add in document order after a batch). TM_OK or
 * TM_ERR_IO (a spill failed, logged). */
int ddp_runs_add(struct ddp_runs *r, const struct ddp_pair *pairs, size_t n);
/* Calls fn(ctx, group, count) for every key held by at least `min_size` pairs, in key order,
 * the group sorted by k. Memory: the in-memory pairs plus one read buffer per run. Can be
 * called again. TM_OK, TM_ERR_IO, or fn's error. */
int ddp_runs_groups(struct ddp_runs *r, size_t min_size,
                    int (*fn)(void *ctx, const struct ddp_pair *g, size_t n), void *ctx);
/* Frees the memory and removes the run files and the directory. */
void ddp_runs_release(struct ddp_runs *r);

/* ---- Decisions ---------------------------------------------------------------------------- */

enum ddp_status { DDP_KEPT = 0, DDP_EXACT = 1, DDP_NEAR = 2 };
/* "kept", "exact", "near". */
const char *ddp_status_name(int status);

/* The record "TMDD" version 1 under the document id in the `dedup` database:
 *   header, u8 status, u8 domain, u16 reserved, f32 similarity, u64 of (the document it
 *   duplicates: the first with its exact text, or its cluster's kept document), u64 config hash
 * (little-endian). */
struct ddp_decision {
    int status;
    int domain;
    float similarity; /* near: the highest verified Jaccard of the pairs that joined it */
    uint64_t of;
};
#define DDP_DECISION_SIZE (8 + 4 + 4 + 8 + 8)
void ddp_decision_encode(const struct ddp_decision *d, uint64_t config_hash,
                         unsigned char out[DDP_DECISION_SIZE]);
int ddp_decision_decode(const void *val, size_t len, struct ddp_decision *d, uint64_t *hash,
                        const char *what);

/* ---- The command --------------------------------------------------------------------------- */

struct ddp_options;
struct cJSON;
int ddp_dedup_run(const struct ddp_options *opt, int progress, struct cJSON *stats);

/* The settings of opt (defaults, --config, --set), checked, and the hash its records carry
 * (--input-epoch mixed in). TM_OK or the error, logged. */
int ddp_settings(const struct ddp_options *opt, struct ddp_config *cfg, uint64_t *hash);

#endif
