/* tokenize batches: tok_batch_encode() on 1, 2, 3 and 8 threads gives exactly the ids of
 * tok_encode() on each document in order; per-document errors are reported in `errs` without
 * stopping the others; the template's special tokens (custom ones included) and allowed sets
 * are copied; TOK_BATCH_ORDINARY; ids are appended to what the outputs held; and, when
 * TOKENMILL_VOCAB_DIR names the real .tiktoken files, the same on real text with cl100k. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tok_internal.h"
#include "tm_buf.h"
#include "tm_err.h"
#include "tm_fs.h"
#include "tm_log.h"
#include "tok_test_util.h"

/* The 256 bytes, then some merges of English-looking text. */
static struct tok_vocab *small_vocab(void)
{
    static const char *const merges[] = {"th", "the", " the", "in",  "ing", " a", "er",
                                         "he", "an",  " an",  "and", "re",  "on", " on"};
    return tok_tu_vocab(merges, sizeof(merges) / sizeof(merges[0]));
}

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

#define NDOCS 500

/* Random documents from words, spaces, line breaks, digits, punctuation, a few non-ASCII
 * characters and special token texts; lengths from 0 to a few KB. */
static void make_docs(char **docs, size_t *lens)
{
    static const char *const parts[] = {"the",          " the",
                                        " and",         "ing ",
                                        "\n",           "  ",
                                        "2024",         ". ",
                                        "'s",           "\xc3\xa9t\xc3\xa9",
                                        "\xe4\xb8\xad", " x",
                                        "\t",           "<|endoftext|>",
                                        "<|sep|>",      "?!"};
    uint64_t seed = 42;
    for (size_t d = 0; d < NDOCS; d++) {
        size_t nparts = rng_next(&seed) % (d % 50 == 0 ? 2000 : 60);
        struct tm_buf b;
        tm_buf_init(&b, 0);
        for (size_t k = 0; k < nparts; k++)
            tm_buf_puts(&b, parts[rng_next(&seed) % (sizeof(parts) / sizeof(parts[0]))]);
        lens[d] = b.len;
        docs[d] = tm_buf_detach(&b, &lens[d]);
    }
}

static void free_docs(char **docs)
{
    for (size_t d = 0; d < NDOCS; d++)
        free(docs[d]);
}

/* Encodes every document with tok_encode() (or _ordinary) on `e` alone. */
static void sequential(struct tok_encoder *e, char **docs, size_t *lens, int ordinary,
                       struct tok_ids *want, int *want_rc)
{
    FILE *sink = fopen("/dev/null", "w");
    tm_log_set_stream(sink, 0);
    for (size_t d = 0; d < NDOCS; d++) {
        tok_ids_init(&want[d], 0);
        want_rc[d] = ordinary ? tok_encode_ordinary(e, docs[d], lens[d], &want[d])
                              : tok_encode(e, docs[d], lens[d], &want[d]);
        if (want_rc[d] != TM_OK)
            want[d].n = 0;
    }
    tm_log_set_stream(NULL, -1);
    fclose(sink);
}

static void expect_same(struct tok_ids *got, int *got_rc, struct tok_ids *want, int *want_rc)
{
    for (size_t d = 0; d < NDOCS; d++) {
        assert_int_equal(got_rc[d], want_rc[d]);
        assert_int_equal(got[d].n, want[d].n);
        if (want[d].n)
            assert_memory_equal(got[d].v, want[d].v, want[d].n * sizeof(uint32_t));
    }
}

