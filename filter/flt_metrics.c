/* flt_metrics.c: the measurements behind the quality rules, in as few passes as possible.
 *
 * Definitions (the rule table in flt_rules.c cites where each threshold comes from):
 *   - a word is a maximal run of bytes that are not ASCII whitespace (Gopher splits on
 *     whitespace); its length is counted in code points;
 *   - a line is the text between newlines, stripped of surrounding whitespace; line rules look
 *     at non-empty lines only; a paragraph is a run of non-empty lines between blank lines;
 *   - character fractions of repeated lines, paragraphs and n-grams are in bytes, over the bytes
 *     of all non-empty lines (lines) or of all words (n-grams);
 *   - n-grams are of words, compared by a 64-bit hash of the words' bytes (xxh3).
 *
 * Speed (the filter's goal is 100 MB/s per core with every rule on): one byte loop classifies
 * and counts, one loop over lines measures them, and the n-gram statistics touch only what can
 * repeat. A duplicated n-gram (n >= 6) starts with a duplicated 5-gram, so positions whose
 * 5-gram occurs once are skipped for n = 6..10 without changing the result; likewise the top 3-
 * and 4-gram are counted only where the (n-1)-gram occurs twice or more. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <pthread.h>
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "flt_internal.h"
#include "../core/tm_log.h"
#include "../core/tm_mem.h"

/* ---- Bytes ------------------------------------------------------------------------------ */

