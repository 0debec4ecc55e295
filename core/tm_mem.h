/* tm_mem: checked allocation and an arena.
 *
 * The tm_x*() functions never return NULL: a failed allocation of a fixed-size structure is
 * not something a batch job can recover from, so they log the size and abort() (a core dump,
 * not exit()). Sizes that grow with input never go through them unchecked: callers cap such
 * sizes first (tm_buf, tm_arena) and turn an over-cap request into TM_ERR_TOOBIG. Products of
 * counts and sizes are overflow-checked. */
#ifndef TM_MEM_H
#define TM_MEM_H

#include <stddef.h>

void *tm_xmalloc(size_t size);
void *tm_xcalloc(size_t count, size_t size);
/* realloc(p, count * size) with the product overflow-checked. */
void *tm_xreallocarray(void *p, size_t count, size_t size);
char *tm_xstrdup(const char *s);
/* Copies `len` bytes of `s` and appends a NUL. */
char *tm_xstrndup(const char *s, size_t len);

/* Tunes the C allocator for a batch job that allocates and frees large buffers over and over
 * (LMDB's dirty pages, read buffers, batches): keeps freed memory for reuse instead of handing
 * it back to the kernel and faulting it in again. Call once, before the work starts; the
 * commands do (tm_command_main). */
void tm_mem_tune_for_batch(void);

/* Stores a*b in *out and returns 0, or returns -1 when the product overflows size_t. */
int tm_mul_overflow(size_t a, size_t b, size_t *out);

/* An arena: many small allocations freed together. Blocks are malloc'd on demand; the total
 * allocated never passes `cap` bytes. Not thread-safe. */
struct tm_arena_block;
struct tm_arena {
    struct tm_arena_block *head; /* current block, newest first */
    size_t block_size;           /* default size of a new block */
    size_t used;                 /* bytes handed out since the last reset */
    size_t allocated;            /* bytes of all blocks */
    size_t cap;                  /* upper bound on `allocated`; 0 means no cap */
};

/* Prepares `a`; allocates nothing yet. block_size 0 picks 64 KiB. */
void tm_arena_init(struct tm_arena *a, size_t block_size, size_t cap);
/* Returns `size` bytes aligned to 16, valid until the next reset or release; NULL when the cap
 * would be passed (nothing is logged: the caller knows what the bytes were for). */
void *tm_arena_alloc(struct tm_arena *a, size_t size);
/* Copies a string of `len` bytes plus a NUL into the arena; NULL past the cap. */
char *tm_arena_strndup(struct tm_arena *a, const char *s, size_t len);
/* Makes all allocations invalid and keeps one block for reuse. */
void tm_arena_reset(struct tm_arena *a);
/* Frees every block. Accepts a zeroed or released arena. */
void tm_arena_release(struct tm_arena *a);

#endif
