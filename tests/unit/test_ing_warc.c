/* Unit tests for the WARC record reader: several records with exact texts, metadata and
 * offsets; non-response records; chunked payloads; windows-1252 conversion; truncated and
 * over-large records; bad Content-Length; resynchronization after garbage. */
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
#include "tm_err.h"

/* The WARC reader sets no language on any record. */
static int on_record(void *ctx, const struct ing_record *rec)
{
    assert_null(rec->lang);
    return got_on_record(ctx, rec);
}

/* Runs the reader over b[0..len), in memory or through a 16-byte buffer. */
static int run(const struct tm_buf *b, size_t max_record, struct got *g, int chopped)
{
    struct ing_sink sink = {on_record, got_on_problem, got_on_count, g};
    struct ing_warc_opts o = {max_record};
    struct ing_reader r;
    struct chop c;
    chop_init(&c, b->data, b->len, 3);
    if (chopped)
        ing_reader_init(&r, chop_read, &c, 16);
    else
        ing_reader_init_mem(&r, b->data, b->len);
    int rc = ing_warc_read(&r, &o, &sink);
    ing_reader_release(&r);
    return rc;
}

#define URI  "http://example.com/dir/page.py?x=1#frag"
#define DATE "2024-01-02T03:04:05Z"
#define RID  "<urn:uuid:00000000-0000-0000-0000-000000000001>"

/* Appends a WARC record and returns its offset. `length` NULL: the block's real length. */
static size_t add_record(struct tm_buf *b, const char *type, const char *ctype, const char *block,
                         size_t block_len, const char *length, const char *eol)
{
    size_t off = b->len;
    tm_buf_printf(b, "WARC/1.0%sWARC-Type: %s%sWARC-Target-URI: " URI "%s", eol, type, eol, eol);
    tm_buf_printf(b, "WARC-Date: " DATE "%swarc-record-id: " RID "%s", eol, eol);
    tm_buf_printf(b, "Content-Type: %s%s", ctype, eol);
    if (length)
        tm_buf_printf(b, "Content-Length: %s%s%s", length, eol, eol);
    else
        tm_buf_printf(b, "Content-Length: %zu%s%s", block_len, eol, eol);
    tm_buf_append(b, block, block_len);
    tm_buf_printf(b, "%s%s", eol, eol);
    return off;
}

static size_t add_response(struct tm_buf *b, const char *http)
{
    return add_record(b, "response", "application/http; msgtype=response", http, strlen(http), NULL,
                      "\r\n");
}

#define HTTP_PLAIN "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
#define META_PLAIN(status)                                                                         \
    "{\"url\":\"" URI "\",\"date\":\"" DATE "\",\"record_id\":\"" RID                              \
    "\",\"content_type\":\"text/plain\",\"http_status\":" status "}"

static void test_multiple_records(void **state)
{
    (void)state;
    struct tm_buf b;
    tm_buf_init(&b, 0);
    add_record(&b, "warcinfo", "application/warc-fields", "software: x\r\n", 13, NULL, "\r\n");
    add_record(&b, "request", "application/http; msgtype=request",
               "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n", 37, NULL, "\r\n");
    size_t off1 = add_response(&b, HTTP_PLAIN "first body\r\nline two\n");
    add_record(&b, "metadata", "application/warc-fields", "a: b\r\n", 6, NULL, "\r\n");
    size_t off2 = add_response(&b, "HTTP/1.0 404 Not Found\nContent-Type: TEXT/Plain\n\nsecond");
    /* Blank lines between records are tolerated. */
    tm_buf_puts(&b, "\r\n\n");
    size_t off3 = add_response(&b, "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n"
                                   "<html><body><p>Hello</p></body></html>");
    for (int chopped = 0; chopped <= 1; chopped++) {
        struct got g = {0};
        assert_int_equal(run(&b, 0, &g, chopped), TM_OK);
        assert_int_equal(g.n_problems, 0);
        assert_int_equal(g.n_records, 3);
        assert_int_equal(got_count_of(&g, "warc_records_not_response"), 3);
        assert_string_equal(g.rec[0].text, "first body\r\nline two\n");
        assert_string_equal(g.rec[0].meta, META_PLAIN("200"));
        assert_string_equal(g.rec[0].name, "/dir/page.py");
        assert_int_equal(g.rec[0].domain, -1);
        assert_int_equal(g.rec[0].position, off1);
        assert_string_equal(g.rec[1].text, "second");
        assert_string_equal(g.rec[1].meta, META_PLAIN("404"));
        assert_int_equal(g.rec[1].position, off2);
        /* HTML is reduced to text (ing_html_to_text decides the details). */
        assert_non_null(strstr(g.rec[2].text, "Hello"));
        assert_null(strchr(g.rec[2].text, '<'));
        assert_non_null(strstr(g.rec[2].meta, "\"content_type\":\"text/html\""));
        assert_int_equal(g.rec[2].position, off3);
        got_free(&g);
    }
    tm_buf_release(&b);
}

