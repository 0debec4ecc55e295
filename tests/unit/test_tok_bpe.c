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

/* Merges of the small vocabulary, in rank order after the 256 single bytes. */
static const char *const merges[] = {"ab",  "aa", "ba",   "bc", "aaaa",     "abc", "cab",
                                     "aab", "bb", "abab", "ca", "aaaaaaaa", "cc",  "ccc"};
#define NMERGES (sizeof(merges) / sizeof(merges[0]))

static void b64(const unsigned char *s, size_t n, struct tm_buf *out)
{
    static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (size_t i = 0; i < n; i += 3) {
        uint32_t w = (uint32_t)s[i] << 16 | (i + 1 < n ? (uint32_t)s[i + 1] << 8 : 0) |
                     (i + 2 < n ? s[i + 2] : 0);
        tm_buf_putc(out, al[w >> 18]);
        tm_buf_putc(out, al[(w >> 12) & 63]);
        tm_buf_putc(out, i + 1 < n ? al[(w >> 6) & 63] : '=');
        tm_buf_putc(out, i + 2 < n ? al[w & 63] : '=');
    }
}

static struct tok_vocab *small_vocab(void)
{
    struct tm_buf f;
    tm_buf_init(&f, 0);
    for (int i = 0; i < 256; i++) {
        unsigned char c = (unsigned char)i;
        b64(&c, 1, &f);
        tm_buf_printf(&f, " %d\n", i);
    }
    for (size_t i = 0; i < NMERGES; i++) {
        b64((const unsigned char *)merges[i], strlen(merges[i]), &f);
        tm_buf_printf(&f, " %zu\n", 256 + i);
    }
    struct tok_vocab *v = NULL;
    assert_int_equal(tok_vocab_load_mem("small", f.data, f.len, &v), TM_OK);
    tm_buf_release(&f);
    return v;
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

static void test_bpe_matches_reference(void **state)
{
    (void)state;
    struct tok_vocab *v = small_vocab();
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    unsigned char s[64];
    uint32_t want[64];
    struct tok_ids got;
    tok_ids_init(&got, 0);
    for (int iter = 0; iter < 20000; iter++) {
        size_t n = 1 + rng_next(&seed) % sizeof(s);
        for (size_t i = 0; i < n; i++)
            s[i] = (unsigned char)("abcd"[rng_next(&seed) % (iter % 2 ? 4 : 3)]);
        size_t nw = reference_bpe(v, s, n, want);
        got.n = 0;
        assert_int_equal(tok_bpe_encode_piece(v, s, n, &got), TM_OK);
        assert_int_equal(got.n, nw);
        assert_memory_equal(got.v, want, nw * sizeof(*want));
    }
    tok_ids_release(&got);
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

static char *fixture_path(const char *name)
{
    char *src = strdup(__FILE__);
    char *dir = dirname(src);
    char *p = malloc(strlen(dir) + strlen(name) + 32);
    sprintf(p, "%s/../fixtures/tok/%s", dir, name);
    free(src);
    return p;
}

static void read_ids(const char *name, struct tok_ids *ids)
{
    char *path = fixture_path(name);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    unsigned long x;
    while (fscanf(f, "%lu", &x) == 1)
        tok_ids_push(ids, (uint32_t)x);
    fclose(f);
    free(path);
}

static void test_golden_ids(void **state)
{
    (void)state;
    const char *dir = getenv("TOKENMILL_VOCAB_DIR");
    if (!dir || !*dir)
        skip();
    static const char *const files[] = {"r50k_base.tiktoken", "cl100k_base.tiktoken",
                                        "o200k_base.tiktoken"};
    char *tpath = fixture_path("text.txt");
    char *text = NULL;
    size_t len = 0;
    assert_int_equal(tm_read_file(tpath, 1 << 20, &text, &len), TM_OK);
    for (int pat = 0; pat < TOK_PAT_COUNT; pat++) {
        char *vpath = tm_path_join(dir, files[pat]);
        struct tok_vocab *v = NULL;
        assert_int_equal(tok_vocab_load(vpath, &v), TM_OK);
        assert_int_equal(tok_pattern_guess(tok_vocab_count(v)), pat);
        struct tok_encoder *e = NULL;
        assert_int_equal(tok_encoder_new(v, (enum tok_pattern)pat, &e), TM_OK);
        for (int special = 0; special < 2; special++) {
            char name[64];
            snprintf(name, sizeof(name), "%s%s.ids", tok_pattern_names[pat],
                     special ? ".special" : "");
            struct tok_ids want, got;
            tok_ids_init(&want, 0);
            tok_ids_init(&got, 0);
            read_ids(name, &want);
            if (special) {
                assert_int_equal(tok_encoder_set_special(e, "all", ""), TM_OK);
                assert_int_equal(tok_encode(e, text, len, &got), TM_OK);
            } else {
                assert_int_equal(tok_encode_ordinary(e, text, len, &got), TM_OK);
            }
            assert_int_equal(got.n, want.n);
            for (size_t i = 0; i < got.n; i++)
                if (got.v[i] != want.v[i])
                    fail_msg("%s: id %zu is %u, tiktoken says %u", name, i, got.v[i], want.v[i]);
            tok_ids_release(&want);
            tok_ids_release(&got);
        }
        tok_encoder_free(e);
        tok_vocab_free(v);
        free(vpath);
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
        cmocka_unit_test(test_bpe_round_trips_random_bytes),
        cmocka_unit_test(test_long_runs_are_fast),
        cmocka_unit_test(test_special_tokens),
        cmocka_unit_test(test_streaming_decoder),
        cmocka_unit_test(test_golden_ids),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
