/* tok_cmd.c: the `encode` and `decode` commands, thin wrappers over the encoder. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "tok_internal.h"
#include "tm_buf.h"
#include "tm_err.h"
#include "tm_log.h"
#include "tm_mem.h"
#include "tm_progress.h"
#include "tm_stats.h"

struct tok_cmd_options {
    char *vocab;
    int pattern; /* 0: guess from the vocabulary's size, else tok_pattern + 1 */
    char *allowed;
    char *disallowed;
    size_t max_input;
    int lines;
    char *jsonl;
    long threads;
    int count_only;
};

static const char *const pattern_choices[] = {"auto", "r50k", "cl100k", "o200k", NULL};

#define OPT(field) offsetof(struct tok_cmd_options, field)

static const struct tm_opt encode_opts[] = {
    {TM_OPT_STR, "vocab", 0, OPT(vocab), "FILE", ".tiktoken rank file (required)"},
    {TM_OPT_ENUM, "pattern", 'p', OPT(pattern), "NAME",
     "pre-tokenization pattern and special tokens: r50k (GPT-2), cl100k, o200k, or auto "
     "(from the vocabulary's size)",
     "auto", 0, 0, pattern_choices},
    {TM_OPT_STR, "allowed-special", 0, OPT(allowed), "LIST",
     "special tokens encoded as their ids: 'all' or comma-separated texts", ""},
    {TM_OPT_STR, "disallowed-special", 0, OPT(disallowed), "LIST",
     "special tokens whose text in the input is an error: 'all' (every one not allowed), "
     "'none', or comma-separated texts",
     "all"},
    {TM_OPT_SIZE, "max-input", 0, OPT(max_input), "SIZE",
     "largest input accepted (with --lines or --jsonl: largest document)", "1G", 1,
     4.0 * 1024 * 1024 * 1024},
    {TM_OPT_FLAG, "lines", 0, OPT(lines), NULL,
     "each input line (without its newline) is a document: one output line of ids each"},
    {TM_OPT_STR, "jsonl", 0, OPT(jsonl), "FIELD",
     "input is JSONL; each line's string FIELD is a document: one output line of ids each"},
    {TM_OPT_INT, "threads", 'j', OPT(threads), "N",
     "encoding threads for --lines and --jsonl (0: one per core)", "1", 0, 256},
    {TM_OPT_FLAG, "count-only", 0, OPT(count_only), NULL,
     "print one JSON line (documents, bytes, ids, ids_hash, encode_seconds, encode_cpu_seconds) "
     "instead of ids"},
    {TM_OPT_END},
};

static const struct tm_opt decode_opts[] = {
    {TM_OPT_STR, "vocab", 0, OPT(vocab), "FILE", ".tiktoken rank file (required)"},
    {TM_OPT_ENUM, "pattern", 'p', OPT(pattern), "NAME",
     "encoding whose special tokens are decoded: r50k, cl100k, o200k, or auto", "auto", 0, 0,
     pattern_choices},
    {TM_OPT_END},
};

/* Loads the vocabulary and makes the encoder the options name. */
static int open_encoder(const struct tok_cmd_options *opt, struct tok_vocab **vocab,
                        struct tok_encoder **enc)
{
    *vocab = NULL;
    *enc = NULL;
    if (!opt->vocab) {
        tm_log_error("--vocab is required");
        return TM_ERR_USAGE;
    }
    int rc = tok_vocab_load(opt->vocab, vocab);
    if (rc != TM_OK)
        return rc;
    int pat = opt->pattern - 1;
    if (pat < 0) {
        pat = tok_pattern_guess(tok_vocab_count(*vocab));
        if (pat < 0) {
            tm_log_error("%s: %zu tokens match no known encoding; give --pattern", opt->vocab,
                         tok_vocab_count(*vocab));
            return TM_ERR_USAGE;
        }
    }
    return tok_encoder_new(*vocab, (enum tok_pattern)pat, enc);
}

