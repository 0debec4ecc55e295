/* ing_cmd: the `ingest` and `inspect` commands: option tables and what they print. The work is
 * in ing_run.c; this file is the thin command-line layer on top (zstd's programs/ split). */
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xxhash.h>

#include "../core/tm_err.h"
#include "../core/tm_log.h"
#include "../core/tm_mem.h"
#include "../core/tm_rand.h"
#include "../core/tm_stats.h"
#include "../core/tm_store.h"
#include "ing_run.h"
#include "ingest.h"

/* ---- tokenmill ingest ------------------------------------------------------------------ */

#define CFG(field) offsetof(struct ing_config, field)

static const struct tm_opt ingest_opts[] = {
    {TM_OPT_STR, "workdir", 'w', CFG(workdir), "DIR", "the pipeline's work directory (required)"},
    {TM_OPT_STR, "domain", 'd', CFG(domain), "DOMAIN",
     "force the domain of every document: text, math or code (default: detect)"},
    {TM_OPT_FLAG, "default-corpus", 0, CFG(default_corpus), NULL,
     "also ingest the embedded default corpus (licenses, /usr/include, man pages, math set)"},
    {TM_OPT_STR, "text-field", 0, CFG(text_field), "NAME", "JSONL field holding the text", "text"},
    {TM_OPT_STR, "domain-field", 0, CFG(domain_field), "NAME",
     "JSONL field holding the domain (text, math, code)"},
    {TM_OPT_STR, "lang-field", 0, CFG(lang_field), "NAME", "JSONL field holding the code language"},
    {TM_OPT_SIZE, "max-doc-size", 0, CFG(max_doc_size), "SIZE",
     "skip (and count) documents larger than this", "8M", 1, 1024.0 * 1024 * 1024 * 1024},
    /* At most 256 MiB: a batch is one LMDB write transaction, and LMDB holds at most 2^17
     * dirty pages (512 MiB of 4 KiB pages) in one. */
    {TM_OPT_SIZE, "batch-size", 0, CFG(batch_bytes), "SIZE",
     "commit to the store after this many bytes of documents", "64M", 4096, 256.0 * 1024 * 1024},
    {TM_OPT_INT, "batch-docs", 0, CFG(batch_docs), "N",
     "commit to the store after this many documents", "50000", 1, 1e9},
    {TM_OPT_INT, "math-problems", 0, CFG(math_problems), "N",
     "generated math problems in the default corpus", "700", 0, 1e7},
    {TM_OPT_FLAG, "rehash", 0, CFG(rehash), NULL,
     "hash every input even when its size and mtime are unchanged"},
    {TM_OPT_END},
};

static void print_summary(const cJSON *s)
{
    const cJSON *docs = cJSON_GetObjectItemCaseSensitive(s, "documents");
    const cJSON *bytes = cJSON_GetObjectItemCaseSensitive(s, "text_bytes");
    const cJSON *inputs = cJSON_GetObjectItemCaseSensitive(s, "inputs");
    const cJSON *skipped = cJSON_GetObjectItemCaseSensitive(s, "skipped");
    const cJSON *norm = cJSON_GetObjectItemCaseSensitive(s, "normalization");
    const cJSON *errors = cJSON_GetObjectItemCaseSensitive(s, "errors");
    printf("ingest: generation %" PRId64 ": %" PRId64 " documents (text %" PRId64 ", math %" PRId64
           ", code %" PRId64 "), %.1f MB of text\n",
           tm_stats_get(s, "generation"), tm_stats_get(docs, "total"), tm_stats_get(docs, "text"),
           tm_stats_get(docs, "math"), tm_stats_get(docs, "code"),
           (double)tm_stats_get(bytes, "total") / 1e6);
    printf("  inputs: %" PRId64 " seen, %" PRId64 " ingested, %" PRId64 " unchanged, %" PRId64
           " same file named twice, %" PRId64 " failed (%.1f MB read)\n",
           tm_stats_get(inputs, "seen"), tm_stats_get(inputs, "ingested"),
           tm_stats_get(inputs, "unchanged"), tm_stats_get(inputs, "same_file"),
           tm_stats_get(inputs, "failed"), (double)tm_stats_get(s, "input_bytes") / 1e6);
    printf("  skipped:");
    const cJSON *it;
    int any = 0;
    cJSON_ArrayForEach(it, skipped)
    {
        printf("%s %s %.0f", any ? "," : "", it->string, it->valuedouble);
        any = 1;
    }
    printf("%s\n", any ? "" : " none");
    printf("  repairs: %" PRId64 " invalid UTF-8 sequences, %" PRId64 " NUL bytes, %" PRId64
           " CRLF line ends\n",
           tm_stats_get(norm, "utf8_repairs"), tm_stats_get(norm, "nul_removed"),
           tm_stats_get(norm, "crlf"));
    printf("  errors: %" PRId64 "\n", tm_stats_get(errors, "count"));
}