static void test_chunked(void **state)
{
    (void)state;
    struct tm_buf b;
    tm_buf_init(&b, 0);
    add_response(&b,
                 "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n"
                 "\r\n5\r\nHello\r\n7;ext=1\r\n, world\r\nA\r\n, 10 bytes\r\n0\r\nX-T: y\r\n\r\n");
    size_t bad1 = add_response(&b, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                                   "Transfer-Encoding: chunked\r\n\r\nzz\r\nHello\r\n0\r\n\r\n");
    size_t bad2 = add_response(&b, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                                   "Transfer-Encoding: chunked\r\n\r\n9\r\nHello\r\n0\r\n\r\n");
    add_response(&b, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                     "Transfer-Encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n");
    struct got g = {0};
    assert_int_equal(run(&b, 0, &g, 0), TM_OK);
    assert_int_equal(g.n_records, 1);
    assert_string_equal(g.rec[0].text, "Hello, world, 10 bytes");
    assert_int_equal(g.n_problems, 2);
    assert_string_equal(g.prob[0].reason, "bad_chunked_encoding");
    assert_int_equal(g.prob[0].position, bad1);
    assert_string_equal(g.prob[1].reason, "bad_chunked_encoding");
    assert_int_equal(g.prob[1].position, bad2);
    assert_int_equal(got_count_of(&g, "warc_skipped_content_encoding"), 1);
    got_free(&g);
    tm_buf_release(&b);
}

static void test_charsets(void **state)
{
    (void)state;
    struct tm_buf b;
    tm_buf_init(&b, 0);
    /* latin1 label: read as windows-1252 (WHATWG), so 0x80 is the euro sign. */
    add_response(&b, "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=ISO-8859-1\r\n\r\n"
                     "caf\xe9 \x80 \x93q\x94 \xff");
    add_response(&b, "HTTP/1.1 200 OK\r\nContent-Type: text/plain;charset=\"windows-1252\"\r\n"
                     "\r\n\x81\x9f");
    /* Already valid UTF-8 despite the label: left alone. */
    add_response(&b, "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=latin1\r\n\r\n"
                     "caf\xc3\xa9");
    /* An unknown charset: kept as is, and counted. */
    add_response(&b, "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=koi8-r\r\n\r\n"
                     "\xf0\xd2\xc9");
    struct got g = {0};
    assert_int_equal(run(&b, 0, &g, 0), TM_OK);
    assert_int_equal(g.n_records, 4);
    assert_int_equal(g.n_problems, 0);
    assert_string_equal(g.rec[0].text,
                        "caf\xc3\xa9 \xe2\x82\xac \xe2\x80\x9cq\xe2\x80\x9d \xc3\xbf");
    assert_string_equal(g.rec[1].text, "\xc2\x81\xc5\xb8");
    assert_string_equal(g.rec[2].text, "caf\xc3\xa9");
    assert_string_equal(g.rec[3].text, "\xf0\xd2\xc9");
    assert_int_equal(got_count_of(&g, "warc_converted_latin1"), 2);
    assert_int_equal(got_count_of(&g, "warc_unsupported_charset"), 1);
    got_free(&g);
    tm_buf_release(&b);
}

static void test_truncated(void **state)
{
    (void)state;
    struct tm_buf b;
    tm_buf_init(&b, 0);
    add_response(&b, HTTP_PLAIN "complete");
    size_t off = add_response(&b, HTTP_PLAIN "this one is cut short");
    size_t full = b.len;
    /* Cut inside the block, then inside the header. */
    size_t cuts[] = {full - 10, off + 30};
    for (size_t k = 0; k < 2; k++) {
        for (int chopped = 0; chopped <= 1; chopped++) {
            struct tm_buf t = b;
            t.len = cuts[k];
            struct got g = {0};
            assert_int_equal(run(&t, 0, &g, chopped), TM_OK);
            assert_int_equal(g.n_records, 1);
            assert_string_equal(g.rec[0].text, "complete");
            assert_int_equal(g.n_problems, 1);
            assert_string_equal(g.prob[0].reason, "truncated_record");
            assert_int_equal(g.prob[0].position, off);
            got_free(&g);
        }
    }
    /* Without the final separator the record is whole: accepted. */
    struct tm_buf t = b;
    t.len = full - 4;
    struct got g = {0};
    assert_int_equal(run(&t, 0, &g, 0), TM_OK);
    assert_int_equal(g.n_records, 2);
    assert_int_equal(g.n_problems, 0);
    got_free(&g);
    tm_buf_release(&b);
}

