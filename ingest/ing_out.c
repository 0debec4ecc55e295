/* ing_out: the text writer the markup reducers share. Separators are held back until the next
 * visible text, so runs of spaces and nested blocks collapse, nothing leads or trails, and at
 * most two newlines ever meet. */
#include <string.h>

#include "../core/tm_err.h"
#include "ing_internal.h"

/* Longest UTF-8 encoding of one code point. */
#define UTF8_MAX 4

void ing_out_init(struct ing_out *w, struct tm_buf *out)
{
    w->out = out;
    w->start = out->len;
    w->nl = 0;
    w->sp = 0;
    w->rc = TM_OK;
}

void ing_out_put(struct ing_out *w, const char *p, size_t n)
{
    if (w->rc || n == 0)
        return;
    if (w->out->len > w->start) {
        if (w->nl)
            w->rc = tm_buf_append(w->out, "\n\n", w->nl > 2 ? 2 : (size_t)w->nl);
        else if (w->sp)
            w->rc = tm_buf_append(w->out, " ", 1);
    }
    w->nl = 0;
    w->sp = 0;
    if (!w->rc)
        w->rc = tm_buf_append(w->out, p, n);
}

void ing_out_str(struct ing_out *w, const char *s)
{
    ing_out_put(w, s, strlen(s));
}

void ing_out_break(struct ing_out *w, int k)
{
    if (w->nl < k)
        w->nl = k;
}

void ing_out_cp(struct ing_out *w, uint32_t cp)
{
    char u[UTF8_MAX];
    size_t k;
    if (cp == 0 || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        cp = 0xfffd;
    if (cp < 0x80) {
        u[0] = (char)cp;
        k = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xc0 | cp >> 6);
        u[1] = (char)(0x80 | (cp & 0x3f));
        k = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xe0 | cp >> 12);
        u[1] = (char)(0x80 | (cp >> 6 & 0x3f));
        u[2] = (char)(0x80 | (cp & 0x3f));
        k = 3;
    } else {
        u[0] = (char)(0xf0 | cp >> 18);
        u[1] = (char)(0x80 | (cp >> 12 & 0x3f));
        u[2] = (char)(0x80 | (cp >> 6 & 0x3f));
        u[3] = (char)(0x80 | (cp & 0x3f));
        k = 4;
    }
    ing_out_put(w, u, k);
}
