/* chop_source.h: a read callback (ing_read_fn) for tests and fuzz targets that hands out a
 * memory buffer 1 to 7 bytes per call, in a fixed pseudo-random pattern, so lines and records
 * span reader refills. It can also fail with a given code once some bytes were delivered.
 * Header-only (static functions), included by tests/unit/test_util.h and tests/fuzz/fuzz_sink.h. */
#ifndef TM_TEST_CHOP_SOURCE_H
#define TM_TEST_CHOP_SOURCE_H

#include <stdint.h>
#include <string.h>

struct chop {
    const unsigned char *p; /* borrowed; must outlive the reads */
    size_t n, pos;
    uint32_t state;      /* LCG state: the same seed gives the same piece sizes */
    size_t fail_at;      /* with fail_rc: fail once this many bytes were delivered */
    int fail_rc;         /* 0: never fail; else the (negative) code to return */
    int calls_after_end; /* reads made after the last byte was delivered */
};

/* Sets up a source over p[0..n) whose piece sizes follow from `seed`; it never fails. */
static inline void chop_init(struct chop *c, const void *p, size_t n, uint32_t seed)
{
    memset(c, 0, sizeof(*c));
    c->p = p;
    c->n = n;
    c->state = seed;
}

/* ing_read_fn: copies the next 1..7 bytes (at most `cap`) into buf; 0 at the end. */
static inline long chop_read(void *ctx, void *buf, size_t cap)
{
    struct chop *c = ctx;
    if (c->fail_rc && c->pos >= c->fail_at)
        return c->fail_rc;
    if (c->pos == c->n)
        c->calls_after_end++;
    c->state = c->state * 1103515245u + 12345u; /* the ANSI C example rand() LCG */
    size_t k = 1 + (c->state >> 16) % 7;
    if (k > cap)
        k = cap;
    if (k > c->n - c->pos)
        k = c->n - c->pos;
    if (c->fail_rc && k > c->fail_at - c->pos)
        k = c->fail_at - c->pos;
    if (k)
        memcpy(buf, c->p + c->pos, k);
    c->pos += k;
    return (long)k;
}

#endif
