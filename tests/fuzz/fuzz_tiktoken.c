/* fuzz_tiktoken.c: libFuzzer target for the .tiktoken rank-file parser and the encoder and
 * decoder built on what it accepts.
 *
 * The input is split at its first form feed: the part before is a rank file, the part after a
 * text. A rank file is accepted or refused (never a crash); when accepted and it holds the 256
 * single bytes (so every text can be encoded), the text (made valid UTF-8 by replacing bad bytes)
 * is encoded with each pattern and decoded back through the streaming decoder, which must give
 * the text's bytes exactly, and every id must be below the vocabulary's size. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenize.h"
#include "tm_err.h"
#include "tm_log.h"
#include "fuzz_quiet.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct sink {
    unsigned char *buf;
    size_t n, cap;
};

static int emit(void *ctx, const unsigned char *bytes, size_t len)
{
    struct sink *s = ctx;
    if (s->n + len > s->cap) {
        s->cap = (s->n + len) * 2;
        s->buf = realloc(s->buf, s->cap);
        if (!s->buf)
            abort();
    }
    memcpy(s->buf + s->n, bytes, len);
    s->n += len;
    return 0;
}

/* Replaces every byte that does not start a valid UTF-8 sequence with '?'. */
static size_t make_utf8(const uint8_t *in, size_t n, char *out)
{
    size_t i = 0, o = 0;
    while (i < n) {
        uint8_t c = in[i];
        size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        int ok = len && i + len <= n && !(len == 1 && c == 0);
        for (size_t k = 1; ok && k < len; k++)
            ok = (in[i + k] & 0xc0) == 0x80;
        uint32_t cp = 0;
        if (ok) {
            cp = len == 1 ? c : (uint32_t)(c & (0x7f >> len));
            for (size_t k = 1; k < len; k++)
                cp = cp << 6 | (in[i + k] & 0x3f);
            static const uint32_t min[5] = {0, 0, 0x80, 0x800, 0x10000};
            ok = cp >= min[len] && cp <= 0x10ffff && !(cp >= 0xd800 && cp <= 0xdfff);
        }
        if (!ok) {
            out[o++] = '?';
            i++;
            continue;
        }
        memcpy(out + o, in + i, len);
        o += len;
        i += len;
    }
    return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_quiet_logs();
    const uint8_t *ff = memchr(data, '\f', size);
    size_t vlen = ff ? (size_t)(ff - data) : size;
    struct tok_vocab *v;
    int rc = tok_vocab_load_mem("fuzz", (const char *)data, vlen, &v);
    if (rc != TM_OK)
        return 0;
    int all_bytes = 1;
    for (unsigned b = 0; b < 256 && all_bytes; b++) {
        unsigned char byte = (unsigned char)b;
        uint32_t rank;
        all_bytes = tok_vocab_rank(v, &byte, 1, &rank) == TM_OK;
    }
    if (all_bytes && ff) {
        size_t tlen = size - vlen - 1;
        char *text = malloc(tlen + 1);
        if (!text)
            abort();
        tlen = make_utf8(ff + 1, tlen, text);
        static const enum tok_pattern pats[] = {TOK_PAT_R50K, TOK_PAT_CL100K, TOK_PAT_O200K};
        for (size_t p = 0; p < sizeof pats / sizeof pats[0]; p++) {
            struct tok_encoder *e;
            if (tok_encoder_new(v, pats[p], &e) != TM_OK)
                abort();
            struct tok_ids ids;
            tok_ids_init(&ids, 0);
            if (tok_encode_ordinary(e, text, tlen, &ids) != TM_OK)
                abort();
            struct sink s = {0};
            struct tok_decoder d;
            tok_decoder_init(&d, e, emit, &s);
            for (size_t k = 0; k < ids.n; k++) {
                if (ids.v[k] >= tok_vocab_count(v) || tok_decoder_push(&d, ids.v[k]) != TM_OK)
                    abort();
            }
            if (tok_decoder_finish(&d) != TM_OK || s.n != tlen ||
                (tlen && memcmp(s.buf, text, tlen)))
                abort();
            free(s.buf);
            tok_ids_release(&ids);
            tok_encoder_free(e);
        }
        free(text);
    }
    tok_vocab_free(v);
    return 0;
}
