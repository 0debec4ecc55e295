/* ddp_minhash.c: normalization, shingles, MinHash signatures and band keys (ddp_minhash.h).
 *
 * The fast path does three things per document: one pass of table-driven normalization into the
 * work's buffer, one pass over the normalized text that hashes each shingle as a contiguous byte
 * range (the normalized text already has single spaces, so a word n-gram needs no copying), and
 * a permutation loop that takes DDP_CHUNK shingles at a time, so each block of eight (a_i, b_i)
 * and running minima is loaded once per chunk rather than once per shingle. The reference
 * (ddp_signature_reference) shares nothing with it but the case-folding and class rules below:
 * its own UTF-8 decoder, a pending-space normalizer, words split into an array and joined into a
 * copy, one shingle at a time through a scalar loop.
 *
 * Pinned details the header leaves open:
 *   - coefficients: one splitmix64 state seeded with p->seed; for i = 0..nperm-1, a_i is the
 *     high 32 bits of the next output with the low bit set, b_i the high 32 bits of the one
 *     after (so a prefix of the permutations does not depend on nperm);
 *   - valid UTF-8 is RFC 3629 / Unicode Table 3-7 (no overlongs, surrogates or code points past
 *     U+10FFFF); any byte that does not start a valid sequence is one invalid byte, kept as it
 *     is and counted as one code point; it is neither space nor punctuation;
 *   - case folding is Unicode simple case folding (CaseFolding.txt status C and S; F and T
 *     entries such as U+00DF and U+0130 are left alone), restricted to the blocks the header
 *     names; whitespace is C's isspace set plus the Unicode White_Space characters (U+0085,
 *     U+00A0, U+1680, U+2000..U+200A, U+2028, U+2029, U+202F, U+205F, U+3000), which count as
 *     whitespace even inside the punctuation block;
 *   - with collapse_ws off, whitespace is copied as it is and words are still split on each
 *     single U+0020, so "a  b" has the words "a", "" and "b";
 *   - character shingles count code points of the normalized text, decoded again after
 *     normalization (stripping can join two stray bytes into a valid sequence). */
#include "ddp_minhash.h"
#include "ddp_minhash_int.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define DDP_HAVE_X86 1
#else
#define DDP_HAVE_X86 0
#endif

#include "../core/tm_err.h"
#include "../core/tm_log.h"
#include "../core/tm_mem.h"
#include "../core/tm_rand.h"

/* Defaults of struct ddp_params (ddp_minhash.h): 5-word shingles, 112 permutations as 14 bands
 * of 8 rows. 14 x 8 puts the LSH S-curve's steepest point near Jaccard (1/14)^(1/8) = 0.72 and
 * finds a 0.9 pair with probability 1 - (1 - 0.9^8)^14 = 0.9996. */
#define DDP_DEFAULT_N     5
#define DDP_DEFAULT_NPERM 112
#define DDP_DEFAULT_BANDS 14
#define DDP_DEFAULT_ROWS  8
#define DDP_DEFAULT_SEED  1

/* Shingles hashed before one pass of the permutation loop: enough to amortize loading the
 * coefficients and minima (2 x 112 x 4 bytes at the defaults), small enough for the stack. */
#define DDP_CHUNK 64
/* Word or code point starts remembered for shingles of up to this many units; a longer n walks a
 * trailing pointer instead. A power of two. */
#define DDP_RING 64
/* AVX2 lanes of uint32. */
#define DDP_LANES 8

/* Character classes for normalization. */
enum { CLS_OTHER = 0, CLS_SPACE = 1, CLS_PUNCT = 2 };

/* ---- The rules: case folding and classes ---------------------------------------------------- */

/* Simple case folding in the covered blocks as ranges: every code point lo, lo + step, ... <= hi
 * maps to itself + delta. Checked against Python's str.casefold() (Unicode 14) for every code
 * point of the blocks by tests/unit/test_ddp_minhash.c. */
static const struct {
    uint32_t lo, hi, step;
    int32_t delta;
} fold_ranges[] = {
    {0x41, 0x5A, 1, 32},    {0xB5, 0xB5, 1, 775},    {0xC0, 0xD6, 1, 32},
    {0xD8, 0xDE, 1, 32},    {0x100, 0x12E, 2, 1},    {0x132, 0x136, 2, 1},
    {0x139, 0x147, 2, 1},   {0x14A, 0x176, 2, 1},    {0x178, 0x178, 1, -121},
    {0x179, 0x17D, 2, 1},   {0x17F, 0x17F, 1, -268}, {0x370, 0x372, 2, 1},
    {0x376, 0x376, 1, 1},   {0x37F, 0x37F, 1, 116},  {0x386, 0x386, 1, 38},
    {0x388, 0x38A, 1, 37},  {0x38C, 0x38C, 1, 64},   {0x38E, 0x38F, 1, 63},
    {0x391, 0x3A1, 1, 32},  {0x3A3, 0x3AB, 1, 32},   {0x3C2, 0x3C2, 1, 1},
    {0x3CF, 0x3CF, 1, 8},   {0x3D0, 0x3D0, 1, -30},  {0x3D1, 0x3D1, 1, -25},
    {0x3D5, 0x3D5, 1, -15}, {0x3D6, 0x3D6, 1, -22},  {0x3D8, 0x3EE, 2, 1},
    {0x3F0, 0x3F0, 1, -54}, {0x3F1, 0x3F1, 1, -48},  {0x3F4, 0x3F4, 1, -60},
    {0x3F5, 0x3F5, 1, -64}, {0x3F7, 0x3F7, 1, 1},    {0x3F9, 0x3F9, 1, -7},
    {0x3FA, 0x3FA, 1, 1},   {0x3FD, 0x3FF, 1, -130}, {0x400, 0x40F, 1, 80},
    {0x410, 0x42F, 1, 32},  {0x460, 0x480, 2, 1},    {0x48A, 0x4BE, 2, 1},
    {0x4C0, 0x4C0, 1, 15},  {0x4C1, 0x4CD, 2, 1},    {0x4D0, 0x4FE, 2, 1},
};

