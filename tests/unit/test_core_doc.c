/* Unit tests for tm_doc: round trip, exact layout, and corrupt records (every truncation,
 * bad lengths, missing NULs, bad domain, byte flips) failing cleanly. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tm_db.h"
#include "tm_doc.h"
#include "tm_err.h"
#include "tm_log.h"
#include "test_util.h"

/* Offsets from the layout in tm_doc.h. */
#define OFF_DOMAIN   20
#define OFF_LANG_LEN 24
#define OFF_TEXT_LEN 36
#define FIXED        44

static FILE *sink;

static int setup(void **state)
{
    (void)state;
    /* Corruption tests log an error each; keep the output readable. */
    sink = tu_log_quiet();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    tu_log_restore(sink);
    return 0;
}

static struct tm_doc sample(void)
{
    struct tm_doc d = {0};
    d.id = tm_doc_make_id(7, 123456789);
    d.generation = 7;
    d.domain = TM_DOMAIN_CODE;
    d.lang = "python";
    d.lang_len = 6;
    d.source = "a.tar!src/x.py";
    d.source_len = strlen(d.source);
    d.meta = "{\"license\":\"mit\"}";
    d.meta_len = strlen(d.meta);
    d.text = "print('hi')\n";
    d.text_len = strlen(d.text);
    return d;
}

static unsigned char *encode(const struct tm_doc *d, size_t *len)
{
    *len = tm_doc_encoded_size(d);
    unsigned char *buf = malloc(*len);
    assert_non_null(buf);
    tm_doc_encode(d, buf);
    return buf;
}

static void test_ids_domains(void **state)
{
    (void)state;
    uint64_t id = tm_doc_make_id(3, 99);
    assert_true(id == ((uint64_t)3 << 40 | 99));
    assert_int_equal(tm_doc_id_generation(id), 3);
    assert_string_equal(tm_domain_name(TM_DOMAIN_TEXT), "text");
    assert_string_equal(tm_domain_name(TM_DOMAIN_MATH), "math");
    assert_string_equal(tm_domain_name(TM_DOMAIN_CODE), "code");
    assert_string_equal(tm_domain_name(3), "?");
    assert_string_equal(tm_domain_name(-1), "?");
    assert_int_equal(tm_domain_parse("math"), TM_DOMAIN_MATH);
    assert_int_equal(tm_domain_parse("code"), TM_DOMAIN_CODE);
    assert_int_equal(tm_domain_parse("Code"), -1);
    assert_int_equal(tm_domain_parse(""), -1);
}

static void test_round_trip(void **state)
{
    (void)state;
    struct tm_doc d = sample();
    size_t len;
    unsigned char *buf = encode(&d, &len);
    assert_int_equal(len, FIXED + 7 + 15 + 18 + 13);
    /* The layout documented in tm_doc.h. */
    assert_memory_equal(buf, "TMDC\x01\0\0\0", 8);
    assert_true(tm_le64_get(buf + 8) == d.id);
    assert_int_equal(tm_le32_get(buf + 16), 7);
    assert_int_equal(buf[OFF_DOMAIN], TM_DOMAIN_CODE);
    assert_int_equal(tm_le32_get(buf + OFF_LANG_LEN), 6);
    assert_true(tm_le64_get(buf + OFF_TEXT_LEN) == d.text_len);
    assert_string_equal((char *)buf + FIXED, "python");

    struct tm_doc out;
    assert_int_equal(tm_doc_decode(buf, len, &out, "doc"), TM_OK);
    assert_true(out.id == d.id);
    assert_int_equal(out.generation, 7);
    assert_int_equal(out.domain, TM_DOMAIN_CODE);
    assert_int_equal(out.lang_len, 6);
    assert_string_equal(out.lang, "python");
    assert_string_equal(out.source, d.source);
    assert_string_equal(out.meta, d.meta);
    assert_string_equal(out.text, d.text);
    assert_int_equal(out.text_len, d.text_len);
    /* Fields borrow from the value. */
    assert_true((const unsigned char *)out.text > buf &&
                (const unsigned char *)out.text < buf + len);
    free(buf);
}

