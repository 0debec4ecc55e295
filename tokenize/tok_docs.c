/* tok_docs.c: the kept documents of a generation, after filter and dedup (tok_docs.h). */
#include <inttypes.h>

#include "tok_docs.h"
#include "tm_buf.h"
#include "tm_err.h"
#include "tm_log.h"
#include "tm_store.h"
#include "../dedup/dedup.h"
#include "../filter/filter.h"

const char *const tok_require_names[] = {"decisions", "none", NULL};

int tok_generation_ready(struct tm_store *st, MDB_txn *txn, uint32_t gen, int require, int *ready,
                         const char **why)
{
    *ready = 1;
    *why = "";
    if (require == TOK_REQUIRE_NONE)
        return TM_OK;
    int done;
    int rc = flt_generation_done(st, txn, gen, &done);
    if (rc)
        return rc;
    if (!done) {
        *ready = 0;
        *why = "not filtered yet";
        return TM_OK;
    }
    if ((rc = ddp_generation_done(st, txn, gen, &done)))
        return rc;
    if (!done) {
        *ready = 0;
        *why = "not deduplicated yet";
    }
    return TM_OK;
}

struct walk {
    struct tm_store *st;
    MDB_txn *txn;
    int require;
    int deduped; /* whether dedup finished the generation */
    tok_doc_fn fn;
    void *ctx;
    struct tok_kept_stats *stats;
    struct tm_buf buf; /* text without the filter's removed spans */
};

static int walk_doc(void *ctx, const struct tm_doc *doc)
{
    struct walk *w = ctx;
    w->stats->docs++;
    int verdict;
    const char *text;
    size_t len;
    if (flt_document_text(w->st, w->txn, doc, &w->buf, &verdict, &text, &len) != TM_OK) {
        w->stats->errors++;
        return TM_OK;
    }
    if (verdict == FLT_VERDICT_REMOVED) {
        w->stats->filtered++;
        return TM_OK;
    }
    int undecided = verdict == FLT_VERDICT_NONE;
    int kept;
    int rc = ddp_document_kept(w->st, w->txn, doc->id, &kept);
    if (rc == TM_ERR_NOTFOUND) {
        kept = 1;
        /* In a generation dedup finished, no record means a domain it skips. */
        undecided |= !w->deduped;
    } else if (rc) {
        w->stats->errors++;
        return TM_OK;
    }
    if (!kept) {
        w->stats->duplicates++;
        return TM_OK;
    }
    if (undecided) {
        w->stats->undecided++;
        if (w->require == TOK_REQUIRE_DECISIONS)
            return TM_OK;
    }
    w->stats->kept++;
    w->stats->bytes += len;
    return w->fn(w->ctx, doc, text, len);
}

int tok_kept_foreach(struct tm_store *st, MDB_txn *txn, uint32_t gen, int require, tok_doc_fn fn,
                     void *ctx, struct tok_kept_stats *stats)
{
    struct walk w = {st, txn, require, 0, fn, ctx, stats, {0}};
    int rc = ddp_generation_done(st, txn, gen, &w.deduped);
    if (rc)
        return rc;
    tm_buf_init(&w.buf, 0);
    rc = tm_store_foreach(st, txn, gen, gen, walk_doc, &w);
    tm_buf_release(&w.buf);
    return rc;
}