static int read_stdin(size_t max, struct tm_buf *in)
{
    char chunk[1 << 16];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), stdin)) > 0) {
        int rc = tm_buf_append(in, chunk, n);
        if (rc != TM_OK) {
            tm_log_error("stdin: input over --max-input (%zu bytes)", max);
            return rc;
        }
    }
    if (ferror(stdin)) {
        tm_log_error("stdin: %s", strerror(errno));
        return TM_ERR_IO;
    }
    return TM_OK;
}

/* Documents of one batch in --lines / --jsonl mode: their text, back to back. About 8 MB per
 * batch keeps both threads busy (documents are handed out one at a time) while the memory held
 * stays small next to --max-input. */
#define BATCH_BYTES ((size_t)8 << 20)
#define BATCH_DOCS  65536

/* ids_hash of --count-only: h = h * HASH_MUL + (id + 1) mod 2^64 over all ids in order, from 0
 * (FNV-1a's 64-bit prime as the multiplier). bench/tok_bench.py computes the same in numpy to
 * compare ids with other tokenizers without printing them. */
#define HASH_MUL 0x100000001B3ull

struct encode_out {
    int count_only;
    uint64_t hash, ids, docs, bytes;
    double seconds;     /* wall time in the encoder only */
    double cpu_seconds; /* CPU time of all threads in the encoder only */
    struct tm_buf line;
};

/* CPU time of the process (all threads), in seconds: with other work on the machine it is the
 * measure of what encoding costs per thread, where wall time also counts waiting for a core. */
static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Writes one document's ids as a line (or hashes them for --count-only). */
static int emit_ids(struct encode_out *o, const struct tok_ids *ids)
{
    o->ids += ids->n;
    if (o->count_only) {
        uint64_t h = o->hash;
        for (size_t i = 0; i < ids->n; i++)
            h = h * HASH_MUL + ids->v[i] + 1;
        o->hash = h;
        return TM_OK;
    }
    /* printf per id was a tenth of the run time (perf): format by hand into one buffer. */
    tm_buf_reset(&o->line);
    int rc = tm_buf_reserve(&o->line, ids->n * 11 + 1);
    if (rc != TM_OK)
        return rc;
    char *p = o->line.data;
    for (size_t i = 0; i < ids->n; i++) {
        char tmp[10];
        int k = 0;
        uint32_t x = ids->v[i];
        do {
            tmp[k++] = (char)('0' + x % 10);
            x /= 10;
        } while (x);
        if (i)
            *p++ = ' ';
        while (k)
            *p++ = tmp[--k];
    }
    *p++ = '\n';
    size_t n = (size_t)(p - o->line.data);
    if (fwrite(o->line.data, 1, n, stdout) != n) {
        tm_log_error("stdout: %s", strerror(errno));
        return TM_ERR_IO;
    }
    return TM_OK;
}

/* Reads stdin one line at a time into a capped buffer. */
struct line_reader {
    char chunk[1 << 16];
    size_t pos, len;
    int eof;
    uint64_t lineno;
};

/* Appends the next line, without its '\n', to `line` (cleared first). Returns 1 for a line, 0
 * at the end of the input, or a negative tm_err (TM_ERR_TOOBIG over the buffer's cap,
 * TM_ERR_IO; logged). */
static int read_line(struct line_reader *r, struct tm_buf *line)
{
    tm_buf_reset(line);
    int any = 0;
    for (;;) {
        if (r->pos == r->len) {
            if (r->eof)
                break;
            r->len = fread(r->chunk, 1, sizeof(r->chunk), stdin);
            r->pos = 0;
            if (r->len == 0) {
                r->eof = 1;
                if (ferror(stdin)) {
                    tm_log_error("stdin: %s", strerror(errno));
                    return TM_ERR_IO;
                }
                break;
            }
        }
        any = 1;
        const char *start = r->chunk + r->pos;
        const char *nl = memchr(start, '\n', r->len - r->pos);
        size_t n = nl ? (size_t)(nl - start) : r->len - r->pos;
        if (tm_buf_append(line, start, n) != TM_OK) {
            tm_log_error("stdin: line %llu is longer than --max-input (%zu bytes)",
                         (unsigned long long)r->lineno + 1, line->max);
            return TM_ERR_TOOBIG;
        }
        r->pos += n + (nl ? 1 : 0);
        if (nl)
            break;
    }
    if (!any)
        return 0;
    r->lineno++;
    return 1;
}

