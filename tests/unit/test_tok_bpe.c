/* tokenize: the heap-based BPE against a plain O(n^2) rendering of tiktoken's merge loop on
 * random strings; byte round trips; special tokens allowed and disallowed; long runs in linear
 * time; the streaming decoder; and, when TOKENMILL_VOCAB_DIR names a directory holding the real
 * .tiktoken files, ids equal to golden ids made by tiktoken 0.14 (bench/tok_golden.py). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tok_internal.h"
#include "tm_buf.h"
#include "tm_err.h"
#include "tm_fs.h"
#include "tm_log.h"
#include "tok_test_util.h"

/* Merges of the small vocabulary, in rank order after the 256 single bytes. */
static const char *const merges[] = {"ab",  "aa", "ba",   "bc", "aaaa",     "abc", "cab",
                                     "aab", "bb", "abab", "ca", "aaaaaaaa", "cc",  "ccc"};
#define NMERGES (sizeof(merges) / sizeof(merges[0]))

static struct tok_vocab *small_vocab(void)
{
    return tok_tu_vocab(merges, NMERGES);
}

/* tiktoken's _byte_pair_merge as written there: rescan every boundary after each merge. */
static size_t reference_bpe(const struct tok_vocab *v, const unsigned char *s, size_t n,
                            uint32_t *ids)
{
    uint32_t whole;
    if (tok_vocab_rank(v, s, n, &whole) == TM_OK) {
        ids[0] = whole;
        return 1;
    }
    size_t *start = malloc((n + 1) * sizeof(*start));
    size_t parts = n;
    for (size_t i = 0; i <= n; i++)
        start[i] = i;
    for (;;) {
        uint32_t best = TOK_NO_RANK;
        size_t at = 0;
        for (size_t i = 0; i + 1 < parts; i++) {
            uint32_t r = tok_vocab_rank_or_none(v, s + start[i], start[i + 2] - start[i]);
            if (r < best) {
                best = r;
                at = i;
            }
        }
        if (best == TOK_NO_RANK)
            break;
        memmove(&start[at + 1], &start[at + 2], (parts - at - 1) * sizeof(*start));
        parts--;
    }
    for (size_t i = 0; i < parts; i++)
        assert_int_equal(tok_vocab_rank(v, s + start[i], start[i + 1] - start[i], &ids[i]), TM_OK);
    free(start);
    return parts;
}

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void test_vocab_maps(void **state)
{
    (void)state;
    struct tok_vocab *v = small_vocab();
    assert_int_equal(tok_vocab_count(v), 256 + NMERGES);
    uint32_t r;
    assert_int_equal(tok_vocab_rank(v, "abc", 3, &r), TM_OK);
    assert_int_equal(r, 261);
    assert_int_equal(tok_vocab_rank(v, "abcd", 4, &r), TM_ERR_NOTFOUND);
    size_t len;
    const unsigned char *b = tok_vocab_bytes(v, 267, &len);
    assert_non_null(b);
    assert_int_equal(len, 8);
    assert_null(tok_vocab_bytes(v, 9999, &len));
    tok_vocab_free(v);
}

static void test_vocab_errors_name_the_line(void **state)
{
    (void)state;
    static const char *const bad[] = {"YQ== 0\nYg==\n",   "YQ== 0\n!!!! 1\n", "YQ== 0\nYQ== 1\n",
                                      "YQ== 0\nYg== 0\n", "YQ== x\n",         "YQ== 99999999999\n"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct tok_vocab *v = (struct tok_vocab *)1;
        FILE *sink = fopen("/dev/null", "w");
        tm_log_set_stream(sink, 0);
        int rc = tok_vocab_load_mem("bad", bad[i], strlen(bad[i]), &v);
        tm_log_set_stream(NULL, -1);
        fclose(sink);
        assert_true(rc == TM_ERR_FORMAT || rc == TM_ERR_TOOBIG);
        assert_null(v);
    }
}

/* Both merge paths (the array for pieces up to 64 bytes, the heap above), each asking the
 * vocabulary or the encoder's rank map, against the reference. */
