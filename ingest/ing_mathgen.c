/* ing_mathgen: a small generated math set, so the default corpus exercises the math domain on
 * any machine. Problems are worked step by step with LaTeX, in the style of textbook solutions;
 * every number comes from a fixed-seed generator, so the set is the same on every run and an
 * unchanged set is recognized as unchanged by its fingerprint. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "../core/tm_buf.h"
#include "../core/tm_rand.h"
#include "ing_run.h"

/* A uniform integer in [lo, hi], from SplitMix64 (tm_rand.h): fully specified, so the set never
 * depends on libc's rand. */
static long pick(uint64_t *s, long lo, long hi)
{
    return lo + (long)(tm_splitmix64(s) % (uint64_t)(hi - lo + 1));
}

static long gcd(long a, long b)
{
    a = labs(a);
    b = labs(b);
    while (b) {
        long t = a % b;
        a = b;
        b = t;
    }
    return a ? a : 1;
}

static void linear_equation(struct tm_buf *b, uint64_t *s)
{
    long a = pick(s, 2, 12), x = pick(s, -20, 20), c = pick(s, -30, 30);
    long rhs = a * x + c;
    tm_buf_printf(b, "Problem. Solve $%ldx %c %ld = %ld$ for $x$.\n\n", a, c < 0 ? '-' : '+',
                  labs(c), rhs);
    tm_buf_printf(b, "Solution. %s $%ld$ %s both sides: $%ldx = %ld %c %ld = %ld$.\n",
                  c < 0 ? "Add" : "Subtract", labs(c), c < 0 ? "to" : "from", a, rhs,
                  c < 0 ? '+' : '-', labs(c), rhs - c);
    tm_buf_printf(b, "Divide by $%ld$: $x = \\frac{%ld}{%ld} = %ld$.\n", a, rhs - c, a, x);
    tm_buf_printf(b, "Check: $%ld \\cdot (%ld) %c %ld = %ld$. The answer is $x = %ld$.\n", a, x,
                  c < 0 ? '-' : '+', labs(c), rhs, x);
}

static void fraction_sum(struct tm_buf *b, uint64_t *s)
{
    long p = pick(s, 1, 9), q = pick(s, 2, 12), r = pick(s, 1, 9), t = pick(s, 2, 12);
    long num = p * t + r * q, den = q * t, g = gcd(num, den);
    tm_buf_printf(b, "Problem. Compute $\\frac{%ld}{%ld} + \\frac{%ld}{%ld}$ in lowest terms.\n\n",
                  p, q, r, t);
    tm_buf_printf(b,
                  "Solution. Over the common denominator $%ld \\cdot %ld = %ld$:\n"
                  "$$\\frac{%ld}{%ld} + \\frac{%ld}{%ld} = \\frac{%ld \\cdot %ld + %ld \\cdot "
                  "%ld}{%ld} = \\frac{%ld}{%ld}.$$\n",
                  q, t, den, p, q, r, t, p, t, r, q, den, num, den);
    if (g > 1)
        tm_buf_printf(b,
                      "The greatest common divisor of $%ld$ and $%ld$ is $%ld$, so the sum is "
                      "$\\frac{%ld}{%ld}$.\n",
                      num, den, g, num / g, den / g);
    else
        tm_buf_printf(b, "The fraction is already in lowest terms.\n");
}

static void quadratic(struct tm_buf *b, uint64_t *s)
{
    long r1 = pick(s, -9, 9), r2 = pick(s, -9, 9);
    long bb = -(r1 + r2), cc = r1 * r2;
    tm_buf_printf(b, "Problem. Find the roots of $x^2 %c %ldx %c %ld = 0$.\n\n", bb < 0 ? '-' : '+',
                  labs(bb), cc < 0 ? '-' : '+', labs(cc));
    tm_buf_printf(b,
                  "Solution. We look for two numbers whose sum is $%ld$ and whose product is "
                  "$%ld$: they are $%ld$ and $%ld$. Hence\n"
                  "$$x^2 %c %ldx %c %ld = (x %c %ld)(x %c %ld) = 0,$$\n"
                  "so $x = %ld$ or $x = %ld$. The discriminant is $\\Delta = b^2 - 4ac = %ld$, "
                  "and $\\sqrt{\\Delta} = %ld$ agrees with $|x_1 - x_2|$.\n",
                  -bb, cc, -r1, -r2, bb < 0 ? '-' : '+', labs(bb), cc < 0 ? '-' : '+', labs(cc),
                  r1 < 0 ? '+' : '-', labs(r1), r2 < 0 ? '+' : '-', labs(r2), r1, r2,
                  bb * bb - 4 * cc, labs(r1 - r2));
}

