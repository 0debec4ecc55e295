/* ing_reader.c: the buffered pull reader under the JSONL and WARC record readers.
 *
 * Unread bytes live in buf[pos..len). A line that ends inside the buffer is returned in place;
 * when a line's start reaches the front of a full buffer without a '\n', its bytes move to
 * `scratch` so the buffer can be refilled. Lines longer than the caller's cap are counted and
 * dropped instead of buffered, so memory stays bounded by the buffer size plus that cap. */
#include <stdlib.h>
#include <string.h>

#include "ing_internal.h"
#include "../core/tm_err.h"
#include "../core/tm_mem.h"

/* Large enough that typical JSONL lines and WARC blocks are returned without copying. */
#define ING_READER_DEFAULT_BUFSIZE ((size_t)1 << 20)

void ing_reader_init(struct ing_reader *r, ing_read_fn read, void *ctx, size_t bufsize)
{
    memset(r, 0, sizeof(*r));
    if (bufsize == 0)
        bufsize = ING_READER_DEFAULT_BUFSIZE;
    r->read = read;
    r->ctx = ctx;
    r->buf = tm_xmalloc(bufsize);
    r->size = bufsize;
    tm_buf_init(&r->scratch, 0);
}

void ing_reader_init_buf(struct ing_reader *r, ing_read_fn read, void *ctx, char *buf, size_t size)
{
    memset(r, 0, sizeof(*r));
    r->read = read;
    r->ctx = ctx;
    r->buf = buf;
    r->size = size;
    r->borrowed = 1;
    tm_buf_init(&r->scratch, 0);
}

void ing_reader_init_mem(struct ing_reader *r, const void *data, size_t len)
{
    memset(r, 0, sizeof(*r));
    if (data == NULL)
        data = ""; /* keeps pointer arithmetic on buf defined */
    /* The whole stream is already in memory: point at it and mark end of stream, so nothing is
     * copied and no refill (which would write into buf) ever happens. read == NULL marks buf as
     * borrowed. */
    r->buf = (char *)(uintptr_t)data;
    r->size = len;
    r->len = len;
    r->eof = 1;
    tm_buf_init(&r->scratch, 0);
}

void ing_reader_release(struct ing_reader *r)
{
    if (r == NULL)
        return;
    if (r->read != NULL && !r->borrowed)
        free(r->buf);
    tm_buf_release(&r->scratch);
    memset(r, 0, sizeof(*r));
}

/* Moves the unread bytes to the front and reads once into the free space. Returns the number
 * of bytes added (0 at end of stream or when the buffer is full) or a negative tm_err, which
 * also sticks in r->err. */
static long fill(struct ing_reader *r)
{
    if (r->err)
        return r->err;
    if (r->eof)
        return 0;
    if (r->pos > 0) {
        memmove(r->buf, r->buf + r->pos, r->len - r->pos);
        r->len -= r->pos;
        r->pos = 0;
    }
    if (r->len == r->size)
        return 0;
    long n = r->read(r->ctx, r->buf + r->len, r->size - r->len);
    if (n < 0) {
        r->err = (int)n;
        return n;
    }
    if ((size_t)n > r->size - r->len) {
        /* A source that writes past `cap` has already corrupted memory; stop trusting it. */
        r->err = TM_ERR_INTERNAL;
        return r->err;
    }
    if (n == 0)
        r->eof = 1;
    r->len += (size_t)n;
    return n;
}

static void advance(struct ing_reader *r, size_t n)
{
    r->pos += n;
    r->offset += n;
}

