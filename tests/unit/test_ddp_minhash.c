/* Unit tests for ddp_minhash: the fast signature equals the reference on thousands of random
 * texts (both permutation paths, many parameter sets), normalization and case folding against
 * Python's str.casefold(), the exact hash, the Jaccard estimate within its binomial error, and
 * the LSH S-curve on planted near-duplicates of real text from /usr/share/common-licenses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ddp_minhash.h"
#include "ddp_minhash_int.h"
#include "tm_err.h"
#include "tm_log.h"
#include "tm_rand.h"
#include "test_util.h"

/* ---- Helpers -------------------------------------------------------------------------------- */

static uint64_t rnd(uint64_t *st, uint64_t bound)
{
    return tm_splitmix64(st) % bound;
}

/* A growable string for building texts. */
struct str {
    char *s;
    size_t len, cap;
};

static void str_add(struct str *b, const char *p, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        b->cap = (b->len + n + 1) * 2;
        b->s = realloc(b->s, b->cap);
        assert_non_null(b->s);
    }
    memcpy(b->s + b->len, p, n);
    b->len += n;
    b->s[b->len] = 0;
}

static void str_puts(struct str *b, const char *p)
{
    str_add(b, p, strlen(p));
}

static struct ddp_params make_params(enum ddp_shingle_kind kind, unsigned n, unsigned nperm)
{
    struct ddp_params p;
    ddp_params_default(&p);
    p.kind = kind;
    p.n = n;
    p.nperm = nperm;
    p.bands = 1;
    p.rows = 1;
    assert_int_equal(ddp_params_init(&p), TM_OK);
    return p;
}

/* ---- Random texts --------------------------------------------------------------------------- */

static const char *const letters[] = {
    "\xc3\x80",     "\xc3\xa9",     "\xc3\x9f",         "\xc3\x97", "\xc3\xbf", "\xc5\xb8",
    "\xc5\xbf",     "\xc4\xb0",     "\xc4\xb1",         "\xc2\xb5", "\xce\xa9", "\xce\xbc",
    "\xce\xad",     "\xcf\x82",     "\xcf\xb4",         "\xce\x90", "\xd0\x9f", "\xd1\x80",
    "\xd0\x80",     "\xd3\x80",     "\xd2\x8a",         "\xc6\x81", "\xd4\xb1", "\xe4\xb8\xad",
    "\xe6\x96\x87", "\xef\xac\x80", "\xf0\x9f\x98\x80",
};
static const char *const puncts[] = {
    ",",
    ".",
    "!",
    "?",
    "-",
    "'",
    "\"",
    "(",
    ")",
    "@",
    "~",
    "\xc2\xab",
    "\xc2\xbb",
    "\xe2\x80\x94",
    "\xe2\x80\xa6",
    "\xe2\x80\x99",
    "\xc2\xa1",
    "\xc2\xbf",
    "\xe2\x81\xa0",
};
static const char *const spaces[] = {
    " ",        "  ",           "\t",           "\n",           "\r\n", "\xc2\xa0",
    "\xc2\x85", "\xe3\x80\x80", "\xe2\x80\x82", "\xe1\x9a\x80", "\x0b", "\x0c",
};
static const char *const invalids[] = {
    "\x80",
    "\xff",
    "\xc3",
    "\xe2\x82",
    "\xc0\x80",
    "\xed\xa0\x80",
    "\xf4\x90\x80\x80",
    "\xf0\x9f\x98",
    "\xc3!\xa9",
    "\xce,\x91",
    "\xc1\xbf",
    "\xf5\x80\x80\x80",
};

#define N(a) (sizeof(a) / sizeof((a)[0]))

static const char ascii_puncts[] = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";
static const char ascii_spaces[] = " \t\n\v\f\r";

static void add_word(uint64_t *st, struct str *b, size_t maxlen, int ascii)
{
    size_t len = 1 + rnd(st, maxlen);
    for (size_t i = 0; i < len; i++) {
        uint64_t r = rnd(st, 10);
        if (r < 6 || (ascii && r >= 7)) {
            char c = (char)((r % 3 ? 'a' : 'A') + rnd(st, 26));
            str_add(b, &c, 1);
        } else if (r < 7) {
            char c = (char)('0' + rnd(st, 10));
            str_add(b, &c, 1);
        } else {
            str_puts(b, letters[rnd(st, N(letters))]);
        }
    }
}

/* A random text: words of ASCII and non-ASCII letters, punctuation, whitespace runs, invalid
 * UTF-8, the occasional huge word; sometimes empty, sometimes only a word or two. A third of the
 * texts are ASCII only, with punctuation and whitespace of every ASCII kind, so long runs of
 * plain ASCII (the SIMD normalizer's blocks) meet every class at every offset. */
static void random_text(uint64_t *st, struct str *b)
{
    b->len = 0;
    str_add(b, "", 0);
    int ascii = rnd(st, 3) == 0;
    uint64_t shape = rnd(st, 20);
    size_t ntok = shape == 0 ? 0 : shape < 4 ? rnd(st, 6) : rnd(st, shape < 18 ? 80 : 600);
    for (size_t t = 0; t < ntok; t++) {
        uint64_t r = rnd(st, 100);
        if (ascii && r >= 55) {
            size_t run = 1 + rnd(st, rnd(st, 4) ? 2 : 6);
            for (size_t k = 0; k < run; k++) {
                if (r < 75)
                    str_add(b, &ascii_puncts[rnd(st, sizeof(ascii_puncts) - 1)], 1);
                else
                    str_add(b, &ascii_spaces[rnd(st, sizeof(ascii_spaces) - 1)], 1);
            }
        } else if (r < 55) {
            add_word(st, b, 9, ascii);
        } else if (r < 70) {
            str_puts(b, puncts[rnd(st, N(puncts))]);
        } else if (r < 88) {
            str_puts(b, spaces[rnd(st, N(spaces))]);
        } else if (r < 97) {
            str_puts(b, invalids[rnd(st, N(invalids))]);
        } else if (r < 98) {
            add_word(st, b, 3000, 0);
        } else {
            str_puts(b, letters[rnd(st, N(letters))]);
        }
        if (rnd(st, 4))
            str_add(b, " ", 1);
    }
}

