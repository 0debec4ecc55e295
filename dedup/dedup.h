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
};

extern const struct tm_command ddp_dedup_command;

#endif
