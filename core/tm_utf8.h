/* tm_utf8: well-formed UTF-8 (Unicode 15, chapter 3, table 3-7) and its repair with U+FFFD.
 * The sequence check is inline: ingest's normalizer runs it on every non-ASCII byte. */
#ifndef TM_UTF8_H
#define TM_UTF8_H

#include <stddef.h>
#include <stdint.h>

#include "tm_buf.h"

/* Allowed range of the second byte after each lead byte (Table 3-7); the third and fourth bytes
 * are always 80..BF. len 0 marks a byte that can never start a sequence. */
struct tm_utf8_lead {
    unsigned char len, lo, hi;
};

static inline struct tm_utf8_lead tm_utf8_lead_of(unsigned char c)
{
    if (c < 0xc2)
        return (struct tm_utf8_lead){0, 0, 0}; /* continuation bytes and overlong C0/C1 */
    if (c < 0xe0)
        return (struct tm_utf8_lead){2, 0x80, 0xbf};
    if (c == 0xe0)
        return (struct tm_utf8_lead){3, 0xa0, 0xbf}; /* excludes overlong 3-byte forms */
    if (c == 0xed)
        return (struct tm_utf8_lead){3, 0x80, 0x9f}; /* excludes surrogates D800..DFFF */
    if (c < 0xf0)
        return (struct tm_utf8_lead){3, 0x80, 0xbf};
    if (c == 0xf0)
        return (struct tm_utf8_lead){4, 0x90, 0xbf}; /* excludes overlong 4-byte forms */
    if (c < 0xf4)
        return (struct tm_utf8_lead){4, 0x80, 0xbf};
    if (c == 0xf4)
        return (struct tm_utf8_lead){4, 0x80, 0x8f}; /* excludes > U+10FFFF */
    return (struct tm_utf8_lead){0, 0, 0};           /* F5..FF never appear */
}

/* Looks at the non-ASCII sequence starting at p[0] (p[0] >= 0x80), with `n` bytes available.
 * Returns its length when it is well formed; otherwise returns 0 and sets *bad to the length of
 * its maximal ill-formed subpart (at least 1): the longest prefix that could still start a
 * well-formed sequence, which becomes one U+FFFD. */
static inline size_t tm_utf8_seq(const unsigned char *p, size_t n, size_t *bad)
{
    struct tm_utf8_lead l = tm_utf8_lead_of(p[0]);
    if (l.len == 0 || n < 2 || p[1] < l.lo || p[1] > l.hi) {
        *bad = 1;
        return 0;
    }
    for (size_t i = 2; i < l.len; i++) {
        if (i >= n || (p[i] & 0xc0) != 0x80) {
            *bad = i;
            return 0;
        }
    }
    return l.len;
}

/* Appends in[0..n) to `out` with every maximal ill-formed subpart replaced by U+FFFD (NUL bytes
 * are kept: they are valid UTF-8). *repairs (may be NULL) is increased by the replacements
 * made. TM_OK or TM_ERR_TOOBIG from `out`. */
int tm_utf8_repair(const char *in, size_t n, struct tm_buf *out, uint64_t *repairs);

#endif