/* The inputs: the positional arguments, then the default corpus with --default-corpus.
 * *owned (free with free_inputs) when the list had to be built. */
static int gather_inputs(const struct ing_config *cfg, struct tm_run *run, char ***inputs,
                         int *ninputs, char ***defaults, int *ndefaults)
{
    *inputs = run->args;
    *ninputs = run->nargs;
    *defaults = NULL;
    *ndefaults = 0;
    if (!cfg->workdir) {
        tm_log_error("ingest: --workdir is required");
        return TM_ERR_USAGE;
    }
    if (cfg->default_corpus) {
        *defaults = ing_default_inputs(ndefaults);
        *inputs = tm_xmalloc(sizeof(char *) * (size_t)(*ninputs + *ndefaults + 1));
        for (int i = 0; i < run->nargs; i++)
            (*inputs)[i] = run->args[i];
        for (int i = 0; i < *ndefaults; i++)
            (*inputs)[run->nargs + i] = (*defaults)[i];
        *ninputs += *ndefaults;
    }
    if (*ninputs == 0) {
        tm_log_error("ingest: no inputs (name files or directories, or use --default-corpus)");
        return TM_ERR_USAGE;
    }
    return TM_OK;
}

static void free_inputs(char **inputs, char **defaults, int ndefaults)
{
    if (defaults) {
        for (int i = 0; i < ndefaults; i++)
            free(defaults[i]);
        free(defaults);
        free(inputs);
    }
}

static int ingest_run_cmd(void *vcfg, struct tm_run *run)
{
    struct ing_config *cfg = vcfg;
    char **inputs, **defaults;
    int ninputs, ndefaults;
    int rc = gather_inputs(cfg, run, &inputs, &ninputs, &defaults, &ndefaults);
    if (rc == TM_OK) {
        int progress = !run->common.no_progress && !run->common.quiet;
        rc = ing_run(cfg, inputs, ninputs, progress, run->stats);
        if (rc == TM_OK || rc == TM_ERR_PARTIAL)
            print_summary(run->stats);
    }
    free_inputs(inputs, defaults, ndefaults);
    return rc;
}

static int ingest_plan_cmd(void *vcfg, struct tm_run *run, struct tm_plan *out)
{
    struct ing_config *cfg = vcfg;
    char **inputs, **defaults;
    int ninputs, ndefaults;
    int rc = gather_inputs(cfg, run, &inputs, &ninputs, &defaults, &ndefaults);
    if (rc == TM_OK)
        rc = ing_plan(cfg, inputs, ninputs, out);
    free_inputs(inputs, defaults, ndefaults);
    return rc;
}

const struct tm_command ing_ingest_command = {
    .name = "ingest",
    .summary = "read files, archives, JSONL and WARC into the document store",
    .synopsis = "INPUT...",
    .description =
        "Inputs are files or directories (walked recursively). Plain text and source files,\n"
        "compressed files (.gz .zst .xz .bz2), archives (tar in any compression, zip, 7z), JSONL\n"
        "(one JSON object per line, text in --text-field) and WARC files are recognized by name\n"
        "and content. Inputs already ingested and unchanged are skipped; a changed input goes\n"
        "into a new generation. A killed run resumes where its last commit left off.\n"
        "Exit status: 0 success, 1 failure, 2 usage, 3 some inputs failed (the rest was\n"
        "ingested), 4 the workdir is locked by another run.",
    .opts = ingest_opts,
    .cfg_size = sizeof(struct ing_config),
    .min_args = 0,
    .max_args = -1,
    .run = ingest_run_cmd,
    .plan = ingest_plan_cmd,
};

/* ---- tokenmill inspect ----------------------------------------------------------------- */

struct inspect_config {
    char *workdir;
    char *doc;
    int list;
    long sample;
    long seed;
};

#define ICFG(field) offsetof(struct inspect_config, field)

static const struct tm_opt inspect_opts[] = {
    {TM_OPT_STR, "workdir", 'w', ICFG(workdir), "DIR", "the pipeline's work directory (required)"},
    {TM_OPT_STR, "doc", 0, ICFG(doc), "ID", "print one document with its metadata"},
    {TM_OPT_FLAG, "list", 0, ICFG(list), NULL,
     "list every document: id, domain, language, bytes, xxh3-64 of the text, source"},
    {TM_OPT_INT, "sample", 0, ICFG(sample), "N", "print N documents chosen at random", "0", 0, 1e6},
    {TM_OPT_INT, "seed", 0, ICFG(seed), "S", "random seed for --sample", "1", 0, 9e18},
    {TM_OPT_END},
};

