/* tok_vocab.c: loading .tiktoken rank files and the bytes <-> rank maps.
 *
 * All token bytes live in one blob; rank -> bytes is an array indexed by rank, bytes -> rank an
 * open-addressing table of ranks (linear probing, load factor <= 1/2) whose keys are compared
 * through the rank -> bytes array, so each token is stored once. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "tok_internal.h"
#include "tm_err.h"
#include "tm_fs.h"
#include "tm_log.h"
#include "tm_mem.h"

struct tok_span {
    uint32_t off; /* into blob */
    uint32_t len; /* 0: no token has this rank */
};

struct tok_vocab {
    unsigned char *blob;
    size_t blob_len;
    struct tok_span *by_rank; /* [end] */
    uint32_t end;             /* one past the highest rank */
    size_t count;
    uint32_t *table; /* [mask + 1] ranks or TOK_NO_RANK */
    size_t mask;
    size_t max_len;
};

uint64_t tok_hash(const void *bytes, size_t len)
{
    return XXH3_64bits(bytes, len);
}

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* Decodes standard padded base64 of `n` chars into out (room for 3*n/4 bytes). Returns the
 * byte count, or -1 when the text is not valid base64. */
static long b64_decode(const char *s, size_t n, unsigned char *out)
{
    if (n == 0 || n % 4 != 0)
        return -1;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 4) {
        int v[4];
        int pad = 0;
        for (int k = 0; k < 4; k++) {
            unsigned char c = (unsigned char)s[i + k];
            if (c == '=' && i + 4 == n && k >= 2) {
                v[k] = 0;
                pad++;
            } else if (pad || (v[k] = b64_value(c)) < 0) {
                return -1;
            }
        }
        uint32_t w =
            (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
        out[o++] = (unsigned char)(w >> 16);
        if (pad < 2)
            out[o++] = (unsigned char)(w >> 8);
        if (pad < 1)
            out[o++] = (unsigned char)w;
    }
    return (long)o;
}

static size_t table_slot(const struct tok_vocab *v, const unsigned char *bytes, size_t len,
                         int *found)
{
    size_t i = (size_t)tok_hash(bytes, len) & v->mask;
    for (;;) {
        uint32_t r = v->table[i];
        if (r == TOK_NO_RANK) {
            *found = 0;
            return i;
        }
        const struct tok_span *sp = &v->by_rank[r];
        if (sp->len == len && memcmp(v->blob + sp->off, bytes, len) == 0) {
            *found = 1;
            return i;
        }
        i = (i + 1) & v->mask;
    }
}

uint32_t tok_vocab_rank_or_none(const struct tok_vocab *v, const unsigned char *bytes, size_t len)
{
    if (len == 0 || len > v->max_len)
        return TOK_NO_RANK;
    int found;
    size_t i = table_slot(v, bytes, len, &found);
    return found ? v->table[i] : TOK_NO_RANK;
}

int tok_vocab_rank(const struct tok_vocab *v, const void *bytes, size_t len, uint32_t *rank)
{
    uint32_t r = tok_vocab_rank_or_none(v, bytes, len);
    if (r == TOK_NO_RANK)
        return TM_ERR_NOTFOUND;
    *rank = r;
    return TM_OK;
}

const unsigned char *tok_vocab_bytes(const struct tok_vocab *v, uint32_t rank, size_t *len)
{
    if (rank >= v->end || v->by_rank[rank].len == 0)
        return NULL;
    *len = v->by_rank[rank].len;
    return v->blob + v->by_rank[rank].off;
}

size_t tok_vocab_count(const struct tok_vocab *v)
{
    return v->count;
}

uint32_t tok_vocab_end(const struct tok_vocab *v)
{
    return v->end;
}

size_t tok_vocab_max_len(const struct tok_vocab *v)
{
    return v->max_len;
}

void tok_vocab_free(struct tok_vocab *v)
{
    if (!v)
        return;
    free(v->blob);
    free(v->by_rank);
    free(v->table);
    free(v);
}

/* One parsed line, before the rank array's size is known. */
struct line_rec {
    uint32_t off, len, rank;
};

