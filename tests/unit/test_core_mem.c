/* Unit tests for tm_mem: overflow checks, abort on impossible sizes, and the arena's
 * alignment, cap, big-allocation blocks and reset. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tm_log.h"
#include "tm_mem.h"

static void test_mul_overflow(void **state)
{
    (void)state;
    size_t out = 0;
    assert_int_equal(tm_mul_overflow(3, 7, &out), 0);
    assert_int_equal(out, 21);
    assert_int_equal(tm_mul_overflow(SIZE_MAX, 2, &out), -1);
    assert_int_equal(tm_mul_overflow((size_t)1 << 32, (size_t)1 << 32, &out), -1);
    assert_int_equal(tm_mul_overflow(SIZE_MAX, 1, &out), 0);
    assert_true(out == SIZE_MAX);
}

static void test_strings(void **state)
{
    (void)state;
    char *a = tm_xstrdup("hello");
    assert_string_equal(a, "hello");
    char *b = tm_xstrndup("hello world", 5);
    assert_string_equal(b, "hello");
    char *c = tm_xstrndup("abc", 0);
    assert_string_equal(c, "");
    free(a);
    free(b);
    free(c);
    int *v = tm_xreallocarray(NULL, 10, sizeof(int));
    for (int i = 0; i < 10; i++)
        v[i] = i;
    v = tm_xreallocarray(v, 1000, sizeof(int));
    assert_int_equal(v[9], 9);
    free(v);
    unsigned char *z = tm_xcalloc(64, 1);
    for (int i = 0; i < 64; i++)
        assert_int_equal(z[i], 0);
    free(z);
}

/* Runs `which` in a child process and returns its wait status; the child logs to a pipe whose
 * content is copied into msg. */
static int run_child(int which, char *msg, size_t msglen)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        FILE *f = fdopen(fds[1], "w");
        tm_log_set_stream(f, 0);
        if (which == 0)
            (void)tm_xcalloc(SIZE_MAX / 2, 4);
        else
            (void)tm_xreallocarray(NULL, SIZE_MAX / 8, 16);
        _exit(0); /* not reached when the overflow is caught */
    }
    close(fds[1]);
    ssize_t n = read(fds[0], msg, msglen - 1);
    msg[n > 0 ? n : 0] = '\0';
    close(fds[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return status;
}

static void test_overflow_aborts(void **state)
{
    (void)state;
    char msg[256];
    for (int which = 0; which < 2; which++) {
        int status = run_child(which, msg, sizeof(msg));
        assert_true(WIFSIGNALED(status));
        assert_int_equal(WTERMSIG(status), SIGABRT);
        assert_non_null(strstr(msg, "error: out of memory allocating"));
    }
}

static void test_arena_alignment(void **state)
{
    (void)state;
    struct tm_arena a;
    tm_arena_init(&a, 1024, 0);
    assert_int_equal(a.block_size, 1024);
    assert_int_equal(a.allocated, 0);
    size_t total = 0;
    for (size_t size = 1; size < 300; size += 7) {
        unsigned char *p = tm_arena_alloc(&a, size);
        assert_non_null(p);
        assert_int_equal((uintptr_t)p % 16, 0);
        memset(p, 0xab, size); /* ASan catches an overrun of the block */
        total += size;
    }
    assert_int_equal(a.used, total);
    assert_true(a.allocated >= total);
    tm_arena_release(&a);
    assert_null(a.head);
    assert_int_equal(a.allocated, 0);

    struct tm_arena d;
    tm_arena_init(&d, 0, 0);
    assert_int_equal(d.block_size, 64 * 1024);
    tm_arena_release(&d);
}

static void test_arena_distinct(void **state)
{
    (void)state;
    struct tm_arena a;
    tm_arena_init(&a, 256, 0);
    char *s[100];
    for (int i = 0; i < 100; i++) {
        char tmp[32];
        int n = snprintf(tmp, sizeof(tmp), "string-%d", i);
        s[i] = tm_arena_strndup(&a, tmp, (size_t)n);
        assert_non_null(s[i]);
    }
    /* Later allocations never overwrite earlier ones. */
    for (int i = 0; i < 100; i++) {
        char tmp[32];
        snprintf(tmp, sizeof(tmp), "string-%d", i);
        assert_string_equal(s[i], tmp);
    }
    tm_arena_release(&a);
}

static void test_arena_big_and_cap(void **state)
{
    (void)state;
    struct tm_arena a;
    tm_arena_init(&a, 1024, 8192);
    char *small = tm_arena_alloc(&a, 100);
    assert_non_null(small);
    size_t one_block = a.allocated;
    assert_true(one_block >= 1024 && one_block < 1024 + 128);

    /* Bigger than a block: its own block, and the current block keeps serving small ones. */
    char *big = tm_arena_alloc(&a, 3000);
    assert_non_null(big);
    memset(big, 1, 3000);
    size_t after_big = a.allocated;
    assert_true(after_big >= one_block + 3000);
    char *small2 = tm_arena_alloc(&a, 100);
    assert_non_null(small2);
    assert_int_equal(a.allocated, after_big);
    assert_true(small2 > small && small2 < small + 1024);

    /* The cap is on the total of blocks: 8192 cannot hold another 5000-byte block. */
    assert_null(tm_arena_alloc(&a, 5000));
    assert_int_equal(a.allocated, after_big);
    assert_true(a.allocated <= a.cap);
    /* Filling with small allocations also stops at the cap, never past it. */
    int n = 0;
    while (tm_arena_alloc(&a, 512))
        n++;
    assert_true(n > 0);
    assert_true(a.allocated <= 8192);
    assert_null(tm_arena_alloc(&a, 1024));
    tm_arena_release(&a);
}

static void test_arena_reset(void **state)
{
    (void)state;
    struct tm_arena a;
    tm_arena_init(&a, 1024, 0);
    for (int i = 0; i < 20; i++)
        assert_non_null(tm_arena_alloc(&a, 500));
    assert_non_null(tm_arena_alloc(&a, 5000));
    assert_true(a.allocated > 10 * 1024);
    tm_arena_reset(&a);
    assert_int_equal(a.used, 0);
    /* One regular block is kept for reuse. */
    assert_non_null(a.head);
    assert_true(a.allocated >= 1024 && a.allocated < 1024 + 128);
    size_t kept = a.allocated;
    char *p = tm_arena_alloc(&a, 500);
    assert_non_null(p);
    assert_int_equal(a.allocated, kept);
    memset(p, 2, 500);
    tm_arena_release(&a);
    tm_arena_release(&a); /* a released arena may be released again */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mul_overflow),    cmocka_unit_test(test_strings),
        cmocka_unit_test(test_overflow_aborts), cmocka_unit_test(test_arena_alignment),
        cmocka_unit_test(test_arena_distinct),  cmocka_unit_test(test_arena_big_and_cap),
        cmocka_unit_test(test_arena_reset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
