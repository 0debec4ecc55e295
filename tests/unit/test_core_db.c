/* Unit tests for tm_db: byte order, record headers, open/put/get/del, map growth inside one
 * write, the map_max ceiling, reopening read-only, and a map grown by another process. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tm_db.h"
#include "tm_err.h"
#include "tm_fs.h"
#include "tm_log.h"
#include "test_util.h"

#define KIB ((size_t)1 << 10)
#define MIB ((size_t)1 << 20)

static char *tmpdir;
static FILE *sink;
static const char *const names[] = {"alpha", "beta"};

static int setup(void **state)
{
    (void)state;
    tmpdir = tu_make_tmpdir("core_db");
    if (!tmpdir)
        return -1;
    sink = tu_log_quiet();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    tu_log_restore(sink);
    return tu_remove_tmpdir(tmpdir);
}

static void test_byte_order(void **state)
{
    (void)state;
    unsigned char b[8];
    tm_be64_put(b, 0x0102030405060708ull);
    assert_memory_equal(b, "\x01\x02\x03\x04\x05\x06\x07\x08", 8);
    assert_true(tm_be64_get(b) == 0x0102030405060708ull);
    tm_le64_put(b, 0x0102030405060708ull);
    assert_memory_equal(b, "\x08\x07\x06\x05\x04\x03\x02\x01", 8);
    assert_true(tm_le64_get(b) == 0x0102030405060708ull);
    tm_be32_put(b, 0xa1b2c3d4u);
    assert_memory_equal(b, "\xa1\xb2\xc3\xd4", 4);
    assert_int_equal(tm_be32_get(b), 0xa1b2c3d4u);
    tm_le32_put(b, 0xa1b2c3d4u);
    assert_memory_equal(b, "\xd4\xc3\xb2\xa1", 4);
    assert_int_equal(tm_le32_get(b), 0xa1b2c3d4u);
    /* Big-endian keys sort like the numbers under memcmp. */
    uint64_t vals[] = {0, 1, 255, 256, 65535, 1ull << 40, UINT64_MAX};
    for (size_t i = 0; i + 1 < sizeof(vals) / sizeof(vals[0]); i++) {
        unsigned char x[8], y[8];
        tm_be64_put(x, vals[i]);
        tm_be64_put(y, vals[i + 1]);
        assert_true(memcmp(x, y, 8) < 0);
    }
}

static void test_rec_check(void **state)
{
    (void)state;
    unsigned char h[TM_REC_HDR + 4];
    tm_rec_header(h, "TMXX", 3);
    assert_memory_equal(h, "TMXX\x03\0\0\0", 8);
    unsigned v = 0;
    assert_int_equal(tm_rec_check(h, sizeof(h), "TMXX", 3, "rec", &v), TM_OK);
    assert_int_equal(v, 3);
    assert_int_equal(tm_rec_check(h, TM_REC_HDR, "TMXX", 5, "rec", NULL), TM_OK);
    /* Newer than this build reads. */
    assert_int_equal(tm_rec_check(h, sizeof(h), "TMXX", 2, "rec", &v), TM_ERR_VERSION);
    /* Wrong magic. */
    assert_int_equal(tm_rec_check(h, sizeof(h), "TMXY", 3, "rec", &v), TM_ERR_FORMAT);
    /* Shorter than the header, down to empty. */
    for (size_t n = 0; n < TM_REC_HDR; n++)
        assert_int_equal(tm_rec_check(h, n, "TMXX", 3, "rec", &v), TM_ERR_FORMAT);
    /* Versions above 255 use the second byte. */
    tm_rec_header(h, "TMXX", 0x1234);
    assert_int_equal(tm_rec_check(h, TM_REC_HDR, "TMXX", 0xffff, NULL, &v), TM_OK);
    assert_int_equal(v, 0x1234);
}

struct kv_ctx {
    unsigned dbi;
    uint64_t first, count;
    size_t vlen;
    int fail_with; /* returned after the puts, to test aborts */
    int calls;
};

static void fill_value(unsigned char *v, size_t vlen, uint64_t key)
{
    for (size_t i = 0; i < vlen; i++)
        v[i] = (unsigned char)(key * 31 + i);
}

static int put_many(MDB_txn *txn, struct tm_db *db, void *vctx)
{
    struct kv_ctx *c = vctx;
    c->calls++;
    for (uint64_t k = c->first; k < c->first + c->count; k++) {
        unsigned char key[8];
        tm_be64_put(key, k);
        void *out;
        int rc = tm_db_reserve(db, txn, c->dbi, key, sizeof(key), c->vlen, &out);
        if (rc)
            return rc;
        fill_value(out, c->vlen, k);
    }
    return c->fail_with;
}