static void test_bpe_matches_reference(void **state)
{
    (void)state;
    struct tok_vocab *v = small_vocab();
    struct tok_rankmap *m = NULL;
    assert_int_equal(tok_rankmap_new(v, &m), TM_OK);
    struct tok_bpe_scratch scratch = {0};
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    unsigned char s[200];
    uint32_t want[200];
    struct tok_ids got;
    tok_ids_init(&got, 0);
    for (int iter = 0; iter < 20000; iter++) {
        size_t n = 1 + rng_next(&seed) % (iter % 8 == 0 ? sizeof(s) : 64);
        for (size_t i = 0; i < n; i++)
            s[i] = (unsigned char)("abcd"[rng_next(&seed) % (iter % 2 ? 4 : 3)]);
        size_t nw = reference_bpe(v, s, n, want);
        got.n = 0;
        assert_int_equal(tok_bpe_encode_piece(v, s, n, &got), TM_OK);
        assert_int_equal(got.n, nw);
        assert_memory_equal(got.v, want, nw * sizeof(*want));
        got.n = 0;
        assert_int_equal(tok_bpe_encode_with(v, m, s, n, &scratch, &got), TM_OK);
        assert_int_equal(got.n, nw);
        assert_memory_equal(got.v, want, nw * sizeof(*want));
    }
    tok_bpe_scratch_release(&scratch);
    tok_ids_release(&got);
    tok_rankmap_unref(m);
    tok_vocab_free(v);
}

/* The rank map answers as the vocabulary does: for every token of a vocabulary of random
 * tokens of 1..12 bytes over an alphabet with NUL (so a token and the same bytes plus a NUL
 * differ only in length), and for random strings that are mostly not tokens. */
static void test_rankmap_equals_vocab(void **state)
{
    (void)state;
    static const unsigned char al[] = {'a', 'b', 0, 0xff};
    uint64_t seed = 777;
    struct tm_buf f;
    tm_buf_init(&f, 0);
    for (int i = 0; i < 256; i++) {
        unsigned char c = (unsigned char)i;
        tok_tu_b64(&c, 1, &f);
        tm_buf_printf(&f, " %d\n", i);
    }
    /* All strings over the alphabet up to 5 bytes, then random longer ones; duplicates skipped. */
    size_t rank = 256;
    for (size_t len = 2; len <= 5; len++)
        for (size_t x = 0; x < ((size_t)1 << (2 * len)); x++) {
            unsigned char t[5];
            for (size_t i = 0; i < len; i++)
                t[i] = al[(x >> (2 * i)) & 3];
            tok_tu_b64(t, len, &f);
            tm_buf_printf(&f, " %zu\n", rank++);
        }
    for (int k = 0; k < 3000; k++) {
        unsigned char t[12];
        size_t len = 6 + rng_next(&seed) % 7;
        for (size_t i = 0; i < len; i++)
            t[i] = al[rng_next(&seed) % 4];
        /* Ranks past the dense block; a repeated token would fail the load, so make it unique by
         * its last byte pattern: rank-dependent bytes in positions 6.. */
        t[len - 1] = (unsigned char)(k & 0xff);
        t[len - 2] = (unsigned char)(k >> 8);
        tok_tu_b64(t, len, &f);
        tm_buf_printf(&f, " %zu\n", rank++);
    }
    struct tok_vocab *v = NULL;
    assert_int_equal(tok_vocab_load_mem("random", f.data, f.len, &v), TM_OK);
    tm_buf_release(&f);
    struct tok_rankmap *m = NULL;
    assert_int_equal(tok_rankmap_new(v, &m), TM_OK);
    for (uint32_t r = 0; r < tok_vocab_end(v); r++) {
        size_t len;
        const unsigned char *b = tok_vocab_bytes(v, r, &len);
        assert_non_null(b);
        assert_int_equal(tok_rankmap_get(m, b, len), r);
    }
    size_t found = 0;
    for (int k = 0; k < 200000; k++) {
        unsigned char t[14];
        size_t len = 1 + rng_next(&seed) % sizeof(t);
        for (size_t i = 0; i < len; i++)
            t[i] = al[rng_next(&seed) % 4];
        uint32_t want = tok_vocab_rank_or_none(v, t, len);
        found += want != TOK_NO_RANK;
        assert_int_equal(tok_rankmap_get(m, t, len), want);
    }
    assert_true(found > 1000 && found < 190000); /* both answers were exercised */
    assert_int_equal(tok_rankmap_get(m, (const unsigned char *)"", 0), TOK_NO_RANK);
    tok_rankmap_unref(m);
    tok_vocab_free(v);
}