/* ---- Fast path == reference ------------------------------------------------------------------ */

struct pset {
    enum ddp_shingle_kind kind;
    unsigned n, nperm;
};

static const struct pset psets[] = {
    {DDP_SHINGLE_WORDS, 5, 112}, {DDP_SHINGLE_WORDS, 5, 1},   {DDP_SHINGLE_WORDS, 5, 7},
    {DDP_SHINGLE_WORDS, 5, 8},   {DDP_SHINGLE_WORDS, 5, 128}, {DDP_SHINGLE_WORDS, 5, 1000},
    {DDP_SHINGLE_WORDS, 1, 112}, {DDP_SHINGLE_WORDS, 3, 37},  {DDP_SHINGLE_WORDS, 70, 24},
    {DDP_SHINGLE_WORDS, 64, 16}, {DDP_SHINGLE_CHARS, 3, 112}, {DDP_SHINGLE_CHARS, 5, 128},
    {DDP_SHINGLE_CHARS, 1, 9},   {DDP_SHINGLE_CHARS, 70, 40}, {DDP_SHINGLE_CHARS, 5, 1000},
};

#define TEXTS_PER_PSET 1500

static void test_signature_equals_reference(void **state)
{
    (void)state;
    uint64_t st = 20240611;
    struct str b = {0};
    struct ddp_work *w = ddp_work_new();
    uint32_t *ref = malloc(DDP_MAX_PERM * sizeof(uint32_t));
    uint32_t *fast = malloc(DDP_MAX_PERM * sizeof(uint32_t));
    size_t checked = 0, shingled = 0;
    for (size_t ps = 0; ps < N(psets); ps++) {
        struct ddp_params p = make_params(psets[ps].kind, psets[ps].n, psets[ps].nperm);
        for (int t = 0; t < TEXTS_PER_PSET; t++) {
            random_text(&st, &b);
            unsigned cfg = (unsigned)rnd(&st, 8);
            p.norm.casefold = (cfg & 1) != 0;
            p.norm.strip_punct = (cfg & 2) != 0;
            p.norm.collapse_ws = (cfg & 4) != 0;
            /* An exact-size heap copy, so an over-read hits ASan's redzone. */
            char *text = malloc(b.len ? b.len : 1);
            memcpy(text, b.s, b.len);
            size_t nref = ddp_signature_reference(&p, text, b.len, ref);
            for (int portable = 0; portable < 2; portable++) {
                ddp_minhash_force_portable(portable);
                memset(fast, 0xA5, DDP_MAX_PERM * sizeof(uint32_t));
                size_t nfast = ddp_signature(w, &p, text, b.len, fast);
                if (nfast != nref || memcmp(fast, ref, p.nperm * sizeof(uint32_t)) != 0) {
                    print_error("pset %zu text %d cfg %u portable %d: %zu vs %zu shingles\n", ps, t,
                                cfg, portable, nfast, nref);
                    fail();
                }
                /* Nothing past nperm is written. */
                assert_true(p.nperm == DDP_MAX_PERM || fast[p.nperm] == 0xA5A5A5A5u);
            }
            ddp_minhash_force_portable(0);
            checked++;
            shingled += nref > 0;
            free(text);
        }
    }
    /* The generator must produce texts with shingles most of the time. */
    assert_true(shingled > checked / 2);
    free(ref);
    free(fast);
    ddp_work_free(w);
    free(b.s);
}

/* ---- Normalization ------------------------------------------------------------------------- */

static void expect_norm(struct ddp_work *w, const struct ddp_norm *nm, const char *in,
                        const char *want)
{
    size_t len;
    const char *got = ddp_normalize(w, nm, in, strlen(in), &len);
    if (len != strlen(want) || memcmp(got, want, len) != 0) {
        print_error("normalize [%s]\n got [%.*s]\nwant [%s]\n", in, (int)len, got, want);
        fail();
    }
}