static int is_ws(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* ---- An open-addressing counter of 64-bit hashes ---------------------------------------- */

/* One uint64 per slot: the key's top 32 bits (a fingerprint, never 0) above a 32-bit count, so
 * a probe touches one word. The slot comes from the key's other bits (a multiply's top bits), so
 * two keys match only when they agree on the fingerprint and land on the same probe path: with
 * 64-bit hashes of n-grams, a false match needs a 2^-40 coincidence or worse per pair. */
struct counter {
    uint64_t *slots; /* 0 is empty */
    size_t alloc;    /* slots allocated */
    size_t mask;     /* slots in use - 1 (a power of two minus one) */
    unsigned shift;  /* 64 - log2(slots in use) */
};

static void counter_reset(struct counter *c, size_t items)
{
    size_t want = 64;
    while (want < items * 2)
        want <<= 1;
    if (want > c->alloc) {
        free(c->slots);
        c->slots = tm_xcalloc(want, sizeof(*c->slots));
        c->alloc = want;
    } else {
        /* Only the part in use is cleared: a small document after a big one costs little. */
        memset(c->slots, 0, want * sizeof(*c->slots));
    }
    c->mask = want - 1;
    c->shift = 64;
    for (size_t w = want; w > 1; w >>= 1)
        c->shift--;
}

static void counter_release(struct counter *c)
{
    free(c->slots);
    memset(c, 0, sizeof(*c));
}

static inline uint64_t fingerprint(uint64_t key)
{
    uint64_t fp = key >> 32;
    return (fp ? fp : 1) << 32;
}

static inline size_t slot_of(const struct counter *c, uint64_t key)
{
    return (size_t)(((key & 0xffffffffu) * 0x9e3779b97f4a7c15ull) >> c->shift);
}

/* Adds one to `key`; returns its slot (the count is then counter_at(c, slot)). */
static inline size_t counter_add(struct counter *c, uint64_t key)
{
    uint64_t fp = fingerprint(key);
    size_t i = slot_of(c, key);
    for (;;) {
        uint64_t v = c->slots[i];
        if ((v & ~(uint64_t)0xffffffffu) == fp) {
            c->slots[i] = v + 1;
            return i;
        }
        if (v == 0) {
            c->slots[i] = fp | 1;
            return i;
        }
        i = (i + 1) & c->mask;
    }
}

static inline uint32_t counter_at(const struct counter *c, size_t slot)
{
    return (uint32_t)c->slots[slot];
}

static inline uint32_t counter_get(const struct counter *c, uint64_t key)
{
    uint64_t fp = fingerprint(key);
    size_t i = slot_of(c, key);
    for (;;) {
        uint64_t v = c->slots[i];
        if ((v & ~(uint64_t)0xffffffffu) == fp)
            return (uint32_t)v;
        if (v == 0)
            return 0;
        i = (i + 1) & c->mask;
    }
}

/* ---- Scratch ------------------------------------------------------------------------------ */

struct flt_scratch {
    uint64_t *wh;   /* word hashes */
    uint32_t *wlen; /* word lengths in bytes */
    uint32_t *mark; /* per position: count of the n-gram starting there */
    uint64_t *g;    /* per position: hash of the n-gram starting there, for the current n */
    uint32_t *slot; /* per position: its n-gram's counter slot */
    size_t wcap;
    size_t nw;           /* words of the last flt_metrics call with FLT_G_NGRAMS */
    uint64_t word_bytes; /* their bytes */
    struct counter c1, c2;
};

struct flt_scratch *flt_scratch_new(void)
{
    return tm_xcalloc(1, sizeof(struct flt_scratch));
}

void flt_scratch_free(struct flt_scratch *s)
{
    if (!s)
        return;
    free(s->wh);
    free(s->wlen);
    free(s->mark);
    free(s->g);
    free(s->slot);
    counter_release(&s->c1);
    counter_release(&s->c2);
    free(s);
}

static void scratch_words(struct flt_scratch *s, size_t n)
{
    if (n <= s->wcap)
        return;
    size_t cap = s->wcap ? s->wcap : 1024;
    while (cap < n)
        cap *= 2;
    s->wh = tm_xreallocarray(s->wh, cap, sizeof(*s->wh));
    s->wlen = tm_xreallocarray(s->wlen, cap, sizeof(*s->wlen));
    s->mark = tm_xreallocarray(s->mark, cap, sizeof(*s->mark));
    s->g = tm_xreallocarray(s->g, cap, sizeof(*s->g));
    s->slot = tm_xreallocarray(s->slot, cap, sizeof(*s->slot));
    s->wcap = cap;
}

/* ---- Short words the rules look for ------------------------------------------------------ */

/* A word stripped of ASCII punctuation at both ends and lower-cased, packed into a uint64 when
 * it is 1..8 ASCII letters; 0 otherwise. */
static uint64_t packed_word(const unsigned char *w, size_t len)
{
    size_t a = 0, b = len;
    while (a < b && !((w[a] | 0x20) >= 'a' && (w[a] | 0x20) <= 'z') && w[a] < 0x80)
        a++;
    while (b > a && !((w[b - 1] | 0x20) >= 'a' && (w[b - 1] | 0x20) <= 'z') && w[b - 1] < 0x80)
        b--;
    if (b - a == 0 || b - a > 8)
        return 0;
    uint64_t v = 0;
    for (size_t i = a; i < b; i++) {
        unsigned c = w[i] | 0x20;
        if (c < 'a' || c > 'z')
            return 0;
        v = v << 8 | c;
    }
    return v;
}

#define PACK2(a, b)             ((uint64_t)(a) << 8 | (b))
#define PACK3(a, b, c)          (PACK2(a, b) << 8 | (c))
#define PACK4(a, b, c, d)       (PACK3(a, b, c) << 8 | (d))
#define PACK5(a, b, c, d, e)    (PACK4(a, b, c, d) << 8 | (e))
#define PACK6(a, b, c, d, e, f) (PACK5(a, b, c, d, e) << 8 | (f))

enum word_code {
    W_NONE = 0,
    W_STOP, /* one of Gopher's stop words */
    W_LOREM,
    W_IPSUM,
    W_TERMS,
    W_OF, /* also a stop word */
    W_USE,
    W_USES,
    W_PRIVACY,
    W_POLICY,
    W_COOKIE,
    W_COOKIES,
};

/* Gopher's stop words (Rae et al. 2021, A.1.1): the, be, to, of, and, that, have, with; plus
 * the words of C4's markers (Raffel et al. 2020, 2.2): "lorem ipsum", "terms of use",
 * "privacy policy", "cookie policy", "uses cookies", "use of cookies", "use cookies". */
static enum word_code word_code(uint64_t p)
{
    switch (p) {
    case PACK3('t', 'h', 'e'):
    case PACK2('b', 'e'):
    case PACK2('t', 'o'):
    case PACK3('a', 'n', 'd'):
    case PACK4('t', 'h', 'a', 't'):
    case PACK4('h', 'a', 'v', 'e'):
    case PACK4('w', 'i', 't', 'h'):
        return W_STOP;
    case PACK2('o', 'f'):
        return W_OF;
    case PACK5('l', 'o', 'r', 'e', 'm'):
        return W_LOREM;
    case PACK5('i', 'p', 's', 'u', 'm'):
        return W_IPSUM;
    case PACK5('t', 'e', 'r', 'm', 's'):
        return W_TERMS;
    case PACK3('u', 's', 'e'):
        return W_USE;
    case PACK4('u', 's', 'e', 's'):
        return W_USES;
    case PACK6('p', 'o', 'l', 'i', 'c', 'y'):
        return W_POLICY;
    case PACK6('c', 'o', 'o', 'k', 'i', 'e'):
        return W_COOKIE;
    case (PACK6('c', 'o', 'o', 'k', 'i', 'e') << 8 | 's'):
        return W_COOKIES;
    case (PACK6('p', 'r', 'i', 'v', 'a', 'c') << 8 | 'y'):
        return W_PRIVACY;
    default:
        return W_NONE;
    }
}

/* Whether the last words (newest in w0) end one of C4's policy phrases. */
static int policy_phrase(int w2, int w1, int w0)
{
    if (w0 == W_POLICY && (w1 == W_PRIVACY || w1 == W_COOKIE))
        return 1;
    if (w0 == W_COOKIES && (w1 == W_USES || w1 == W_USE || (w1 == W_OF && w2 == W_USE)))
        return 1;
    return w0 == W_USE && w1 == W_OF && w2 == W_TERMS;
}

/* Case-insensitive "javascript" inside w[0..len). */
static int has_javascript(const unsigned char *w, size_t len)
{
    static const char js[] = "javascript";
    for (size_t i = 0; i + 10 <= len; i++) {
        if ((w[i] | 0x20) != 'j')
            continue;
        size_t k = 1;
        while (k < 10 && (w[i + k] | 0x20) == (unsigned char)js[k])
            k++;
        if (k == 10)
            return 1;
    }
    return 0;
}

/* ---- Lines --------------------------------------------------------------------------------- */

/* Bullet marks a Gopher-style list line starts with: '-', '*', and U+2022 (bullet), U+2023,
 * U+2043, U+25AA, U+25AB, U+25CF, U+25CB, U+25E6, U+25A0, U+25A1, U+00B7. */
static int starts_with_bullet(const unsigned char *l, size_t len)
{
    if (len >= 1 && (l[0] == '-' || l[0] == '*'))
        return 1;
    if (len >= 2 && l[0] == 0xc2 && l[1] == 0xb7)
        return 1;
    if (len < 3)
        return 0;
    if (l[0] == 0xe2 && l[1] == 0x80 && (l[2] == 0xa2 || l[2] == 0xa3))
        return 1;
    if (l[0] == 0xe2 && l[1] == 0x81 && l[2] == 0x83)
        return 1;
    if (l[0] == 0xe2 && l[1] == 0x96 &&
        (l[2] == 0xaa || l[2] == 0xab || l[2] == 0xa0 || l[2] == 0xa1))
        return 1;
    return l[0] == 0xe2 && l[1] == 0x97 && (l[2] == 0x8f || l[2] == 0x8b || l[2] == 0xa6);
}

static int ends_with_ellipsis(const unsigned char *l, size_t len)
{
    if (len >= 3 && l[len - 1] == '.' && l[len - 2] == '.' && l[len - 3] == '.')
        return 1;
    return len >= 3 && l[len - 3] == 0xe2 && l[len - 2] == 0x80 && l[len - 1] == 0xa6;
}

/* FineWeb's terminal punctuation ('.', '\'', '"', '!', '?'; Penedo et al. 2024, datatrove's
 * FineWebQualityFilter) and C4's ('.', '!', '?', '"'; Raffel et al. 2020). */
static int ends_fineweb_punct(const unsigned char *l, size_t len)
{
    unsigned char c = len ? l[len - 1] : 0;
    return c == '.' || c == '\'' || c == '"' || c == '!' || c == '?';
}

static int ends_c4_punct(const unsigned char *l, size_t len)
{
    unsigned char c = len ? l[len - 1] : 0;
    return c == '.' || c == '!' || c == '?' || c == '"';
}

/* Code points: bytes that are not continuation bytes (10xxxxxx), eight at a time. */
static size_t code_points(const unsigned char *p, size_t len)
{
    size_t cont = 0, i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t v;
        memcpy(&v, p + i, 8);
        uint64_t m = (v & ~(v << 1)) & 0x8080808080808080ull; /* bit 7 set, bit 6 clear */
        cont += (size_t)(((m >> 7) * 0x0101010101010101ull) >> 56);
    }
    for (; i < len; i++)
        cont += (p[i] & 0xc0) == 0x80;
    return len - cont;
}