static void linear_system(struct tm_buf *b, uint64_t *s)
{
    long x = pick(s, -8, 8), y = pick(s, -8, 8);
    long a1 = pick(s, 1, 6), b1 = pick(s, 1, 6), a2 = pick(s, 1, 6), b2 = -pick(s, 1, 6);
    long c1 = a1 * x + b1 * y, c2 = a2 * x + b2 * y, det = a1 * b2 - a2 * b1;
    tm_buf_printf(b,
                  "Problem. Solve the system\n$$\\begin{cases} %ldx + %ldy = %ld \\\\ %ldx - %ldy "
                  "= %ld \\end{cases}$$\n\n",
                  a1, b1, c1, a2, -b2, c2);
    tm_buf_printf(b,
                  "Solution. By Cramer's rule the determinant is $D = %ld \\cdot (%ld) - %ld "
                  "\\cdot %ld = %ld$, so\n"
                  "$$x = \\frac{%ld \\cdot (%ld) - %ld \\cdot %ld}{%ld} = %ld, \\qquad "
                  "y = \\frac{%ld \\cdot %ld - %ld \\cdot %ld}{%ld} = %ld.$$\n",
                  a1, b2, a2, b1, det, c1, b2, c2, b1, det, x, a1, c2, a2, c1, det, y);
}

static void derivative(struct tm_buf *b, uint64_t *s)
{
    long a = pick(s, 1, 9), n = pick(s, 2, 6), c = pick(s, 1, 9), k = pick(s, -5, 5);
    tm_buf_printf(b, "Problem. Differentiate $f(x) = %ldx^{%ld} + %ldx %c %ld$.\n\n", a, n, c,
                  k < 0 ? '-' : '+', labs(k));
    tm_buf_printf(b,
                  "Solution. By the power rule $\\frac{d}{dx} x^n = n x^{n-1}$ and linearity,\n"
                  "$$f'(x) = %ld \\cdot %ld x^{%ld} + %ld = %ldx^{%ld} + %ld.$$\n"
                  "At $x = 1$ the slope is $f'(1) = %ld$.\n",
                  a, n, n - 1, c, a * n, n - 1, c, a * n + c);
}

static void pythagoras(struct tm_buf *b, uint64_t *s)
{
    static const long triples[][3] = {{3, 4, 5},   {5, 12, 13},  {8, 15, 17},
                                      {7, 24, 25}, {20, 21, 29}, {9, 40, 41}};
    long i = pick(s, 0, 5), m = pick(s, 1, 4);
    long a = triples[i][0] * m, c = triples[i][2] * m, bside = triples[i][1] * m;
    tm_buf_printf(b,
                  "Problem. A right triangle has a leg of length $%ld$ and hypotenuse $%ld$. "
                  "Find the other leg and the area.\n\n",
                  a, c);
    tm_buf_printf(b,
                  "Solution. By the Pythagorean theorem $a^2 + b^2 = c^2$, so\n"
                  "$$b = \\sqrt{%ld^2 - %ld^2} = \\sqrt{%ld} = %ld.$$\n"
                  "The area is $\\frac{1}{2} \\cdot %ld \\cdot %ld = %ld$.\n",
                  c, a, c * c - a * a, bside, a, bside, a * bside / 2);
}

static void series(struct tm_buf *b, uint64_t *s)
{
    long n = pick(s, 5, 60), a = pick(s, 1, 9), d = pick(s, 1, 7);
    long last = a + (n - 1) * d;
    tm_buf_printf(b,
                  "Problem. Evaluate $\\sum_{k=0}^{%ld} (%ld + %ldk)$.\n\n"
                  "Solution. This is an arithmetic series with $%ld$ terms, first term $%ld$ and "
                  "last term $%ld$, so\n"
                  "$$\\sum_{k=0}^{%ld} (%ld + %ldk) = \\frac{%ld (%ld + %ld)}{2} = %ld.$$\n",
                  n - 1, a, d, n, a, last, n - 1, a, d, n, a, last, n * (a + last) / 2);
}

typedef void (*problem_fn)(struct tm_buf *b, uint64_t *s);

static const problem_fn problems[] = {
    linear_equation, fraction_sum, quadratic, linear_system, derivative, pythagoras, series,
};

/* Fixed seed: the set is part of the default corpus and must not change between runs. */
#define MATHGEN_SEED 0x746f6b656e6d696cull

int ing_mathgen(long count, int (*emit)(void *ctx, const char *text, size_t len), void *ctx)
{
    struct tm_buf b;
    uint64_t state = MATHGEN_SEED;
    int rc = 0;
    tm_buf_init(&b, 1 << 16);
    for (long i = 0; i < count && rc == 0; i++) {
        tm_buf_reset(&b);
        problems[i % (long)(sizeof(problems) / sizeof(problems[0]))](&b, &state);
        rc = emit(ctx, b.data, b.len);
    }
    tm_buf_release(&b);
    return rc;
}