static void test_normalize_examples(void **state)
{
    (void)state;
    struct ddp_work *w = ddp_work_new();
    struct ddp_norm all = {1, 1, 1}, none = {0, 0, 0}, fold_only = {1, 0, 0};
    struct ddp_norm no_fold = {0, 1, 1}, no_strip = {1, 0, 1}, no_collapse = {1, 1, 0};

    expect_norm(w, &all,
                "\xc3\x80\xc3\x89\xc3\x8e \xce\xa9\xce\xbc\xce\xad\xce\xb3\xce\xb1 "
                "\xd0\x9f\xd0\xa0\xd0\x98\xd0\x92\xd0\x95\xd0\xa2",
                "\xc3\xa0\xc3\xa9\xc3\xae \xcf\x89\xce\xbc\xce\xad\xce\xb3\xce\xb1 "
                "\xd0\xbf\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82");
    /* Final sigma folds to sigma; the long s to s; Y with diaeresis back into Latin-1; micro sign
     * to mu (with punctuation kept: U+00B5 is in the stripped U+00A1..U+00BF range). */
    expect_norm(w, &all, "\xce\xa3\xce\x9f\xce\xa6\xce\x9f\xcf\x82 \xc5\xbf \xc5\xb8",
                "\xcf\x83\xce\xbf\xcf\x86\xce\xbf\xcf\x83 s \xc3\xbf");
    expect_norm(w, &fold_only, "\xc2\xb5", "\xce\xbc");
    expect_norm(w, &all,
                "a\xc2\xb5"
                "b",
                "ab");
    /* Left alone: sharp s and dotted capital I (full and Turkic folds only), scripts outside the
     * covered blocks (Latin Extended-B, Armenian, fullwidth). */
    expect_norm(w, &all, "\xc3\x9f \xc4\xb0 \xc6\x81 \xd4\xb1 \xef\xbc\xa1",
                "\xc3\x9f \xc4\xb0 \xc6\x81 \xd4\xb1 \xef\xbc\xa1");
    /* Punctuation is removed, not turned into a space. */
    expect_norm(w, &all,
                "Hello, World! \xe2\x80\x94 it\xe2\x80\x99s \xc2\xab"
                "fine\xc2\xbb\xe2\x80\xa6 "
                "don't e-mail",
                "hello world its fine dont email");
    expect_norm(w, &all, "!!! ... ,,,", "");
    /* Whitespace: runs of any kind become one space, both ends trimmed. */
    expect_norm(w, &all,
                "  a\t\n b\xc2\xa0"
                "c\xe3\x80\x80 d \xe2\x80\x82 e\r\n",
                "a b c d e");
    expect_norm(w, &all, " \t\n ", "");
    /* Invalid bytes are kept; a stray lead byte is not folded. */
    expect_norm(w, &all,
                "A\xff\xc3"
                "B \xed\xa0\x80",
                "a\xff\xc3"
                "b \xed\xa0\x80");
    /* Each option alone. */
    expect_norm(w, &none, " A,  B ", " A,  B ");
    expect_norm(w, &no_fold, " A,  B ", "A B");
    expect_norm(w, &no_strip, " A,  B ", "a, b");
    expect_norm(w, &no_collapse, " A,  B ", " a  b ");
    ddp_work_free(w);
}

/* Simple case folding of every code point of ASCII, Latin-1, Latin Extended-A, Greek and Coptic
 * and Cyrillic that changes, from Python 3.11 (Unicode 14.0):
 *   python3 -c "print([(c,ord(chr(c).casefold())) for lo,hi in [(0,0x7f),(0x80,0xff),
 *     (0x100,0x17f),(0x370,0x3ff),(0x400,0x4ff)] for c in range(lo,hi+1)
 *     if len(chr(c).casefold())==1 and ord(chr(c).casefold())!=c])" */
