/* tm_buf: a growable byte buffer with a cap.
 *
 * `data` is always NUL-terminated after a successful operation (the NUL is not counted in
 * `len`), so text can be handed to C string functions. Growth past `max` fails with
 * TM_ERR_TOOBIG and leaves the buffer as it was: input-driven growth is bounded (STYLE.md
 * rule 6). Caller-owned storage: tm_buf_init() / tm_buf_release(). Not thread-safe. */
#ifndef TM_BUF_H
#define TM_BUF_H

#include <stddef.h>
#include <stdarg.h>

struct tm_buf {
    char *data; /* NULL until the first growth */
    size_t len; /* bytes in use */
    size_t cap; /* bytes allocated, excluding the NUL slot */
    size_t max; /* the cap on len; 0 means SIZE_MAX/2 */
};

void tm_buf_init(struct tm_buf *b, size_t max);
void tm_buf_release(struct tm_buf *b);
/* Sets len to 0 and keeps the allocation. */
void tm_buf_reset(struct tm_buf *b);
/* Ensures room for `extra` more bytes; TM_ERR_TOOBIG when len + extra > max. */
int tm_buf_reserve(struct tm_buf *b, size_t extra);
int tm_buf_append(struct tm_buf *b, const void *p, size_t n);
int tm_buf_putc(struct tm_buf *b, int c);
int tm_buf_puts(struct tm_buf *b, const char *s);
int tm_buf_printf(struct tm_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int tm_buf_vprintf(struct tm_buf *b, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
/* Drops the first `n` bytes (memmove); n > len drops all. */
void tm_buf_consume(struct tm_buf *b, size_t n);
/* Hands the data to the caller (free() it) and leaves the buffer empty; never NULL. */
char *tm_buf_detach(struct tm_buf *b, size_t *len);

#endif
