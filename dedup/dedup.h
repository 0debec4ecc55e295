/* dedup: exact and near-duplicate (MinHash LSH) removal.
 *
 * `tokenmill dedup --workdir W` decides, for every document of the generations not deduplicated
 * yet (those the filter kept, when the filter has run on them), whether it is kept, an exact
 * duplicate of an earlier document, or a near duplicate in the cluster of an earlier one, and
 * stores that per document id in the store's `dedup` database. See ddp_internal.h. */
#ifndef DEDUP_H
#define DEDUP_H

#include "../core/tm_opt.h"

struct ddp_options {
    char *workdir;
    char *config;          /* INI file of dedup settings, or NULL */
    struct tm_strlist set; /* "section.key=value" overrides */
    long threads;          /* 0: one per core */
    size_t memory;         /* budget for band keys in memory before they spill to disk */
    int redo;
    int dry_run;
    int print_config;
    char *show_cluster; /* document id whose cluster to print, or NULL */
    char *export_path;  /* write every decision as JSONL here, or NULL */
    char *input_epoch;  /* the filter decisions' label (tm_stage_hash_epoch), or NULL */
};

extern const struct tm_command ddp_dedup_command;

/* ---- For later stages (tokenize): what dedup decided --------------------------------------- */

#include <lmdb.h>
#include <stdint.h>

struct tm_store;

/* Whether dedup has finished generation `gen`: *done 1, or 0 (never run, or interrupted).
 * TM_OK, or a store error. */
int ddp_generation_done(struct tm_store *st, MDB_txn *txn, uint32_t gen, int *done);

/* Dedup's decision on document `id` (read in `txn`): *kept 1 when it is kept (unique, or the
 * kept member of its cluster), 0 when it is an exact or near duplicate. TM_ERR_NOTFOUND when
 * dedup wrote no decision for it (the filter removed it, or its domain is not deduplicated);
 * TM_ERR_FORMAT / TM_ERR_VERSION for a record that does not decode (logged with the id). */
int ddp_document_kept(struct tm_store *st, MDB_txn *txn, uint64_t id, int *kept);

#endif