static void test_threads_equal_sequential(void **state)
{
    (void)state;
    struct tok_vocab *v = small_vocab();
    char *docs[NDOCS];
    size_t lens[NDOCS];
    make_docs(docs, lens);
    struct tok_encoder *tmpl = NULL;
    assert_int_equal(tok_encoder_new(v, TOK_PAT_CL100K, &tmpl), TM_OK);
    /* Custom specials, one allowed: the batch must copy both from the template. */
    const char *texts[] = {"<|endoftext|>", "<|sep|>"};
    const uint32_t ids[] = {tok_vocab_end(v), tok_vocab_end(v) + 1};
    assert_int_equal(tok_encoder_set_specials(tmpl, texts, ids, 2), TM_OK);
    assert_int_equal(tok_encoder_set_special(tmpl, "<|endoftext|>", ""), TM_OK);

    static struct tok_ids want[NDOCS], got[NDOCS];
    int want_rc[NDOCS], got_rc[NDOCS];
    for (int ordinary = 0; ordinary < 2; ordinary++) {
        sequential(tmpl, docs, lens, ordinary, want, want_rc);
        size_t specials = 0, nids = 0;
        for (size_t d = 0; d < NDOCS; d++) {
            assert_int_equal(want_rc[d], TM_OK);
            nids += want[d].n;
            for (size_t i = 0; i < want[d].n; i++)
                specials += want[d].v[i] == ids[0];
        }
        /* The documents hold special texts: allowed ones become ids unless ordinary. */
        assert_true(nids > 10000);
        if (ordinary)
            assert_int_equal(specials, 0);
        else
            assert_true(specials > 100);
        static const int thread_counts[] = {1, 2, 3, 8};
        for (size_t t = 0; t < sizeof(thread_counts) / sizeof(thread_counts[0]); t++) {
            struct tok_batch *b = NULL;
            assert_int_equal(tok_batch_new(tmpl, thread_counts[t], &b), TM_OK);
            assert_int_equal(tok_batch_threads(b), thread_counts[t]);
            for (size_t d = 0; d < NDOCS; d++)
                tok_ids_init(&got[d], 0);
            /* Twice on the same batch: the second run starts from warm caches. */
            for (int round = 0; round < 2; round++) {
                for (size_t d = 0; d < NDOCS; d++)
                    got[d].n = 0;
                assert_int_equal(tok_batch_encode(b, (const char *const *)docs, lens, NDOCS,
                                                  ordinary ? TOK_BATCH_ORDINARY : 0, got, got_rc),
                                 TM_OK);
                expect_same(got, got_rc, want, want_rc);
            }
            for (size_t d = 0; d < NDOCS; d++)
                tok_ids_release(&got[d]);
            tok_batch_free(b);
        }
        for (size_t d = 0; d < NDOCS; d++)
            tok_ids_release(&want[d]);
    }
    tok_encoder_free(tmpl);
    free_docs(docs);
    tok_vocab_free(v);
}

/* Bad documents fail alone: errs names them, their output is left as it was, the others are
 * encoded, and the result is the first failure in input order. */
static void test_errors_per_document(void **state)
{
    (void)state;
    struct tok_vocab *v = small_vocab();
    struct tok_encoder *tmpl = NULL;
    assert_int_equal(tok_encoder_new(v, TOK_PAT_O200K, &tmpl), TM_OK);
    const char *docs[] = {"the cat", "bad \xff byte", "and the", "x <|endoftext|> y", "", "on"};
    size_t lens[6];
    for (int i = 0; i < 6; i++)
        lens[i] = strlen(docs[i]);
    struct tok_ids outs[6];
    int errs[6];
    for (int i = 0; i < 6; i++) {
        tok_ids_init(&outs[i], 0);
        tok_ids_push(&outs[i], 7); /* appended to, never cleared */
    }
    FILE *sink = fopen("/dev/null", "w");
    tm_log_set_stream(sink, 0);
    int rc = tok_encode_batch(tmpl, docs, lens, 6, 2, 0, outs, errs);
    tm_log_set_stream(NULL, -1);
    fclose(sink);
    assert_int_equal(rc, TM_ERR_FORMAT);
    assert_int_equal(errs[0], TM_OK);
    assert_int_equal(errs[1], TM_ERR_FORMAT); /* invalid UTF-8 */
    assert_int_equal(errs[2], TM_OK);
    assert_int_equal(errs[3], TM_ERR_FORMAT); /* a disallowed special */
    assert_int_equal(errs[4], TM_OK);
    assert_int_equal(errs[5], TM_OK);
    assert_int_equal(outs[1].n, 1);
    assert_int_equal(outs[3].n, 1);
    assert_int_equal(outs[4].n, 1);
    for (int i = 0; i < 6; i++)
        assert_int_equal(outs[i].v[0], 7);
    struct tok_ids want;
    tok_ids_init(&want, 0);
    assert_int_equal(tok_encode(tmpl, docs[2], lens[2], &want), TM_OK);
    assert_int_equal(outs[2].n, 1 + want.n);
    assert_memory_equal(outs[2].v + 1, want.v, want.n * sizeof(uint32_t));
    /* Without errs the result is the same; with nothing to do nothing happens. */
    sink = fopen("/dev/null", "w");
    tm_log_set_stream(sink, 0);
    assert_int_equal(tok_encode_batch(tmpl, docs, lens, 6, 3, 0, outs, NULL), TM_ERR_FORMAT);
    tm_log_set_stream(NULL, -1);
    fclose(sink);
    assert_int_equal(tok_encode_batch(tmpl, docs, lens, 0, 2, 0, outs, NULL), TM_OK);
    /* An id cap on one output: TM_ERR_TOOBIG for that document only. */
    struct tok_ids capped[2];
    tok_ids_init(&capped[0], 2);
    tok_ids_init(&capped[1], 0);
    const char *two[] = {"the cat sat on the mat", "on"};
    size_t two_lens[] = {strlen(two[0]), 2};
    int two_errs[2];
    sink = fopen("/dev/null", "w");
    tm_log_set_stream(sink, 0);
    assert_int_equal(tok_encode_batch(tmpl, two, two_lens, 2, 2, 0, capped, two_errs),
                     TM_ERR_TOOBIG);
    tm_log_set_stream(NULL, -1);
    fclose(sink);
    assert_int_equal(two_errs[0], TM_ERR_TOOBIG);
    assert_int_equal(capped[0].n, 0);
    assert_int_equal(two_errs[1], TM_OK);
    assert_int_equal(capped[1].n, 1);
    tok_ids_release(&capped[0]);
    tok_ids_release(&capped[1]);
    tok_ids_release(&want);
    for (int i = 0; i < 6; i++)
        tok_ids_release(&outs[i]);
    tok_encoder_free(tmpl);
    tok_vocab_free(v);
}

