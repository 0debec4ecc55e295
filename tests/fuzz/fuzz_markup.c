/* fuzz_markup.c: libFuzzer target for the markup reducers and the text normalizer.
 *
 * The first byte picks the function (HTML, roff, normalization); the rest is its input. Checks
 * beyond "no crash": each reducer gives the same output twice; with a cap just below that
 * output's size it fails with TM_ERR_TOOBIG and never writes past the cap; normalization gives
 * valid UTF-8 without NUL or CR pairs, and is idempotent. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ing_internal.h"
#include "tm_err.h"

typedef int (*reducer_fn)(const char *in, size_t n, struct tm_buf *out);

static void check_reducer(reducer_fn fn, const char *in, size_t n)
{
    struct tm_buf a, b, small;
    tm_buf_init(&a, 1 << 24);
    tm_buf_init(&b, 1 << 24);
    if (fn(in, n, &a) != TM_OK || fn(in, n, &b) != TM_OK)
        abort(); /* never fails below the cap */
    if (a.len != b.len || (a.len && memcmp(a.data, b.data, a.len) != 0))
        abort();
    if (a.len > 1) { /* a cap of 0 means "no cap" to tm_buf */
        tm_buf_init(&small, a.len - 1);
        int rc = fn(in, n, &small);
        if (rc != TM_ERR_TOOBIG || small.len > a.len - 1)
            abort();
        tm_buf_release(&small);
    }
    tm_buf_release(&a);
    tm_buf_release(&b);
}

static int normalize_fn(const char *in, size_t n, struct tm_buf *out)
{
    struct ing_norm_stats st = {0};
    return ing_normalize(in, n, out, &st);
}

static void check_normalize(const char *in, size_t n)
{
    struct tm_buf once, twice;
    struct ing_norm_stats st = {0};
    tm_buf_init(&once, 0);
    tm_buf_init(&twice, 0);
    if (ing_normalize(in, n, &once, &st) != TM_OK)
        abort();
    if (once.len && memchr(once.data, '\0', once.len) != NULL)
        abort();
    for (size_t i = 0; i + 1 < once.len; i++)
        if (once.data[i] == '\r' && once.data[i + 1] == '\n')
            abort();
    if (ing_normalize(once.data ? once.data : "", once.len, &twice, &st) != TM_OK)
        abort();
    /* Idempotent: the output holds no CRLF, no NUL and no ill-formed UTF-8. */
    if (twice.len != once.len || (once.len && memcmp(once.data, twice.data, once.len) != 0))
        abort();
    tm_buf_release(&once);
    tm_buf_release(&twice);
    check_reducer(normalize_fn, in, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    /* Copy so that reads past the end of the input are caught by ASan. */
    size_t n = size - 1;
    char *in = malloc(n ? n : 1);
    if (!in)
        return 0;
    memcpy(in, data + 1, n);
    switch (data[0] % 3) {
    case 0:
        check_reducer(ing_html_to_text, in, n);
        break;
    case 1:
        check_reducer(ing_roff_to_text, in, n);
        break;
    default:
        check_normalize(in, n);
        break;
    }
    free(in);
    return 0;
}
