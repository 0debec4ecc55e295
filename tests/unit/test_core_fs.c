/* Unit tests for tm_fs: mkdirs, atomic writes, bounded reads, the workdir lock across
 * processes, content hashes and path joins. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <xxhash.h>

#include "tm_err.h"
#include "tm_fs.h"
#include "tm_log.h"
#include "test_util.h"

static char *tmpdir;
static FILE *sink;

static int setup(void **state)
{
    (void)state;
    tmpdir = tu_make_tmpdir("core_fs");
    if (!tmpdir)
        return -1;
    /* Expected failures log errors; keep the test output readable. */
    sink = tu_log_quiet();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    tu_log_restore(sink);
    return tu_remove_tmpdir(tmpdir);
}

static void write_file(const char *path, const char *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
}

static void test_path_join(void **state)
{
    (void)state;
    struct {
        const char *a, *b, *want;
    } cases[] = {
        {"a", "b", "a/b"},  {"a/", "b", "a/b"},
        {"a", "/b", "a/b"}, {"a//", "b/c", "a/b/c"},
        {"/", "x", "/x"},   {"", "x", "x"},
        {"a", "", "a/"},    {"/w/store", "data.mdb", "/w/store/data.mdb"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *p = tm_path_join(cases[i].a, cases[i].b);
        assert_string_equal(p, cases[i].want);
        free(p);
    }
}

static void test_mkdirs(void **state)
{
    (void)state;
    char *deep = tm_path_join(tmpdir, "a/b/c/d");
    assert_int_equal(tm_mkdirs(deep), TM_OK);
    struct stat st;
    assert_int_equal(stat(deep, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    /* Existing is fine. */
    assert_int_equal(tm_mkdirs(deep), TM_OK);
    /* A trailing slash is fine. */
    char *slash = tm_path_join(tmpdir, "e/f/");
    assert_int_equal(tm_mkdirs(slash), TM_OK);
    /* A regular file in the way is an error. */
    char *file = tm_path_join(tmpdir, "plain");
    write_file(file, "x", 1);
    char *under = tm_path_join(file, "sub");
    assert_int_equal(tm_mkdirs(under), TM_ERR_IO);
    assert_int_equal(tm_mkdirs(file), TM_ERR_IO);
    assert_int_equal(tm_mkdirs(""), TM_ERR_IO);
    free(deep);
    free(slash);
    free(file);
    free(under);
}

static void test_write_atomic_and_read(void **state)
{
    (void)state;
    char *path = tm_path_join(tmpdir, "atomic.txt");
    assert_int_equal(tm_write_atomic(path, "first", 5), TM_OK);
    char *data;
    size_t len;
    assert_int_equal(tm_read_file(path, 100, &data, &len), TM_OK);
    assert_int_equal(len, 5);
    assert_string_equal(data, "first");
    free(data);

    assert_int_equal(tm_write_atomic(path, "second!", 7), TM_OK);
    assert_int_equal(tm_read_file(path, 7, &data, &len), TM_OK);
    assert_string_equal(data, "second!");
    free(data);
    /* One byte over the limit. */
    assert_int_equal(tm_read_file(path, 6, &data, &len), TM_ERR_TOOBIG);
    assert_null(data);

    char tmp[4200];
    snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
    assert_int_not_equal(access(tmp, F_OK), 0);

    /* Empty data and an empty file. */
    assert_int_equal(tm_write_atomic(path, "", 0), TM_OK);
    assert_int_equal(tm_read_file(path, 0, &data, &len), TM_OK);
    assert_int_equal(len, 0);
    assert_string_equal(data, "");
    free(data);

    char *missing = tm_path_join(tmpdir, "nope/x");
    assert_int_equal(tm_write_atomic(missing, "x", 1), TM_ERR_IO);
    assert_int_equal(tm_read_file(missing, 10, &data, &len), TM_ERR_IO);
    free(missing);
    free(path);
}

static void test_read_pipe_limit(void **state)
{
    (void)state;
    /* Not a regular file: the size is only known by reading, and the limit still holds. */
    char *data;
    size_t len;
    assert_int_equal(tm_read_file("/dev/zero", 10000, &data, &len), TM_ERR_TOOBIG);
    assert_null(data);
}

/* Child: tries the lock and exits with 0 (got it), 1 (locked), 2 (other). With `hold` it keeps
 * the lock until a byte arrives on `hold_fd`, after reporting on `ready_fd`. */
static void child_lock(const char *dir, int ready_fd, int hold_fd)
{
    int fd = tm_lock_workdir(dir);
    if (ready_fd >= 0) {
        char c = fd >= 0 ? 'y' : 'n';
        if (write(ready_fd, &c, 1) != 1)
            _exit(2);
        if (read(hold_fd, &c, 1) < 0)
            _exit(2);
    }
    if (fd >= 0) {
        tm_unlock(fd);
        _exit(0);
    }
    _exit(fd == TM_ERR_LOCKED ? 1 : 2);
}

static int child_try(const char *dir)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        child_lock(dir, -1, -1);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    return WEXITSTATUS(status);
}

static void test_lock(void **state)
{
    (void)state;
    char *dir = tm_path_join(tmpdir, "work");
    assert_int_equal(tm_mkdirs(dir), TM_OK);
    int fd = tm_lock_workdir(dir);
    assert_true(fd >= 0);

    /* The lock file names the holder. */
    char *lockpath = tm_path_join(dir, "lock");
    char *data;
    size_t len;
    assert_int_equal(tm_read_file(lockpath, 64, &data, &len), TM_OK);
    assert_int_equal(atol(data), (long)getpid());
    free(data);

    assert_int_equal(child_try(dir), 1);
    tm_unlock(fd);
    assert_int_equal(child_try(dir), 0);
    free(lockpath);
    free(dir);
}

static void test_lock_held_by_child(void **state)
{
    (void)state;
    char *dir = tm_path_join(tmpdir, "work2");
    assert_int_equal(tm_mkdirs(dir), TM_OK);
    int ready[2], hold[2];
    assert_int_equal(pipe(ready), 0);
    assert_int_equal(pipe(hold), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(ready[0]);
        close(hold[1]);
        child_lock(dir, ready[1], hold[0]);
    }
    close(ready[1]);
    close(hold[0]);
    char c = 0;
    assert_int_equal(read(ready[0], &c, 1), 1);
    assert_int_equal(c, 'y');

    /* Capture the message: it names the child's pid. */
    char *text = NULL;
    size_t tlen = 0;
    FILE *mem = open_memstream(&text, &tlen);
    tm_log_set_stream(mem, 0);
    int rc = tm_lock_workdir(dir);
    tm_log_set_stream(sink, 0);
    fclose(mem);
    assert_int_equal(rc, TM_ERR_LOCKED);
    char want[256];
    snprintf(want, sizeof(want), "is locked by another tokenmill process (pid %ld)", (long)pid);
    assert_non_null(strstr(text, want));
    assert_non_null(strstr(text, dir));
    free(text);

    assert_int_equal(write(hold[1], "x", 1), 1);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    close(ready[0]);
    close(hold[1]);

    /* Released when the holder exits. */
    int fd = tm_lock_workdir(dir);
    assert_true(fd >= 0);
    tm_unlock(fd);
    tm_unlock(-1);
    free(dir);
}

static void test_lock_missing_dir(void **state)
{
    (void)state;
    char *dir = tm_path_join(tmpdir, "does/not/exist");
    assert_int_equal(tm_lock_workdir(dir), TM_ERR_IO);
    free(dir);
}

static void expect_hash(const void *data, size_t len, const char *hex)
{
    XXH128_hash_t h = XXH3_128bits(data, len);
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, h);
    char want[33];
    for (int i = 0; i < 16; i++)
        snprintf(want + 2 * i, 3, "%02x", c.digest[i]);
    assert_string_equal(hex, want);
}

static void test_hash(void **state)
{
    (void)state;
    char *path = tm_path_join(tmpdir, "hashme");
    char hex[33];

    write_file(path, "", 0);
    assert_int_equal(tm_hash_file(path, hex), TM_OK);
    assert_int_equal(strlen(hex), 32);
    /* xxh3-128 of empty input, as printed by `xxhsum -H2`. */
    assert_string_equal(hex, "99aa06d3014798d86001c324468d497f");

    /* 3.5 MiB: several streamed reads must equal the one-shot hash. */
    size_t len = (7u << 20) / 2;
    char *big = malloc(len);
    assert_non_null(big);
    for (size_t i = 0; i < len; i++)
        big[i] = (char)(i * 2654435761u >> 13);
    write_file(path, big, len);
    assert_int_equal(tm_hash_file(path, hex), TM_OK);
    expect_hash(big, len, hex);
    big[len - 1] ^= 1;
    write_file(path, big, len);
    char hex2[33];
    assert_int_equal(tm_hash_file(path, hex2), TM_OK);
    assert_string_not_equal(hex, hex2);
    free(big);

    char *missing = tm_path_join(tmpdir, "missing");
    assert_int_equal(tm_hash_file(missing, hex), TM_ERR_IO);
    free(missing);
    free(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_path_join),
        cmocka_unit_test(test_mkdirs),
        cmocka_unit_test(test_write_atomic_and_read),
        cmocka_unit_test(test_read_pipe_limit),
        cmocka_unit_test(test_lock),
        cmocka_unit_test(test_lock_held_by_child),
        cmocka_unit_test(test_lock_missing_dir),
        cmocka_unit_test(test_hash),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
