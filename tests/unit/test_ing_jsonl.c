/* Unit tests for the JSONL record reader: records with their exact text and metadata, domain
 * and language fields, problems with their reasons and line numbers, NULs in the text, and
 * lines that span reader refills. The text fast path (the text value decoded by the reader, the
 * rest by cJSON) is checked against ing_jsonl_read_reference (every line through cJSON) on the
 * lines where the two could part: where the text member is, how its key is written, what
 * surrounds it, and escapes at every offset of a long text. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ing_internal.h"
#include "test_util.h"
#include "tm_doc.h"
#include "tm_err.h"

/* The JSONL reader sets no name on any record. */
static int on_record(void *ctx, const struct ing_record *rec)
{
    assert_null(rec->name);
    return got_on_record(ctx, rec);
}

/* Runs the reader over data[0..n), in memory or through an 8-byte buffer. */
static int run(const char *data, size_t n, const struct ing_jsonl_opts *o, struct got *g,
               int chopped)
{
    struct ing_sink sink = {on_record, got_on_problem, got_on_count, g};
    struct ing_reader r;
    struct chop c;
    chop_init(&c, data, n, 1);
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

/* Runs ing_jsonl_read in memory and through a small buffer, and ing_jsonl_read_reference, over
 * data[0..n); all three must deliver the same units. Leaves the first run's units in *g. */
static void run_all(const char *data, size_t n, const struct ing_jsonl_opts *o, struct got *g)
{
    struct ing_sink sink;
    struct ing_reader r;
    struct got other[2];
    assert_int_equal(run(data, n, o, g, 0), TM_OK);
    memset(other, 0, sizeof(other));
    assert_int_equal(run(data, n, o, &other[0], 1), TM_OK);
    sink = (struct ing_sink){on_record, got_on_problem, got_on_count, &other[1]};
    ing_reader_init_mem(&r, data, n);
    assert_int_equal(ing_jsonl_read_reference(&r, o, &sink), TM_OK);
    ing_reader_release(&r);
    for (int k = 0; k < 2; k++) {
        struct got *h = &other[k];
        assert_int_equal(h->n_records, g->n_records);
        assert_int_equal(h->n_problems, g->n_problems);
        assert_int_equal(h->n_counts, g->n_counts);
        for (int i = 0; i < g->n_records; i++) {
            assert_int_equal(h->rec[i].text_len, g->rec[i].text_len);
            assert_memory_equal(h->rec[i].text, g->rec[i].text, g->rec[i].text_len);
            assert_string_equal(h->rec[i].meta, g->rec[i].meta);
            assert_int_equal(h->rec[i].domain, g->rec[i].domain);
            assert_string_equal(h->rec[i].lang, g->rec[i].lang);
            assert_int_equal(h->rec[i].position, g->rec[i].position);
        }
        for (int i = 0; i < g->n_problems; i++) {
            assert_string_equal(h->prob[i].reason, g->prob[i].reason);
            assert_int_equal(h->prob[i].position, g->prob[i].position);
        }
        for (int i = 0; i < g->n_counts; i++)
            assert_string_equal(h->counts[i], g->counts[i]);
        got_free(h);
    }
}

static void test_text_member_found(void **state)
{
    (void)state;
    static const char data[] =
        /* 1: not first */
        "{\"id\":\"a\",\"n\":[1,{\"x\":\"}\"}],\"text\":\"one\"}\n"
        /* 2: duplicate keys, the first wins and the second stays in the metadata */
        "{\"text\":\"first\",\"text\":\"second\"}\n"
        /* 3: the key written with an escape */
        "{\"te\\u0078t\":\"escaped key\",\"k\":1}\n"
        /* 4: nested objects with a "text" key before and after: not the top-level member */
        "{\"a\":{\"text\":\"no\"},\"b\":[{\"text\":\"no\"}],\"text\":\"yes\",\"c\":{\"text\":2}}\n"
        /* 5: only nested ones */
        "{\"a\":{\"text\":\"no\"}}\n"
        /* 6: a key that is "text" up to a NUL is "text" to cJSON, and comes first */
        "{\"text\\u0000x\":\"nul key\",\"text\":\"later\"}\n"
        /* 7: a key with "text" as a prefix or an escaped quote is another key */
        "{\"texts\":\"no\",\"te\\\"xt\":\"no\",\"text\":\"right\"}\n"
        /* 8: whitespace everywhere cJSON allows it, and a key string holding ':' and ',' */
        " \t{ \"a:,\" : \"v\" ,\r \"text\"\t:\t\"spaced\" } \r\n";
    struct ing_jsonl_opts o = {0};
    struct got g = {0};
    run_all(data, sizeof(data) - 1, &o, &g);
    assert_int_equal(g.n_records, 7);
    assert_int_equal(g.n_problems, 1);
    assert_string_equal(g.rec[0].text, "one");
    assert_string_equal(g.rec[0].meta, "{\"id\":\"a\",\"n\":[1,{\"x\":\"}\"}]}");
    assert_string_equal(g.rec[1].text, "first");
    assert_string_equal(g.rec[1].meta, "{\"text\":\"second\"}");
    assert_string_equal(g.rec[2].text, "escaped key");
    assert_string_equal(g.rec[2].meta, "{\"k\":1}");
    assert_string_equal(g.rec[3].text, "yes");
    assert_string_equal(g.rec[3].meta,
                        "{\"a\":{\"text\":\"no\"},\"b\":[{\"text\":\"no\"}],\"c\":{\"text\":2}}");
    assert_string_equal(g.prob[0].reason, "missing_text");
    assert_int_equal(g.prob[0].position, 5);
    assert_string_equal(g.rec[4].text, "nul key");
    assert_string_equal(g.rec[4].meta, "{\"text\":\"later\"}");
    assert_string_equal(g.rec[5].text, "right");
    assert_string_equal(g.rec[6].text, "spaced");
    assert_string_equal(g.rec[6].meta, "{\"a:,\":\"v\"}");
    got_free(&g);
}

static void test_text_value_forms(void **state)
{
    (void)state;
    static const char data[] =
        /* 1: surrogate pairs, upper and lower case hex */
        "{\"text\":\"\\ud83d\\ude00\\uD834\\uDD1E\"}\n"
        /* 2: \u0000 kept with what follows */
        "{\"text\":\"a\\u0000b\"}\n"
        /* 3: raw tab and other control bytes are accepted inside strings, as cJSON does */
        "{\"text\":\"a\tb\x01\x1f\"}\n"
        /* 4: trailing garbage, after the text and after the object */
        "{\"text\":\"x\" junk}\n"
        "{\"text\":\"x\"} junk\n"
        /* 6: a text value that is not a string, and the first text member decides */
        "{\"text\":[\"x\"]}\n"
        "{\"text\":null,\"text\":\"x\"}\n"
        /* 8: a lone surrogate, a bad escape, and "\u" with bad hex (U+0000 to cJSON) */
        "{\"text\":\"\\udc00\"}\n"
        "{\"text\":\"\\q\"}\n"
        "{\"text\":\"ok\\uZZZZgone\"}\n"
        /* 11: a string cut short, an object cut short */
        "{\"text\":\"abc\n"
        "{\"text\":\"abc\"\n"
        /* 13: bad JSON before and after the text member */
        "{\"a\":tru,\"text\":\"x\"}\n"
        "{\"text\":\"x\",\"a\":[1,}\n"
        /* 15: invalid UTF-8 passes through; an empty text is a record */
        "{\"text\":\"\xff\xc3\"}\n"
        "{\"text\":\"\"}\n";
    struct ing_jsonl_opts o = {0};
    struct got g = {0};
    run_all(data, sizeof(data) - 1, &o, &g);
    static const struct {
        const char *reason;
        uint64_t position;
    } want[] = {{"bad_json", 4},  {"bad_json", 5}, {"missing_text", 6}, {"missing_text", 7},
                {"bad_json", 8},  {"bad_json", 9}, {"bad_json", 11},    {"bad_json", 12},
                {"bad_json", 13}, {"bad_json", 14}};
    assert_int_equal(g.n_problems, sizeof(want) / sizeof(*want));
    for (size_t i = 0; i < sizeof(want) / sizeof(*want); i++) {
        assert_string_equal(g.prob[i].reason, want[i].reason);
        assert_int_equal(g.prob[i].position, want[i].position);
    }
    assert_int_equal(g.n_records, 6);
    assert_string_equal(g.rec[0].text, "\xf0\x9f\x98\x80\xf0\x9d\x84\x9e");
    assert_int_equal(g.rec[1].text_len, 3);
    assert_memory_equal(g.rec[1].text, "a\0b", 3);
    assert_string_equal(g.rec[2].text, "a\tb\x01\x1f");
    /* cJSON's reading: the text ends at the bad escape. */
    assert_string_equal(g.rec[3].text, "ok");
    assert_int_equal(g.rec[3].position, 10);
    assert_string_equal(g.rec[4].text, "\xff\xc3");
    assert_int_equal(g.rec[5].text_len, 0);
    assert_int_equal(g.rec[5].position, 16);
    got_free(&g);
}

/* A text of several MB with every kind of escape at every offset from block boundaries. */
static void test_long_text_escapes(void **state)
{
    (void)state;
    static const struct {
        const char *json, *bytes;
    } esc[] = {{"\\n", "\n"},
               {"\\\"", "\""},
               {"\\\\", "\\"},
               {"\\/", "/"},
               {"\\t", "\t"},
               {"\\u00e9", "\xc3\xa9"},
               {"\\u4e2d", "\xe4\xb8\xad"},
               {"\\ud83d\\ude00", "\xf0\x9f\x98\x80"},
               {"\\u0000", ""}};
    struct tm_buf line, want;
    tm_buf_init(&line, 0);
    tm_buf_init(&want, 0);
    tm_buf_puts(&line, "{\"a\":{\"text\":\"no\"},\"text\":\"");
    uint32_t x = 1;
    while (want.len < ((size_t)5 << 20)) {
        x = x * 1103515245u + 12345u;
        size_t run = (x >> 16) % 40;
        for (size_t k = 0; k < run; k++) {
            char c = (char)('a' + (want.len + k) % 26);
            tm_buf_putc(&line, c);
            tm_buf_putc(&want, c);
        }
        size_t e = (x >> 8) % (sizeof(esc) / sizeof(*esc));
        tm_buf_puts(&line, esc[e].json);
        if (esc[e].bytes[0])
            tm_buf_puts(&want, esc[e].bytes);
        else
            tm_buf_putc(&want, '\0');
    }
    tm_buf_puts(&line, "\",\"b\":[\"\\\"text\\\"\"]}\n");
    struct ing_jsonl_opts o = {0};
    struct got g = {0};
    run_all(line.data, line.len, &o, &g);
    assert_int_equal(g.n_records, 1);
    assert_int_equal(g.rec[0].text_len, want.len);
    assert_memory_equal(g.rec[0].text, want.data, want.len);
    assert_string_equal(g.rec[0].meta, "{\"a\":{\"text\":\"no\"},\"b\":[\"\\\"text\\\"\"]}");
    got_free(&g);
    tm_buf_release(&want);
    tm_buf_release(&line);
}

/* A domain or language field that is the text field itself sees the text, not "". */
static void test_field_is_text_field(void **state)
{
    (void)state;
    static const char data[] = "{\"text\":\"math\"}\n{\"text\":\"prose\"}\n";
    struct ing_jsonl_opts o = {"text", "text", "text", 0};
    struct got g = {0};
    run_all(data, sizeof(data) - 1, &o, &g);
    assert_int_equal(g.n_records, 1);
    assert_int_equal(g.rec[0].domain, TM_DOMAIN_MATH);
    assert_string_equal(g.rec[0].lang, "math");
    assert_int_equal(g.n_problems, 1);
    assert_string_equal(g.prob[0].reason, "bad_domain");
    got_free(&g);
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
        cmocka_unit_test(test_text_member_found),
        cmocka_unit_test(test_text_value_forms),
        cmocka_unit_test(test_long_text_escapes),
        cmocka_unit_test(test_field_is_text_field),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