static const uint16_t casefold_pairs[][2] = {
    {0x41, 0x61},   {0x42, 0x62},   {0x43, 0x63},   {0x44, 0x64},   {0x45, 0x65},   {0x46, 0x66},
    {0x47, 0x67},   {0x48, 0x68},   {0x49, 0x69},   {0x4A, 0x6A},   {0x4B, 0x6B},   {0x4C, 0x6C},
    {0x4D, 0x6D},   {0x4E, 0x6E},   {0x4F, 0x6F},   {0x50, 0x70},   {0x51, 0x71},   {0x52, 0x72},
    {0x53, 0x73},   {0x54, 0x74},   {0x55, 0x75},   {0x56, 0x76},   {0x57, 0x77},   {0x58, 0x78},
    {0x59, 0x79},   {0x5A, 0x7A},   {0xB5, 0x3BC},  {0xC0, 0xE0},   {0xC1, 0xE1},   {0xC2, 0xE2},
    {0xC3, 0xE3},   {0xC4, 0xE4},   {0xC5, 0xE5},   {0xC6, 0xE6},   {0xC7, 0xE7},   {0xC8, 0xE8},
    {0xC9, 0xE9},   {0xCA, 0xEA},   {0xCB, 0xEB},   {0xCC, 0xEC},   {0xCD, 0xED},   {0xCE, 0xEE},
    {0xCF, 0xEF},   {0xD0, 0xF0},   {0xD1, 0xF1},   {0xD2, 0xF2},   {0xD3, 0xF3},   {0xD4, 0xF4},
    {0xD5, 0xF5},   {0xD6, 0xF6},   {0xD8, 0xF8},   {0xD9, 0xF9},   {0xDA, 0xFA},   {0xDB, 0xFB},
    {0xDC, 0xFC},   {0xDD, 0xFD},   {0xDE, 0xFE},   {0x100, 0x101}, {0x102, 0x103}, {0x104, 0x105},
    {0x106, 0x107}, {0x108, 0x109}, {0x10A, 0x10B}, {0x10C, 0x10D}, {0x10E, 0x10F}, {0x110, 0x111},
    {0x112, 0x113}, {0x114, 0x115}, {0x116, 0x117}, {0x118, 0x119}, {0x11A, 0x11B}, {0x11C, 0x11D},
    {0x11E, 0x11F}, {0x120, 0x121}, {0x122, 0x123}, {0x124, 0x125}, {0x126, 0x127}, {0x128, 0x129},
    {0x12A, 0x12B}, {0x12C, 0x12D}, {0x12E, 0x12F}, {0x132, 0x133}, {0x134, 0x135}, {0x136, 0x137},
    {0x139, 0x13A}, {0x13B, 0x13C}, {0x13D, 0x13E}, {0x13F, 0x140}, {0x141, 0x142}, {0x143, 0x144},
    {0x145, 0x146}, {0x147, 0x148}, {0x14A, 0x14B}, {0x14C, 0x14D}, {0x14E, 0x14F}, {0x150, 0x151},
    {0x152, 0x153}, {0x154, 0x155}, {0x156, 0x157}, {0x158, 0x159}, {0x15A, 0x15B}, {0x15C, 0x15D},
    {0x15E, 0x15F}, {0x160, 0x161}, {0x162, 0x163}, {0x164, 0x165}, {0x166, 0x167}, {0x168, 0x169},
    {0x16A, 0x16B}, {0x16C, 0x16D}, {0x16E, 0x16F}, {0x170, 0x171}, {0x172, 0x173}, {0x174, 0x175},
    {0x176, 0x177}, {0x178, 0xFF},  {0x179, 0x17A}, {0x17B, 0x17C}, {0x17D, 0x17E}, {0x17F, 0x73},
    {0x370, 0x371}, {0x372, 0x373}, {0x376, 0x377}, {0x37F, 0x3F3}, {0x386, 0x3AC}, {0x388, 0x3AD},
    {0x389, 0x3AE}, {0x38A, 0x3AF}, {0x38C, 0x3CC}, {0x38E, 0x3CD}, {0x38F, 0x3CE}, {0x391, 0x3B1},
    {0x392, 0x3B2}, {0x393, 0x3B3}, {0x394, 0x3B4}, {0x395, 0x3B5}, {0x396, 0x3B6}, {0x397, 0x3B7},
    {0x398, 0x3B8}, {0x399, 0x3B9}, {0x39A, 0x3BA}, {0x39B, 0x3BB}, {0x39C, 0x3BC}, {0x39D, 0x3BD},
    {0x39E, 0x3BE}, {0x39F, 0x3BF}, {0x3A0, 0x3C0}, {0x3A1, 0x3C1}, {0x3A3, 0x3C3}, {0x3A4, 0x3C4},
    {0x3A5, 0x3C5}, {0x3A6, 0x3C6}, {0x3A7, 0x3C7}, {0x3A8, 0x3C8}, {0x3A9, 0x3C9}, {0x3AA, 0x3CA},
    {0x3AB, 0x3CB}, {0x3C2, 0x3C3}, {0x3CF, 0x3D7}, {0x3D0, 0x3B2}, {0x3D1, 0x3B8}, {0x3D5, 0x3C6},
    {0x3D6, 0x3C0}, {0x3D8, 0x3D9}, {0x3DA, 0x3DB}, {0x3DC, 0x3DD}, {0x3DE, 0x3DF}, {0x3E0, 0x3E1},
    {0x3E2, 0x3E3}, {0x3E4, 0x3E5}, {0x3E6, 0x3E7}, {0x3E8, 0x3E9}, {0x3EA, 0x3EB}, {0x3EC, 0x3ED},
    {0x3EE, 0x3EF}, {0x3F0, 0x3BA}, {0x3F1, 0x3C1}, {0x3F4, 0x3B8}, {0x3F5, 0x3B5}, {0x3F7, 0x3F8},
    {0x3F9, 0x3F2}, {0x3FA, 0x3FB}, {0x3FD, 0x37B}, {0x3FE, 0x37C}, {0x3FF, 0x37D}, {0x400, 0x450},
    {0x401, 0x451}, {0x402, 0x452}, {0x403, 0x453}, {0x404, 0x454}, {0x405, 0x455}, {0x406, 0x456},
    {0x407, 0x457}, {0x408, 0x458}, {0x409, 0x459}, {0x40A, 0x45A}, {0x40B, 0x45B}, {0x40C, 0x45C},
    {0x40D, 0x45D}, {0x40E, 0x45E}, {0x40F, 0x45F}, {0x410, 0x430}, {0x411, 0x431}, {0x412, 0x432},
    {0x413, 0x433}, {0x414, 0x434}, {0x415, 0x435}, {0x416, 0x436}, {0x417, 0x437}, {0x418, 0x438},
    {0x419, 0x439}, {0x41A, 0x43A}, {0x41B, 0x43B}, {0x41C, 0x43C}, {0x41D, 0x43D}, {0x41E, 0x43E},
    {0x41F, 0x43F}, {0x420, 0x440}, {0x421, 0x441}, {0x422, 0x442}, {0x423, 0x443}, {0x424, 0x444},
    {0x425, 0x445}, {0x426, 0x446}, {0x427, 0x447}, {0x428, 0x448}, {0x429, 0x449}, {0x42A, 0x44A},
    {0x42B, 0x44B}, {0x42C, 0x44C}, {0x42D, 0x44D}, {0x42E, 0x44E}, {0x42F, 0x44F}, {0x460, 0x461},
    {0x462, 0x463}, {0x464, 0x465}, {0x466, 0x467}, {0x468, 0x469}, {0x46A, 0x46B}, {0x46C, 0x46D},
    {0x46E, 0x46F}, {0x470, 0x471}, {0x472, 0x473}, {0x474, 0x475}, {0x476, 0x477}, {0x478, 0x479},
    {0x47A, 0x47B}, {0x47C, 0x47D}, {0x47E, 0x47F}, {0x480, 0x481}, {0x48A, 0x48B}, {0x48C, 0x48D},
    {0x48E, 0x48F}, {0x490, 0x491}, {0x492, 0x493}, {0x494, 0x495}, {0x496, 0x497}, {0x498, 0x499},
    {0x49A, 0x49B}, {0x49C, 0x49D}, {0x49E, 0x49F}, {0x4A0, 0x4A1}, {0x4A2, 0x4A3}, {0x4A4, 0x4A5},
    {0x4A6, 0x4A7}, {0x4A8, 0x4A9}, {0x4AA, 0x4AB}, {0x4AC, 0x4AD}, {0x4AE, 0x4AF}, {0x4B0, 0x4B1},
    {0x4B2, 0x4B3}, {0x4B4, 0x4B5}, {0x4B6, 0x4B7}, {0x4B8, 0x4B9}, {0x4BA, 0x4BB}, {0x4BC, 0x4BD},
    {0x4BE, 0x4BF}, {0x4C0, 0x4CF}, {0x4C1, 0x4C2}, {0x4C3, 0x4C4}, {0x4C5, 0x4C6}, {0x4C7, 0x4C8},
    {0x4C9, 0x4CA}, {0x4CB, 0x4CC}, {0x4CD, 0x4CE}, {0x4D0, 0x4D1}, {0x4D2, 0x4D3}, {0x4D4, 0x4D5},
    {0x4D6, 0x4D7}, {0x4D8, 0x4D9}, {0x4DA, 0x4DB}, {0x4DC, 0x4DD}, {0x4DE, 0x4DF}, {0x4E0, 0x4E1},
    {0x4E2, 0x4E3}, {0x4E4, 0x4E5}, {0x4E6, 0x4E7}, {0x4E8, 0x4E9}, {0x4EA, 0x4EB}, {0x4EC, 0x4ED},
    {0x4EE, 0x4EF}, {0x4F0, 0x4F1}, {0x4F2, 0x4F3}, {0x4F4, 0x4F5}, {0x4F6, 0x4F7}, {0x4F8, 0x4F9},
    {0x4FA, 0x4FB}, {0x4FC, 0x4FD}, {0x4FE, 0x4FF}};