/* FineWeb's short line: at most 30 characters (short_line_length = 30). */
#define FINEWEB_SHORT_LINE 30

/* ---- Word n-grams -------------------------------------------------------------------------- */

/* s->g[i] holds the hash of the n-gram at i for the current n; extending every n-gram by its
 * next word costs one multiply per position. */
static inline uint64_t extend(uint64_t h, uint64_t w)
{
    h ^= w + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    h *= 0xff51afd7ed558ccdull;
    return h ^ (h >> 32);
}

static void ngram_start(struct flt_scratch *s, size_t nw)
{
    for (size_t i = 0; i < nw; i++)
        s->g[i] = s->wh[i];
}

/* From (n-1)-grams to n-grams, for the nw - n + 1 positions that have one. */
static void ngram_extend(struct flt_scratch *s, size_t nw, unsigned n)
{
    for (size_t i = 0; i + n <= nw; i++)
        s->g[i] = extend(s->g[i], s->wh[i + n - 1]);
}

static inline uint64_t ngram_bytes(const uint32_t *wlen, size_t i, unsigned n)
{
    uint64_t b = 0;
    for (unsigned k = 0; k < n; k++)
        b += wlen[i + k];
    return b;
}

/* Top n-gram fractions for n = 2, 3, 4 into top[0..3): the bytes of the most frequent n-gram
 * (ties: the one covering more bytes) times its count, over all word bytes; 0 when no n-gram
 * occurs twice. An n-gram occurs twice only where its (n-1)-gram does, so n = 3 and 4 count
 * only those positions. Leaves s->g at 4-grams. */
static void top_ngrams(struct flt_scratch *s, size_t nw, uint64_t word_bytes, double top[3])
{
    for (int k = 0; k < 3; k++)
        top[k] = 0;
    ngram_start(s, nw);
    for (unsigned n = 2; n <= 4; n++) {
        if (nw < n)
            return;
        ngram_extend(s, nw, n);
        size_t np = nw - n + 1;
        counter_reset(&s->c1, np);
        for (size_t i = 0; i < np; i++) {
            if (n > 2 && s->mark[i] < 2) {
                s->slot[i] = UINT32_MAX;
                continue;
            }
            s->slot[i] = (uint32_t)counter_add(&s->c1, s->g[i]);
        }
        uint32_t best = 1;
        uint64_t best_bytes = 0;
        for (size_t i = 0; i < np; i++) {
            uint32_t c = s->slot[i] == UINT32_MAX ? 1 : counter_at(&s->c1, s->slot[i]);
            s->mark[i] = c;
            if (c < 2 || c < best)
                continue;
            uint64_t b = ngram_bytes(s->wlen, i, n);
            if (c > best || b > best_bytes) {
                best = c;
                best_bytes = b;
            }
        }
        for (size_t i = np; i < nw; i++)
            s->mark[i] = 1;
        if (best < 2)
            return; /* no n-gram repeats, so no longer one does */
        top[n - 2] = (double)best_bytes * best / (double)word_bytes;
    }
}

/* Duplicated n-gram fractions for n = 5..10 into dup[0..6), as Gopher defines them (and
 * datatrove's find_all_duplicate computes them): walking the words, an n-gram seen before at a
 * visited position adds its bytes and the walk jumps past it; otherwise it is remembered and the
 * walk moves one word. A position whose 5-gram occurs once cannot start a repeated n-gram, nor
 * match one, so it is stepped over without a lookup: the result is the same. */