static int check_many(MDB_txn *txn, struct tm_db *db, void *vctx)
{
    struct kv_ctx *c = vctx;
    for (uint64_t k = c->first; k < c->first + c->count; k++) {
        unsigned char key[8];
        tm_be64_put(key, k);
        const void *val;
        size_t len;
        int rc = tm_db_get(db, txn, c->dbi, key, sizeof(key), &val, &len);
        if (rc)
            return rc;
        unsigned char *want = malloc(c->vlen);
        fill_value(want, c->vlen, k);
        int same = len == c->vlen && memcmp(val, want, len) == 0;
        free(want);
        if (!same)
            return TM_ERR_FORMAT;
    }
    return TM_OK;
}

static void test_growth(void **state)
{
    (void)state;
    char *dir = tm_path_join(tmpdir, "grow");
    struct tm_db db;
    assert_int_equal(tm_db_open(&db, dir, names, 2, 64 * KIB, 64 * MIB, 0), TM_OK);
    assert_int_equal(db.ndbs, 2);
    assert_true(db.map_size < 1 * MIB);
    size_t start = db.map_size;

    /* 6 MiB in one transaction: far beyond the 64 KiB map, so it must grow and retry. */
    struct kv_ctx c = {.dbi = 1, .first = 0, .count = 1536, .vlen = 4096};
    assert_int_equal(tm_db_write(&db, put_many, &c), TM_OK);
    assert_true(c.calls > 1);
    assert_true(db.map_size >= 6 * MIB);
    assert_true(db.map_size > start && db.map_size <= 64 * MIB);
    assert_int_equal(tm_db_read(&db, check_many, &c), TM_OK);
    tm_db_close(&db);
    assert_null(db.env);
    tm_db_close(&db); /* closing twice is harmless */

    /* Reopen read-only with a tiny requested map: the file's size wins and data is there. */
    struct stat st;
    char *data = tm_path_join(dir, "data.mdb");
    assert_int_equal(stat(data, &st), 0);
    assert_int_equal(tm_db_open(&db, dir, names, 2, 64 * KIB, 0, TM_DB_RDONLY), TM_OK);
    assert_true(db.map_size >= (size_t)st.st_size);
    assert_int_equal(tm_db_read(&db, check_many, &c), TM_OK);
    /* Writes are refused on a read-only handle. */
    assert_int_not_equal(tm_db_write(&db, put_many, &c), TM_OK);
    tm_db_close(&db);
    free(data);
    free(dir);
}

static void test_map_max(void **state)
{
    (void)state;
    char *dir = tm_path_join(tmpdir, "max");
    struct tm_db db;
    assert_int_equal(tm_db_open(&db, dir, names, 2, 64 * KIB, 1 * MIB, 0), TM_OK);
    /* 4 MiB cannot fit under a 1 MiB ceiling. */
    struct kv_ctx big = {.dbi = 0, .first = 0, .count = 1024, .vlen = 4096};
    assert_int_equal(tm_db_write(&db, put_many, &big), TM_ERR_MAPFULL);
    assert_int_equal(db.map_size, 1 * MIB);
    /* Nothing of it was committed, and the environment still works. */
    struct kv_ctx one = {.dbi = 0, .first = 0, .count = 1, .vlen = 4096};
    assert_int_equal(tm_db_read(&db, check_many, &one), TM_ERR_NOTFOUND);
    struct kv_ctx small = {.dbi = 0, .first = 5000, .count = 10, .vlen = 100};
    assert_int_equal(tm_db_write(&db, put_many, &small), TM_OK);
    assert_int_equal(tm_db_read(&db, check_many, &small), TM_OK);
    tm_db_close(&db);
    free(dir);
}

static int put_del_fn(MDB_txn *txn, struct tm_db *db, void *ctx)
{
    (void)ctx;
    int rc = tm_db_put(db, txn, 0, "k1", 2, "v1", 2, 0);
    if (!rc)
        rc = tm_db_put(db, txn, 0, "k2", 2, "v2", 2, 0);
    if (!rc)
        rc = tm_db_put(db, txn, 1, "k1", 2, "other", 5, 0);
    /* NOOVERWRITE on an existing key is an LMDB error, not a crash. */
    if (!rc && tm_db_put(db, txn, 0, "k1", 2, "x", 1, MDB_NOOVERWRITE) != TM_ERR_DB)
        return TM_ERR_INTERNAL;
    if (!rc)
        rc = tm_db_del(db, txn, 0, "k2", 2);
    if (!rc && tm_db_del(db, txn, 0, "k2", 2) != TM_ERR_NOTFOUND)
        return TM_ERR_INTERNAL;
    /* An index past the opened tables. */
    if (!rc && tm_db_put(db, txn, 7, "k", 1, "v", 1, 0) != TM_ERR_INTERNAL)
        return TM_ERR_INTERNAL;
    return rc;
}

static int get_fn(MDB_txn *txn, struct tm_db *db, void *ctx)
{
    (void)ctx;
    const void *v;
    size_t n;
    int rc = tm_db_get(db, txn, 0, "k1", 2, &v, &n);
    if (rc || n != 2 || memcmp(v, "v1", 2) != 0)
        return TM_ERR_FORMAT;
    rc = tm_db_get(db, txn, 1, "k1", 2, &v, &n);
    if (rc || n != 5 || memcmp(v, "other", 5) != 0)
        return TM_ERR_FORMAT;
    rc = tm_db_get(db, txn, 0, "k2", 2, &v, &n);
    if (rc != TM_ERR_NOTFOUND || v != NULL)
        return TM_ERR_FORMAT;
    return TM_OK;
}