static void test_bpe_round_trips_random_bytes(void **state)
{
    (void)state;
    struct tok_vocab *v = small_vocab();
    uint64_t seed = 12345;
    unsigned char s[300], back[300];
    struct tok_ids ids;
    tok_ids_init(&ids, 0);
    for (int iter = 0; iter < 2000; iter++) {
        size_t n = 1 + rng_next(&seed) % sizeof(s);
        for (size_t i = 0; i < n; i++)
            s[i] = iter % 3 ? (unsigned char)rng_next(&seed)
                            : (unsigned char)"abc"[rng_next(&seed) % 3];
        ids.n = 0;
        assert_int_equal(tok_bpe_encode_piece(v, s, n, &ids), TM_OK);
        size_t o = 0;
        for (size_t i = 0; i < ids.n; i++) {
            size_t len;
            const unsigned char *b = tok_vocab_bytes(v, ids.v[i], &len);
            assert_non_null(b);
            assert_true(o + len <= n);
            memcpy(back + o, b, len);
            o += len;
        }
        assert_int_equal(o, n);
        assert_memory_equal(back, s, n);
    }
    tok_ids_release(&ids);
    tok_vocab_free(v);
}

static double seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A megabyte of one letter is one pre-token: tiktoken's loop would take ~10^12 steps. Here it
 * must finish fast (the bound is loose: 10x what a sanitizer build needs) and follow the rule:
 * 'aa' (257) then 'aaaa' (260) then 'aaaaaaaa' (267) merge level by level, leftmost first. */
static void test_long_runs_are_fast(void **state)
{
    (void)state;
    struct tok_vocab *v = small_vocab();
    struct tok_encoder *e = NULL;
    assert_int_equal(tok_encoder_new(v, TOK_PAT_CL100K, &e), TM_OK);
    size_t n = (1u << 20) + 3;
    char *s = malloc(n);
    memset(s, 'a', n);
    struct tok_ids ids;
    tok_ids_init(&ids, 0);
    double t0 = seconds();
    assert_int_equal(tok_encode(e, s, n, &ids), TM_OK);
    double dt = seconds() - t0;
    assert_true(dt < 10.0);
    assert_int_equal(ids.n, (1u << 17) + 2);
    for (size_t i = 0; i < (1u << 17); i++)
        assert_int_equal(ids.v[i], 267);
    assert_int_equal(ids.v[1u << 17], 257);
    assert_int_equal(ids.v[(1u << 17) + 1], 'a');
    /* And a megabyte of spaces then a word: one whitespace pre-token, no match-limit error. */
    for (int pat = 0; pat < TOK_PAT_COUNT; pat++) {
        struct tok_encoder *e2 = NULL;
        assert_int_equal(tok_encoder_new(v, (enum tok_pattern)pat, &e2), TM_OK);
        memset(s, ' ', n);
        memcpy(s + n - 3, "abc", 3);
        ids.n = 0;
        t0 = seconds();
        assert_int_equal(tok_encode(e2, s, n, &ids), TM_OK);
        assert_true(seconds() - t0 < 10.0);
        assert_int_equal(ids.n, n - 3 - 1 + 2); /* spaces, then " abc" -> ' ' 'abc' */
        memset(s, '\n', n);
        ids.n = 0;
        assert_int_equal(tok_encode(e2, s, n, &ids), TM_OK);
        assert_int_equal(ids.n, n);
        tok_encoder_free(e2);
    }
    free(s);
    tok_ids_release(&ids);
    tok_encoder_free(e);
    tok_vocab_free(v);
}