static void dup_ngrams(struct flt_scratch *s, size_t nw, uint64_t word_bytes, double dup[6])
{
    for (int k = 0; k < 6; k++)
        dup[k] = 0;
    if (nw < 5 || word_bytes == 0)
        return;
    ngram_start(s, nw);
    for (unsigned n = 2; n <= 5; n++)
        ngram_extend(s, nw, n);
    size_t np5 = nw - 4;
    counter_reset(&s->c2, np5); /* all 5-grams, counted */
    for (size_t i = 0; i < np5; i++)
        s->slot[i] = (uint32_t)counter_add(&s->c2, s->g[i]);
    int any = 0;
    for (size_t i = 0; i < np5; i++) {
        s->mark[i] = counter_at(&s->c2, s->slot[i]);
        any |= s->mark[i] > 1;
    }
    if (!any)
        return;
    for (unsigned n = 5; n <= 10 && nw >= n; n++) {
        if (n > 5)
            ngram_extend(s, nw, n);
        size_t np = nw - n + 1;
        counter_reset(&s->c1, np);
        uint64_t rep = 0;
        size_t i = 0;
        while (i < np) {
            if (s->mark[i] < 2) {
                i++;
                continue;
            }
            if (counter_get(&s->c1, s->g[i])) {
                rep += ngram_bytes(s->wlen, i, n);
                i += n;
            } else {
                counter_add(&s->c1, s->g[i]);
                i++;
            }
        }
        dup[n - 5] = (double)rep / (double)word_bytes;
    }
}

/* ---- Code and math ------------------------------------------------------------------------- */

/* Markers of generated code in a file's head (StarCoder's filters, Li et al. 2023, looked for
 * "auto-generated" and similar in the first lines) and of license texts (The Stack's near-
 * license-only files). Compiled once, shared read-only; match data per call. */
static pcre2_code *re_autogen, *re_license;
static pthread_once_t re_once = PTHREAD_ONCE_INIT;
#define AUTOGEN_HEAD 2048 /* bytes of the head searched for a generator's marker */
#define LICENSE_HEAD 8192 /* bytes searched for a license's wording */

static pcre2_code *compile_or_die(const char *pat)
{
    int err;
    PCRE2_SIZE off;
    pcre2_code *re =
        pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED, PCRE2_CASELESS, &err, &off, NULL);
    if (!re) {
        tm_log_error("internal pattern does not compile at %zu: %s", (size_t)off, pat);
        abort();
    }
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* falls back to the interpreter on failure */
    return re;
}

static void re_build(void)
{
    /* A file that says it is generated, not one that mentions generating something ("the DFA
     * is auto-generated from", "jconfig.h is generated automatically for many systems"):
     * "do not edit", "@generated", "this file was generated", or a comment line that starts with
     * "generated by/from/with". */
    re_autogen = compile_or_die(
        "(?m)do not edit|@generated\\b|"
        "(?:this|the) (?:file|code|header|source)(?: file)? (?:is|was|has been) "
        "(?:auto-?|automatically )?generated|"
        "^[\\s/*#;!-]*(?:this file is |code |file )?(?:auto-?|automatically )?generated "
        "(?:automatically )?(?:by|from|with)\\b");
    re_license = compile_or_die(
        "permission is hereby granted|licensed under the apache license|"
        "gnu (?:lesser |library |affero )?general public license|spdx-license-identifier|"
        "redistribution and use in source and binary forms|this program is free software|"
        "mozilla public license|the software is provided \"as is\"");
}

static int re_search(pcre2_code *re, const char *text, size_t n)
{
    pcre2_match_data *md = pcre2_match_data_create(1, NULL);
    if (!md)
        return 0;
    int rc = pcre2_match(re, (PCRE2_SPTR)text, n, 0, 0, md, NULL);
    pcre2_match_data_free(md);
    return rc > 0;
}

/* A data line: mostly digits (a numeric array), or holding a base64-like run. */
#define DATA_LINE_MIN_DIGITS 8
#define BASE64_RUN           64

static int is_data_line(const unsigned char *l, size_t len)
{
    size_t digits = 0, nonspace = 0, run = 0, best = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = l[i];
        nonspace += !is_ws(c);
        digits += c >= '0' && c <= '9';
        int b64 = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '+' || c == '/' || c == '=';
        run = b64 ? run + 1 : 0;
        if (run > best)
            best = run;
    }
    if (digits >= DATA_LINE_MIN_DIGITS && digits * 2 >= nonspace)
        return 1;
    return best >= BASE64_RUN;
}

