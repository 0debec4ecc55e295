/* Unit tests for the JSONL record reader: records with their exact text and metadata, domain
 * and language fields, problems with their reasons and line numbers, NULs in the text, and
 * lines that span reader refills. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ing_internal.h"
#include "tm_doc.h"
#include "tm_err.h"

#define MAX_UNITS 32

/* What the reader delivered, in order. Strings are copies. */
struct got {
    int n_records, n_problems, n_counts;
    struct {
        char *text;
        size_t text_len;
        char *meta;
        int domain;
        char lang[16];
        uint64_t position;
    } rec[MAX_UNITS];
    struct {
        char reason[32];
        uint64_t position;
    } prob[MAX_UNITS];
    char counts[MAX_UNITS][40];
    int stop_after; /* the record callback fails after this many records (0: never) */
};

static int on_record(void *ctx, const struct ing_record *rec)
{
    struct got *g = ctx;
    assert_true(g->n_records < MAX_UNITS);
    int i = g->n_records++;
    g->rec[i].text = malloc(rec->text_len + 1);
    memcpy(g->rec[i].text, rec->text, rec->text_len);
    g->rec[i].text[rec->text_len] = '\0';
    g->rec[i].text_len = rec->text_len;
    assert_int_equal(strlen(rec->meta), rec->meta_len);
    g->rec[i].meta = strdup(rec->meta);
    g->rec[i].domain = rec->domain;
    snprintf(g->rec[i].lang, sizeof(g->rec[i].lang), "%s", rec->lang ? rec->lang : "-");
    g->rec[i].position = rec->position;
    assert_null(rec->name);
    if (g->stop_after && g->n_records >= g->stop_after)
        return TM_ERR_IO;
    return TM_OK;
}

static void on_problem(void *ctx, uint64_t position, const char *reason, const char *detail)
{
    struct got *g = ctx;
    assert_true(g->n_problems < MAX_UNITS);
    assert_non_null(detail);
    snprintf(g->prob[g->n_problems].reason, sizeof(g->prob[0].reason), "%s", reason);
    g->prob[g->n_problems++].position = position;
}

static void on_count(void *ctx, const char *key)
{
    struct got *g = ctx;
    assert_true(g->n_counts < MAX_UNITS);
    snprintf(g->counts[g->n_counts++], sizeof(g->counts[0]), "%s", key);
}

static void got_free(struct got *g)
{
    for (int i = 0; i < g->n_records; i++) {
        free(g->rec[i].text);
        free(g->rec[i].meta);
    }
    memset(g, 0, sizeof(*g));
}

/* A source that hands out 1..7 bytes per call. */
struct chop {
    const char *p;
    size_t n, pos;
    uint32_t state;
};

static long chop_read(void *ctx, void *buf, size_t cap)
{
    struct chop *c = ctx;
    c->state = c->state * 1103515245u + 12345u;
    size_t k = 1 + (c->state >> 16) % 7;
    if (k > cap)
        k = cap;
    if (k > c->n - c->pos)
        k = c->n - c->pos;
    memcpy(buf, c->p + c->pos, k);
    c->pos += k;
    return (long)k;
}

/* Runs the reader over data[0..n), in memory or through an 8-byte buffer. */
static int run(const char *data, size_t n, const struct ing_jsonl_opts *o, struct got *g,
               int chopped)
{
    struct ing_sink sink = {on_record, on_problem, on_count, g};
    struct ing_reader r;
    struct chop c = {data, n, 0, 1};
    if (chopped)
        ing_reader_init(&r, chop_read, &c, 8);
    else
        ing_reader_init_mem(&r, data, n);
    int rc = ing_jsonl_read(&r, o, &sink);
    ing_reader_release(&r);
    return rc;
}

static void test_good_lines(void **state)
{
    (void)state;
    static const char data[] = "{\"id\":1,\"text\":\"hello\",\"src\":\"a\"}\n"
                               "\n"
                               "   \t\r\n"
                               "{\"text\":\"only text\"}\r\n"
                               "{ \"meta\" : {\"a\":[1, 2.5, null, true]} , \"text\" : \"x\\ny\" }";
    struct ing_jsonl_opts o = {0};
    for (int chopped = 0; chopped <= 1; chopped++) {
        struct got g = {0};
        assert_int_equal(run(data, strlen(data), &o, &g, chopped), TM_OK);
        assert_int_equal(g.n_records, 3);
        assert_int_equal(g.n_problems, 0);
        assert_string_equal(g.rec[0].text, "hello");
        assert_string_equal(g.rec[0].meta, "{\"id\":1,\"src\":\"a\"}");
        assert_int_equal(g.rec[0].domain, -1);
        assert_string_equal(g.rec[0].lang, "-");
        assert_int_equal(g.rec[0].position, 1);
        /* Blank lines are not units, but they are lines. */
        assert_string_equal(g.rec[1].text, "only text");
        assert_string_equal(g.rec[1].meta, "{}");
        assert_int_equal(g.rec[1].position, 4);
        assert_string_equal(g.rec[2].text, "x\ny");
        assert_string_equal(g.rec[2].meta, "{\"meta\":{\"a\":[1,2.5,null,true]}}");
        assert_int_equal(g.rec[2].position, 5);
        got_free(&g);
    }
}