static void test_special_tokens(void **state)
{
    (void)state;
    struct tok_vocab *v = small_vocab();
    struct tok_encoder *e = NULL;
    assert_int_equal(tok_encoder_new(v, TOK_PAT_CL100K, &e), TM_OK);
    const char *text = "ab<|endoftext|>c<|fim_prefix|>";
    struct tok_ids ids;
    tok_ids_init(&ids, 0);
    FILE *sink = fopen("/dev/null", "w");
    tm_log_set_stream(sink, 0);
    /* Default: every special disallowed. */
    assert_int_equal(tok_encode(e, text, strlen(text), &ids), TM_ERR_FORMAT);
    /* Allowed endoftext, fim_prefix still disallowed. */
    assert_int_equal(tok_encoder_set_special(e, "<|endoftext|>", "all"), TM_OK);
    assert_int_equal(tok_encode(e, text, strlen(text), &ids), TM_ERR_FORMAT);
    assert_int_equal(tok_encoder_set_special(e, "nope", "all"), TM_ERR_USAGE);
    tm_log_set_stream(NULL, -1);
    fclose(sink);
    /* Allowed endoftext, nothing disallowed: fim_prefix is ordinary text. */
    assert_int_equal(tok_encoder_set_special(e, "<|endoftext|>", ""), TM_OK);
    ids.n = 0;
    assert_int_equal(tok_encode(e, text, strlen(text), &ids), TM_OK);
    assert_int_equal(ids.v[0], 256);
    assert_int_equal(ids.v[1], 100257);
    assert_true(ids.n > 3);
    /* All allowed. */
    assert_int_equal(tok_encoder_set_special(e, "all", "all"), TM_OK);
    ids.n = 0;
    assert_int_equal(tok_encode(e, text, strlen(text), &ids), TM_OK);
    assert_int_equal(ids.n, 4);
    assert_int_equal(ids.v[2], 'c');
    assert_int_equal(ids.v[3], 100258);
    /* encode_ordinary ignores specials. */
    ids.n = 0;
    assert_int_equal(tok_encode_ordinary(e, text, strlen(text), &ids), TM_OK);
    for (size_t i = 0; i < ids.n; i++)
        assert_true(ids.v[i] < 300);
    tok_ids_release(&ids);
    tok_encoder_free(e);
    tok_vocab_free(v);
}

/* Custom specials replace the encoding's: the new ones split text when allowed, the old ones
 * are ordinary text, ids are looked up by text, and bad tables leave the encoder unchanged. */
