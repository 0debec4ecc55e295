/* flt_spans.c: the spans a decision removes (sentences or lines), and applying them.
 *
 * Spans start at a line start or just after a sentence's trailing whitespace, and end after a
 * newline or after such whitespace: always at ASCII bytes, so what remains is valid UTF-8 when
 * the text was, and no half-line or stray blank is left where a span was. */
#include <stdlib.h>
#include <string.h>

#include "flt_internal.h"
#include "../core/tm_err.h"
#include "../core/tm_mem.h"

void flt_spans_release(struct flt_spans *s)
{
    free(s->v);
    memset(s, 0, sizeof(*s));
}

void flt_spans_add(struct flt_spans *s, uint64_t start, uint64_t end, unsigned rule)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 16;
        s->v = tm_xreallocarray(s->v, s->cap, sizeof(*s->v));
    }
    s->v[s->n].start = start;
    s->v[s->n].end = end;
    s->v[s->n].rule = (uint16_t)rule;
    s->n++;
}

void flt_line_around(const char *text, size_t n, size_t pos, size_t *start, size_t *end)
{
    if (pos > n)
        pos = n;
    size_t a = pos;
    while (a > 0 && text[a - 1] != '\n')
        a--;
    const char *nl = pos < n ? memchr(text + pos, '\n', n - pos) : NULL;
    *start = a;
    *end = nl ? (size_t)(nl - text) + 1 : n;
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f' || c == '\n';
}

static int is_closer(char c)
{
    return c == '"' || c == '\'' || c == ')' || c == ']';
}

/* Whether a sentence ends just before text[i] (i is the first byte after it, whitespace). */
static int sentence_ends_before(const char *text, size_t i)
{
    size_t k = i;
    while (k > 0 && is_closer(text[k - 1]))
        k--;
    return k > 0 && (text[k - 1] == '.' || text[k - 1] == '!' || text[k - 1] == '?');
}

void flt_sentence_around(const char *text, size_t n, size_t pos, size_t *start, size_t *end)
{
    if (pos > n)
        pos = n;
    /* Start: after the previous newline, or after the whitespace following a sentence end. */
    size_t a = pos;
    while (a > 0) {
        if (text[a - 1] == '\n')
            break;
        if (is_space(text[a - 1])) {
            size_t w = a - 1;
            while (w > 0 && is_space(text[w - 1]) && text[w - 1] != '\n')
                w--;
            if (w > 0 && text[w - 1] != '\n' && sentence_ends_before(text, w))
                break;
            if (w > 0 && text[w - 1] == '\n')
                break;
            a = w;
            continue;
        }
        a--;
    }
    /* End: after a newline, or after the whitespace that follows a sentence end. */
    size_t e = pos;
    while (e < n) {
        if (text[e] == '\n') {
            e++;
            break;
        }
        if (is_space(text[e]) && e > a && sentence_ends_before(text, e)) {
            while (e < n && is_space(text[e]) && text[e] != '\n')
                e++;
            if (e < n && text[e] == '\n')
                e++;
            break;
        }
        e++;
    }
    *start = a;
    *end = e;
}

static int span_cmp(const void *pa, const void *pb)
{
    const struct flt_span *a = pa, *b = pb;
    if (a->start != b->start)
        return a->start < b->start ? -1 : 1;
    if (a->end != b->end)
        return a->end > b->end ? -1 : 1;
    return (int)a->rule - (int)b->rule;
}

void flt_spans_normalize(struct flt_spans *s)
{
    if (s->n < 2)
        return;
    qsort(s->v, s->n, sizeof(*s->v), span_cmp);
    size_t w = 0;
    for (size_t r = 1; r < s->n; r++) {
        if (s->v[r].start <= s->v[w].end) {
            if (s->v[r].end > s->v[w].end)
                s->v[w].end = s->v[r].end;
        } else {
            s->v[++w] = s->v[r];
        }
    }
    s->n = w + 1;
}

int flt_apply_spans(const char *text, size_t n, const struct flt_span *spans, size_t nspans,
                    struct tm_buf *out)
{
    size_t at = 0;
    for (size_t k = 0; k < nspans; k++) {
        size_t a = spans[k].start < n ? (size_t)spans[k].start : n;
        size_t b = spans[k].end < n ? (size_t)spans[k].end : n;
        if (a > at && tm_buf_append(out, text + at, a - at) < 0)
            return TM_ERR_TOOBIG;
        if (b > at)
            at = b;
    }
    if (at < n && tm_buf_append(out, text + at, n - at) < 0)
        return TM_ERR_TOOBIG;
    return TM_OK;
}