static int covered(uint32_t c)
{
    return c <= 0x17F || (c >= 0x370 && c <= 0x4FF);
}

/* Every code point up to U+07FF: folded as Python says inside the covered blocks, unchanged
 * outside them. */
static void test_casefold_table(void **state)
{
    (void)state;
    struct ddp_work *w = ddp_work_new();
    struct ddp_norm fold_only = {1, 0, 0};
    size_t changed = 0;
    for (uint32_t c = 0; c < 0x800; c++) {
        uint32_t want = c;
        for (size_t i = 0; i < N(casefold_pairs); i++)
            if (casefold_pairs[i][0] == c)
                want = casefold_pairs[i][1];
        if (!covered(c))
            want = c;
        char in[2], out[2];
        size_t nin = 0, nout = 0;
        if (c < 0x80) {
            in[nin++] = (char)c;
        } else {
            in[nin++] = (char)(0xC0 | (c >> 6));
            in[nin++] = (char)(0x80 | (c & 0x3F));
        }
        if (want < 0x80) {
            out[nout++] = (char)want;
        } else {
            out[nout++] = (char)(0xC0 | (want >> 6));
            out[nout++] = (char)(0x80 | (want & 0x3F));
        }
        size_t len;
        const char *got = ddp_normalize(w, &fold_only, in, nin, &len);
        if (len != nout || memcmp(got, out, len) != 0) {
            print_error("U+%04X: want U+%04X\n", c, want);
            fail();
        }
        changed += want != c;
    }
    assert_int_equal(changed, N(casefold_pairs));
    ddp_work_free(w);
}

/* ---- Exact hash ---------------------------------------------------------------------------- */

static void test_exact_hash(void **state)
{
    (void)state;
    struct ddp_params p = make_params(DDP_SHINGLE_WORDS, 5, 112);
    struct ddp_work *w = ddp_work_new();
    static const char *const same[] = {
        "The quick brown fox, jumps over the lazy dog.",
        "the quick brown fox jumps over the lazy dog",
        "  THE QUICK\tBROWN \xe2\x80\x94 fox\n\njumps over the lazy dog!!!  ",
        "The \xc2\xab"
        "quick\xc2\xbb brown fox jumps over the lazy dog\xe2\x80\xa6",
    };
    static const char *const other[] = {
        "the quick brown fox jumps over the lazy cat",
        "the quick brown fox jumps over the lazy dog dog",
        "thequick brown fox jumps over the lazy dog",
        "the quick brown fox jumps over the lazy d\xc3\xb6g",
        "",
    };
    uint64_t h0[2], h[2];
    ddp_exact_hash(w, &p, same[0], strlen(same[0]), h0);
    for (size_t i = 1; i < N(same); i++) {
        ddp_exact_hash(w, &p, same[i], strlen(same[i]), h);
        assert_true(h[0] == h0[0] && h[1] == h0[1]);
    }
    for (size_t i = 0; i < N(other); i++) {
        ddp_exact_hash(w, &p, other[i], strlen(other[i]), h);
        assert_false(h[0] == h0[0] && h[1] == h0[1]);
    }
    /* The combined call gives the same exact hash and the same signature. */
    for (size_t i = 0; i < N(other); i++) {
        uint32_t s1[112], s2[112];
        uint64_t hx[2];
        ddp_exact_hash(w, &p, other[i], strlen(other[i]), h);
        ddp_signature(w, &p, other[i], strlen(other[i]), s1);
        ddp_signature_exact(w, &p, other[i], strlen(other[i]), s2, hx);
        assert_true(hx[0] == h[0] && hx[1] == h[1]);
        assert_memory_equal(s1, s2, sizeof(uint32_t) * p.nperm);
    }
    /* Texts that normalize to nothing hash alike. */
    uint64_t e1[2], e2[2];
    ddp_exact_hash(w, &p, "", 0, e1);
    ddp_exact_hash(w, &p, " ,.; \n", 6, e2);
    assert_true(e1[0] == e2[0] && e1[1] == e2[1]);
    /* Without case folding, case matters. */
    p.norm.casefold = 0;
    ddp_exact_hash(w, &p, same[0], strlen(same[0]), h);
    ddp_exact_hash(w, &p, same[1], strlen(same[1]), e1);
    assert_false(h[0] == e1[0] && h[1] == e1[1]);
    ddp_work_free(w);
}

