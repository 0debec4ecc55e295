/* ing_text: UTF-8 repair, NUL removal and CRLF folding, on the hot path of every document.
 *
 * Most input is ASCII, so the loop looks at 8 bytes at a time: one load tells whether a word
 * holds a high bit (non-ASCII), a NUL or a CR, and a clean word is copied out whole. Anything
 * else goes through a precise per-sequence validator built from Unicode's table of well-formed
 * byte sequences (Unicode 15, ch. 3, Table 3-7). */
#include <stdint.h>
#include <string.h>

#include "../core/tm_err.h"
#include "../core/tm_utf8.h"
#include "ing_internal.h"

#define ONES  0x0101010101010101ull
#define HIGHS 0x8080808080808080ull
#define CRS   0x0d0d0d0d0d0d0d0dull

/* Non-zero when the word needs the slow path: a byte >= 0x80, a zero byte or a CR. The
 * "has zero byte" test is the classic (v - 0x01..) & ~v & 0x80.. (exact when no byte has its
 * high bit set, which the first term already rules out). */
static inline uint64_t word_special(uint64_t v)
{
    uint64_t nul = (v - ONES) & ~v;
    uint64_t c = v ^ CRS;
    uint64_t cr = (c - ONES) & ~c;
    return (v | nul | cr) & HIGHS;
}

/* Index of the first flagged byte of a word_special() mask, in memory order. */
static inline size_t first_special(uint64_t mask)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    return (size_t)__builtin_ctzll(mask) >> 3;
#else
    (void)mask;
    return 0; /* big endian: let the byte path find it */
#endif
}

/* The UTF-8 replacement character U+FFFD. */
static const char repl[3] = {(char)0xef, (char)0xbf, (char)0xbd};

static size_t buf_limit(const struct tm_buf *b)
{
    size_t max = b->max ? b->max : SIZE_MAX / 2;
    return b->cap < max ? b->cap : max;
}

/* Makes room for `need` more bytes at w, preferably for the whole `rest` of the input plus
 * `need`, so growth happens a logarithmic number of times. Updates *w and *lim. */
static int grow(struct tm_buf *out, char **w, char **lim, size_t need, size_t rest)
{
    out->len = (size_t)(*w - out->data);
    int rc = TM_ERR_TOOBIG;
    if (rest <= SIZE_MAX / 4)
        rc = tm_buf_reserve(out, rest + need);
    if (rc == TM_ERR_TOOBIG)
        rc = tm_buf_reserve(out, need); /* near the cap: exactly what this write needs */
    if (rc)
        return rc;
    *w = out->data + out->len;
    *lim = out->data + buf_limit(out);
    return TM_OK;
}

int ing_normalize(const char *in, size_t n, struct tm_buf *out, struct ing_norm_stats *st)
{
    const unsigned char *p = (const unsigned char *)in;
    const unsigned char *end = p + n;
    int rc;
    /* Clean input maps 1:1, so reserving n up front usually means no growth at all; near the
     * cap, reserve only what fits and let grow() decide exactly. */
    rc = tm_buf_reserve(out, n);
    if (rc == TM_ERR_TOOBIG)
        rc = tm_buf_reserve(out, 0);
    if (rc)
        return rc;
    char *w = out->data + out->len;
    char *lim = out->data + buf_limit(out);

    while (p < end) {
        /* Fast path: whole clean words. */
        while ((size_t)(end - p) >= 8 && lim - w >= 8) {
            uint64_t v;
            memcpy(&v, p, 8);
            uint64_t sp = word_special(v);
            memcpy(w, p, 8);
            if (sp) {
                /* Keep the clean bytes before the first special one (the lowest flagged byte
                 * is exact; later flags may be borrow artefacts, and are redone anyway). */
                size_t k = first_special(sp);
                w += k;
                p += k;
                break;
            }
            w += 8;
            p += 8;
        }
        if (p >= end)
            break;
        /* Slow path: one byte or one sequence, then the fast path resumes. */
        unsigned char c = *p;
        if (c < 0x80) {
            if (c == 0) {
                st->nul_removed++;
                p++;
                continue;
            }
            if (c == '\r') {
                /* A run of CRs (and NULs) ending at an LF is a line end: CRLF, or CRCRLF from a
                 * file converted twice. Dropping the whole run guarantees that no CRLF is left
                 * in the output, so normalizing twice changes nothing. */
                const unsigned char *q = p;
                uint64_t crs = 0, nuls = 0;
                while (q < end && (*q == '\r' || *q == 0)) {
                    crs += *q == '\r';
                    nuls += *q == 0;
                    q++;
                }
                if (q < end && *q == '\n') {
                    st->crlf += crs;
                    st->nul_removed += nuls;
                    p = q; /* the LF is copied next */
                    continue;
                }
            }
            if (w == lim && (rc = grow(out, &w, &lim, 1, (size_t)(end - p))))
                goto done;
            *w++ = (char)c;
            p++;
            continue;
        }
        size_t bad = 0;
        size_t len = tm_utf8_seq(p, (size_t)(end - p), &bad);
        const char *src = len ? (const char *)p : repl;
        size_t wlen = len ? len : sizeof repl;
        if ((size_t)(lim - w) < wlen && (rc = grow(out, &w, &lim, wlen, (size_t)(end - p))))
            goto done;
        memcpy(w, src, wlen);
        w += wlen;
        if (len) {
            p += len;
        } else {
            st->utf8_repairs++;
            p += bad;
        }
    }
    rc = TM_OK;
done:
    out->len = (size_t)(w - out->data);
    out->data[out->len] = '\0';
    return rc;
}

int ing_is_clean(const char *in, size_t n)
{
    const unsigned char *p = (const unsigned char *)in;
    const unsigned char *end = p + n;
    while (p < end) {
        while ((size_t)(end - p) >= 8) {
            uint64_t v;
            memcpy(&v, p, 8);
            if (word_special(v))
                break;
            p += 8;
        }
        if (p >= end)
            break;
        unsigned char c = *p;
        if (c < 0x80) {
            if (c == 0 || c == '\r')
                return 0;
            p++;
            continue;
        }
        size_t bad;
        size_t len = tm_utf8_seq(p, (size_t)(end - p), &bad);
        if (!len)
            return 0;
        p += len;
    }
    return 1;
}
