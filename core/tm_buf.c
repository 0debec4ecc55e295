/* tm_buf: a growable, capped, always NUL-terminated byte buffer. */
#include "tm_buf.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tm_err.h"
#include "tm_log.h"
#include "tm_mem.h"

/* Small first allocation; doubling from there keeps appends amortized O(1). */
#define BUF_MIN_CAP 64

static size_t buf_max(const struct tm_buf *b)
{
    return b->max ? b->max : SIZE_MAX / 2;
}

void tm_buf_init(struct tm_buf *b, size_t max)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

void tm_buf_release(struct tm_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void tm_buf_reset(struct tm_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

int tm_buf_reserve(struct tm_buf *b, size_t extra)
{
    size_t max = buf_max(b);
    if (extra > max || b->len > max - extra)
        return TM_ERR_TOOBIG;
    size_t need = b->len + extra;
    if (b->data && need <= b->cap)
        return TM_OK;
    size_t cap = b->cap ? b->cap : BUF_MIN_CAP;
    while (cap < need)
        cap = cap > max / 2 ? max : cap * 2;
    if (cap > max)
        cap = max;
    /* +1 for the NUL; max <= SIZE_MAX/2 so this cannot overflow. */
    char *p = realloc(b->data, cap + 1);
    if (!p) {
        tm_log_error("out of memory growing a buffer to %zu bytes", cap + 1);
        return TM_ERR_NOMEM;
    }
    if (!b->data)
        p[0] = '\0';
    b->data = p;
    b->cap = cap;
    return TM_OK;
}

int tm_buf_append(struct tm_buf *b, const void *p, size_t n)
{
    int rc = tm_buf_reserve(b, n);
    if (rc)
        return rc;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return TM_OK;
}

int tm_buf_putc(struct tm_buf *b, int c)
{
    char ch = (char)c;
    return tm_buf_append(b, &ch, 1);
}

int tm_buf_puts(struct tm_buf *b, const char *s)
{
    return tm_buf_append(b, s, strlen(s));
}

int tm_buf_vprintf(struct tm_buf *b, const char *fmt, va_list ap)
{
    int rc = tm_buf_reserve(b, 0);
    if (rc)
        return rc;
    va_list ap2;
    va_copy(ap2, ap);
    size_t room = b->cap - b->len + 1;
    int n = vsnprintf(b->data + b->len, room, fmt, ap2);
    va_end(ap2);
    if (n < 0) {
        b->data[b->len] = '\0';
        return TM_ERR_FORMAT;
    }
    if ((size_t)n >= room) {
        /* Did not fit: restore the terminator (the buffer stays as it was on failure), grow
         * and format again. */
        b->data[b->len] = '\0';
        rc = tm_buf_reserve(b, (size_t)n);
        if (rc)
            return rc;
        va_copy(ap2, ap);
        vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap2);
        va_end(ap2);
    }
    b->len += (size_t)n;
    return TM_OK;
}

int tm_buf_printf(struct tm_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = tm_buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

void tm_buf_consume(struct tm_buf *b, size_t n)
{
    if (n >= b->len) {
        tm_buf_reset(b);
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
    b->data[b->len] = '\0';
}

char *tm_buf_detach(struct tm_buf *b, size_t *len)
{
    char *p = b->data ? b->data : tm_xstrdup("");
    if (len)
        *len = b->len;
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    return p;
}