static int fail_fn(MDB_txn *txn, struct tm_db *db, void *ctx)
{
    (void)ctx;
    int rc = tm_db_put(db, txn, 0, "k9", 2, "v9", 2, 0);
    return rc ? rc : TM_ERR_PARTIAL;
}

static int absent_k9(MDB_txn *txn, struct tm_db *db, void *ctx)
{
    (void)ctx;
    const void *v;
    size_t n;
    return tm_db_get(db, txn, 0, "k9", 2, &v, &n) == TM_ERR_NOTFOUND ? TM_OK : TM_ERR_FORMAT;
}

static void test_put_get_del_abort(void **state)
{
    (void)state;
    char *dir = tm_path_join(tmpdir, "kv");
    struct tm_db db;
    assert_int_equal(tm_db_open(&db, dir, names, 2, 0, 0, 0), TM_OK);
    assert_int_equal(tm_db_write(&db, put_del_fn, NULL), TM_OK);
    assert_int_equal(tm_db_read(&db, get_fn, NULL), TM_OK);
    /* A body's error aborts the transaction and is returned as is. */
    assert_int_equal(tm_db_write(&db, fail_fn, NULL), TM_ERR_PARTIAL);
    assert_int_equal(tm_db_read(&db, absent_k9, NULL), TM_OK);
    tm_db_close(&db);
    free(dir);
}

static void test_open_errors(void **state)
{
    (void)state;
    struct tm_db db;
    char *dir = tm_path_join(tmpdir, "absent");
    assert_int_equal(tm_db_open(&db, dir, names, 2, 0, 0, TM_DB_RDONLY), TM_ERR_NOTFOUND);
    assert_null(db.env);
    assert_null(db.path);
    /* Read-only did not create anything. */
    assert_int_not_equal(access(dir, F_OK), 0);

    /* A table the environment does not have, read-only. */
    char *kv = tm_path_join(tmpdir, "tables");
    assert_int_equal(tm_db_open(&db, kv, names, 1, 0, 0, 0), TM_OK);
    tm_db_close(&db);
    assert_int_equal(tm_db_open(&db, kv, names, 2, 0, 0, TM_DB_RDONLY), TM_ERR_NOTFOUND);
    assert_null(db.env);

    /* A file where the directory should be. */
    char *file = tm_path_join(tmpdir, "file");
    FILE *f = fopen(file, "w");
    fclose(f);
    assert_int_equal(tm_db_open(&db, file, names, 2, 0, 0, 0), TM_ERR_IO);
    free(file);
    free(kv);
    free(dir);
}

/* Another process grows the map while we hold the environment open: our next transaction
 * meets MDB_MAP_RESIZED and must adopt the new size. */
static void test_resized_by_other_process(void **state)
{
    (void)state;
    char *dir = tm_path_join(tmpdir, "shared");
    int go[2];
    assert_int_equal(pipe(go), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* The child opens its own environment only after the parent has opened one. */
        close(go[1]);
        char c;
        if (read(go[0], &c, 1) != 1)
            _exit(3);
        struct tm_db cdb;
        if (tm_db_open(&cdb, dir, names, 2, 64 * KIB, 64 * MIB, 0) != TM_OK)
            _exit(4);
        struct kv_ctx cc = {.dbi = 0, .first = 0, .count = 1024, .vlen = 4096};
        int rc = tm_db_write(&cdb, put_many, &cc);
        tm_db_close(&cdb);
        _exit(rc == TM_OK ? 0 : 5);
    }
    close(go[0]);
    struct tm_db db;
    assert_int_equal(tm_db_open(&db, dir, names, 2, 64 * KIB, 64 * MIB, 0), TM_OK);
    size_t before = db.map_size;
    assert_int_equal(write(go[1], "g", 1), 1);
    close(go[1]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);

    struct kv_ctx cc = {.dbi = 0, .first = 0, .count = 1024, .vlen = 4096};
    assert_int_equal(tm_db_read(&db, check_many, &cc), TM_OK);
    assert_true(db.map_size > before);
    struct kv_ctx more = {.dbi = 1, .first = 0, .count = 16, .vlen = 1000};
    assert_int_equal(tm_db_write(&db, put_many, &more), TM_OK);
    assert_int_equal(tm_db_read(&db, check_many, &more), TM_OK);
    tm_db_close(&db);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_byte_order),
        cmocka_unit_test(test_rec_check),
        cmocka_unit_test(test_growth),
        cmocka_unit_test(test_map_max),
        cmocka_unit_test(test_put_get_del_abort),
        cmocka_unit_test(test_open_errors),
        cmocka_unit_test(test_resized_by_other_process),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