struct doc_batch {
    struct tm_buf text;   /* the documents back to back */
    size_t *off, *len;    /* [BATCH_DOCS] */
    uint64_t *lineno;     /* [BATCH_DOCS], for messages */
    const char **ptr;     /* [BATCH_DOCS], filled before encoding */
    struct tok_ids *outs; /* [BATCH_DOCS] */
    int *errs;            /* [BATCH_DOCS] */
    size_t n;
};

/* Encodes the documents collected in `d` on the batch's threads and prints them in order. */
static int flush_docs(struct tok_batch *b, struct doc_batch *d, struct encode_out *o,
                      struct tm_progress *prog)
{
    for (size_t i = 0; i < d->n; i++) {
        d->ptr[i] = d->text.data + d->off[i];
        d->outs[i].n = 0;
    }
    double t0 = tm_now(), c0 = cpu_now();
    int rc = tok_batch_encode(b, d->ptr, d->len, d->n, 0, d->outs, d->errs);
    o->seconds += tm_now() - t0;
    o->cpu_seconds += cpu_now() - c0;
    if (rc != TM_OK) {
        for (size_t i = 0; i < d->n; i++)
            if (d->errs[i] != TM_OK) {
                tm_log_error("stdin: line %llu: the document could not be encoded (%s)",
                             (unsigned long long)d->lineno[i], tm_strerror(d->errs[i]));
                break;
            }
        return rc;
    }
    for (size_t i = 0; i < d->n && rc == TM_OK; i++)
        rc = emit_ids(o, &d->outs[i]);
    tm_progress_add(prog, d->n, d->text.len);
    o->docs += d->n;
    o->bytes += d->text.len;
    d->n = 0;
    tm_buf_reset(&d->text);
    return rc;
}

/* --lines / --jsonl: one document per line, encoded in batches on `threads` threads. */
static int encode_docs(const struct tok_cmd_options *opt, const struct tok_encoder *enc,
                       struct encode_out *o, struct tm_run *run)
{
    struct tok_batch *b = NULL;
    struct line_reader *r = tm_xcalloc(1, sizeof(*r));
    struct tm_buf line;
    struct doc_batch d = {0};
    struct tm_progress prog;
    tm_buf_init(&line, opt->max_input);
    tm_buf_init(&d.text, 0);
    d.off = tm_xcalloc(BATCH_DOCS, sizeof(*d.off));
    d.len = tm_xcalloc(BATCH_DOCS, sizeof(*d.len));
    d.lineno = tm_xcalloc(BATCH_DOCS, sizeof(*d.lineno));
    d.ptr = tm_xcalloc(BATCH_DOCS, sizeof(*d.ptr));
    d.errs = tm_xcalloc(BATCH_DOCS, sizeof(*d.errs));
    d.outs = tm_xcalloc(BATCH_DOCS, sizeof(*d.outs));
    for (size_t i = 0; i < BATCH_DOCS; i++)
        tok_ids_init(&d.outs[i], 0);
    tm_progress_init(&prog, "encode", 0, 0, !run->common.no_progress && !run->common.quiet, 0);
    int rc = tok_batch_new(enc, (int)opt->threads, &b);
    while (rc == TM_OK) {
        int got = read_line(r, &line);
        if (got < 0)
            rc = got;
        if (got <= 0)
            break;
        const char *text = line.data ? line.data : "";
        size_t len = line.len;
        cJSON *json = NULL;
        if (opt->jsonl) {
            json = cJSON_ParseWithLength(text, len);
            const cJSON *f = json ? cJSON_GetObjectItemCaseSensitive(json, opt->jsonl) : NULL;
            if (!cJSON_IsString(f)) {
                tm_log_error("stdin: line %llu: %s", (unsigned long long)r->lineno,
                             !json ? "not valid JSON" : "no string field of that name");
                cJSON_Delete(json);
                rc = TM_ERR_FORMAT;
                break;
            }
            /* cJSON ends strings at NUL: a "\u0000" in the text ends the document there. */
            text = f->valuestring;
            len = strlen(text);
        }
        d.off[d.n] = d.text.len;
        d.len[d.n] = len;
        d.lineno[d.n] = r->lineno;
        d.n++;
        rc = tm_buf_append(&d.text, text, len);
        cJSON_Delete(json);
        if (rc == TM_OK && (d.n == BATCH_DOCS || d.text.len >= BATCH_BYTES))
            rc = flush_docs(b, &d, o, &prog);
    }
    if (rc == TM_OK && d.n)
        rc = flush_docs(b, &d, o, &prog);
    tm_progress_finish(&prog);
    for (size_t i = 0; i < BATCH_DOCS; i++)
        tok_ids_release(&d.outs[i]);
    free(d.outs);
    free(d.errs);
    free(d.ptr);
    free(d.lineno);
    free(d.len);
    free(d.off);
    tm_buf_release(&d.text);
    tm_buf_release(&line);
    free(r);
    tok_batch_free(b);
    return rc;
}