static void code_metrics(const char *text, size_t n, const struct flt_regions *regions, double *v)
{
    const unsigned char *u = (const unsigned char *)text;
    size_t lines = 0, max_line = 0, alnum = 0, ws = 0, long_bytes = 0, data_bytes = 0;
    size_t i = 0;
    while (i < n) {
        const unsigned char *nl = memchr(u + i, '\n', n - i);
        size_t e = nl ? (size_t)(nl - u) : n;
        size_t len = e - i;
        lines++;
        if (len > max_line)
            max_line = len;
        if (len > 300)
            long_bytes += len;
        if (is_data_line(u + i, len))
            data_bytes += len;
        for (size_t k = i; k < e; k++) {
            unsigned char c = u[k];
            alnum += (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z');
            ws += c == ' ' || c == '\t';
        }
        i = nl ? e + 1 : n;
    }
    ws += lines ? lines - 1 : 0;
    v[FLT_R_CODE_MAX_LINE] = (double)max_line;
    v[FLT_R_CODE_MEAN_LINE] = lines ? (double)n / (double)lines : 0;
    v[FLT_R_CODE_ALNUM] = n ? (double)alnum / (double)n : 0;
    pthread_once(&re_once, re_build);
    v[FLT_R_CODE_AUTOGEN] = re_search(re_autogen, text, n < AUTOGEN_HEAD ? n : AUTOGEN_HEAD);
    /* Minified: most bytes on lines over 300 bytes and almost no whitespace. */
    v[FLT_R_CODE_MINIFIED] = n && long_bytes * 2 >= n && ws * 10 < n;
    v[FLT_R_CODE_DATA] = n ? (double)data_bytes / (double)n : 0;
    /* License-only: a license's wording, and little outside comments. The value is the fraction
     * of non-space bytes outside comments when a license is found, else 1. */
    double code_frac = 1;
    if (re_search(re_license, text, n < LICENSE_HEAD ? n : LICENSE_HEAD)) {
        size_t in_comments = 0, nonspace = 0;
        for (size_t k = 0; k < n; k++)
            nonspace += !is_ws(u[k]);
        if (regions)
            for (size_t r = 0; r < regions->n; r++)
                if (regions->v[r].kind == FLT_REGION_COMMENT)
                    for (size_t k = regions->v[r].start; k < regions->v[r].end; k++)
                        in_comments += !is_ws(u[k]);
        code_frac = nonspace ? (double)(nonspace - in_comments) / (double)nonspace : 0;
    }
    v[FLT_R_CODE_LICENSE_ONLY] = code_frac;
}

/* Formula density: bytes of TeX math spans, TeX commands, digits, operators and Unicode math
 * symbols, over non-space bytes. Unbalanced dollars: `$$` delimiters left open, plus `$` signs
 * opening TeX (followed by a backslash command, '^', '_' or '{') that no `$` closes within the
 * paragraph. Brace imbalance: |unescaped '{' - unescaped '}'|. */
static void math_metrics(const char *text, size_t n, double *v)
{
    const unsigned char *u = (const unsigned char *)text;
    size_t nonspace = 0, mathy = 0, open = 0, close = 0, display = 0, unclosed = 0;
    int in_inline = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = u[i];
        if (is_ws(c)) {
            if (c == '\n' && i + 1 < n && u[i + 1] == '\n' && in_inline) {
                in_inline = 0; /* a paragraph ends an unclosed inline formula */
                unclosed++;
            }
            continue;
        }
        nonspace++;
        int escaped = i > 0 && u[i - 1] == '\\';
        if (c == '$' && !escaped) {
            if (i + 1 < n && u[i + 1] == '$') {
                display ^= 1;
                mathy += 2;
                nonspace++;
                i++;
                continue;
            }
            if (in_inline) {
                in_inline = 0;
            } else if (i + 1 < n && (u[i + 1] == '\\' || u[i + 1] == '^' || u[i + 1] == '_' ||
                                     u[i + 1] == '{')) {
                in_inline = 1;
            } else {
                /* a price or a formula starting with a letter or digit: pair it only when a
                 * closing '$' follows on the same line */
                const unsigned char *nl = memchr(u + i + 1, '\n', n - i - 1);
                size_t e = nl ? (size_t)(nl - u) : n;
                const unsigned char *d = memchr(u + i + 1, '$', e - i - 1);
                if (d && i + 1 < n && !is_ws(u[i + 1]) && !is_ws(d[-1])) {
                    mathy += (size_t)(d - (u + i)) + 1;
                    for (const unsigned char *q = u + i + 1; q < d; q++)
                        nonspace += is_ws(*q) ? 0 : 1;
                    nonspace++;
                    i = (size_t)(d - u);
                    continue;
                }
            }
            mathy++;
            continue;
        }
        if (c == '{' && !escaped)
            open++;
        else if (c == '}' && !escaped)
            close++;
        if (in_inline || display || (c >= '0' && c <= '9') || c == '=' || c == '+' || c == '-' ||
            c == '*' || c == '/' || c == '^' || c == '_' || c == '<' || c == '>' || c == '\\' ||
            c == '{' || c == '}') {
            mathy++;
        } else if (c == 0xe2 && i + 2 < n && u[i + 1] >= 0x88 && u[i + 1] <= 0x8b) {
            mathy += 3; /* U+2200..U+22FF, mathematical operators */
            nonspace += 2;
            i += 2;
        } else if (c >= 0xce && c <= 0xcf && i + 1 < n) {
            mathy += 2; /* Greek */
            nonspace++;
            i++;
        } else if (c == '\\' || (in_inline && c >= 'a')) {
            mathy++;
        }
    }
    unclosed += (size_t)in_inline;
    v[FLT_R_MATH_DENSITY] = nonspace ? (double)mathy / (double)nonspace : 0;
    v[FLT_R_MATH_DOLLARS] = (double)(display + unclosed);
    v[FLT_R_MATH_BRACES] = open > close ? (double)(open - close) : (double)(close - open);
}

/* ---- Scanning helpers ---------------------------------------------------------------------- */

struct byte_counts {
    size_t hash, lbrace, rbrace, cont, newline;
};

/* Adds the counts of u[i..n), a byte at a time (the tail of the vector loop, or all of it). */
static void count_bytes_from(const unsigned char *u, size_t i, size_t n, struct byte_counts *c)
{
    for (; i < n; i++) {
        c->hash += u[i] == '#';
        c->lbrace += u[i] == '{';
        c->rbrace += u[i] == '}';
        c->newline += u[i] == '\n';
        c->cont += (u[i] & 0xc0) == 0x80;
    }
}

#if defined(__SSE2__)
#include <emmintrin.h>