static void test_bad_content_length(void **state)
{
    (void)state;
    static const char http[] = HTTP_PLAIN "body";
    struct tm_buf b;
    tm_buf_init(&b, 0);
    size_t bad1 = add_record(&b, "response", "application/http", http, strlen(http), "12x", "\r\n");
    add_response(&b, HTTP_PLAIN "one");
    size_t bad2 = add_record(&b, "response", "application/http", http, strlen(http), "", "\r\n");
    add_response(&b, HTTP_PLAIN "two");
    /* Shorter than the block: the separator is not where it should be. */
    size_t bad3 = add_record(&b, "response", "application/http", http, strlen(http), "20", "\r\n");
    add_response(&b, HTTP_PLAIN "three");
    size_t bad4 = add_record(&b, "response", "application/http", http, strlen(http),
                             "99999999999999999999", "\r\n");
    add_response(&b, HTTP_PLAIN "four");
    /* Missing altogether. */
    size_t bad5 = b.len;
    tm_buf_puts(&b, "WARC/1.1\r\nWARC-Type: response\r\n\r\nsome block\r\n\r\n");
    add_response(&b, HTTP_PLAIN "five");
    for (int chopped = 0; chopped <= 1; chopped++) {
        struct got g = {0};
        assert_int_equal(run(&b, 0, &g, chopped), TM_OK);
        assert_int_equal(g.n_records, 5);
        assert_string_equal(g.rec[0].text, "one");
        assert_string_equal(g.rec[1].text, "two");
        assert_string_equal(g.rec[2].text, "three");
        assert_string_equal(g.rec[3].text, "four");
        assert_string_equal(g.rec[4].text, "five");
        size_t want[] = {bad1, bad2, bad3, bad4, bad5};
        assert_int_equal(g.n_problems, 5);
        for (int i = 0; i < 5; i++) {
            assert_string_equal(g.prob[i].reason, "bad_warc_header");
            assert_int_equal(g.prob[i].position, want[i]);
        }
        got_free(&g);
    }
    tm_buf_release(&b);
}

static void test_too_large(void **state)
{
    (void)state;
    struct tm_buf b;
    tm_buf_init(&b, 0);
    size_t big = add_response(&b, HTTP_PLAIN "0123456789012345678901234567890123456789");
    /* Non-response records over the limit are skipped silently (only counted). */
    add_record(&b, "resource", "text/plain",
               "0123456789012345678901234567890123456789012345678901234567890123456789", 70, NULL,
               "\r\n");
    add_response(&b, HTTP_PLAIN "small");
    struct got g = {0};
    assert_int_equal(run(&b, 80, &g, 1), TM_OK);
    assert_int_equal(g.n_records, 1);
    assert_string_equal(g.rec[0].text, "small");
    assert_int_equal(g.n_problems, 1);
    assert_string_equal(g.prob[0].reason, "record_too_large");
    assert_int_equal(g.prob[0].position, big);
    assert_int_equal(got_count_of(&g, "warc_records_not_response"), 1);
    got_free(&g);
    tm_buf_release(&b);
}

