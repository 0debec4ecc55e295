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
    int redo_stale; /* decide again the generations decided with other settings */
    int print_config;
    char *explain;     /* document id to explain, or NULL */
    char *export_path; /* write every decision as JSONL here, or NULL */
};

extern const struct tm_command flt_filter_command;

/* ---- For later stages (dedup, tokenize): what the filter decided ----------------------------- */

#include <lmdb.h>
#include <stddef.h>
#include <stdint.h>

struct tm_store;
struct tm_doc;
struct tm_buf;

/* Whether the filter has finished generation `gen` (*done 1) or not (0: never run, or
 * interrupted). TM_OK, or a store error. */
int flt_generation_done(struct tm_store *st, MDB_txn *txn, uint32_t gen, int *done);

enum flt_verdict { FLT_VERDICT_NONE = 0, FLT_VERDICT_KEPT = 1, FLT_VERDICT_REMOVED = 2 };

/* The filter's verdict on `doc` (read in `txn`) and, when kept, the text to use: the document's
 * own text (borrowed, valid as long as the transaction) or, when the filter removed spans, the
 * text without them, written into `buf` (reset first; owned by the caller). *text and *len are
 * set for FLT_VERDICT_KEPT and FLT_VERDICT_NONE (no decision: the whole text). TM_OK,
 * TM_ERR_FORMAT / TM_ERR_VERSION (a stored decision that does not decode, logged), or
 * TM_ERR_TOOBIG (buf's cap). */
int flt_document_text(struct tm_store *st, MDB_txn *txn, const struct tm_doc *doc,
                      struct tm_buf *buf, int *verdict, const char **text, size_t *len);

#endif