static void test_custom_specials(void **state)
{
    (void)state;
    struct tok_vocab *v = small_vocab();
    struct tok_encoder *e = NULL;
    assert_int_equal(tok_encoder_new(v, TOK_PAT_CL100K, &e), TM_OK);
    uint32_t id = 0;
    assert_int_equal(tok_encoder_special_id(e, "<|endoftext|>", &id), TM_OK);
    assert_int_equal(id, 100257);
    assert_int_equal(tok_encoder_special_id(e, "<|nope|>", &id), TM_ERR_NOTFOUND);
    /* The end of the vocabulary (270) becomes <|endoftext|>, plus one more. */
    const uint32_t end = tok_vocab_end(v);
    const char *texts[] = {"<|endoftext|>", "<|sep|>"};
    const uint32_t ids[] = {end, end + 1};
    assert_int_equal(tok_encoder_set_special(e, "all", ""), TM_OK);
    assert_int_equal(tok_encoder_set_specials(e, texts, ids, 2), TM_OK);
    assert_int_equal(tok_encoder_special_id(e, "<|endoftext|>", &id), TM_OK);
    assert_int_equal(id, end);
    assert_int_equal(tok_encoder_special_id(e, "<|sep|>", &id), TM_OK);
    assert_int_equal(id, end + 1);
    assert_int_equal(tok_encoder_special_id(e, "<|fim_prefix|>", &id), TM_ERR_NOTFOUND);
    size_t len;
    const unsigned char *b = tok_token_bytes(e, end + 1, &len);
    assert_non_null(b);
    assert_int_equal(len, 7);
    assert_memory_equal(b, "<|sep|>", 7);

    const char *text = "ab<|sep|>c<|fim_prefix|>";
    struct tok_ids got;
    tok_ids_init(&got, 0);
    FILE *sink = fopen("/dev/null", "w");
    tm_log_set_stream(sink, 0);
    /* set_specials reset the sets to tiktoken's defaults: everything disallowed. */
    assert_int_equal(tok_encode(e, text, strlen(text), &got), TM_ERR_FORMAT);
    /* The old specials are gone from the option names. */
    assert_int_equal(tok_encoder_set_special(e, "<|fim_prefix|>", ""), TM_ERR_USAGE);
    /* Bad tables: an id that is a rank, a repeated text, a repeated id, an empty text, too
     * many. None changes the encoder. */
    const char *dup_texts[] = {"<|a|>", "<|a|>"};
    const uint32_t rank_ids[] = {5, end + 9}, dup_ids[] = {end + 3, end + 3},
                   ok_ids[] = {end + 3, end + 4};
    const char *empty_texts[] = {"<|a|>", ""};
    assert_int_equal(tok_encoder_set_specials(e, texts, rank_ids, 2), TM_ERR_USAGE);
    assert_int_equal(tok_encoder_set_specials(e, dup_texts, ok_ids, 2), TM_ERR_USAGE);
    assert_int_equal(tok_encoder_set_specials(e, texts, dup_ids, 2), TM_ERR_USAGE);
    assert_int_equal(tok_encoder_set_specials(e, empty_texts, ok_ids, 2), TM_ERR_USAGE);
    assert_int_equal(tok_encoder_set_specials(e, texts, ids, TOK_MAX_SPECIALS + 1), TM_ERR_USAGE);
    tm_log_set_stream(NULL, -1);
    fclose(sink);
    assert_int_equal(tok_encoder_special_id(e, "<|sep|>", &id), TM_OK);
    assert_int_equal(id, end + 1);

    assert_int_equal(tok_encoder_set_special(e, "<|sep|>", ""), TM_OK);
    assert_int_equal(tok_encode(e, text, strlen(text), &got), TM_OK);
    /* "ab" is one merge (256), then the special, then c and the fim text as bytes/merges. */
    assert_true(got.n > 4);
    assert_int_equal(got.v[0], 256);
    assert_int_equal(got.v[1], end + 1);
    assert_int_equal(got.v[2], 'c');
    for (size_t i = 3; i < got.n; i++)
        assert_true(got.v[i] < end);

    /* 64 specials (the cap) work, including the last bit of the sets. */
    char names[TOK_MAX_SPECIALS][16];
    const char *many[TOK_MAX_SPECIALS];
    uint32_t many_ids[TOK_MAX_SPECIALS];
    for (int i = 0; i < TOK_MAX_SPECIALS; i++) {
        snprintf(names[i], sizeof(names[i]), "<|s%d|>", i);
        many[i] = names[i];
        many_ids[i] = 1000 + (uint32_t)i;
    }
    assert_int_equal(tok_encoder_set_specials(e, many, many_ids, TOK_MAX_SPECIALS), TM_OK);
    assert_int_equal(tok_encoder_set_special(e, "<|s63|>", ""), TM_OK);
    got.n = 0;
    assert_int_equal(tok_encode(e, "a<|s63|>", 8, &got), TM_OK);
    assert_int_equal(got.n, 2);
    assert_int_equal(got.v[1], 1063);
    /* none at all */
    assert_int_equal(tok_encoder_set_specials(e, NULL, NULL, 0), TM_OK);
    assert_int_equal(tok_encoder_special_id(e, "<|endoftext|>", &id), TM_ERR_NOTFOUND);
    got.n = 0;
    assert_int_equal(tok_encode(e, "a<|s63|>", 8, &got), TM_OK);
    assert_true(got.n > 2);
    tok_ids_release(&got);
    tok_encoder_free(e);

    /* A vocabulary whose ranks cover an encoding's special ids: those specials are left out
     * instead of failing. */
    struct tm_buf f;
    tm_buf_init(&f, 0);
    for (int i = 0; i < 256; i++) {
        unsigned char c = (unsigned char)i;
        tok_tu_b64(&c, 1, &f);
        tm_buf_printf(&f, " %d\n", i);
    }
    tok_tu_b64((const unsigned char *)"ab", 2, &f);
    tm_buf_printf(&f, " 50256\n");
    struct tok_vocab *big = NULL;
    assert_int_equal(tok_vocab_load_mem("big", f.data, f.len, &big), TM_OK);
    tm_buf_release(&f);
    assert_int_equal(tok_encoder_new(big, TOK_PAT_R50K, &e), TM_OK);
    assert_int_equal(tok_encoder_special_id(e, "<|endoftext|>", &id), TM_ERR_NOTFOUND);
    tok_encoder_free(e);
    tok_vocab_free(big);
    tok_vocab_free(v);
}

/* ---- The ASCII pre-tokenizer against PCRE2 ----------------------------------------------------
 */

struct piece_list {
    size_t n, cap;
    size_t *v; /* start, end pairs */
};

