/* tok_cmd.c: the `encode` and `decode` commands, thin wrappers over the encoder. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tok_internal.h"
#include "tm_buf.h"
#include "tm_err.h"
#include "tm_log.h"

struct tok_cmd_options {
    char *vocab;
    int pattern; /* 0: guess from the vocabulary's size, else tok_pattern + 1 */
    char *allowed;
    char *disallowed;
    size_t max_input;
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
    {TM_OPT_SIZE, "max-input", 0, OPT(max_input), "SIZE", "largest input accepted", "1G", 1,
     4.0 * 1024 * 1024 * 1024},
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

static int encode_run(void *vcfg, struct tm_run *run)
{
    struct tok_cmd_options *opt = vcfg;
    struct tok_vocab *vocab = NULL;
    struct tok_encoder *enc = NULL;
    struct tm_buf in;
    struct tok_ids ids;
    tm_buf_init(&in, opt->max_input);
    tok_ids_init(&ids, 0);
    int rc = open_encoder(opt, &vocab, &enc);
    if (rc != TM_OK)
        goto out;
    const char *dis =
        opt->disallowed && strcmp(opt->disallowed, "none") == 0 ? "" : opt->disallowed;
    rc = tok_encoder_set_special(enc, opt->allowed, dis);
    if (rc != TM_OK)
        goto out;
    rc = read_stdin(opt->max_input, &in);
    if (rc != TM_OK)
        goto out;
    rc = tok_encode(enc, in.data ? in.data : "", in.len, &ids);
    if (rc != TM_OK)
        goto out;
    for (size_t i = 0; i < ids.n; i++)
        printf(i ? " %u" : "%u", ids.v[i]);
    putchar('\n');
    if (fflush(stdout) != 0) {
        tm_log_error("stdout: %s", strerror(errno));
        rc = TM_ERR_IO;
    }
out:
    tok_ids_release(&ids);
    tm_buf_release(&in);
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
        "disallowed special token.",
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