/* The whole of stdin as one text. */
static int encode_all(const struct tok_cmd_options *opt, struct tok_encoder *enc,
                      struct encode_out *o)
{
    struct tm_buf in;
    struct tok_ids ids;
    tm_buf_init(&in, opt->max_input);
    tok_ids_init(&ids, 0);
    int rc = read_stdin(opt->max_input, &in);
    if (rc == TM_OK) {
        double t0 = tm_now(), c0 = cpu_now();
        rc = tok_encode(enc, in.data ? in.data : "", in.len, &ids);
        o->seconds = tm_now() - t0;
        o->cpu_seconds = cpu_now() - c0;
    }
    if (rc == TM_OK) {
        o->docs = 1;
        o->bytes = in.len;
        rc = emit_ids(o, &ids);
    }
    tok_ids_release(&ids);
    tm_buf_release(&in);
    return rc;
}

static int encode_run(void *vcfg, struct tm_run *run)
{
    struct tok_cmd_options *opt = vcfg;
    struct tok_vocab *vocab = NULL;
    struct tok_encoder *enc = NULL;
    struct encode_out o = {.count_only = opt->count_only};
    tm_buf_init(&o.line, 0);
    int rc = TM_OK;
    if (opt->lines && opt->jsonl) {
        tm_log_error("--lines and --jsonl exclude each other");
        rc = TM_ERR_USAGE;
        goto out;
    }
    rc = open_encoder(opt, &vocab, &enc);
    if (rc != TM_OK)
        goto out;
    const char *dis =
        opt->disallowed && strcmp(opt->disallowed, "none") == 0 ? "" : opt->disallowed;
    rc = tok_encoder_set_special(enc, opt->allowed, dis);
    if (rc != TM_OK)
        goto out;
    rc = opt->lines || opt->jsonl ? encode_docs(opt, enc, &o, run) : encode_all(opt, enc, &o);
    if (rc != TM_OK)
        goto out;
    tm_stats_add(run->stats, "documents", (int64_t)o.docs);
    tm_stats_add(run->stats, "bytes", (int64_t)o.bytes);
    tm_stats_add(run->stats, "ids", (int64_t)o.ids);
    tm_stats_set_num(run->stats, "encode_seconds", o.seconds);
    tm_stats_set_num(run->stats, "encode_cpu_seconds", o.cpu_seconds);
    if (o.count_only) {
        char hash[17];
        snprintf(hash, sizeof(hash), "%016llx", (unsigned long long)o.hash);
        tm_stats_set_str(run->stats, "ids_hash", hash);
        printf("{\"documents\":%llu,\"bytes\":%llu,\"ids\":%llu,\"ids_hash\":\"%s\","
               "\"encode_seconds\":%.6f,\"encode_cpu_seconds\":%.6f}\n",
               (unsigned long long)o.docs, (unsigned long long)o.bytes, (unsigned long long)o.ids,
               hash, o.seconds, o.cpu_seconds);
    }
    if (fflush(stdout) != 0) {
        tm_log_error("stdout: %s", strerror(errno));
        rc = TM_ERR_IO;
    }
out:
    tm_buf_release(&o.line);
    tok_encoder_free(enc);
    tok_vocab_free(vocab);
    return rc;
}