static int collect_piece(void *ctx, size_t start, size_t end)
{
    struct piece_list *l = ctx;
    if (l->n + 2 > l->cap) {
        l->cap = l->cap ? l->cap * 2 : 256;
        l->v = realloc(l->v, l->cap * sizeof(*l->v));
    }
    l->v[l->n++] = start;
    l->v[l->n++] = end;
    return 0;
}

/* Alphabets of "characters" (byte strings) that random strings are drawn from: each aims at a
 * part of the patterns (contractions and case, runs of letters/digits/punctuation, whitespace
 * and line breaks before words and at the end, slashes after punctuation), and the last two mix
 * in non-ASCII characters of every class the patterns name (letters of each case category,
 * marks, digits, White_Space, U+017F which folds to 's', U+212A which folds to 'k'), so the
 * hand-over to PCRE2 is exercised too. */
static const char *const alphabets[][40] = {
    {"'", "s", "S", "t", "T", "d", "D", "m", "M", "l",  "L", "v",
     "V", "r", "R", "e", "E", "x", "X", " ", "'", "\n", "1"},
    {"a",  "b", "Z", "Q", "0", "5", "9", " ",  " ", "\t", "\r",
     "\n", ".", ",", "'", "/", "-", "(", "\"", "!", "_"},
    {" ", " ", " ", "\t", "\r", "\n", "\v", "\f", "a", "B", ".", "1", "/"},
    {"'", "/",  ".",    ",",    ";",    "!", "?",  "(",  ")", "{", "-",
     "#", "\"", "\x01", "\x1f", "\x7f", " ", "\r", "\n", "a", "A", "7"},
    {"a",
     "A",
     "1",
     " ",
     "\n",
     "'",
     ".",
     "/",
     "\xc3\xa9",
     "\xc3\x89",
     "\xc2\xa0",
     "\xc2\x85",
     "\xc5\xbf",
     "\xcc\x81",
     "\xd9\xa3",
     "\xe4\xb8\xad",
     "\xe2\x80\xa8",
     "\xe2\x82\xac",
     "\xe2\x84\xaa",
     "\xc7\x85",
     "\xca\xb0",
     "\xe3\x80\x80",
     "\xe2\x85\xa0",
     "s",
     "l",
     "e"},
    {"x", "Y", "4", "  ", "\r\n", "'s", "'LL", "'ve", "'", "\xc3\xa9", "\xc2\xa0", "\xc5\xbf",
     "\xe2\x80\x8b", "\xe1\xa0\x8e", "\xcc\x81", "\xef\xbc\x91", "/", "\t"},
};
#define NALPHA (sizeof(alphabets) / sizeof(alphabets[0]))

/* How many random strings per pattern: TOKENMILL_SCAN_ITERS, default 200000 (about a second
 * in all; a sanitizer build does a quarter). Run it with millions after changing
 * tok_enc_scan.c or tok_pattern.c. */
static long scan_iters(void)
{
    const char *s = getenv("TOKENMILL_SCAN_ITERS");
    if (s && *s)
        return atol(s);
#if defined(__SANITIZE_ADDRESS__)
    return 50000;
#else
    return 200000;
#endif
}