static void print_doc(const struct tm_doc *d)
{
    printf("=== document %" PRIu64 " ===\n", d->id);
    printf("generation: %" PRIu32 "\n", d->generation);
    printf("source: %s\n", d->source);
    printf("domain: %s\n", tm_domain_name(d->domain));
    printf("lang: %s\n", d->lang);
    printf("bytes: %zu\n", d->text_len);
    printf("meta: %s\n\n", d->meta);
    fwrite(d->text, 1, d->text_len, stdout);
    if (d->text_len && d->text[d->text_len - 1] != '\n')
        putchar('\n');
}

struct inspect_ctx {
    struct tm_store *store;
    const struct inspect_config *cfg;
    cJSON *stats;
};

static int inspect_counts(MDB_txn *txn, struct tm_store *s, cJSON *stats)
{
    uint32_t last;
    int rc = tm_store_last_gen(s, txn, &last);
    if (rc)
        return rc;
    uint64_t tdocs[TM_DOMAIN_COUNT] = {0}, tbytes[TM_DOMAIN_COUNT] = {0};
    cJSON *gens = cJSON_AddArrayToObject(stats, "generations");
    printf("%-5s %-7s %7s %10s %10s %10s %12s %12s %12s\n", "gen", "state", "inputs", "text docs",
           "math docs", "code docs", "text MB", "math MB", "code MB");
    for (uint32_t g = 1; g <= last; g++) {
        struct tm_gen gen;
        rc = tm_store_get_gen(s, txn, g, &gen);
        if (rc == TM_ERR_NOTFOUND)
            continue;
        if (rc)
            return rc;
        cJSON *jg = cJSON_CreateObject();
        cJSON_AddNumberToObject(jg, "generation", g);
        cJSON_AddStringToObject(jg, "state", gen.state == TM_GEN_OPEN ? "open" : "closed");
        cJSON_AddNumberToObject(jg, "inputs", gen.inputs);
        cJSON_AddNumberToObject(jg, "started", (double)gen.started);
        cJSON_AddNumberToObject(jg, "finished", (double)gen.finished);
        for (int d = 0; d < TM_DOMAIN_COUNT; d++) {
            char key[32];
            snprintf(key, sizeof(key), "%s_docs", tm_domain_name(d));
            cJSON_AddNumberToObject(jg, key, (double)gen.docs[d]);
            snprintf(key, sizeof(key), "%s_bytes", tm_domain_name(d));
            cJSON_AddNumberToObject(jg, key, (double)gen.bytes[d]);
            tdocs[d] += gen.docs[d];
            tbytes[d] += gen.bytes[d];
        }
        cJSON_AddItemToArray(gens, jg);
        printf("%-5" PRIu32 " %-7s %7" PRIu32 " %10" PRIu64 " %10" PRIu64 " %10" PRIu64
               " %12.2f %12.2f %12.2f\n",
               g, gen.state == TM_GEN_OPEN ? "open" : "closed", gen.inputs, gen.docs[0],
               gen.docs[1], gen.docs[2], gen.bytes[0] / 1e6, gen.bytes[1] / 1e6,
               gen.bytes[2] / 1e6);
    }
    printf("%-5s %-7s %7s %10" PRIu64 " %10" PRIu64 " %10" PRIu64 " %12.2f %12.2f %12.2f\n",
           "total", "", "", tdocs[0], tdocs[1], tdocs[2], tbytes[0] / 1e6, tbytes[1] / 1e6,
           tbytes[2] / 1e6);
    cJSON *tot = tm_stats_obj(stats, "total");
    for (int d = 0; d < TM_DOMAIN_COUNT; d++) {
        char key[32];
        snprintf(key, sizeof(key), "%s_docs", tm_domain_name(d));
        tm_stats_set_num(tot, key, (double)tdocs[d]);
        snprintf(key, sizeof(key), "%s_bytes", tm_domain_name(d));
        tm_stats_set_num(tot, key, (double)tbytes[d]);
    }
    return TM_OK;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Samples without replacement by global document index (ids are dense per generation), so it
 * costs N lookups, not a scan of the store. */
static int inspect_sample(MDB_txn *txn, struct tm_store *s, long n, uint64_t seed)
{
    uint32_t last;
    int rc = tm_store_last_gen(s, txn, &last);
    if (rc)
        return rc;
    uint64_t *counts = tm_xcalloc(last + 1, sizeof(uint64_t));
    uint64_t total = 0;
    for (uint32_t g = 1; g <= last; g++) {
        struct tm_gen gen;
        if (tm_store_get_gen(s, txn, g, &gen) == TM_OK)
            counts[g] = gen.next_seq;
        total += counts[g];
    }
    if ((uint64_t)n > total)
        n = (long)total;
    uint64_t *pick = tm_xcalloc((size_t)n + 1, sizeof(uint64_t));
    size_t k = 0;
    if ((uint64_t)n * 2 > total) {
        /* Most of the store: selection sampling (Knuth's Algorithm S), one pass, in order. */
        for (uint64_t i = 0; i < total && k < (size_t)n; i++)
            if (tm_splitmix64(&seed) % (total - i) < (uint64_t)n - k)
                pick[k++] = i;
    } else {
        /* A small part: draw the missing ones, sort, drop repeats, until there are n. */
        while (k < (size_t)n) {
            for (size_t i = k; i < (size_t)n; i++)
                pick[i] = tm_splitmix64(&seed) % total;
            qsort(pick, (size_t)n, sizeof(uint64_t), cmp_u64);
            k = 0;
            for (size_t i = 0; i < (size_t)n; i++)
                if (k == 0 || pick[i] != pick[k - 1])
                    pick[k++] = pick[i];
        }
    }
    for (long i = 0; i < n && rc == TM_OK; i++) {
        uint64_t r = pick[i];
        uint32_t g = 1;
        while (r >= counts[g]) {
            r -= counts[g];
            g++;
        }
        struct tm_doc d;
        rc = tm_store_get_doc(s, txn, tm_doc_make_id(g, r), &d);
        if (rc == TM_OK) {
            print_doc(&d);
            putchar('\n');
        }
    }
    free(pick);
    free(counts);
    return rc;
}

static int list_doc(void *ctx, const struct tm_doc *d)
{
    (void)ctx;
    printf("%" PRIu64 "\t%s\t%s\t%zu\t%016llx\t%s\n", d->id, tm_domain_name(d->domain), d->lang,
           d->text_len, (unsigned long long)XXH3_64bits(d->text, d->text_len), d->source);
    return 0;
}

static int inspect_list(MDB_txn *txn, struct tm_store *s)
{
    return tm_store_foreach(s, txn, 0, UINT32_MAX, list_doc, NULL);
}

static int inspect_fn(MDB_txn *txn, struct tm_db *db, void *vctx)
{
    struct inspect_ctx *ctx = vctx;
    (void)db;
    if (ctx->cfg->doc) {
        char *end;
        unsigned long long id = strtoull(ctx->cfg->doc, &end, 10);
        if (*ctx->cfg->doc == '\0' || *end != '\0') {
            tm_log_error("inspect: --doc: '%s' is not a document id (a decimal number)",
                         ctx->cfg->doc);
            return TM_ERR_USAGE;
        }
        struct tm_doc d;
        int rc = tm_store_get_doc(ctx->store, txn, id, &d);
        if (rc == TM_ERR_NOTFOUND)
            tm_log_error("inspect: no document %llu in %s", id, ctx->cfg->workdir);
        if (rc == TM_OK)
            print_doc(&d);
        return rc;
    }
    if (ctx->cfg->list)
        return inspect_list(txn, ctx->store);
    if (ctx->cfg->sample > 0)
        return inspect_sample(txn, ctx->store, ctx->cfg->sample, (uint64_t)ctx->cfg->seed);
    return inspect_counts(txn, ctx->store, ctx->stats);
}

static int inspect_run_cmd(void *vcfg, struct tm_run *run)
{
    struct inspect_config *cfg = vcfg;
    struct tm_store store;
    run->query = 1;
    if (!cfg->workdir) {
        tm_log_error("inspect: --workdir is required");
        return TM_ERR_USAGE;
    }
    int rc = tm_store_open(&store, cfg->workdir, TM_DB_RDONLY);
    if (rc)
        return rc;
    struct inspect_ctx ctx = {&store, cfg, run->stats};
    rc = tm_db_read(&store.db, inspect_fn, &ctx);
    tm_store_close(&store);
    return rc;
}

const struct tm_command ing_inspect_command = {
    .name = "inspect",
    .summary = "show the document store: counts per generation and domain, or documents",
    .synopsis = "",
    .description = "Without --doc or --sample, prints document and byte counts per generation\n"
                   "and domain. Document ids are (generation << 40) | sequence.",
    .opts = inspect_opts,
    .cfg_size = sizeof(struct inspect_config),
    .min_args = 0,
    .max_args = 0,
    .run = inspect_run_cmd,
};