/* 0xff in each lane holding ASCII whitespace (' ', \t \n \v \f \r). */
static inline __m128i ws_lanes(__m128i v)
{
    __m128i t = _mm_sub_epi8(v, _mm_set1_epi8(9)); /* \t..\r become 0..4 */
    __m128i ctl =
        _mm_and_si128(_mm_cmpgt_epi8(t, _mm_set1_epi8(-1)), _mm_cmplt_epi8(t, _mm_set1_epi8(5)));
    return _mm_or_si128(ctl, _mm_cmpeq_epi8(v, _mm_set1_epi8(' ')));
}

/* Bit i set when p[i] is ASCII whitespace, for 16 bytes. */
static inline unsigned ws_mask16(const unsigned char *p)
{
    return (unsigned)_mm_movemask_epi8(ws_lanes(_mm_loadu_si128((const __m128i *)(const void *)p)));
}

/* Sums the 16 byte lanes of acc. */
static inline size_t lanes_sum(__m128i acc)
{
    __m128i sad = _mm_sad_epu8(acc, _mm_setzero_si128());
    return (size_t)_mm_cvtsi128_si32(sad) + (size_t)_mm_cvtsi128_si32(_mm_srli_si128(sad, 8));
}

static void count_bytes(const unsigned char *u, size_t n, struct byte_counts *c)
{
    memset(c, 0, sizeof(*c));
    size_t i = 0;
    /* Each compare gives -1 per matching lane; subtracting it counts per lane, for up to 255
     * blocks before a lane could overflow. */
    while (i + 16 <= n) {
        __m128i h = _mm_setzero_si128(), l = h, r = h, nl = h, ct = h;
        for (int k = 0; k < 255 && i + 16 <= n; k++, i += 16) {
            __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(u + i));
            h = _mm_sub_epi8(h, _mm_cmpeq_epi8(v, _mm_set1_epi8('#')));
            l = _mm_sub_epi8(l, _mm_cmpeq_epi8(v, _mm_set1_epi8('{')));
            r = _mm_sub_epi8(r, _mm_cmpeq_epi8(v, _mm_set1_epi8('}')));
            nl = _mm_sub_epi8(nl, _mm_cmpeq_epi8(v, _mm_set1_epi8('\n')));
            /* continuation bytes 0x80..0xbf are -128..-65 as signed bytes */
            ct = _mm_sub_epi8(ct, _mm_cmplt_epi8(v, _mm_set1_epi8(-64)));
        }
        c->hash += lanes_sum(h);
        c->lbrace += lanes_sum(l);
        c->rbrace += lanes_sum(r);
        c->newline += lanes_sum(nl);
        c->cont += lanes_sum(ct);
    }
    count_bytes_from(u, i, n, c);
}

static inline size_t skip_space(const unsigned char *u, size_t i, size_t n)
{
    for (; i + 16 <= n; i += 16) {
        unsigned m = ~ws_mask16(u + i) & 0xffffu;
        if (m)
            return i + (size_t)__builtin_ctz(m);
    }
    while (i < n && is_ws(u[i]))
        i++;
    return i;
}

static inline size_t skip_word(const unsigned char *u, size_t i, size_t n)
{
    for (; i + 16 <= n; i += 16) {
        unsigned m = ws_mask16(u + i);
        if (m)
            return i + (size_t)__builtin_ctz(m);
    }
    while (i < n && !is_ws(u[i]))
        i++;
    return i;
}
#else
static void count_bytes(const unsigned char *u, size_t n, struct byte_counts *c)
{
    memset(c, 0, sizeof(*c));
    count_bytes_from(u, 0, n, c);
}

static inline size_t skip_space(const unsigned char *u, size_t i, size_t n)
{
    while (i < n && is_ws(u[i]))
        i++;
    return i;
}

static inline size_t skip_word(const unsigned char *u, size_t i, size_t n)
{
    while (i < n && !is_ws(u[i]))
        i++;
    return i;
}
#endif

size_t flt_count_words(const char *text, size_t n)
{
    const unsigned char *u = (const unsigned char *)text;
    size_t words = 0, i = 0;
#if defined(__SSE2__)
    /* A word starts where a non-space byte follows a space (or the start): compare each block
     * with the same block shifted back one byte, count per lane, sum every 255 blocks. */
    words += n > 0 && !is_ws(u[0]);
    i = 1;
    while (i + 16 <= n) {
        __m128i acc = _mm_setzero_si128();
        for (int k = 0; k < 255 && i + 16 <= n; k++, i += 16) {
            __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(u + i));
            __m128i p = _mm_loadu_si128((const __m128i *)(const void *)(u + i - 1));
            __m128i start = _mm_andnot_si128(ws_lanes(v), ws_lanes(p));
            acc = _mm_sub_epi8(acc, start);
        }
        words += lanes_sum(acc);
    }
    for (; i < n; i++)
        words += !is_ws(u[i]) && is_ws(u[i - 1]);
    return words;
#else
    int in = 0;
    for (; i < n; i++) {
        int w = !is_ws(u[i]);
        words += w & !in;
        in = w;
    }
    return words;
#endif
}

/* Ellipses: each run of dots counts one per three ("......" is two), plus each U+2026. */
static size_t count_ellipses(const char *t, size_t n)
{
    size_t count = 0;
    const char *p = t, *end = t + n;
    while (p < end && (p = memchr(p, '.', (size_t)(end - p))) != NULL) {
        const char *e = p;
        while (e < end && *e == '.')
            e++;
        count += (size_t)(e - p) / 3;
        p = e;
    }
    for (p = t; p < end && (p = memchr(p, 0xe2, (size_t)(end - p))) != NULL; p++)
        count += end - p >= 3 && (unsigned char)p[1] == 0x80 && (unsigned char)p[2] == 0xa6;
    return count;
}