int tok_vocab_load_mem(const char *name, const char *data, size_t len, struct tok_vocab **out)
{
    *out = NULL;
    int rc = TM_ERR_FORMAT;
    struct tok_vocab *v = tm_xcalloc(1, sizeof(*v));
    struct line_rec *recs = NULL;
    size_t nrecs = 0, recs_cap = 0;
    /* Decoded tokens are never longer than their base64 text, so `len` bounds the blob. */
    v->blob = malloc(len ? len : 1);
    if (!v->blob) {
        rc = TM_ERR_NOMEM;
        goto fail;
    }
    size_t pos = 0, lineno = 0;
    while (pos < len) {
        lineno++;
        const char *line = data + pos;
        const char *nl = memchr(line, '\n', len - pos);
        size_t llen = nl ? (size_t)(nl - line) : len - pos;
        pos += llen + (nl ? 1 : 0);
        if (llen && line[llen - 1] == '\r')
            llen--;
        if (llen == 0)
            continue; /* tiktoken's loader skips empty lines too */
        const char *sp = memchr(line, ' ', llen);
        if (!sp) {
            tm_log_error("%s:%zu: expected 'base64 rank'", name, lineno);
            goto fail;
        }
        size_t b64len = (size_t)(sp - line);
        if (b64len > (TOK_VOCAB_MAX_TOKEN_LEN + 2) / 3 * 4) {
            tm_log_error("%s:%zu: token longer than %d bytes", name, lineno,
                         TOK_VOCAB_MAX_TOKEN_LEN);
            rc = TM_ERR_TOOBIG;
            goto fail;
        }
        long tlen = b64_decode(line, b64len, v->blob + v->blob_len);
        if (tlen <= 0) {
            tm_log_error("%s:%zu: invalid base64 token", name, lineno);
            goto fail;
        }
        const char *rs = sp + 1, *re = line + llen;
        uint64_t rank = 0;
        if (rs == re) {
            tm_log_error("%s:%zu: missing rank", name, lineno);
            goto fail;
        }
        for (const char *c = rs; c < re; c++) {
            if (*c < '0' || *c > '9') {
                tm_log_error("%s:%zu: rank is not a decimal number", name, lineno);
                goto fail;
            }
            rank = rank * 10 + (uint64_t)(*c - '0');
            if (rank >= TOK_VOCAB_MAX_TOKENS) {
                tm_log_error("%s:%zu: rank over the cap of %u", name, lineno,
                             TOK_VOCAB_MAX_TOKENS - 1);
                rc = TM_ERR_TOOBIG;
                goto fail;
            }
        }
        if (nrecs == recs_cap) {
            recs_cap = recs_cap ? recs_cap * 2 : 1024;
            recs = tm_xreallocarray(recs, recs_cap, sizeof(*recs));
        }
        recs[nrecs++] = (struct line_rec){(uint32_t)v->blob_len, (uint32_t)tlen, (uint32_t)rank};
        v->blob_len += (size_t)tlen;
        if ((size_t)tlen > v->max_len)
            v->max_len = (size_t)tlen;
        if ((uint32_t)rank + 1 > v->end)
            v->end = (uint32_t)rank + 1;
    }
    if (nrecs == 0) {
        tm_log_error("%s: no tokens", name);
        goto fail;
    }
    v->count = nrecs;
    v->by_rank = tm_xcalloc(v->end, sizeof(*v->by_rank));
    size_t tsize = 16;
    while (tsize < nrecs * 2)
        tsize *= 2;
    v->mask = tsize - 1;
    v->table = tm_xmalloc(tsize * sizeof(*v->table));
    memset(v->table, 0xff, tsize * sizeof(*v->table));
    /* Line numbers are not kept per record: a duplicate is reported with its rank instead. */
    for (size_t i = 0; i < nrecs; i++) {
        struct line_rec *r = &recs[i];
        if (v->by_rank[r->rank].len) {
            tm_log_error("%s: rank %u appears twice", name, r->rank);
            goto fail;
        }
        int found;
        size_t slot = table_slot(v, v->blob + r->off, r->len, &found);
        if (found) {
            tm_log_error("%s: token of rank %u repeats rank %u", name, r->rank, v->table[slot]);
            goto fail;
        }
        v->by_rank[r->rank] = (struct tok_span){r->off, r->len};
        v->table[slot] = r->rank;
    }
    free(recs);
    *out = v;
    return TM_OK;
fail:
    free(recs);
    tok_vocab_free(v);
    return rc;
}

int tok_vocab_load(const char *path, struct tok_vocab **out)
{
    *out = NULL;
    char *data = NULL;
    size_t len = 0;
    int rc = tm_read_file(path, TOK_VOCAB_MAX_FILE, &data, &len);
    if (rc != TM_OK) {
        tm_log_error("%s: cannot read vocabulary: %s", path, tm_strerror(rc));
        return rc;
    }
    rc = tok_vocab_load_mem(path, data, len, out);
    free(data);
    return rc;
}
