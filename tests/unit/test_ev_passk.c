/* eval: pass@k (eval.h, ev_pass_at_k) against the definition 1 - C(n - c, k) / C(n, k) computed
 * with exact binomials (in long double, exact for these sizes) for every n <= 40, c <= n,
 * k <= n; the edges: k > n (0, undefined), n - c < k (1), c = 0 (0); and the known value
 * pass@1 = c / n. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>

#include "eval.h"

static long double binom(int n, int k)
{
    if (k < 0 || k > n)
        return 0;
    long double r = 1;
    for (int i = 1; i <= k; i++)
        r = r * (n - k + i) / i;
    return r;
}

static void test_pass_at_k(void **state)
{
    (void)state;
    for (int n = 1; n <= 40; n++)
        for (int c = 0; c <= n; c++) {
            assert_true(fabs(ev_pass_at_k(n, c, 1) - (double)c / n) < 1e-12);
            for (int k = 1; k <= n; k++) {
                double want = (double)(1.0L - binom(n - c, k) / binom(n, k));
                double got = ev_pass_at_k(n, c, k);
                if (!(fabs(got - want) < 1e-12))
                    fail_msg("n %d c %d k %d: %.17g, want %.17g", n, c, k, got, want);
            }
        }
    assert_true(ev_pass_at_k(5, 5, 6) == 0.0); /* k > n: undefined, reported as 0 */
    assert_true(ev_pass_at_k(10, 8, 3) == 1.0);
    assert_true(ev_pass_at_k(10, 0, 10) == 0.0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_pass_at_k)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
