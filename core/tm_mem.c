/* tm_mem: checked allocation and the arena. */
#include "tm_mem.h"

#include <stdint.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include "tm_log.h"

/* Arena allocations are aligned for any scalar type and for SSE loads. */
#define ARENA_ALIGN         16
#define ARENA_DEFAULT_BLOCK (64u * 1024u)

static _Noreturn void oom(size_t size)
{
    tm_log_error("out of memory allocating %zu bytes", size);
    abort();
}

int tm_mul_overflow(size_t a, size_t b, size_t *out)
{
    size_t r;
    if (__builtin_mul_overflow(a, b, &r))
        return -1;
    *out = r;
    return 0;
}

void *tm_xmalloc(size_t size)
{
    /* malloc(0) may legally return NULL; ask for one byte so NULL always means failure. */
    void *p = malloc(size ? size : 1);
    if (!p)
        oom(size);
    return p;
}

void *tm_xcalloc(size_t count, size_t size)
{
    size_t total;
    if (tm_mul_overflow(count, size, &total))
        oom(SIZE_MAX);
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p)
        oom(total);
    return p;
}

void *tm_xreallocarray(void *p, size_t count, size_t size)
{
    size_t total;
    if (tm_mul_overflow(count, size, &total))
        oom(SIZE_MAX);
    void *q = realloc(p, total ? total : 1);
    if (!q)
        oom(total);
    return q;
}

char *tm_xstrdup(const char *s)
{
    return tm_xstrndup(s, strlen(s));
}

char *tm_xstrndup(const char *s, size_t len)
{
    if (len == SIZE_MAX)
        oom(len);
    char *p = tm_xmalloc(len + 1);
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

/* ---- arena ---- */

struct tm_arena_block {
    struct tm_arena_block *next;
    size_t size; /* usable bytes after the header, alignment slack included */
    size_t off;  /* next free offset into data */
    unsigned char data[];
};

void tm_arena_init(struct tm_arena *a, size_t block_size, size_t cap)
{
    memset(a, 0, sizeof(*a));
    a->block_size = block_size ? block_size : ARENA_DEFAULT_BLOCK;
    a->cap = cap;
}

/* The first offset at or after `off` in `b` whose address is aligned. */
static size_t block_aligned_off(const struct tm_arena_block *b, size_t off)
{
    uintptr_t addr = (uintptr_t)(b->data + off);
    return off + ((ARENA_ALIGN - addr % ARENA_ALIGN) % ARENA_ALIGN);
}

static struct tm_arena_block *arena_new_block(struct tm_arena *a, size_t size)
{
    /* ARENA_ALIGN of slack so the first allocation can be aligned whatever malloc returned. */
    size_t usable, total;
    if (__builtin_add_overflow(size, (size_t)ARENA_ALIGN, &usable) ||
        __builtin_add_overflow(usable, sizeof(struct tm_arena_block), &total))
        return NULL;
    size_t after;
    if (__builtin_add_overflow(a->allocated, total, &after) || (a->cap && after > a->cap))
        return NULL;
    struct tm_arena_block *b = tm_xmalloc(total);
    b->next = NULL;
    b->size = usable;
    b->off = 0;
    a->allocated = after;
    return b;
}

static size_t block_total(const struct tm_arena_block *b)
{
    return sizeof(*b) + b->size;
}

void *tm_arena_alloc(struct tm_arena *a, size_t size)
{
    if (size == 0)
        size = 1;
    struct tm_arena_block *b = a->head;
    if (b) {
        size_t off = block_aligned_off(b, b->off);
        if (off <= b->size && b->size - off >= size) {
            b->off = off + size;
            a->used += size;
            return b->data + off;
        }
    }
    if (size > a->block_size) {
        /* A big allocation gets a block of its own, placed behind the current block so the
         * room left there still serves small allocations. */
        struct tm_arena_block *big = arena_new_block(a, size);
        if (!big)
            return NULL;
        if (b) {
            big->next = b->next;
            b->next = big;
        } else {
            a->head = big;
        }
        size_t off = block_aligned_off(big, 0);
        big->off = off + size;
        a->used += size;
        return big->data + off;
    }
    struct tm_arena_block *nb = arena_new_block(a, a->block_size);
    if (!nb)
        return NULL;
    nb->next = b;
    a->head = nb;
    size_t off = block_aligned_off(nb, 0);
    nb->off = off + size;
    a->used += size;
    return nb->data + off;
}

char *tm_arena_strndup(struct tm_arena *a, const char *s, size_t len)
{
    if (len == SIZE_MAX)
        return NULL;
    char *p = tm_arena_alloc(a, len + 1);
    if (!p)
        return NULL;
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

void tm_arena_reset(struct tm_arena *a)
{
    /* Keep one regular-size block, the usual case for the next round; oversized blocks were
     * for one big allocation and are given back. */
    struct tm_arena_block *keep = NULL;
    struct tm_arena_block *b = a->head;
    while (b) {
        struct tm_arena_block *next = b->next;
        if (!keep && b->size == a->block_size + ARENA_ALIGN) {
            keep = b;
        } else {
            free(b);
        }
        b = next;
    }
    a->head = keep;
    a->allocated = 0;
    if (keep) {
        keep->next = NULL;
        keep->off = 0;
        a->allocated = block_total(keep);
    }
    a->used = 0;
}

void tm_arena_release(struct tm_arena *a)
{
    struct tm_arena_block *b = a->head;
    while (b) {
        struct tm_arena_block *next = b->next;
        free(b);
        b = next;
    }
    a->head = NULL;
    a->used = 0;
    a->allocated = 0;
}

/* glibc serves allocations above M_MMAP_THRESHOLD (128 KiB, adapting upwards) with mmap and
 * trims the heap above M_TRIM_THRESHOLD, so a buffer freed and allocated again costs a page
 * fault per 4 KiB each time. perf on `tokenmill ingest` of /usr/include showed anonymous page
 * faults at 14% of all samples, mostly LMDB's per-commit overflow pages. Allocations up to
 * 64 MiB now come from the heap, and up to 512 MiB of free heap is kept. */
#define TM_MMAP_THRESHOLD (64 << 20)
#define TM_TRIM_THRESHOLD (512 << 20)

void tm_mem_tune_for_batch(void)
{
    mallopt(M_MMAP_THRESHOLD, TM_MMAP_THRESHOLD);
    mallopt(M_TRIM_THRESHOLD, TM_TRIM_THRESHOLD);
}