/* A clone encodes like its original, specials and allowed sets included. */
static void test_clone(void **state)
{
    (void)state;
    struct tok_vocab *v = small_vocab();
    struct tok_encoder *e = NULL, *c = NULL;
    assert_int_equal(tok_encoder_new(v, TOK_PAT_R50K, &e), TM_OK);
    const char *texts[] = {"<|a|>"};
    const uint32_t ids[] = {5000};
    assert_int_equal(tok_encoder_set_specials(e, texts, ids, 1), TM_OK);
    assert_int_equal(tok_encoder_set_special(e, "all", ""), TM_OK);
    assert_int_equal(tok_encoder_clone(e, &c), TM_OK);
    uint32_t id = 0;
    assert_int_equal(tok_encoder_special_id(c, "<|a|>", &id), TM_OK);
    assert_int_equal(id, 5000);
    struct tok_ids a, b;
    tok_ids_init(&a, 0);
    tok_ids_init(&b, 0);
    const char *text = "the<|a|> and the rest";
    assert_int_equal(tok_encode(e, text, strlen(text), &a), TM_OK);
    assert_int_equal(tok_encode(c, text, strlen(text), &b), TM_OK);
    assert_int_equal(a.n, b.n);
    assert_memory_equal(a.v, b.v, a.n * sizeof(uint32_t));
    assert_int_equal(a.v[1], 5000);
    tok_ids_release(&a);
    tok_ids_release(&b);
    tok_encoder_free(c);
    tok_encoder_free(e);
    tok_vocab_free(v);
}

/* Real text with cl100k: every line of the golden fixture text as a document, on 2 threads,
 * equal to sequential encoding (skipped without TOKENMILL_VOCAB_DIR). */
static void test_real_vocab(void **state)
{
    (void)state;
    const char *dir = getenv("TOKENMILL_VOCAB_DIR");
    if (!dir || !*dir)
        skip();
    char *vpath = tm_path_join(dir, "cl100k_base.tiktoken");
    struct tok_vocab *v = NULL;
    assert_int_equal(tok_vocab_load(vpath, &v), TM_OK);
    free(vpath);
    char *src = strdup(__FILE__);
    char tpath[4096];
    snprintf(tpath, sizeof(tpath), "%s/../fixtures/tok/text.txt", dirname(src));
    free(src);
    char *text = NULL;
    size_t len = 0;
    assert_int_equal(tm_read_file(tpath, 1 << 20, &text, &len), TM_OK);
    const char *docs[4096];
    size_t lens[4096], n = 0;
    for (size_t i = 0; i < len && n < 4096;) {
        const char *nl = memchr(text + i, '\n', len - i);
        size_t e = nl ? (size_t)(nl - text) : len;
        docs[n] = text + i;
        lens[n++] = e - i;
        i = e + 1;
    }
    assert_true(n > 10);
    struct tok_encoder *e = NULL;
    assert_int_equal(tok_encoder_new(v, TOK_PAT_CL100K, &e), TM_OK);
    struct tok_ids *want = calloc(n, sizeof(*want)), *got = calloc(n, sizeof(*got));
    for (size_t d = 0; d < n; d++) {
        tok_ids_init(&want[d], 0);
        tok_ids_init(&got[d], 0);
        assert_int_equal(tok_encode_ordinary(e, docs[d], lens[d], &want[d]), TM_OK);
    }
    assert_int_equal(tok_encode_batch(e, docs, lens, n, 2, TOK_BATCH_ORDINARY, got, NULL), TM_OK);
    for (size_t d = 0; d < n; d++) {
        assert_int_equal(got[d].n, want[d].n);
        if (want[d].n)
            assert_memory_equal(got[d].v, want[d].v, want[d].n * sizeof(uint32_t));
        tok_ids_release(&want[d]);
        tok_ids_release(&got[d]);
    }
    free(want);
    free(got);
    free(text);
    tok_encoder_free(e);
    tok_vocab_free(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_threads_equal_sequential),
        cmocka_unit_test(test_errors_per_document),
        cmocka_unit_test(test_clone),
        cmocka_unit_test(test_real_vocab),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