int ing_reader_line(struct ing_reader *r, size_t max, const char **line, size_t *len)
{
    uint64_t total = 0; /* bytes of this line seen so far, spilled or skipped */
    int toolong = 0;    /* past `max`: bytes are counted, not kept */
    size_t scanned = 0; /* buf[pos..pos+scanned) is known to hold no '\n' */
    int spilled = 0;    /* the line's start is in scratch */

    *line = NULL;
    *len = 0;
    tm_buf_reset(&r->scratch);
    for (;;) {
        size_t avail = r->len - r->pos;
        const char *start = r->buf + r->pos;
        const char *nl = NULL;
        if (avail > scanned)
            nl = memchr(start + scanned, '\n', avail - scanned);
        if (nl != NULL || (r->eof && (avail > 0 || total > 0))) {
            /* The line ends here: at a '\n', or at end of stream without one. */
            size_t seg = nl != NULL ? (size_t)(nl - start) : avail;
            size_t eat = nl != NULL ? seg + 1 : seg;
            total += seg;
            r->line++;
            if (toolong || total > max) {
                advance(r, eat);
                *len = total > SIZE_MAX ? SIZE_MAX : (size_t)total;
                return ING_LINE_TOOLONG;
            }
            if (!spilled) {
                *line = start;
                *len = seg;
                advance(r, eat);
                return TM_OK;
            }
            int rc = tm_buf_append(&r->scratch, start, seg);
            advance(r, eat);
            if (rc < 0)
                return rc;
            *line = r->scratch.data;
            *len = r->scratch.len;
            return TM_OK;
        }
        if (r->eof)
            return TM_OK; /* end of stream, *line NULL */
        if (r->pos == 0 && r->len == r->size) {
            /* A full buffer without a '\n': set its bytes aside (or just count them when the
             * line is already too long) so the refill has room. */
            total += avail;
            if (!toolong && total > max) {
                toolong = 1;
                tm_buf_reset(&r->scratch);
            }
            if (!toolong) {
                int rc = tm_buf_append(&r->scratch, start, avail);
                if (rc < 0)
                    return rc;
                spilled = 1;
            }
            advance(r, avail);
            scanned = 0;
        } else {
            scanned = avail;
        }
        long n = fill(r);
        if (n < 0)
            return (int)n;
    }
}

/* Makes at least one unread byte available. Returns 1, 0 at end of stream, or a tm_err. */
static int need_bytes(struct ing_reader *r)
{
    while (r->pos == r->len) {
        long n = fill(r);
        if (n < 0)
            return (int)n;
        if (r->eof && r->pos == r->len)
            return 0;
    }
    return 1;
}

/* Takes exactly n bytes, appending them to `out` or, when out is NULL, dropping them. */
static int consume(struct ing_reader *r, uint64_t n, struct tm_buf *out)
{
    while (n > 0) {
        int rc = need_bytes(r);
        if (rc < 0)
            return rc;
        if (rc == 0)
            return TM_ERR_FORMAT;
        size_t avail = r->len - r->pos;
        size_t take = n < avail ? (size_t)n : avail;
        if (out && (rc = tm_buf_append(out, r->buf + r->pos, take)) < 0)
            return rc;
        advance(r, take);
        n -= take;
    }
    return TM_OK;
}

int ing_reader_read(struct ing_reader *r, uint64_t n, struct tm_buf *out)
{
    size_t cap = out->max ? out->max : SIZE_MAX / 2;
    /* Refuse before consuming anything, so a caller can still skip the bytes. */
    if (out->len > cap || n > cap - out->len)
        return TM_ERR_TOOBIG;
    return consume(r, n, out);
}

int ing_reader_skip(struct ing_reader *r, uint64_t n)
{
    return consume(r, n, NULL);
}

size_t ing_reader_peek(struct ing_reader *r, size_t n, const char **p)
{
    if (r->read != NULL && n > r->size && !r->err && !r->eof) {
        /* The caller asks for more than the buffer holds: grow it (the caller bounds n). */
        char *nb = r->borrowed ? malloc(n) : realloc(r->buf, n);
        if (nb == NULL) {
            r->err = TM_ERR_NOMEM;
        } else {
            if (r->borrowed)
                memcpy(nb, r->buf, r->len);
            r->buf = nb;
            r->size = n;
            r->borrowed = 0;
        }
    }
    while (r->len - r->pos < n) {
        long got = fill(r);
        if (got <= 0)
            break;
    }
    *p = r->buf + r->pos;
    return r->len - r->pos;
}