static int emit_stdout(void *ctx, const unsigned char *bytes, size_t len)
{
    (void)ctx;
    if (fwrite(bytes, 1, len, stdout) != len) {
        tm_log_error("stdout: %s", strerror(errno));
        return TM_ERR_IO;
    }
    return TM_OK;
}

static int decode_run(void *vcfg, struct tm_run *run)
{
    struct tok_cmd_options *opt = vcfg;
    struct tok_vocab *vocab = NULL;
    struct tok_encoder *enc = NULL;
    int rc = open_encoder(opt, &vocab, &enc);
    if (rc != TM_OK)
        goto out;
    struct tok_decoder dec;
    tok_decoder_init(&dec, enc, emit_stdout, NULL);
    /* Ids are read as decimal words separated by any whitespace, one at a time, so a long
     * stream is decoded in constant memory. */
    size_t word = 0;
    for (;;) {
        unsigned long id;
        int got = scanf("%lu", &id);
        if (got == EOF)
            break;
        word++;
        if (got != 1 || id > UINT32_MAX) {
            tm_log_error("stdin: word %zu is not a token id", word);
            rc = TM_ERR_FORMAT;
            goto out;
        }
        rc = tok_decoder_push(&dec, (uint32_t)id);
        if (rc != TM_OK)
            goto out;
    }
    rc = tok_decoder_finish(&dec);
    if (rc == TM_OK && fflush(stdout) != 0) {
        tm_log_error("stdout: %s", strerror(errno));
        rc = TM_ERR_IO;
    }
out:
    tok_encoder_free(enc);
    tok_vocab_free(vocab);
    return rc;
}

const struct tm_command tok_encode_command = {
    .name = "encode",
    .summary = "encode UTF-8 text on stdin to token ids (tiktoken-compatible BPE)",
    .synopsis = "",
    .description =
        "Reads all of stdin as UTF-8 text and prints its token ids, separated by spaces, on one\n"
        "line. Ids equal tiktoken's encode(text, allowed_special, disallowed_special) for the\n"
        "same .tiktoken file and encoding. Fails (exit 1) on invalid UTF-8 or on the text of a\n"
        "disallowed special token.\n"
        "With --lines (or --jsonl FIELD) every line (or every JSONL line's FIELD) is a document\n"
        "of its own, encoded on --threads threads; the output has one line of ids per document,\n"
        "in input order, the same for any thread count. A document that fails stops the run\n"
        "with its line number.",
    .opts = encode_opts,
    .cfg_size = sizeof(struct tok_cmd_options),
    .min_args = 0,
    .max_args = 0,
    .run = encode_run,
};

const struct tm_command tok_decode_command = {
    .name = "decode",
    .summary = "decode token ids on stdin back to bytes",
    .synopsis = "",
    .description =
        "Reads whitespace-separated token ids on stdin and writes their bytes to stdout,\n"
        "streaming. Special token ids decode to their text. Fails (exit 1) on an\n"
        "unknown id.",
    .opts = decode_opts,
    .cfg_size = sizeof(struct tok_cmd_options),
    .min_args = 0,
    .max_args = 0,
    .run = decode_run,
};