static void test_scanner_equals_pcre2(void **state)
{
    (void)state;
    struct tok_vocab *v = small_vocab();
    long iters = scan_iters();
    uint64_t seed = 0x243f6a8885a308d3ull;
    char s[512];
    struct piece_list fast = {0}, slow = {0};
    for (int pat = 0; pat < TOK_PAT_COUNT; pat++) {
        struct tok_encoder *e = NULL;
        assert_int_equal(tok_encoder_new(v, (enum tok_pattern)pat, &e), TM_OK);
        size_t decided = 0, total = 0;
        for (long iter = 0; iter < iters; iter++) {
            const char *const *al = alphabets[iter % NALPHA];
            size_t na = 0;
            while (na < 40 && al[na])
                na++;
            size_t nchars = 1 + rng_next(&seed) % (iter % 7 == 0 ? 60 : 12);
            size_t len = 0;
            for (size_t k = 0; k < nchars; k++) {
                const char *c = al[rng_next(&seed) % na];
                size_t cl = strlen(c);
                if (len + cl > sizeof(s))
                    break;
                memcpy(s + len, c, cl);
                len += cl;
            }
            fast.n = slow.n = 0;
            assert_int_equal(
                tok_pretokenize(e, (const unsigned char *)s, len, 1, collect_piece, &fast), TM_OK);
            assert_int_equal(
                tok_pretokenize(e, (const unsigned char *)s, len, 0, collect_piece, &slow), TM_OK);
            if (fast.n != slow.n || memcmp(fast.v, slow.v, fast.n * sizeof(*fast.v)) != 0) {
                char shown[2048];
                size_t o = 0;
                for (size_t k = 0; k < len && o + 8 < sizeof(shown); k++)
                    o += (size_t)snprintf(shown + o, sizeof(shown) - o,
                                          (unsigned char)s[k] >= 0x20 && s[k] != 0x7f ? "%c"
                                                                                      : "\\x%02x",
                                          (unsigned char)s[k]);
                fail_msg("%s: pieces differ for \"%s\"", tok_pattern_names[pat], shown);
            }
            for (size_t k = 0; k < fast.n; k += 2)
                decided += tok_scan_ascii((enum tok_pattern)pat, (const unsigned char *)s, len,
                                          fast.v[k]) != 0;
            total += fast.n / 2;
        }
        /* The comparison proves something only if the scanner decided most pieces itself. */
        assert_true(decided * 10 > total * 6);
        tok_encoder_free(e);
    }
    free(fast.v);
    free(slow.v);
    tok_vocab_free(v);
}

/* Encoding the same text twice (the second time from the piece cache), in one call or piece by
 * piece, gives the same ids, and the cache keeps pieces that differ only past their end apart
 * (a trailing NUL, a longer word sharing a prefix). */
static void test_cache_is_transparent(void **state)
{
    (void)state;
    struct tok_vocab *v = small_vocab();
    struct tok_encoder *e = NULL;
    assert_int_equal(tok_encoder_new(v, TOK_PAT_CL100K, &e), TM_OK);
    uint64_t seed = 99;
    char s[4096];
    for (size_t i = 0; i < sizeof(s); i++) {
        static const char al[] = "aabcab  \n.'";
        s[i] = al[rng_next(&seed) % (sizeof(al) - 1)];
    }
    s[100] = '\0'; /* NUL is "other" in the patterns: ".\0" and "." are different pieces */
    struct tok_ids a, b, want;
    tok_ids_init(&a, 0);
    tok_ids_init(&b, 0);
    tok_ids_init(&want, 0);
    assert_int_equal(tok_encode_ordinary(e, s, sizeof(s), &a), TM_OK);
    assert_int_equal(tok_encode_ordinary(e, s, sizeof(s), &b), TM_OK);
    assert_int_equal(a.n, b.n);
    assert_memory_equal(a.v, b.v, a.n * sizeof(*a.v));
    struct piece_list pl = {0};
    assert_int_equal(tok_pretokenize(e, (const unsigned char *)s, sizeof(s), 0, collect_piece, &pl),
                     TM_OK);
    for (size_t k = 0; k < pl.n; k += 2)
        assert_int_equal(tok_bpe_encode_piece(v, (const unsigned char *)s + pl.v[k],
                                              pl.v[k + 1] - pl.v[k], &want),
                         TM_OK);
    assert_int_equal(a.n, want.n);
    assert_memory_equal(a.v, want.v, a.n * sizeof(*a.v));
    /* Prefixes of one word, each encoded after the longer ones are cached. */
    const char *words[] = {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                           "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                           "aaaaaaaaa",
                           "aaaaaaaa",
                           "aaa",
                           "aa"};
    for (size_t w = 0; w < sizeof(words) / sizeof(words[0]); w++) {
        a.n = want.n = 0;
        size_t n = strlen(words[w]);
        assert_int_equal(tok_encode_ordinary(e, words[w], n, &a), TM_OK);
        assert_int_equal(tok_bpe_encode_piece(v, (const unsigned char *)words[w], n, &want), TM_OK);
        assert_int_equal(a.n, want.n);
        assert_memory_equal(a.v, want.v, a.n * sizeof(*a.v));
    }
    free(pl.v);
    tok_ids_release(&a);
    tok_ids_release(&b);
    tok_ids_release(&want);
    tok_encoder_free(e);
    tok_vocab_free(v);
}

struct chunks {
    struct tm_buf all;
    int split_char; /* set when a chunk ended inside a UTF-8 sequence */
};