static void test_empty_fields(void **state)
{
    (void)state;
    struct tm_doc d = {0};
    d.lang = "";
    d.source = "";
    d.meta = "";
    d.text = "";
    size_t len;
    unsigned char *buf = encode(&d, &len);
    assert_int_equal(len, FIXED + 4);
    struct tm_doc out;
    assert_int_equal(tm_doc_decode(buf, len, &out, NULL), TM_OK);
    assert_string_equal(out.text, "");
    assert_int_equal(out.domain, TM_DOMAIN_TEXT);
    free(buf);
}

static void test_truncation(void **state)
{
    (void)state;
    struct tm_doc d = sample();
    size_t len;
    unsigned char *buf = encode(&d, &len);
    for (size_t n = 0; n < len; n++) {
        /* A copy of exactly n bytes, so ASan flags any read past it. */
        unsigned char *cut = malloc(n ? n : 1);
        memcpy(cut, buf, n);
        struct tm_doc out;
        int rc = tm_doc_decode(cut, n, &out, "truncated");
        assert_int_equal(rc, TM_ERR_FORMAT);
        free(cut);
    }
    /* One byte too many is corruption as well. */
    unsigned char *longer = malloc(len + 1);
    memcpy(longer, buf, len);
    longer[len] = 0;
    struct tm_doc out;
    assert_int_equal(tm_doc_decode(longer, len + 1, &out, "long"), TM_ERR_FORMAT);
    free(longer);
    free(buf);
}

static void test_corruptions(void **state)
{
    (void)state;
    struct tm_doc d = sample();
    size_t len;
    unsigned char *buf = encode(&d, &len);
    unsigned char *bad = malloc(len);
    struct tm_doc out;

    memcpy(bad, buf, len);
    bad[OFF_DOMAIN] = TM_DOMAIN_COUNT;
    assert_int_equal(tm_doc_decode(bad, len, &out, "domain"), TM_ERR_FORMAT);

    memcpy(bad, buf, len);
    bad[FIXED + 6] = 'x'; /* the NUL after lang */
    assert_int_equal(tm_doc_decode(bad, len, &out, "nul"), TM_ERR_FORMAT);

    memcpy(bad, buf, len);
    bad[len - 1] = 'x'; /* the NUL after text */
    assert_int_equal(tm_doc_decode(bad, len, &out, "nul"), TM_ERR_FORMAT);

    memcpy(bad, buf, len);
    tm_le64_put(bad + OFF_TEXT_LEN, UINT64_MAX); /* would wrap an unchecked sum */
    assert_int_equal(tm_doc_decode(bad, len, &out, "huge"), TM_ERR_FORMAT);

    memcpy(bad, buf, len);
    tm_le32_put(bad + OFF_LANG_LEN, 0xffffffffu);
    assert_int_equal(tm_doc_decode(bad, len, &out, "huge"), TM_ERR_FORMAT);

    memcpy(bad, buf, len);
    memcpy(bad, "TMDX", 4);
    assert_int_equal(tm_doc_decode(bad, len, &out, "magic"), TM_ERR_FORMAT);

    memcpy(bad, buf, len);
    bad[4] = TM_DOC_VERSION + 1;
    assert_int_equal(tm_doc_decode(bad, len, &out, "version"), TM_ERR_VERSION);

    /* Every single-byte change either decodes to fields inside the value or fails. */
    for (size_t i = 0; i < len; i++) {
        for (int v = 0; v < 256; v += 51) {
            memcpy(bad, buf, len);
            bad[i] ^= (unsigned char)(v | 1);
            int rc = tm_doc_decode(bad, len, &out, NULL);
            if (rc == TM_OK) {
                assert_true((const unsigned char *)out.text + out.text_len < bad + len);
                assert_int_equal(out.text[out.text_len], '\0');
                assert_in_range(out.domain, 0, TM_DOMAIN_COUNT - 1);
            } else {
                assert_true(rc == TM_ERR_FORMAT || rc == TM_ERR_VERSION);
            }
        }
    }
    free(bad);
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ids_domains),  cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_empty_fields), cmocka_unit_test(test_truncation),
        cmocka_unit_test(test_corruptions),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