static void test_problems(void **state)
{
    (void)state;
    /* Line 7 is 41 bytes, one over the cap. */
    static const char data[] = "{\"text\":\"ok\"}\n"
                               "{\"text\": \"unterminated\n"
                               "[1,2,3]\n"
                               "{\"body\":\"no text\"}\n"
                               "{\"text\":42}\n"
                               "{\"text\":\"a\"} {\"text\":\"b\"}\n"
                               "{\"text\":\"0123456789012345678901234567890\"}\n"
                               "{\"text\":\"\\ud800 lone\"}\n"
                               "{\"text\":\"last\"}  \n";
    struct ing_jsonl_opts o = {.max_line = 40};
    static const struct {
        const char *reason;
        uint64_t position;
    } want[] = {{"bad_json", 2}, {"not_object", 3},    {"missing_text", 4}, {"missing_text", 5},
                {"bad_json", 6}, {"line_too_long", 7}, {"bad_json", 8}};
    for (int chopped = 0; chopped <= 1; chopped++) {
        struct got g = {0};
        assert_int_equal(run(data, strlen(data), &o, &g, chopped), TM_OK);
        assert_int_equal(g.n_records, 2);
        assert_string_equal(g.rec[0].text, "ok");
        assert_int_equal(g.rec[0].position, 1);
        assert_string_equal(g.rec[1].text, "last");
        assert_int_equal(g.rec[1].position, 9);
        assert_int_equal(g.n_problems, sizeof(want) / sizeof(*want));
        for (size_t i = 0; i < sizeof(want) / sizeof(*want); i++) {
            assert_string_equal(g.prob[i].reason, want[i].reason);
            assert_int_equal(g.prob[i].position, want[i].position);
        }
        got_free(&g);
    }
}

static void test_fields(void **state)
{
    (void)state;
    static const char data[] =
        "{\"content\":\"int f(void){}\",\"domain\":\"code\",\"language\":\"c\",\"n\":1}\n"
        "{\"content\":\"$x^2$\",\"domain\":\"math\"}\n"
        "{\"content\":\"t\",\"domain\":\"poetry\"}\n"
        "{\"content\":\"t\",\"domain\":7}\n"
        "{\"content\":\"plain\",\"language\":5}\n"
        "{\"text\":\"wrong field\"}\n";
    struct ing_jsonl_opts o = {"content", "domain", "language", 0};
    struct got g = {0};
    assert_int_equal(run(data, strlen(data), &o, &g, 0), TM_OK);
    assert_int_equal(g.n_records, 3);
    assert_string_equal(g.rec[0].text, "int f(void){}");
    assert_int_equal(g.rec[0].domain, TM_DOMAIN_CODE);
    assert_string_equal(g.rec[0].lang, "c");
    /* The domain and language fields stay in the metadata. */
    assert_string_equal(g.rec[0].meta, "{\"domain\":\"code\",\"language\":\"c\",\"n\":1}");
    assert_int_equal(g.rec[1].domain, TM_DOMAIN_MATH);
    assert_string_equal(g.rec[1].lang, "-");
    assert_int_equal(g.rec[1].position, 2);
    /* A language that is not a string is ignored. */
    assert_string_equal(g.rec[2].text, "plain");
    assert_int_equal(g.rec[2].domain, -1);
    assert_string_equal(g.rec[2].lang, "-");
    assert_string_equal(g.rec[2].meta, "{\"language\":5}");
    assert_int_equal(g.n_problems, 3);
    assert_string_equal(g.prob[0].reason, "bad_domain");
    assert_int_equal(g.prob[0].position, 3);
    assert_string_equal(g.prob[1].reason, "bad_domain");
    assert_int_equal(g.prob[1].position, 4);
    assert_string_equal(g.prob[2].reason, "missing_text");
    assert_int_equal(g.prob[2].position, 6);
    got_free(&g);
}