/* Whether the word has a letter (ASCII, or any non-ASCII character, counted as one). */
static inline int has_letter(const unsigned char *w, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned c = w[i];
        if (((c | 0x20) >= 'a' && (c | 0x20) <= 'z') || c >= 0xc0)
            return 1;
    }
    return 0;
}

/* A word's 64-bit hash: words of up to 8 bytes (most) are mixed from their bytes directly,
 * longer ones hashed with xxh3. `avail` is how many bytes may be read from w: with 8 or more,
 * one fixed-size load is masked to the word (a variable-length copy into a stack slot stalls the
 * load that follows it). */
static inline uint64_t word_hash(const unsigned char *w, size_t len, size_t avail)
{
    if (len > 8)
        return XXH3_64bits(w, len);
    uint64_t v = 0;
    if (avail >= 8) {
        memcpy(&v, w, 8);
        if (len < 8) /* keep only the word's bytes */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
            v >>= 8 * (8 - len);
#else
            v &= ((uint64_t)1 << (8 * len)) - 1;
#endif
    } else {
        memcpy(&v, w, len);
    }
    v ^= (uint64_t)len * 0x9e3779b97f4a7c15ull;
    v *= 0xbf58476d1ce4e5b9ull;
    v ^= v >> 31;
    v *= 0x94d049bb133111ebull;
    return v ^ (v >> 29);
}

/* Counts the paragraph p[0..len) (its lines holding `line_bytes`), and whether it repeats an
 * earlier one. */
static void end_paragraph(struct flt_scratch *s, const unsigned char *p, size_t len,
                          size_t line_bytes, size_t *paras, size_t *dups, size_t *dup_bytes)
{
    (*paras)++;
    if (counter_at(&s->c2, counter_add(&s->c2, XXH3_64bits(p, len))) > 1) {
        (*dups)++;
        *dup_bytes += line_bytes;
    }
}

/* ---- The pass ---------------------------------------------------------------------------- */

