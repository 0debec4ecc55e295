/* tok_docs.h: which documents tokenize reads -- those every decision keeps.
 *
 * A document is kept when the filter kept it (possibly with spans removed: the text given is
 * then the text without them) and dedup kept it (unique, or its cluster's kept member). A
 * document dedup wrote no decision for, in a generation dedup finished, is one whose domain
 * dedup skips: kept. Internal to tokenize (the trainer and the shard writer). */
#ifndef TOK_DOCS_H
#define TOK_DOCS_H

#include <lmdb.h>
#include <stddef.h>
#include <stdint.h>

struct tm_store;
struct tm_doc;

/* How much of the pipeline must have run on a generation before tokenize reads it. */
enum tok_require {
    TOK_REQUIRE_DECISIONS = 0, /* filter and dedup finished it; undecided documents are skipped */
    TOK_REQUIRE_NONE = 1,      /* any generation; a document without a decision counts as kept */
};

/* "decisions", "none" (NULL-terminated, enum order), for option tables. */
extern const char *const tok_require_names[];

/* What tok_kept_foreach() saw; it adds to the counters, so one struct can sum generations. */
struct tok_kept_stats {
    uint64_t docs;       /* documents of the generation */
    uint64_t kept;       /* given to the callback */
    uint64_t filtered;   /* removed by the filter */
    uint64_t duplicates; /* exact or near duplicates */
    uint64_t undecided;  /* no decision (skipped under TOK_REQUIRE_DECISIONS, else kept) */
    uint64_t errors;     /* decision records that do not decode: skipped, logged */
    uint64_t bytes;      /* text bytes given to the callback */
};

/* Whether generation `gen` may be read under `require`: *ready 1, or 0 with *why a static
 * phrase ("not filtered yet", "not deduplicated yet") for the log. TM_OK or a store error. */
int tok_generation_ready(struct tm_store *st, MDB_txn *txn, uint32_t gen, int require, int *ready,
                         const char **why);

/* Called once per kept document. `text` is the kept text: the document's own (borrowed from
 * the map until the transaction ends) or the filter's text without removed spans (borrowed
 * until fn returns). A non-zero return stops the walk and is returned. */
typedef int (*tok_doc_fn)(void *ctx, const struct tm_doc *doc, const char *text, size_t len);

/* Calls fn for every kept document of generation `gen`, in id order, reading in `txn` (a read
 * transaction is enough). Does not check readiness: call tok_generation_ready() first. Adds
 * to *stats (not NULL). Returns TM_OK, fn's non-zero return, or a store error (a document
 * record that does not decode). Not thread-safe for one `txn`. */
int tok_kept_foreach(struct tm_store *st, MDB_txn *txn, uint32_t gen, int require, tok_doc_fn fn,
                     void *ctx, struct tok_kept_stats *stats);

#endif