static uint32_t fold_cp(uint32_t c)
{
    for (size_t i = 0; i < sizeof(fold_ranges) / sizeof(fold_ranges[0]); i++)
        if (c >= fold_ranges[i].lo && c <= fold_ranges[i].hi &&
            (c - fold_ranges[i].lo) % fold_ranges[i].step == 0)
            return (uint32_t)((int32_t)c + fold_ranges[i].delta);
    return c;
}

static int class_cp(uint32_t c)
{
    if ((c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
        (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
        c == 0x3000)
        return CLS_SPACE;
    if ((c >= 0x21 && c <= 0x2F) || (c >= 0x3A && c <= 0x40) || (c >= 0x5B && c <= 0x60) ||
        (c >= 0x7B && c <= 0x7E) || (c >= 0xA1 && c <= 0xBF) || (c >= 0x2000 && c <= 0x206F))
        return CLS_PUNCT;
    return CLS_OTHER;
}

/* ---- Tables of the fast normalizer, built once from the rules ------------------------------- */

/* What the fast normalizer does with a byte, for one configuration (casefold, strip_punct,
 * collapse_ws as bits 0, 1, 2). */
enum { ACT_COPY = 0, ACT_SPACE = 1, ACT_SKIP = 2, ACT_MULTI = 3 };

/* Code points below this have a two-byte UTF-8 form at most: the range of g_fold2 / g_cls2. */
#define DDP_TWO_BYTE_END 0x800
#define DDP_GP_LO        0x2000 /* General Punctuation */
#define DDP_GP_HI        0x206F

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static uint8_t g_act[8][256];
static uint8_t g_lower[256], g_ident[256];
static uint16_t g_fold2[DDP_TWO_BYTE_END];
static uint8_t g_cls2[DDP_TWO_BYTE_END];
/* For each 8-bit keep mask, the shuffle that packs the kept bytes of 8 to the front. */
static uint8_t g_compact[256][8];

static void tables_init(void)
{
    for (unsigned c = 0; c < 256; c++) {
        g_ident[c] = (uint8_t)c;
        g_lower[c] = (uint8_t)(c < 0x80 ? fold_cp(c) : c);
    }
    for (unsigned cfg = 0; cfg < 8; cfg++)
        for (unsigned c = 0; c < 256; c++) {
            int cls = c < 0x80 ? class_cp(c) : CLS_OTHER;
            uint8_t a = ACT_COPY;
            if (c >= 0x80)
                a = ACT_MULTI;
            else if (cls == CLS_SPACE && (cfg & 4))
                a = ACT_SPACE;
            else if (cls == CLS_PUNCT && (cfg & 2))
                a = ACT_SKIP;
            g_act[cfg][c] = a;
        }
    for (uint32_t c = 0; c < DDP_TWO_BYTE_END; c++) {
        g_fold2[c] = (uint16_t)fold_cp(c);
        g_cls2[c] = (uint8_t)class_cp(c);
    }
    for (unsigned m = 0; m < 256; m++) {
        unsigned k = 0;
        for (unsigned bit = 0; bit < 8; bit++)
            if (m & (1u << bit))
                g_compact[m][k++] = (uint8_t)bit;
        while (k < 8)
            g_compact[m][k++] = 0x80; /* pshufb writes zero */
    }
}

/* Length of the valid UTF-8 sequence at s[0..n) (n >= 1), or 0 when s[0] does not start one. */
static inline size_t utf8_valid_len(const uint8_t *s, size_t n)
{
    uint8_t c = s[0];
    if (c < 0x80)
        return 1;
    if (c < 0xC2)
        return 0;
    if (c < 0xE0)
        return n >= 2 && (s[1] & 0xC0) == 0x80 ? 2 : 0;
    if (c < 0xF0) {
        if (n < 3 || (s[2] & 0xC0) != 0x80)
            return 0;
        uint8_t lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
        return s[1] >= lo && s[1] <= hi ? 3 : 0;
    }
    if (c < 0xF5) {
        if (n < 4 || (s[2] & 0xC0) != 0x80 || (s[3] & 0xC0) != 0x80)
            return 0;
        uint8_t lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
        return s[1] >= lo && s[1] <= hi ? 4 : 0;
    }
    return 0;
}

/* One configuration of the fast normalizer. */
struct norm_cfg {
    const uint8_t *act, *map;
    int fold, strip, collapse;
};

/* The scalar normalizer from s[i] until at least `stop` (a multi-byte sequence may run past it),
 * writing at *po into the output that starts at out. Spaces are written eagerly when the output
 * is non-empty and does not already end in one (a trailing one is dropped at the very end); with
 * collapse_ws on, every U+0020 of the output comes from that rule, so the output alone tells
 * whether the next space is kept. Returns the new i. */
static size_t norm_scalar(const struct norm_cfg *c, const uint8_t *s, size_t n, size_t i,
                          size_t stop, uint8_t *out, uint8_t **po)
{
    const uint8_t *act = c->act, *map = c->map;
    uint8_t *o = *po;
    while (i < stop) {
        uint8_t b = s[i];
        switch (act[b]) {
        case ACT_COPY:
            *o++ = map[b];
            i++;
            /* Runs of plain ASCII are the common case: stay in a tight loop. */
            while (i < stop && act[s[i]] == ACT_COPY) {
                *o++ = map[s[i]];
                i++;
            }
            continue;
        case ACT_SPACE:
            if (o != out && o[-1] != ' ')
                *o++ = ' ';
            i++;
            continue;
        case ACT_SKIP:
            i++;
            continue;
        default:
            break;
        }
        size_t len = utf8_valid_len(s + i, n - i);
        int cls = CLS_OTHER;
        uint32_t cp = 0;
        if (len == 2) {
            cp = ((uint32_t)(b & 0x1F) << 6) | (s[i + 1] & 0x3F);
            cls = g_cls2[cp];
        } else if (len == 3) {
            cp = ((uint32_t)(b & 0x0F) << 12) | ((uint32_t)(s[i + 1] & 0x3F) << 6) |
                 (s[i + 2] & 0x3F);
            if ((cp >= DDP_GP_LO && cp <= DDP_GP_HI) || cp == 0x1680 || cp == 0x3000)
                cls = class_cp(cp);
        }
        if (cls == CLS_SPACE && c->collapse) {
            if (o != out && o[-1] != ' ')
                *o++ = ' ';
        } else if (cls == CLS_PUNCT && c->strip) {
            /* dropped */
        } else if (len == 2 && c->fold) {
            uint32_t f = g_fold2[cp];
            if (f < 0x80) {
                *o++ = (uint8_t)f;
            } else {
                *o++ = (uint8_t)(0xC0 | (f >> 6));
                *o++ = (uint8_t)(0x80 | (f & 0x3F));
            }
        } else {
            size_t k = len ? len : 1; /* an invalid byte is copied alone */
            memcpy(o, s + i, k);
            o += k;
        }
        i += len ? len : 1;
    }
    *po = o;
    return i;
}

#if DDP_HAVE_X86
/* Bytes of input per step of norm_block_avx2. */
#define DDP_NORM_BLOCK 32

#define DDP_AVX2_NORM __attribute__((target("avx2,popcnt")))

DDP_AVX2_NORM static inline __m256i bytes_in(__m256i v, char lo, char hi)
{
    return _mm256_and_si256(_mm256_cmpgt_epi8(v, _mm256_set1_epi8((char)(lo - 1))),
                            _mm256_cmpgt_epi8(_mm256_set1_epi8((char)(hi + 1)), v));
}

/* Normalizes the DDP_NORM_BLOCK bytes at s when all are ASCII (returns 0 and writes nothing
 * otherwise): classes and case by compares, then the kept bytes are packed 8 at a time through
 * g_compact. Which bytes are kept, as bit masks: punctuation (pu) never; whitespace (ws) when the
 * nearest earlier byte that is not punctuation is not whitespace either. pu + S, with S the
 * punctuation bytes right after whitespace (or at the start, after a space already written),
 * clears exactly the punctuation runs that whitespace precedes: those runs pass "whitespace
 * before" on to the byte after them. Writes at most DDP_NORM_BLOCK bytes at *po. */
DDP_AVX2_NORM static int norm_block_avx2(const struct norm_cfg *c, const uint8_t *s, uint8_t *out,
                                         uint8_t **po)
{
    __m256i v = _mm256_loadu_si256((const __m256i *)s);
    if (_mm256_movemask_epi8(v))
        return 0;
    uint8_t *o = *po;
    if (c->fold)
        v = _mm256_add_epi8(v, _mm256_and_si256(bytes_in(v, 'A', 'Z'), _mm256_set1_epi8(0x20)));
    uint64_t ws = 0, pu = 0, cin = 0;
    if (c->collapse) {
        __m256i w =
            _mm256_or_si256(_mm256_cmpeq_epi8(v, _mm256_set1_epi8(' ')), bytes_in(v, '\t', '\r'));
        v = _mm256_blendv_epi8(v, _mm256_set1_epi8(' '), w);
        ws = (uint32_t)_mm256_movemask_epi8(w);
        cin = o == out || o[-1] == ' ';
    }
    if (c->strip) {
        __m256i p =
            _mm256_or_si256(_mm256_or_si256(bytes_in(v, 0x21, 0x2F), bytes_in(v, 0x3A, 0x40)),
                            _mm256_or_si256(bytes_in(v, 0x5B, 0x60), bytes_in(v, 0x7B, 0x7E)));
        pu = (uint32_t)_mm256_movemask_epi8(p);
    }
    uint64_t start = ((ws << 1) | cin) & pu;
    uint64_t smear = pu & ~(pu + start);
    uint64_t before = ((ws | smear) << 1) | cin;
    uint32_t keep = (uint32_t)(~pu & ~(ws & before));
    if (keep == UINT32_MAX) {
        _mm256_storeu_si256((__m256i *)o, v);
        o += DDP_NORM_BLOCK;
    } else {
        __m128i half[2] = {_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1)};
        for (int k = 0; k < 4; k++) {
            __m128i lane = k & 1 ? _mm_srli_si128(half[k >> 1], 8) : half[k >> 1];
            unsigned m = (keep >> (8 * k)) & 0xFF;
            __m128i idx = _mm_loadl_epi64((const __m128i *)g_compact[m]);
            _mm_storel_epi64((__m128i *)o, _mm_shuffle_epi8(lane, idx));
            o += __builtin_popcount(m);
        }
    }
    *po = o;
    return 1;
}
#endif

/* The fast normalizer: out has room for n bytes (the output is never longer than the input:
 * folding keeps or shortens a sequence, whitespace runs shrink). Blocks of plain ASCII go
 * through norm_block_avx2 when simd is set; the rest, and everything without AVX2, through
 * norm_scalar. Both decide from the output written so far, so they can take turns anywhere. */
static size_t norm_fast(const struct ddp_norm *nm, const uint8_t *s, size_t n, uint8_t *out,
                        int simd)
{
    pthread_once(&g_once, tables_init);
    unsigned cfg =
        (nm->casefold ? 1u : 0u) | (nm->strip_punct ? 2u : 0u) | (nm->collapse_ws ? 4u : 0u);
    struct norm_cfg c = {g_act[cfg], nm->casefold ? g_lower : g_ident, nm->casefold != 0,
                         nm->strip_punct != 0, nm->collapse_ws != 0};
    uint8_t *o = out;
    size_t i = 0;
#if DDP_HAVE_X86
    if (simd) {
        while (n - i >= DDP_NORM_BLOCK) {
            if (norm_block_avx2(&c, s + i, out, &o))
                i += DDP_NORM_BLOCK;
            else /* not all ASCII: this block the slow way */
                i = norm_scalar(&c, s, n, i, i + DDP_NORM_BLOCK, out, &o);
        }
    }
#else
    (void)simd;
#endif
    norm_scalar(&c, s, n, i, n, out, &o);
    if (c.collapse && o != out && o[-1] == ' ')
        o--;
    return (size_t)(o - out);
}

/* ---- Parameters --------------------------------------------------------------------------- */

void ddp_params_default(struct ddp_params *p)
{
    memset(p, 0, sizeof(*p));
    p->norm.casefold = 1;
    p->norm.strip_punct = 1;
    p->norm.collapse_ws = 1;
    p->kind = DDP_SHINGLE_WORDS;
    p->n = DDP_DEFAULT_N;
    p->nperm = DDP_DEFAULT_NPERM;
    p->bands = DDP_DEFAULT_BANDS;
    p->rows = DDP_DEFAULT_ROWS;
    p->seed = DDP_DEFAULT_SEED;
}

int ddp_params_init(struct ddp_params *p)
{
    if (p->kind != DDP_SHINGLE_WORDS && p->kind != DDP_SHINGLE_CHARS) {
        tm_log_error("minhash: unknown shingle kind %d", (int)p->kind);
        return TM_ERR_USAGE;
    }
    if (p->n < 1) {
        tm_log_error("minhash: shingle size must be at least 1");
        return TM_ERR_USAGE;
    }
    if (p->nperm < 1 || p->nperm > DDP_MAX_PERM) {
        tm_log_error("minhash: %u permutations; must be 1..%d", p->nperm, DDP_MAX_PERM);
        return TM_ERR_USAGE;
    }
    if (p->bands < 1 || p->rows < 1 || (uint64_t)p->bands * p->rows > p->nperm) {
        tm_log_error("minhash: %u bands x %u rows must be at least 1 x 1 and at most the %u "
                     "permutations",
                     p->bands, p->rows, p->nperm);
        return TM_ERR_USAGE;
    }
    uint64_t st = p->seed;
    for (unsigned i = 0; i < p->nperm; i++) {
        p->a[i] = (uint32_t)(tm_splitmix64(&st) >> 32) | 1u;
        p->b[i] = (uint32_t)(tm_splitmix64(&st) >> 32);
    }
    /* The SIMD loop reads whole blocks of DDP_LANES: give the padding defined values. */
    for (unsigned i = p->nperm; i < DDP_MAX_PERM; i++)
        p->a[i] = p->b[i] = 0;
    return TM_OK;
}

/* ---- Work --------------------------------------------------------------------------------- */

struct hvec {
    uint64_t *v;
    size_t len, cap;
};

struct ddp_work {
    uint8_t *norm; /* normalized text */
    size_t norm_cap;
    struct hvec set[2];              /* base hashes for ddp_jaccard_exact */
    uint32_t mins[DDP_MAX_PERM + 8]; /* running minima, padded to whole SIMD blocks */
};

struct ddp_work *ddp_work_new(void)
{
    return tm_xcalloc(1, sizeof(struct ddp_work));
}

void ddp_work_free(struct ddp_work *w)
{
    if (!w)
        return;
    free(w->norm);
    free(w->set[0].v);
    free(w->set[1].v);
    free(w);
}

/* Normalizes into w->norm. The buffer grows to the largest document seen: the caller's cap on
 * document size bounds it (the output is never longer than the input). */
static size_t normalize_into(struct ddp_work *w, const struct ddp_norm *nm, const char *text,
                             size_t n)
{
    if (w->norm_cap < n + 1) {
        size_t cap = w->norm_cap * 2 > n + 1 ? w->norm_cap * 2 : n + 1;
        free(w->norm);
        w->norm = tm_xmalloc(cap);
        w->norm_cap = cap;
    }
    size_t len = n ? norm_fast(nm, (const uint8_t *)text, n, w->norm, ddp_have_simd()) : 0;
    w->norm[len] = 0;
    return len;
}

const char *ddp_normalize(struct ddp_work *w, const struct ddp_norm *norm, const char *text,
                          size_t n, size_t *len)
{
    *len = normalize_into(w, norm, text, n);
    return (const char *)w->norm;
}

void ddp_exact_hash(struct ddp_work *w, const struct ddp_params *p, const char *text, size_t n,
                    uint64_t out[2])
{
    size_t len = normalize_into(w, &p->norm, text, n);
    XXH128_hash_t h = XXH3_128bits(w->norm, len);
    out[0] = h.high64;
    out[1] = h.low64;
}

/* ---- Shingles ------------------------------------------------------------------------------- */

/* Receives base hashes in batches of at most DDP_CHUNK. */
typedef void (*sink_fn)(void *ctx, const uint64_t *h, size_t n);

/* Hashes every word n-gram of t[0..len) (a shingle is the byte range from its first word's start
 * to its last word's end) and hands the hashes to sink. Returns the number of shingles. */
static size_t shingles_words(const uint8_t *t, size_t len, unsigned n, sink_fn sink, void *ctx)
{
    uint64_t hb[DDP_CHUNK];
    size_t ring[DDP_RING]; /* start of word k at ring[k % DDP_RING], when n <= DDP_RING */
    size_t nh = 0, count = 0, k = 0, start = 0, tail = 0;
    if (len == 0)
        return 0;
    for (;;) {
        const uint8_t *sp = memchr(t + start, ' ', len - start);
        size_t end = sp ? (size_t)(sp - t) : len;
        if (n <= DDP_RING)
            ring[k & (DDP_RING - 1)] = start;
        if (k + 1 >= n) {
            size_t from = n <= DDP_RING ? ring[(k + 1 - n) & (DDP_RING - 1)] : tail;
            hb[nh++] = XXH3_64bits(t + from, end - from);
            if (n > DDP_RING) /* the next shingle starts one word later */
                tail = (size_t)((const uint8_t *)memchr(t + tail, ' ', len - tail) - t) + 1;
            count++;
        } else if (!sp) { /* fewer than n words: one shingle of them all */
            hb[nh++] = XXH3_64bits(t, len);
            count++;
        }
        if (nh == DDP_CHUNK) {
            sink(ctx, hb, nh);
            nh = 0;
        }
        if (!sp)
            break;
        start = end + 1;
        k++;
    }
    if (nh)
        sink(ctx, hb, nh);
    return count;
}

static inline size_t cp_len(const uint8_t *s, size_t n)
{
    size_t l = utf8_valid_len(s, n);
    return l ? l : 1;
}

/* The same for runs of n code points. */
static size_t shingles_chars(const uint8_t *t, size_t len, unsigned n, sink_fn sink, void *ctx)
{
    uint64_t hb[DDP_CHUNK];
    size_t ring[DDP_RING]; /* start of code point k at ring[k % DDP_RING], when n <= DDP_RING */
    size_t nh = 0, count = 0, k = 0, pos = 0, tail = 0;
    while (pos < len) {
        size_t end = pos + (t[pos] < 0x80 ? 1 : cp_len(t + pos, len - pos));
        if (n <= DDP_RING)
            ring[k & (DDP_RING - 1)] = pos;
        if (k + 1 >= n) {
            size_t from = n <= DDP_RING ? ring[(k + 1 - n) & (DDP_RING - 1)] : tail;
            hb[nh++] = XXH3_64bits(t + from, end - from);
            if (n > DDP_RING)
                tail += cp_len(t + tail, len - tail);
            count++;
        } else if (end == len) {
            hb[nh++] = XXH3_64bits(t, len);
            count++;
        }
        if (nh == DDP_CHUNK) {
            sink(ctx, hb, nh);
            nh = 0;
        }
        pos = end;
        k++;
    }
    if (nh)
        sink(ctx, hb, nh);
    return count;
}

static size_t shingles(const struct ddp_params *p, const uint8_t *t, size_t len, sink_fn sink,
                       void *ctx)
{
    if (p->kind == DDP_SHINGLE_CHARS)
        return shingles_chars(t, len, p->n, sink, ctx);
    return shingles_words(t, len, p->n, sink, ctx);
}

/* ---- Permutations ------------------------------------------------------------------------- */

static int g_force_portable;

void ddp_minhash_force_portable(int on)
{
    g_force_portable = on;
}

int ddp_have_simd(void)
{
#if DDP_HAVE_X86
    if (g_force_portable)
        return 0;
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") ? 1 : 0;
#else
    return 0;
#endif
}

/* mins[i] = min(mins[i], min over x of a[i] * x + b[i]) for i < nperm. */
static void perm_portable(const uint32_t *a, const uint32_t *b, unsigned nperm, uint32_t *mins,
                          const uint32_t *x, size_t nx)
{
    for (size_t s = 0; s < nx; s++) {
        uint32_t xv = x[s];
        for (unsigned i = 0; i < nperm; i++) {
            uint32_t v = a[i] * xv + b[i];
            mins[i] = v < mins[i] ? v : mins[i];
        }
    }
}

#if DDP_HAVE_X86
#define DDP_AVX2 __attribute__((target("avx2")))

/* The same on whole blocks of 8 permutations (a, b and mins are readable and writable up to
 * the next multiple of 8). Four blocks at a time share one broadcast of x and keep their minima
 * in registers across the chunk. */
DDP_AVX2 static void perm_avx2(const uint32_t *a, const uint32_t *b, unsigned nperm, uint32_t *mins,
                               const uint32_t *x, size_t nx)
{
    unsigned nblk = (nperm + DDP_LANES - 1) / DDP_LANES, j = 0;
    for (; j + 4 <= nblk; j += 4) {
        const unsigned o = j * DDP_LANES;
        __m256i a0 = _mm256_loadu_si256((const __m256i *)(a + o));
        __m256i a1 = _mm256_loadu_si256((const __m256i *)(a + o + 8));
        __m256i a2 = _mm256_loadu_si256((const __m256i *)(a + o + 16));
        __m256i a3 = _mm256_loadu_si256((const __m256i *)(a + o + 24));
        __m256i b0 = _mm256_loadu_si256((const __m256i *)(b + o));
        __m256i b1 = _mm256_loadu_si256((const __m256i *)(b + o + 8));
        __m256i b2 = _mm256_loadu_si256((const __m256i *)(b + o + 16));
        __m256i b3 = _mm256_loadu_si256((const __m256i *)(b + o + 24));
        __m256i m0 = _mm256_loadu_si256((const __m256i *)(mins + o));
        __m256i m1 = _mm256_loadu_si256((const __m256i *)(mins + o + 8));
        __m256i m2 = _mm256_loadu_si256((const __m256i *)(mins + o + 16));
        __m256i m3 = _mm256_loadu_si256((const __m256i *)(mins + o + 24));
        for (size_t s = 0; s < nx; s++) {
            __m256i v = _mm256_set1_epi32((int)x[s]);
            m0 = _mm256_min_epu32(m0, _mm256_add_epi32(_mm256_mullo_epi32(a0, v), b0));
            m1 = _mm256_min_epu32(m1, _mm256_add_epi32(_mm256_mullo_epi32(a1, v), b1));
            m2 = _mm256_min_epu32(m2, _mm256_add_epi32(_mm256_mullo_epi32(a2, v), b2));
            m3 = _mm256_min_epu32(m3, _mm256_add_epi32(_mm256_mullo_epi32(a3, v), b3));
        }
        _mm256_storeu_si256((__m256i *)(mins + o), m0);
        _mm256_storeu_si256((__m256i *)(mins + o + 8), m1);
        _mm256_storeu_si256((__m256i *)(mins + o + 16), m2);
        _mm256_storeu_si256((__m256i *)(mins + o + 24), m3);
    }
    for (; j < nblk; j++) {
        const unsigned o = j * DDP_LANES;
        __m256i a0 = _mm256_loadu_si256((const __m256i *)(a + o));
        __m256i b0 = _mm256_loadu_si256((const __m256i *)(b + o));
        __m256i m0 = _mm256_loadu_si256((const __m256i *)(mins + o));
        for (size_t s = 0; s < nx; s++) {
            __m256i v = _mm256_set1_epi32((int)x[s]);
            m0 = _mm256_min_epu32(m0, _mm256_add_epi32(_mm256_mullo_epi32(a0, v), b0));
        }
        _mm256_storeu_si256((__m256i *)(mins + o), m0);
    }
}
#endif

struct sig_ctx {
    const struct ddp_params *p;
    uint32_t *mins;
    int simd;
};

static void sig_sink(void *ctx, const uint64_t *h, size_t n)
{
    struct sig_ctx *c = ctx;
    uint32_t x[DDP_CHUNK];
    for (size_t i = 0; i < n; i++)
        x[i] = (uint32_t)(h[i] ^ (h[i] >> 32));
#if DDP_HAVE_X86
    if (c->simd) {
        perm_avx2(c->p->a, c->p->b, c->p->nperm, c->mins, x, n);
        return;
    }
#endif
    perm_portable(c->p->a, c->p->b, c->p->nperm, c->mins, x, n);
}

size_t ddp_signature(struct ddp_work *w, const struct ddp_params *p, const char *text, size_t n,
                     uint32_t *sig)
{
    return ddp_signature_exact(w, p, text, n, sig, NULL);
}

size_t ddp_signature_exact(struct ddp_work *w, const struct ddp_params *p, const char *text,
                           size_t n, uint32_t *sig, uint64_t exact[2])
{
    size_t len = normalize_into(w, &p->norm, text, n);
    if (exact) { /* the same normalized text: one pass instead of two */
        XXH128_hash_t h = XXH3_128bits(w->norm, len);
        exact[0] = h.high64;
        exact[1] = h.low64;
    }
    struct sig_ctx c = {p, w->mins, ddp_have_simd()};
    for (unsigned i = 0; i < p->nperm; i++)
        w->mins[i] = UINT32_MAX;
    size_t count = shingles(p, w->norm, len, sig_sink, &c);
    memcpy(sig, w->mins, p->nperm * sizeof(uint32_t));
    return count;
}

/* ---- Band keys and similarity --------------------------------------------------------------- */

void ddp_band_keys(const struct ddp_params *p, const uint32_t *sig, uint64_t *keys)
{
    for (unsigned b = 0; b < p->bands; b++) {
        const uint32_t *r = sig + (size_t)b * p->rows;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        keys[b] = XXH3_64bits_withSeed(r, (size_t)p->rows * 4, b);
#else
        uint8_t le[DDP_MAX_PERM * 4];
        for (unsigned i = 0; i < p->rows; i++)
            for (unsigned k = 0; k < 4; k++)
                le[4 * i + k] = (uint8_t)(r[i] >> (8 * k));
        keys[b] = XXH3_64bits_withSeed(le, (size_t)p->rows * 4, b);
#endif
    }
}

double ddp_jaccard_estimate(const struct ddp_params *p, const uint32_t *s1, const uint32_t *s2)
{
    unsigned eq = 0;
    for (unsigned i = 0; i < p->nperm; i++)
        eq += s1[i] == s2[i];
    return (double)eq / p->nperm;
}

static void hvec_sink(void *ctx, const uint64_t *h, size_t n)
{
    struct hvec *v = ctx;
    if (v->len + n > v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 1024;
        while (cap < v->len + n)
            cap *= 2;
        v->v = tm_xreallocarray(v->v, cap, sizeof(uint64_t));
        v->cap = cap;
    }
    memcpy(v->v + v->len, h, n * sizeof(uint64_t));
    v->len += n;
}

static int cmp_u64(const void *x, const void *y)
{
    uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
    return (a > b) - (a < b);
}

/* Sorts v and drops repeats; returns the number of distinct hashes. */
static size_t hvec_unique(struct hvec *v)
{
    if (v->len == 0)
        return 0;
    qsort(v->v, v->len, sizeof(uint64_t), cmp_u64);
    size_t k = 1;
    for (size_t i = 1; i < v->len; i++)
        if (v->v[i] != v->v[k - 1])
            v->v[k++] = v->v[i];
    v->len = k;
    return k;
}

double ddp_jaccard_exact(struct ddp_work *w, const struct ddp_params *p, const char *t1, size_t n1,
                         const char *t2, size_t n2)
{
    const char *t[2] = {t1, t2};
    size_t n[2] = {n1, n2};
    for (int k = 0; k < 2; k++) {
        size_t len = normalize_into(w, &p->norm, t[k], n[k]);
        w->set[k].len = 0;
        shingles(p, w->norm, len, hvec_sink, &w->set[k]);
        hvec_unique(&w->set[k]);
    }
    const struct hvec *a = &w->set[0], *b = &w->set[1];
    if (a->len == 0 && b->len == 0)
        return 1.0;
    size_t i = 0, j = 0, inter = 0;
    while (i < a->len && j < b->len) {
        if (a->v[i] < b->v[j]) {
            i++;
        } else if (a->v[i] > b->v[j]) {
            j++;
        } else {
            inter++;
            i++;
            j++;
        }
    }
    return (double)inter / (double)(a->len + b->len - inter);
}

/* ---- The reference -------------------------------------------------------------------------- */

/* Decodes one code point at s[0..n) (n >= 1) by the letter of Unicode Table 3-7. Sets *len to the
 * bytes used; returns the code point, or -1 for an invalid byte (*len = 1). */
static int32_t ref_decode(const uint8_t *s, size_t n, size_t *len)
{
    static const struct {
        uint8_t lead_lo, lead_hi, second_lo, second_hi, size;
    } forms[] = {
        {0x00, 0x7F, 0, 0, 1},       {0xC2, 0xDF, 0x80, 0xBF, 2}, {0xE0, 0xE0, 0xA0, 0xBF, 3},
        {0xE1, 0xEC, 0x80, 0xBF, 3}, {0xED, 0xED, 0x80, 0x9F, 3}, {0xEE, 0xEF, 0x80, 0xBF, 3},
        {0xF0, 0xF0, 0x90, 0xBF, 4}, {0xF1, 0xF3, 0x80, 0xBF, 4}, {0xF4, 0xF4, 0x80, 0x8F, 4},
    };
    *len = 1;
    for (size_t f = 0; f < sizeof(forms) / sizeof(forms[0]); f++) {
        if (s[0] < forms[f].lead_lo || s[0] > forms[f].lead_hi)
            continue;
        size_t size = forms[f].size;
        if (size == 1)
            return s[0];
        if (n < size || s[1] < forms[f].second_lo || s[1] > forms[f].second_hi)
            return -1;
        for (size_t k = 2; k < size; k++)
            if (s[k] < 0x80 || s[k] > 0xBF)
                return -1;
        static const uint8_t lead_mask[5] = {0, 0x7F, 0x1F, 0x0F, 0x07};
        int32_t cp = s[0] & lead_mask[size];
        for (size_t k = 1; k < size; k++)
            cp = (cp << 6) | (s[k] & 0x3F);
        *len = size;
        return cp;
    }
    return -1;
}

static size_t ref_encode(uint32_t c, uint8_t *o)
{
    if (c < 0x80) {
        o[0] = (uint8_t)c;
        return 1;
    }
    if (c < 0x800) {
        o[0] = (uint8_t)(0xC0 | (c >> 6));
        o[1] = (uint8_t)(0x80 | (c & 0x3F));
        return 2;
    }
    if (c < 0x10000) {
        o[0] = (uint8_t)(0xE0 | (c >> 12));
        o[1] = (uint8_t)(0x80 | ((c >> 6) & 0x3F));
        o[2] = (uint8_t)(0x80 | (c & 0x3F));
        return 3;
    }
    o[0] = (uint8_t)(0xF0 | (c >> 18));
    o[1] = (uint8_t)(0x80 | ((c >> 12) & 0x3F));
    o[2] = (uint8_t)(0x80 | ((c >> 6) & 0x3F));
    o[3] = (uint8_t)(0x80 | (c & 0x3F));
    return 4;
}

/* Normalizes code point by code point, remembering a pending space instead of writing one. */
static size_t ref_normalize(const struct ddp_norm *nm, const uint8_t *s, size_t n, uint8_t *out)
{
    size_t o = 0, i = 0;
    int pending = 0;
    while (i < n) {
        size_t len;
        int32_t cp = ref_decode(s + i, n - i, &len);
        int cls = cp < 0 ? CLS_OTHER : class_cp((uint32_t)cp);
        if (nm->collapse_ws && cls == CLS_SPACE) {
            pending = 1;
        } else if (nm->strip_punct && cls == CLS_PUNCT) {
            /* dropped */
        } else {
            if (pending && o > 0)
                out[o++] = ' ';
            pending = 0;
            if (cp < 0)
                out[o++] = s[i];
            else
                o += ref_encode(nm->casefold ? fold_cp((uint32_t)cp) : (uint32_t)cp, out + o);
        }
        i += len;
    }
    return o;
}

static void ref_permute(const struct ddp_params *p, uint64_t h, uint32_t *sig)
{
    uint32_t x = (uint32_t)(h ^ (h >> 32));
    for (unsigned i = 0; i < p->nperm; i++) {
        uint32_t v = p->a[i] * x + p->b[i];
        if (v < sig[i])
            sig[i] = v;
    }
}

size_t ddp_signature_reference(const struct ddp_params *p, const char *text, size_t n,
                               uint32_t *sig)
{
    uint8_t *norm = tm_xmalloc(n + 1);
    size_t len = n ? ref_normalize(&p->norm, (const uint8_t *)text, n, norm) : 0;
    for (unsigned i = 0; i < p->nperm; i++)
        sig[i] = UINT32_MAX;
    size_t count = 0;
    if (len == 0) {
        free(norm);
        return 0;
    }
    /* Units: words (split on each space) or code points, as [off, off + size) of norm. */
    size_t *off = tm_xreallocarray(NULL, len + 1, sizeof(size_t));
    size_t *size = tm_xreallocarray(NULL, len + 1, sizeof(size_t));
    size_t nu = 0;
    if (p->kind == DDP_SHINGLE_WORDS) {
        size_t start = 0;
        for (size_t i = 0; i <= len; i++)
            if (i == len || norm[i] == ' ') {
                off[nu] = start;
                size[nu++] = i - start;
                start = i + 1;
            }
    } else {
        for (size_t i = 0, l; i < len; i += l) {
            ref_decode(norm + i, len - i, &l);
            off[nu] = i;
            size[nu++] = l;
        }
    }
    uint8_t *buf = tm_xmalloc(len + 1);
    size_t per = nu < p->n ? nu : p->n;
    for (size_t s = 0; s + per <= nu; s++) {
        size_t blen = 0;
        for (size_t u = s; u < s + per; u++) {
            if (p->kind == DDP_SHINGLE_WORDS && u > s)
                buf[blen++] = ' ';
            memcpy(buf + blen, norm + off[u], size[u]);
            blen += size[u];
        }
        ref_permute(p, XXH3_64bits(buf, blen), sig);
        count++;
    }
    free(buf);
    free(size);
    free(off);
    free(norm);
    return count;
}