static void test_unicode(void **state)
{
    (void)state;
    static const char data[] =
        "{\"text\":\"caf\\u00e9 \\u4e2d \\ud83d\\ude00 \\\"q\\\" \\/ \\\\\",\"k\":\"\\u00fc\"}\n"
        "{\"text\":\"raw caf\xc3\xa9 and bad \xff bytes\"}\n";
    struct ing_jsonl_opts o = {0};
    struct got g = {0};
    assert_int_equal(run(data, strlen(data), &o, &g, 0), TM_OK);
    assert_int_equal(g.n_records, 2);
    assert_string_equal(g.rec[0].text, "caf\xc3\xa9 \xe4\xb8\xad \xf0\x9f\x98\x80 \"q\" / \\");
    assert_string_equal(g.rec[0].meta, "{\"k\":\"\xc3\xbc\"}");
    /* Bytes are passed on as found: normalization repairs them later. */
    assert_string_equal(g.rec[1].text, "raw caf\xc3\xa9 and bad \xff bytes");
    got_free(&g);
}

static void test_nul_in_text(void **state)
{
    (void)state;
    static const char data[] = "{\"id\":\"x\",\"text\":\"a\\u0000b\\u00e9\\ud83d\\ude00\\n\"}\n"
                               "{\"text\":\"raw\0nul\",\"n\":1}\n"
                               "{\"t\\u0065xt\":\"escaped key\\u0000z\"}\n"
                               "{\"other\":\"\\u0000\",\"text\":\"plain\"}\n"
                               "{\"text\":\"first\\u0000\",\"text\":\"second\"}\n";
    struct ing_jsonl_opts o = {0};
    for (int chopped = 0; chopped <= 1; chopped++) {
        struct got g = {0};
        assert_int_equal(run(data, sizeof(data) - 1, &o, &g, chopped), TM_OK);
        assert_int_equal(g.n_records, 5);
        assert_int_equal(g.n_problems, 0);
        assert_int_equal(g.n_counts, 0);
        /* The text keeps the NUL and everything after it. */
        assert_int_equal(g.rec[0].text_len, 10);
        assert_memory_equal(g.rec[0].text, "a\0b\xc3\xa9\xf0\x9f\x98\x80\n", 10);
        assert_string_equal(g.rec[0].meta, "{\"id\":\"x\"}");
        assert_int_equal(g.rec[1].text_len, 7);
        assert_memory_equal(g.rec[1].text, "raw\0nul", 7);
        assert_int_equal(g.rec[2].text_len, 13);
        assert_memory_equal(g.rec[2].text, "escaped key\0z", 13);
        assert_string_equal(g.rec[3].text, "plain");
        /* With duplicate keys the first wins, as cJSON decides. */
        assert_int_equal(g.rec[4].text_len, 6);
        assert_memory_equal(g.rec[4].text, "first\0", 6);
        got_free(&g);
    }
}

static void test_sink_error_stops(void **state)
{
    (void)state;
    static const char data[] = "{\"text\":\"1\"}\n{\"text\":\"2\"}\n{\"text\":\"3\"}\n";
    struct ing_jsonl_opts o = {0};
    struct got g = {0};
    g.stop_after = 2;
    assert_int_equal(run(data, strlen(data), &o, &g, 0), TM_ERR_IO);
    assert_int_equal(g.n_records, 2);
    got_free(&g);
}

static void test_long_lines_across_refills(void **state)
{
    (void)state;
    /* Lines of 1002 bytes through an 8-byte buffer, with the cap exactly at them; the last
     * line is one byte longer. */
    struct tm_buf b;
    tm_buf_init(&b, 0);
    for (int i = 0; i < 4; i++) {
        tm_buf_puts(&b, "{\"text\":\"");
        for (int k = 0; k < 985 + (i == 3); k++)
            tm_buf_putc(&b, 'a' + (i + k) % 26);
        tm_buf_printf(&b, "\",\"i\":%d}\n", i);
    }
    struct ing_jsonl_opts o = {.max_line = 1002};
    struct got g = {0};
    assert_int_equal(run(b.data, b.len, &o, &g, 1), TM_OK);
    assert_int_equal(g.n_records, 3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(g.rec[i].text_len, 985);
        assert_int_equal(g.rec[i].text[0], 'a' + i);
        assert_int_equal(g.rec[i].text[984], 'a' + (i + 984) % 26);
        assert_int_equal(g.rec[i].position, i + 1);
    }
    assert_string_equal(g.rec[2].meta, "{\"i\":2}");
    assert_int_equal(g.n_problems, 1);
    assert_string_equal(g.prob[0].reason, "line_too_long");
    assert_int_equal(g.prob[0].position, 4);
    got_free(&g);
    tm_buf_release(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_lines),
        cmocka_unit_test(test_problems),
        cmocka_unit_test(test_fields),
        cmocka_unit_test(test_unicode),
        cmocka_unit_test(test_nul_in_text),
        cmocka_unit_test(test_sink_error_stops),
        cmocka_unit_test(test_long_lines_across_refills),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