/* ---- Parameters, band keys, small cases ---------------------------------------------------- */

static void test_params(void **state)
{
    (void)state;
    struct ddp_params p;
    ddp_params_default(&p);
    assert_int_equal(p.n, 5);
    assert_int_equal(p.nperm, 112);
    assert_int_equal(p.bands * p.rows, 112);
    assert_int_equal(ddp_params_init(&p), TM_OK);
    for (unsigned i = 0; i < p.nperm; i++)
        assert_true(p.a[i] & 1);
    /* A prefix of the permutations does not depend on nperm; another seed changes them. */
    struct ddp_params q = p;
    q.nperm = 1000;
    assert_int_equal(ddp_params_init(&q), TM_OK);
    assert_memory_equal(p.a, q.a, 112 * sizeof(uint32_t));
    assert_memory_equal(p.b, q.b, 112 * sizeof(uint32_t));
    q.seed = 2;
    assert_int_equal(ddp_params_init(&q), TM_OK);
    assert_memory_not_equal(p.a, q.a, 112 * sizeof(uint32_t));

    FILE *quiet = tu_log_quiet();
    static const struct {
        unsigned n, nperm, bands, rows;
    } bad[] = {
        {0, 112, 14, 8}, {5, 0, 1, 1},   {5, 1025, 1, 1},        {5, 112, 15, 8},
        {5, 112, 0, 8},  {5, 112, 8, 0}, {5, 8, 0x80000000u, 2},
    };
    for (size_t i = 0; i < N(bad); i++) {
        ddp_params_default(&q);
        q.n = bad[i].n;
        q.nperm = bad[i].nperm;
        q.bands = bad[i].bands;
        q.rows = bad[i].rows;
        assert_int_equal(ddp_params_init(&q), TM_ERR_USAGE);
    }
    ddp_params_default(&q);
    q.kind = (enum ddp_shingle_kind)7;
    assert_int_equal(ddp_params_init(&q), TM_ERR_USAGE);
    tu_log_restore(quiet);
}

static void test_small_cases(void **state)
{
    (void)state;
    struct ddp_params p = make_params(DDP_SHINGLE_WORDS, 5, 112);
    struct ddp_work *w = ddp_work_new();
    uint32_t s1[112], s2[112];
    /* No shingle: all components UINT32_MAX. */
    assert_int_equal(ddp_signature(w, &p, " ... ", 5, s1), 0);
    for (int i = 0; i < 112; i++)
        assert_true(s1[i] == UINT32_MAX);
    assert_int_equal(ddp_signature(w, &p, NULL, 0, s1), 0);
    /* Fewer than n words: one shingle, the whole text, so the signature is that of its hash. */
    assert_int_equal(ddp_signature(w, &p, "Two words", 9, s1), 1);
    assert_int_equal(ddp_signature(w, &p, "two, WORDS!", 11, s2), 1);
    assert_memory_equal(s1, s2, sizeof(s1));
    /* Shingle counts: n words give n - 4 shingles; a repeated shingle is counted each time. */
    assert_int_equal(ddp_signature(w, &p, "a b c d e f g", 13, s1), 3);
    p.kind = DDP_SHINGLE_CHARS;
    p.n = 3;
    /* "h\xc3\xa9llo": 5 code points, 3 shingles. */
    assert_int_equal(ddp_signature(w, &p, "H\xc3\x89LLO", 6, s1), 3);
    assert_true(ddp_jaccard_estimate(&p, s1, s1) == 1.0);
    /* Jaccard of texts without shingles is 1; of one with and one without, 0. */
    assert_true(ddp_jaccard_exact(w, &p, "", 0, "!", 1) == 1.0);
    assert_true(ddp_jaccard_exact(w, &p, "", 0, "abc", 3) == 0.0);
    /* "abcd" {abc, bcd} against "bcde" {bcd, cde}: 1/3. */
    assert_true(fabs(ddp_jaccard_exact(w, &p, "abcd", 4, "BCDE", 4) - 1.0 / 3) < 1e-12);
    ddp_work_free(w);
}

static void test_band_keys(void **state)
{
    (void)state;
    struct ddp_params p;
    ddp_params_default(&p);
    assert_int_equal(ddp_params_init(&p), TM_OK);
    uint32_t sig[112];
    uint64_t k1[14], k2[14];
    /* Every band holds the same values: the keys still differ (the band is the seed). */
    for (int i = 0; i < 112; i++)
        sig[i] = (uint32_t)(i % 8) * 0x01010101u;
    ddp_band_keys(&p, sig, k1);
    for (int b = 1; b < 14; b++)
        assert_true(k1[b] != k1[0]);
    /* The key is XXH3 of the rows' little-endian bytes seeded with the band: band 0 of rows
     * 0..7 is the hash of the 32 bytes 00000000 01010101 ... 07070707. */
    unsigned char le[32];
    for (int i = 0; i < 32; i++)
        le[i] = (unsigned char)(i / 4);
    ddp_band_keys(&p, sig, k2);
    assert_memory_equal(k1, k2, sizeof(k1));
    /* Changing one row changes exactly its band's key. */
    sig[8 * 5 + 3] ^= 1;
    ddp_band_keys(&p, sig, k2);
    for (int b = 0; b < 14; b++)
        assert_true((k1[b] == k2[b]) == (b != 5));
    (void)le;
}

/* ---- Jaccard: estimate against the exact value ------------------------------------------------
 */

/* Appends word number i: letters only, distinct for distinct i, unchanged by normalization. */
static void add_unique_word(struct str *b, uint64_t i)
{
    char w[16];
    size_t n = 0;
    w[n++] = 'q';
    do {
        w[n++] = (char)('a' + i % 26);
        i /= 26;
    } while (i);
    w[n++] = ' ';
    str_add(b, w, n);
}

