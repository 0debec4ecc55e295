/* tok_test_util.h: what the tokenize unit tests share (header-only, static inline; not a test:
 * tests/CMakeLists.txt globs unit/test_*.c). Include after cmocka.h.
 *   tok_tu_b64            base64 of bytes, appended to a buffer (the .tiktoken encoding)
 *   tok_tu_vocab          a vocabulary of the 256 bytes followed by the given merges
 *   tok_tu_fixture_path   a file of tests/fixtures/tok/ (caller frees)
 *   tok_tu_read_ids       the ids of a fixture file (whitespace-separated)
 *   tok_tu_real_vocab     a published vocabulary from $TOKENMILL_VOCAB_DIR (caller skips without)
 *   tok_tu_expect_golden  ids equal to a golden fixture's, the first difference reported */
#ifndef TOK_TEST_UTIL_H
#define TOK_TEST_UTIL_H

#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tm_buf.h"
#include "tm_err.h"
#include "tokenize.h"

static inline void tok_tu_b64(const unsigned char *s, size_t n, struct tm_buf *out)
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

/* Ranks 0..255 are the bytes, then merges[i] has rank 256 + i. The test fails when the file
 * does not load. */
static inline struct tok_vocab *tok_tu_vocab(const char *const *merges, size_t n)
{
    struct tm_buf f;
    tm_buf_init(&f, 0);
    for (int i = 0; i < 256; i++) {
        unsigned char c = (unsigned char)i;
        tok_tu_b64(&c, 1, &f);
        tm_buf_printf(&f, " %d\n", i);
    }
    for (size_t i = 0; i < n; i++) {
        tok_tu_b64((const unsigned char *)merges[i], strlen(merges[i]), &f);
        tm_buf_printf(&f, " %zu\n", 256 + i);
    }
    struct tok_vocab *v = NULL;
    assert_int_equal(tok_vocab_load_mem("small", f.data, f.len, &v), TM_OK);
    tm_buf_release(&f);
    return v;
}

static inline char *tok_tu_fixture_path(const char *name)
{
    char *src = strdup(__FILE__);
    char *dir = dirname(src);
    char *p = malloc(strlen(dir) + strlen(name) + 32);
    sprintf(p, "%s/../fixtures/tok/%s", dir, name);
    free(src);
    return p;
}

static inline void tok_tu_read_ids(const char *name, struct tok_ids *ids)
{
    char *path = tok_tu_fixture_path(name);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    unsigned long x;
    while (fscanf(f, "%lu", &x) == 1)
        assert_int_equal(tok_ids_push(ids, (uint32_t)x), TM_OK);
    fclose(f);
    free(path);
}

static inline struct tok_vocab *tok_tu_real_vocab(const char *dir, enum tok_pattern pat)
{
    static const char *const files[] = {"r50k_base.tiktoken", "cl100k_base.tiktoken",
                                        "o200k_base.tiktoken"};
    char *path = malloc(strlen(dir) + 32);
    sprintf(path, "%s/%s", dir, files[pat]);
    struct tok_vocab *v = NULL;
    assert_int_equal(tok_vocab_load(path, &v), TM_OK);
    free(path);
    return v;
}

static inline void tok_tu_expect_golden(const struct tok_ids *got, const char *name)
{
    struct tok_ids want;
    tok_ids_init(&want, 0);
    tok_tu_read_ids(name, &want);
    assert_true(want.n > 0);
    for (size_t i = 0; i < got->n && i < want.n; i++)
        if (got->v[i] != want.v[i])
            fail_msg("%s: id %zu is %u, tiktoken says %u", name, i, got->v[i], want.v[i]);
    assert_int_equal(got->n, want.n);
    tok_ids_release(&want);
}

#endif
