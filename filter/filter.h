/* filter: the toxicity and quality filtering stage.
 *
 * `tokenmill filter --workdir W` decides every document of the generations not yet filtered:
 * kept, removed (by which rule, with the values it measured), or kept with spans removed. It
 * writes one decision per document into the store's `filter` database, keyed by document id,
 * without copying text; later stages read the decisions. See flt_internal.h for the rules and
 * the record format, and `tokenmill filter --help` / `--print-config` for the settings. */
#ifndef FILTER_H
#define FILTER_H

#include "../core/tm_opt.h"

/* The command's configuration (filled from its option table). */
struct flt_options {
    char *workdir;
    char *config;               /* INI file of rule settings, or NULL */
    struct tm_strlist set;      /* "section.key=value" overrides */
    struct tm_strlist lexicons; /* lexicon files (replace the built-in one) */
    struct tm_strlist allow;    /* allow-list files */
    long threads;               /* 0: one per core */
    long batch_docs;
    size_t batch_bytes;
    int dry_run;
    int all_rules;
    int redo;
    int print_config;
    char *explain;     /* document id to explain, or NULL */
    char *export_path; /* write every decision as JSONL here, or NULL */
};

extern const struct tm_command flt_filter_command;

#endif