static int collect(void *ctx, const unsigned char *b, size_t n)
{
    struct chunks *c = ctx;
    if (n && (b[n - 1] & 0x80) && (b[n - 1] & 0xC0) != 0x80)
        c->split_char = 1; /* ends with a lead byte */
    tm_buf_append(&c->all, b, n);
    return 0;
}

static void test_streaming_decoder(void **state)
{
    (void)state;
    struct tok_vocab *v = small_vocab();
    struct tok_encoder *e = NULL;
    assert_int_equal(tok_encoder_new(v, TOK_PAT_O200K, &e), TM_OK);
    const char *text = "a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80 abc \xe4\xb8\xad";
    struct tok_ids ids;
    tok_ids_init(&ids, 0);
    assert_int_equal(tok_encode(e, text, strlen(text), &ids), TM_OK);
    struct chunks c = {0};
    tm_buf_init(&c.all, 0);
    struct tok_decoder d;
    tok_decoder_init(&d, e, collect, &c);
    for (size_t i = 0; i < ids.n; i++)
        assert_int_equal(tok_decoder_push(&d, ids.v[i]), TM_OK);
    assert_int_equal(tok_decoder_finish(&d), TM_OK);
    assert_int_equal(c.all.len, strlen(text));
    assert_memory_equal(c.all.data, text, c.all.len);
    assert_false(c.split_char);
    /* Invalid bytes pass through unchanged, a dangling lead byte is flushed by finish(). */
    tm_buf_reset(&c.all);
    static const uint32_t raw[] = {0xff, 0xe2, 0x82, 'x', 0xf0};
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(tok_decoder_push(&d, raw[i]), TM_OK);
    assert_int_equal(tok_decoder_finish(&d), TM_OK);
    assert_int_equal(c.all.len, 5);
    assert_memory_equal(c.all.data, "\xff\xe2\x82x\xf0", 5);
    tm_buf_release(&c.all);
    tok_ids_release(&ids);
    tok_encoder_free(e);
    tok_vocab_free(v);
}

/* ---- Real vocabularies (skipped without TOKENMILL_VOCAB_DIR) -------------------------------- */

static void test_golden_ids(void **state)
{
    (void)state;
    const char *dir = getenv("TOKENMILL_VOCAB_DIR");
    if (!dir || !*dir)
        skip();
    char *tpath = tok_tu_fixture_path("text.txt");
    char *text = NULL;
    size_t len = 0;
    assert_int_equal(tm_read_file(tpath, 1 << 20, &text, &len), TM_OK);
    for (int pat = 0; pat < TOK_PAT_COUNT; pat++) {
        struct tok_vocab *v = tok_tu_real_vocab(dir, (enum tok_pattern)pat);
        assert_int_equal(tok_pattern_guess(tok_vocab_count(v)), pat);
        struct tok_encoder *e = NULL;
        assert_int_equal(tok_encoder_new(v, (enum tok_pattern)pat, &e), TM_OK);
        for (int special = 0; special < 2; special++) {
            char name[64];
            snprintf(name, sizeof(name), "%s%s.ids", tok_pattern_names[pat],
                     special ? ".special" : "");
            struct tok_ids got;
            tok_ids_init(&got, 0);
            if (special) {
                assert_int_equal(tok_encoder_set_special(e, "all", ""), TM_OK);
                assert_int_equal(tok_encode(e, text, len, &got), TM_OK);
            } else {
                assert_int_equal(tok_encode_ordinary(e, text, len, &got), TM_OK);
            }
            tok_tu_expect_golden(&got, name);
            tok_ids_release(&got);
        }
        tok_encoder_free(e);
        tok_vocab_free(v);
    }
    free(text);
    free(tpath);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vocab_maps),
        cmocka_unit_test(test_vocab_errors_name_the_line),
        cmocka_unit_test(test_bpe_matches_reference),
        cmocka_unit_test(test_rankmap_equals_vocab),
        cmocka_unit_test(test_bpe_round_trips_random_bytes),
        cmocka_unit_test(test_long_runs_are_fast),
        cmocka_unit_test(test_special_tokens),
        cmocka_unit_test(test_custom_specials),
        cmocka_unit_test(test_scanner_equals_pcre2),
        cmocka_unit_test(test_cache_is_transparent),
        cmocka_unit_test(test_streaming_decoder),
        cmocka_unit_test(test_golden_ids),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
