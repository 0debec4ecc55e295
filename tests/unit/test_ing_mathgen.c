/* The generated math set: deterministic, well-formed, and detected as math by the same
 * heuristic that classifies ingested documents. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <xxhash.h>

#include "../../core/tm_doc.h"
#include "../../ingest/ing_internal.h"
#include "../../ingest/ing_run.h"

struct collect {
    long n;
    XXH64_hash_t hash;
    long math;
    long stop_at;
};

static int collect(void *vctx, const char *text, size_t len)
{
    struct collect *c = vctx;
    const char *lang;
    c->n++;
    c->hash = XXH64(text, len, c->hash);
    assert_true(len > 40);
    assert_int_equal(strlen(text), len);
    assert_non_null(strstr(text, "Problem."));
    assert_non_null(strstr(text, "Solution."));
    if (ing_detect_domain("", 0, text, len, &lang) == TM_DOMAIN_MATH)
        c->math++;
    return c->n == c->stop_at ? 7 : 0;
}

static void test_deterministic(void **state)
{
    (void)state;
    struct collect a = {0}, b = {0};
    assert_int_equal(ing_mathgen(200, collect, &a), 0);
    assert_int_equal(ing_mathgen(200, collect, &b), 0);
    assert_int_equal(a.n, 200);
    assert_true(a.hash == b.hash);
    /* A longer set starts with the shorter one. */
    struct collect c = {0};
    assert_int_equal(ing_mathgen(100, collect, &c), 0);
    struct collect d = {.stop_at = 100};
    assert_int_equal(ing_mathgen(200, collect, &d), 7);
    assert_true(c.hash == d.hash);
}

static void test_detected_as_math(void **state)
{
    (void)state;
    struct collect a = {0};
    assert_int_equal(ing_mathgen(140, collect, &a), 0);
    /* Every template, 20 times each, must read as math. */
    assert_int_equal(a.math, 140);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_detected_as_math),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