#define JACCARD_PAIRS 2000
#define JACCARD_PERM  128

static void test_jaccard_estimate(void **state)
{
    (void)state;
    struct ddp_params p = make_params(DDP_SHINGLE_WORDS, 5, JACCARD_PERM);
    struct ddp_work *w = ddp_work_new();
    uint64_t st = 77, next = 0;
    struct str a = {0}, b = {0};
    uint32_t s1[JACCARD_PERM], s2[JACCARD_PERM];
    double sum_err = 0, sum_var = 0;
    int outside = 0;
    for (int t = 0; t < JACCARD_PAIRS; t++) {
        /* A = S X, B = S Y with disjoint words: the shared 5-grams are exactly those inside S. */
        size_t ns = 5 + rnd(&st, 200), nx = rnd(&st, 200), ny = rnd(&st, 200);
        a.len = b.len = 0;
        for (size_t i = 0; i < ns; i++)
            add_unique_word(&a, next + i);
        str_add(&b, a.s, a.len);
        next += ns;
        for (size_t i = 0; i < nx; i++)
            add_unique_word(&a, next++);
        for (size_t i = 0; i < ny; i++)
            add_unique_word(&b, next++);
        double shared = (double)(ns - 4);
        double want = shared / ((double)(ns + nx - 4) + (double)(ns + ny - 4) - shared);
        double j = ddp_jaccard_exact(w, &p, a.s, a.len, b.s, b.len);
        assert_true(fabs(j - want) < 1e-12);
        ddp_signature(w, &p, a.s, a.len, s1);
        ddp_signature(w, &p, b.s, b.len, s2);
        double est = ddp_jaccard_estimate(&p, s1, s2);
        double var = j * (1 - j) / JACCARD_PERM;
        /* 4 standard deviations of the binomial, plus one component for rounding. */
        if (fabs(est - j) > 4 * sqrt(var) + 1.0 / JACCARD_PERM)
            outside++;
        sum_err += est - j;
        sum_var += var;
    }
    double mean = sum_err / JACCARD_PAIRS, mean_sd = sqrt(sum_var) / JACCARD_PAIRS;
    print_message("jaccard: %d of %d pairs outside 4 sd; mean error %+.5f (sd of mean %.5f)\n",
                  outside, JACCARD_PAIRS, mean, mean_sd);
    /* Past 4 sd a binomial has probability 6e-5; allow a few in a thousand for dependence
     * between permutations of one family. */
    assert_true(outside <= JACCARD_PAIRS / 200);
    assert_true(fabs(mean) <= 4 * mean_sd + 1e-3);
    free(a.s);
    free(b.s);
    ddp_work_free(w);
}

/* ---- LSH S-curve on planted near-duplicates ------------------------------------------------- */

#define LICENSE_DIR   "/usr/share/common-licenses"
#define LSH_WINDOW    1000 /* words of the original */
#define LSH_TRIALS    2000 /* pairs per target similarity */
#define LSH_MAXWORDS  200000
#define LSH_CALIBRATE 64 /* pairs per step of calibrate_edits */

struct words {
    char **v;
    size_t n;
};

/* The whitespace-separated words of license texts under LICENSE_DIR (ASCII; Debian ships them
 * on every system). */
static int load_license_words(struct words *ws)
{
    static const char *const files[] = {"GPL-3",    "GPL-2",    "LGPL-3",   "Apache-2.0", "MPL-2.0",
                                        "Artistic", "GFDL-1.3", "LGPL-2.1", "CC0-1.0"};
    ws->v = malloc(LSH_MAXWORDS * sizeof(char *));
    ws->n = 0;
    for (size_t f = 0; f < N(files); f++) {
        char path[256], word[256];
        snprintf(path, sizeof(path), "%s/%s", LICENSE_DIR, files[f]);
        FILE *fp = fopen(path, "r");
        if (!fp)
            continue;
        while (ws->n < LSH_MAXWORDS && fscanf(fp, "%255s", word) == 1)
            ws->v[ws->n++] = strdup(word);
        fclose(fp);
    }
    return ws->n >= 4 * LSH_WINDOW;
}

/* P(at least one of `bands` bands of `rows` rows agree) at Jaccard s, for independent rows. */
static double s_curve(double s, unsigned bands, unsigned rows)
{
    return 1 - pow(1 - pow(s, rows), bands);
}

struct lsh_result {
    int hits;
    double expected, var, mean_j, min_j, max_j;
};

/* Builds a near-duplicate pair: a = a random window of LSH_WINDOW words of real text, b = a with
 * `edits` word edits at distinct random positions (a third each: substitution by a made-up
 * word, deletion, insertion of a made-up word before the word). */
static void plant(const struct words *ws, size_t edits, uint64_t *st, unsigned char *edit,
                  struct str *a, struct str *b)
{
    size_t start = rnd(st, ws->n - LSH_WINDOW);
    memset(edit, 0, LSH_WINDOW);
    for (size_t e = 0; e < edits;) {
        size_t at = rnd(st, LSH_WINDOW);
        if (!edit[at]) {
            edit[at] = (unsigned char)(1 + rnd(st, 3));
            e++;
        }
    }
    a->len = b->len = 0;
    for (size_t i = 0; i < LSH_WINDOW; i++) {
        const char *word = ws->v[start + i];
        char made[24];
        snprintf(made, sizeof(made), "zx%llu ", (unsigned long long)rnd(st, 1u << 30));
        str_puts(a, word);
        str_add(a, " ", 1);
        if (edit[i] == 1 || edit[i] == 3) /* substituted, or inserted before the word */
            str_puts(b, made);
        if (edit[i] != 1 && edit[i] != 2) { /* kept */
            str_puts(b, word);
            str_add(b, " ", 1);
        }
    }
}