void flt_metrics(struct flt_scratch *s, const char *text, size_t n,
                 const struct flt_regions *regions, unsigned groups, double values[FLT_R_COUNT],
                 uint64_t span_rules, struct flt_spans *c4_lines)
{
    int want_js = (span_rules >> FLT_R_C4_JAVASCRIPT & 1) != 0;
    int want_policy = (span_rules >> FLT_R_C4_POLICY & 1) != 0;
    int want_punct = (span_rules >> FLT_R_C4_PUNCT_LINES & 1) != 0;
    if (!want_js && !want_policy && !want_punct)
        c4_lines = NULL;
    for (int r = 0; r < FLT_R_COUNT; r++)
        values[r] = NAN;
    s->nw = 0;
    const unsigned char *u = (const unsigned char *)text;
    if (groups & FLT_G_CODE)
        code_metrics(text, n, regions, values);
    if (groups & FLT_G_MATH)
        math_metrics(text, n, values);
    if (!(groups & (FLT_G_WORDS | FLT_G_NGRAMS)) && !c4_lines)
        return;

    int ngrams = (groups & FLT_G_NGRAMS) != 0;
    struct byte_counts bc;
    count_bytes(u, n, &bc);
    size_t ellipses = count_ellipses(text, n);
    size_t words = 0, alpha_words = 0, stop_words = 0, word_bytes = 0;
    int lorem = 0;
    int w2 = W_NONE, w1 = W_NONE;
    size_t last_flagged = (size_t)-1; /* line start last flagged by a C4 word rule */
    if (ngrams)
        scratch_words(s, 1024);
    size_t i = 0;
    for (;;) {
        i = skip_space(u, i, n);
        if (i >= n)
            break;
        size_t ws0 = i;
        i = skip_word(u, i, n);
        size_t len = i - ws0;
        words++;
        word_bytes += len;
        alpha_words += has_letter(u + ws0, len);
        int code = W_NONE;
        if (len <= 10) {
            uint64_t p = packed_word(u + ws0, len);
            if (p)
                code = word_code(p);
        }
        stop_words += code == W_STOP || code == W_OF;
        if (code == W_IPSUM && w1 == W_LOREM)
            lorem = 1;
        if (c4_lines) {
            int rule = 0;
            if (want_js && len >= 10 && has_javascript(u + ws0, len))
                rule = FLT_R_C4_JAVASCRIPT;
            else if (want_policy && code != W_NONE && policy_phrase(w2, w1, code))
                rule = FLT_R_C4_POLICY;
            if (rule) {
                const unsigned char *nl = ws0 ? memrchr(u, '\n', ws0) : NULL;
                size_t line_start = nl ? (size_t)(nl - u) + 1 : 0;
                if (line_start != last_flagged)
                    flt_spans_add(c4_lines, line_start, line_start, (unsigned)rule);
                last_flagged = line_start;
            }
        }
        w2 = w1;
        w1 = code;
        if (ngrams && words <= FLT_MAX_NGRAM_WORDS) {
            scratch_words(s, words);
            s->wh[words - 1] = word_hash(u + ws0, len, n - ws0);
            s->wlen[words - 1] = (uint32_t)len;
        }
    }
    size_t word_chars = word_bytes - bc.cont;
    size_t nls = bc.newline;

    if (groups & FLT_G_WORDS) {
        values[FLT_R_GOPHER_MIN_WORDS] = (double)words;
        values[FLT_R_GOPHER_MAX_WORDS] = (double)words;
        double mean = words ? (double)word_chars / (double)words : 0;
        values[FLT_R_GOPHER_MIN_MEAN_WORD] = mean;
        values[FLT_R_GOPHER_MAX_MEAN_WORD] = mean;
        values[FLT_R_GOPHER_HASH] = words ? (double)bc.hash / (double)words : 0;
        values[FLT_R_GOPHER_ELLIPSIS] = words ? (double)ellipses / (double)words : 0;
        values[FLT_R_GOPHER_ALPHA_WORDS] = words ? (double)alpha_words / (double)words : 0;
        values[FLT_R_GOPHER_STOP_WORDS] = (double)stop_words;
        values[FLT_R_C4_LOREM] = lorem;
        values[FLT_R_C4_CURLY] = (double)(bc.lbrace + bc.rbrace);
    }

    /* Lines and paragraphs. */
    size_t lines = 0, bullets = 0, ell_lines = 0, fw_punct = 0, short_lines = 0, newlines = 0;
    size_t line_bytes = 0, dup_lines = 0, dup_line_bytes = 0;
    size_t paras = 0, dup_paras = 0, dup_para_bytes = 0;
    size_t para_start = 0, para_end = 0, para_bytes = 0;
    int in_para = 0;
    int line_stats = (groups & FLT_G_WORDS) != 0;
    if (line_stats) { /* at most one line, and one paragraph, per newline plus one */
        counter_reset(&s->c1, nls + 1);
        counter_reset(&s->c2, nls + 1);
    }
    i = 0;
    while (i <= n) {
        const unsigned char *nl = i < n ? memchr(u + i, '\n', n - i) : NULL;
        size_t e = nl ? (size_t)(nl - u) : n;
        newlines += nl != NULL;
        size_t a = i, b = e;
        while (a < b && is_ws(u[a]))
            a++;
        while (b > a && is_ws(u[b - 1]))
            b--;
        size_t len = b - a;
        if (len == 0) {
            if (in_para && line_stats)
                end_paragraph(s, u + para_start, para_end - para_start, para_bytes, &paras,
                              &dup_paras, &dup_para_bytes);
            in_para = 0;
        } else {
            if (!in_para) {
                para_start = a;
                para_bytes = 0;
            }
            para_end = b;
            para_bytes += len;
            in_para = 1;
            if (want_punct && c4_lines && !ends_c4_punct(u + a, len))
                flt_spans_add(c4_lines, i, i, FLT_R_C4_PUNCT_LINES);
            if (line_stats) {
                lines++;
                line_bytes += len;
                bullets += starts_with_bullet(u + a, len);
                ell_lines += ends_with_ellipsis(u + a, len);
                fw_punct += ends_fineweb_punct(u + a, len);
                /* a code point is 1 to 4 bytes: only 31..120-byte lines need counting */
                short_lines +=
                    len <= FINEWEB_SHORT_LINE || (len <= 4 * FINEWEB_SHORT_LINE && bc.cont &&
                                                  code_points(u + a, len) <= FINEWEB_SHORT_LINE);
                uint64_t h = XXH3_64bits(u + a, len);
                if (counter_at(&s->c1, counter_add(&s->c1, h)) > 1) {
                    dup_lines++;
                    dup_line_bytes += len;
                }
            }
        }
        if (!nl)
            break;
        i = e + 1;
    }
    if (in_para && line_stats)
        end_paragraph(s, u + para_start, para_end - para_start, para_bytes, &paras, &dup_paras,
                      &dup_para_bytes);

    if (line_stats) {
        double L = (double)lines, LB = (double)line_bytes;
        values[FLT_R_GOPHER_BULLET_LINES] = lines ? (double)bullets / L : 0;
        values[FLT_R_GOPHER_ELLIPSIS_LINES] = lines ? (double)ell_lines / L : 0;
        values[FLT_R_GOPHER_DUP_LINES] = lines ? (double)dup_lines / L : 0;
        values[FLT_R_GOPHER_DUP_PARAS] = paras ? (double)dup_paras / (double)paras : 0;
        values[FLT_R_GOPHER_DUP_LINE_CHARS] = line_bytes ? (double)dup_line_bytes / LB : 0;
        values[FLT_R_GOPHER_DUP_PARA_CHARS] = line_bytes ? (double)dup_para_bytes / LB : 0;
        values[FLT_R_FINEWEB_PUNCT_LINES] = lines ? (double)fw_punct / L : 0;
        values[FLT_R_FINEWEB_SHORT_LINES] = lines ? (double)short_lines / L : 0;
        values[FLT_R_FINEWEB_DUP_LINE_CHARS] = values[FLT_R_GOPHER_DUP_LINE_CHARS];
        values[FLT_R_FINEWEB_NEWLINES] = words ? (double)newlines / (double)words : 0;
    }

    s->nw = ngrams && words <= FLT_MAX_NGRAM_WORDS ? words : 0;
    s->word_bytes = word_bytes;
}

void flt_metrics_ngrams(struct flt_scratch *s, double values[FLT_R_COUNT])
{
    if (!s->nw)
        return;
    double top[3], dup[6];
    top_ngrams(s, s->nw, s->word_bytes, top);
    dup_ngrams(s, s->nw, s->word_bytes, dup);
    for (int k = 0; k < 3; k++)
        values[FLT_R_GOPHER_TOP_2GRAM + k] = top[k];
    for (int k = 0; k < 6; k++)
        values[FLT_R_GOPHER_DUP_5GRAM + k] = dup[k];
}