static void test_resync(void **state)
{
    (void)state;
    struct tm_buf b;
    tm_buf_init(&b, 0);
    tm_buf_puts(&b, "garbage line\r\nmore garbage\n");
    size_t off1 = add_response(&b, HTTP_PLAIN "after garbage");
    size_t junk = b.len;
    tm_buf_puts(&b, "junk between\r\nWARC/0.9\r\n\r\n");
    size_t off2 = add_response(&b, HTTP_PLAIN "again");
    /* A header cut short by the next record, and a malformed header line. */
    size_t cut = b.len;
    tm_buf_puts(&b, "WARC/1.0\r\nWARC-Type: response\r\n");
    size_t off3 = add_response(&b, HTTP_PLAIN "third");
    size_t malformed = b.len;
    tm_buf_puts(&b, "WARC/1.0\r\nWARC-Type response\r\nContent-Length: 5\r\n\r\nabcde\r\n\r\n");
    size_t off4 = add_response(&b, HTTP_PLAIN "fourth");
    size_t unsupported = b.len;
    tm_buf_puts(&b, "WARC/1.9\r\nContent-Length: 3\r\n\r\nabc\r\n\r\n");
    tm_buf_puts(&b, "trailing junk\r\n");
    for (int chopped = 0; chopped <= 1; chopped++) {
        struct got g = {0};
        assert_int_equal(run(&b, 0, &g, chopped), TM_OK);
        assert_int_equal(g.n_records, 4);
        assert_string_equal(g.rec[0].text, "after garbage");
        assert_int_equal(g.rec[0].position, off1);
        assert_string_equal(g.rec[1].text, "again");
        assert_int_equal(g.rec[1].position, off2);
        assert_string_equal(g.rec[2].text, "third");
        assert_int_equal(g.rec[2].position, off3);
        assert_string_equal(g.rec[3].text, "fourth");
        assert_int_equal(g.rec[3].position, off4);
        size_t want[] = {0, junk, cut, malformed, unsupported};
        assert_int_equal(g.n_problems, 5);
        for (int i = 0; i < 5; i++) {
            assert_string_equal(g.prob[i].reason, "bad_warc_header");
            assert_int_equal(g.prob[i].position, want[i]);
        }
        got_free(&g);
    }
    tm_buf_release(&b);

    /* Nothing that looks like WARC at all: an error, after one problem. */
    tm_buf_init(&b, 0);
    tm_buf_puts(&b, "this is not a warc file\nat all\n");
    struct got g = {0};
    assert_int_equal(run(&b, 0, &g, 0), TM_ERR_FORMAT);
    assert_int_equal(g.n_problems, 1);
    got_free(&g);
    tm_buf_release(&b);

    /* An empty stream is simply empty. */
    tm_buf_init(&b, 0);
    assert_int_equal(run(&b, 0, &g, 0), TM_OK);
    assert_int_equal(g.n_problems + g.n_records, 0);
    tm_buf_release(&b);
}

static void test_line_ends_and_skips(void **state)
{
    (void)state;
    struct tm_buf b;
    tm_buf_init(&b, 0);
    static const char lf[] = "HTTP/1.1 200 OK\nContent-Type: text/plain\n\nlf only";
    size_t off1 =
        add_record(&b, "response", "application/http;msgtype=response", lf, strlen(lf), NULL, "\n");
    add_response(&b, "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n"
                     "Content-Encoding: gzip\r\n\r\n\x1f\x8b\x08");
    add_response(&b, "HTTP/1.1 200 OK\r\nContent-Type: image/png\r\n\r\n\x89PNG");
    add_response(&b, "HTTP/1.1 200 OK\r\n\r\nno content type");
    add_record(&b, "response", "text/dns", "x", 1, NULL, "\r\n");
    size_t bad_http = add_response(&b, "NOT HTTP\r\n\r\nbody");
    /* Folded WARC header, URI in angle brackets, headers ending at the block's end. */
    size_t off2 = b.len;
    tm_buf_puts(&b, "WARC/1.1\r\nWARC-Type: response\r\nWARC-Target-URI: <http://a.org/x\r\n"
                    " /y.txt>\r\nContent-Type: application/http\r\nContent-Length: 43\r\n\r\n"
                    "HTTP/1.1 204 Empty\nContent-Type: text/plain\r\n\r\n");
    struct got g = {0};
    assert_int_equal(run(&b, 0, &g, 0), TM_OK);
    assert_int_equal(g.n_records, 2);
    assert_string_equal(g.rec[0].text, "lf only");
    assert_int_equal(g.rec[0].position, off1);
    assert_string_equal(g.rec[1].text, "");
    assert_string_equal(
        g.rec[1].meta,
        "{\"url\":\"http://a.org/x /y.txt\",\"content_type\":\"text/plain\",\"http_status\":204}");
    assert_string_equal(g.rec[1].name, "/x /y.txt");
    assert_int_equal(g.rec[1].position, off2);
    assert_int_equal(g.n_problems, 1);
    assert_string_equal(g.prob[0].reason, "bad_http_response");
    assert_int_equal(g.prob[0].position, bad_http);
    assert_int_equal(got_count_of(&g, "warc_skipped_content_encoding"), 1);
    assert_int_equal(got_count_of(&g, "warc_skipped_content_type"), 3);
    got_free(&g);
    tm_buf_release(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_multiple_records),
        cmocka_unit_test(test_chunked),
        cmocka_unit_test(test_charsets),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_bad_content_length),
        cmocka_unit_test(test_too_large),
        cmocka_unit_test(test_resync),
        cmocka_unit_test(test_line_ends_and_skips),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
