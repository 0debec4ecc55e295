/* flt_explain.c: `tokenmill filter --explain DOC_ID`: one document's decision, rule by rule. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flt_internal.h"
#include "../core/tm_db.h"
#include "../core/tm_err.h"
#include "../core/tm_log.h"
#include "../core/tm_store.h"

/* How much of a hit's or span's text is shown. */
#define EXCERPT 72

/* Prints text[a..b) on one line, newlines and tabs shown as spaces, cut to EXCERPT bytes at a
 * UTF-8 boundary. */
static void excerpt(const char *text, size_t a, size_t b)
{
    size_t e = b - a > EXCERPT ? a + EXCERPT : b;
    while (e > a && e < b && ((unsigned char)text[e] & 0xc0) == 0x80)
        e--;
    putchar('"');
    for (size_t i = a; i < e; i++)
        putchar(text[i] == '\n' || text[i] == '\t' || text[i] == '\r' ? ' ' : text[i]);
    printf("%s\"", e < b ? "..." : "");
}

struct explain_ctx {
    uint64_t id;
    const struct flt_config *cfg;
    const struct flt_tox *tox;
    uint64_t hash;
    struct tm_store *st;
};

static int explain_fn(MDB_txn *txn, struct tm_db *db, void *vctx)
{
    struct explain_ctx *c = vctx;
    struct tm_doc doc;
    int rc = tm_store_get_doc(c->st, txn, c->id, &doc);
    if (rc == TM_ERR_NOTFOUND) {
        tm_log_error("no document %" PRIu64 " (generation %u, sequence %" PRIu64 ") in %s", c->id,
                     tm_doc_id_generation(c->id), tm_doc_id_seq(c->id), db->path);
        return rc;
    }
    if (rc)
        return rc;
    struct flt_engine e;
    flt_engine_init(&e, c->cfg, c->tox);
    struct flt_decision d;
    flt_decision_init(&d);
    rc = flt_decide(&e, &doc, &d);
    if (rc)
        goto done;
    const struct flt_domain_cfg *dc = &c->cfg->dom[doc.domain];
    printf("document %" PRIu64 " (generation %u, #%" PRIu64 "): %s%s%s, %zu bytes\n", doc.id,
           doc.generation, tm_doc_id_seq(doc.id), tm_domain_name(doc.domain),
           doc.domain == TM_DOMAIN_CODE ? " " : "", doc.domain == TM_DOMAIN_CODE ? doc.lang : "",
           doc.text_len);
    printf("source: %s\n", doc.source);
    printf("decision: %s", flt_action_name(d.action));
    if (d.rule < FLT_R_COUNT)
        printf(" (%s)", flt_rule_by_id(d.rule)->name);
    if (d.action == FLT_KEPT_SPANS)
        printf(", %zu span(s), %" PRIu64 " bytes", d.spans.n, d.removed_bytes);
    printf("\n");

    const void *val;
    size_t len;
    unsigned char key[8];
    tm_be64_put(key, doc.id);
    if (tm_db_get(db, txn, TM_STORE_FILTER, key, 8, &val, &len) == TM_OK) {
        struct flt_decision sd;
        flt_decision_init(&sd);
        uint64_t shash = 0;
        if (flt_decision_decode(val, len, &sd, &shash, "stored decision") == TM_OK) {
            printf("stored: %s", flt_action_name(sd.action));
            if (sd.rule < FLT_R_COUNT)
                printf(" (%s)", flt_rule_by_id(sd.rule)->name);
            printf(", %s\n", shash == c->hash ? "made with this configuration"
                                              : "made with a different configuration");
        }
        flt_decision_release(&sd);
    } else {
        printf("stored: none (not filtered yet)\n");
    }

    printf("\nrules (%s):\n", tm_domain_name(doc.domain));
    if (dc->tox.enabled && c->tox)
        printf("  %-30s %10.3f  remove above %g, else %s spans  %s\n", "toxicity", d.tox_score,
               dc->tox.threshold,
               dc->tox.spans == FLT_SPAN_OFF    ? "no"
               : dc->tox.spans == FLT_SPAN_LINE ? "line"
                                                : "sentence",
               d.fired & 1 ? (d.rule == FLT_R_TOXICITY ? "FAIL" : "spans") : "pass");
    for (int r = 0; r < FLT_R_COUNT; r++) {
        const struct flt_rule *rule = &flt_rules[r];
        if (rule->kind == FLT_TOXICITY || rule->kind == FLT_INTERNAL)
            continue;
        double thr = dc->thr[rule->id];
        if (rule->kind == FLT_SPAN) {
            if (!isnan(thr))
                printf("  %-30s %10s  %s  %s\n", rule->name, "-", "lines removed",
                       d.fired >> rule->id & 1 ? "spans" : "pass");
            continue;
        }
        if (isnan(d.values[rule->id]))
            continue;
        int fail = d.fired >> rule->id & 1;
        printf("  %-30s %10.4g  %s %g  %s\n", rule->name, d.values[rule->id],
               rule->kind == FLT_DOC_MIN ? "min" : "max", thr, fail ? "FAIL" : "pass");
    }
    if (e.hits.n) {
        printf("\ntoxicity hits (%zu):\n", e.hits.n);
        for (size_t k = 0; k < e.hits.n; k++) {
            const struct flt_tox_hit *h = &e.hits.v[k];
            printf("  [%u,%u) ", h->start, h->end);
            excerpt(doc.text, h->start, h->end);
            printf(" term \"%s\" (%s, weight %g%s) from %s\n", flt_tox_term(c->tox, h->term),
                   flt_tox_category(c->tox, h->category), h->weight,
                   h->obfuscated ? ", obfuscated" : "", flt_tox_term_origin(c->tox, h->term));
        }
    }
    if (d.spans.n) {
        printf("\nspans removed (%zu):\n", d.spans.n);
        for (size_t k = 0; k < d.spans.n; k++) {
            const struct flt_span *s = &d.spans.v[k];
            const struct flt_rule *r = flt_rule_by_id(s->rule);
            printf("  [%" PRIu64 ",%" PRIu64 ") %s: ", s->start, s->end, r ? r->name : "?");
            excerpt(doc.text, (size_t)s->start, (size_t)s->end);
            printf("\n");
        }
    }
done:
    flt_decision_release(&d);
    flt_engine_release(&e);
    return rc;
}

int flt_explain(struct tm_store *st, const struct flt_config *cfg, const struct flt_tox *tox,
                uint64_t hash, const char *idtext)
{
    struct explain_ctx c = {.cfg = cfg, .tox = tox, .hash = hash, .st = st};
    if (tm_doc_parse_id(idtext, &c.id) != 0) {
        tm_log_error("--explain '%s': want a document id (a number, or GENERATION:SEQUENCE as "
                     "tokenmill inspect --list prints)",
                     idtext);
        return TM_ERR_USAGE;
    }
    return tm_db_read(&st->db, explain_fn, &c);
}