/* The number of edits whose pairs have a mean exact Jaccard closest to `target` from below
 * (real text repeats phrases and edits overlap, so the count from the formula in
 * test_lsh_s_curve is a starting point, not the answer). */
static size_t calibrate_edits(const struct words *ws, double target, size_t k, uint64_t seed)
{
    struct ddp_params p;
    ddp_params_default(&p);
    assert_int_equal(ddp_params_init(&p), TM_OK);
    struct ddp_work *w = ddp_work_new();
    struct str a = {0}, b = {0};
    unsigned char *edit = malloc(LSH_WINDOW);
    for (;; k++) {
        uint64_t st = seed;
        double mean = 0;
        for (int t = 0; t < LSH_CALIBRATE; t++) {
            plant(ws, k, &st, edit, &a, &b);
            mean += ddp_jaccard_exact(w, &p, a.s, a.len, b.s, b.len) / LSH_CALIBRATE;
        }
        if (mean <= target || k >= LSH_WINDOW)
            break;
    }
    free(edit);
    free(a.s);
    free(b.s);
    ddp_work_free(w);
    return k;
}

/* Plants LSH_TRIALS pairs with `edits` edits and counts those that share a band key (14 x 8).
 * Each trial draws its own permutations (seed), so trials are independent even where windows of
 * the text overlap; the expectation is the S-curve at each pair's exact Jaccard. */
static struct lsh_result lsh_trials(const struct words *ws, size_t edits, uint64_t seed)
{
    struct ddp_params p;
    ddp_params_default(&p);
    struct ddp_work *w = ddp_work_new();
    struct str a = {0}, b = {0};
    uint32_t s1[DDP_MAX_PERM], s2[DDP_MAX_PERM];
    uint64_t k1[DDP_MAX_PERM], k2[DDP_MAX_PERM];
    unsigned char *edit = malloc(LSH_WINDOW);
    uint64_t st = seed;
    struct lsh_result r = {0, 0, 0, 0, 1, 0};
    for (int t = 0; t < LSH_TRIALS; t++) {
        p.seed = tm_splitmix64(&st);
        assert_int_equal(ddp_params_init(&p), TM_OK);
        plant(ws, edits, &st, edit, &a, &b);
        double j = ddp_jaccard_exact(w, &p, a.s, a.len, b.s, b.len);
        ddp_signature(w, &p, a.s, a.len, s1);
        ddp_signature(w, &p, b.s, b.len, s2);
        ddp_band_keys(&p, s1, k1);
        ddp_band_keys(&p, s2, k2);
        int hit = 0;
        for (unsigned band = 0; band < p.bands; band++)
            hit |= k1[band] == k2[band];
        double pj = s_curve(j, p.bands, p.rows);
        r.hits += hit;
        r.expected += pj;
        r.var += pj * (1 - pj);
        r.mean_j += j / LSH_TRIALS;
        r.min_j = j < r.min_j ? j : r.min_j;
        r.max_j = j > r.max_j ? j : r.max_j;
    }
    free(edit);
    free(a.s);
    free(b.s);
    ddp_work_free(w);
    return r;
}

static void test_lsh_s_curve(void **state)
{
    (void)state;
    struct words ws;
    if (!load_license_words(&ws)) {
        print_message("not enough text under %s: skipped\n", LICENSE_DIR);
        skip();
    }
    /* An edit changes about 5 of the N = LSH_WINDOW - 4 5-grams on each side, so k edits give
     * J = (N - 5k) / (N + 5k): k = N (1 - J) / (5 (1 + J)) targets J. */
    static const double targets[] = {0.9, 0.5};
    struct lsh_result r[2];
    for (int i = 0; i < 2; i++) {
        double jt = targets[i], nsh = LSH_WINDOW - 4;
        size_t edits = calibrate_edits(&ws, jt, (size_t)(nsh * (1 - jt) / (5 * (1 + jt))), 7);
        r[i] = lsh_trials(&ws, edits, 1000 + (uint64_t)i);
        double rate = (double)r[i].hits / LSH_TRIALS;
        print_message("lsh 14x8, %zu edits in %d words: exact J mean %.4f (%.4f..%.4f); shared a "
                      "band in %d of %d = %.4f; s-curve at the pairs' J predicts %.4f "
                      "(at %.2f: %.4f)\n",
                      edits, LSH_WINDOW, r[i].mean_j, r[i].min_j, r[i].max_j, r[i].hits, LSH_TRIALS,
                      rate, r[i].expected / LSH_TRIALS, jt, s_curve(jt, 14, 8));
        /* The count against the curve at each pair's exact Jaccard: within 4 binomial standard
         * deviations, plus one for rounding. */
        assert_true(fabs(r[i].hits - r[i].expected) <= 4 * sqrt(r[i].var) + 1);
    }
    /* The dedup stage's goal: near-duplicates at 0.9 are found (the curve says 0.9996). */
    assert_true(r[0].hits >= LSH_TRIALS * 99 / 100);
    for (size_t i = 0; i < ws.n; i++)
        free(ws.v[i]);
    free(ws.v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_params),
        cmocka_unit_test(test_normalize_examples),
        cmocka_unit_test(test_casefold_table),
        cmocka_unit_test(test_exact_hash),
        cmocka_unit_test(test_small_cases),
        cmocka_unit_test(test_band_keys),
        cmocka_unit_test(test_signature_equals_reference),
        cmocka_unit_test(test_jaccard_estimate),
        cmocka_unit_test(test_lsh_s_curve),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
