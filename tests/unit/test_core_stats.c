/* Unit tests for tm_stats: counters, replacing fields, nested objects, atomic JSON writes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tm_err.h"
#include "tm_fs.h"
#include "tm_log.h"
#include "tm_stats.h"
#include "test_util.h"

static void test_counters(void **state)
{
    (void)state;
    cJSON *o = cJSON_CreateObject();
    assert_int_equal(tm_stats_get(o, "docs"), 0);
    tm_stats_add(o, "docs", 5);
    tm_stats_add(o, "docs", 7);
    assert_int_equal(tm_stats_get(o, "docs"), 12);
    tm_stats_add(o, "docs", -2);
    assert_int_equal(tm_stats_get(o, "docs"), 10);
    /* Exact up to 2^53. */
    int64_t big = (int64_t)1 << 53;
    tm_stats_add(o, "bytes", big - 1);
    tm_stats_add(o, "bytes", 1);
    assert_true(tm_stats_get(o, "bytes") == big);
    /* Only one "docs" field exists after repeated adds. */
    int n = 0;
    for (cJSON *c = o->child; c; c = c->next)
        n += strcmp(c->string, "docs") == 0;
    assert_int_equal(n, 1);
    cJSON_Delete(o);
}

static void test_fields_and_objects(void **state)
{
    (void)state;
    cJSON *o = cJSON_CreateObject();
    tm_stats_set_str(o, "status", "running");
    tm_stats_set_str(o, "status", "ok");
    assert_string_equal(cJSON_GetObjectItem(o, "status")->valuestring, "ok");
    assert_int_equal(cJSON_GetArraySize(o), 1);
    tm_stats_set_num(o, "elapsed_s", 1.5);
    tm_stats_set_num(o, "elapsed_s", 2.25);
    assert_true(cJSON_GetObjectItem(o, "elapsed_s")->valuedouble == 2.25);
    /* A string replaced by a number and vice versa. */
    tm_stats_set_num(o, "status", 3);
    assert_true(cJSON_IsNumber(cJSON_GetObjectItem(o, "status")));
    tm_stats_set_str(o, "elapsed_s", "x");
    assert_true(cJSON_IsString(cJSON_GetObjectItem(o, "elapsed_s")));
    assert_int_equal(tm_stats_get(o, "elapsed_s"), 0);

    cJSON *dom = tm_stats_obj(o, "domains");
    cJSON *text = tm_stats_obj(dom, "text");
    tm_stats_add(text, "docs", 3);
    assert_ptr_equal(tm_stats_obj(o, "domains"), dom);
    assert_ptr_equal(tm_stats_obj(dom, "text"), text);
    assert_int_equal(tm_stats_get(tm_stats_obj(tm_stats_obj(o, "domains"), "text"), "docs"), 3);
    cJSON_Delete(o);
}

static void test_write(void **state)
{
    (void)state;
    char *dir = tu_new_tmpdir("core_stats");
    char *path = tm_path_join(dir, "stats.json");
    cJSON *o = cJSON_CreateObject();
    tm_stats_set_str(o, "command", "ingest");
    tm_stats_add(tm_stats_obj(o, "counts"), "docs", 42);
    assert_int_equal(tm_stats_write(o, path), TM_OK);

    char *text;
    size_t len;
    assert_int_equal(tm_read_file(path, 1 << 20, &text, &len), TM_OK);
    assert_true(len > 0);
    assert_int_equal(text[len - 1], '\n');
    cJSON *back = cJSON_Parse(text);
    assert_non_null(back);
    assert_string_equal(cJSON_GetObjectItem(back, "command")->valuestring, "ingest");
    assert_int_equal(tm_stats_get(cJSON_GetObjectItem(back, "counts"), "docs"), 42);
    cJSON_Delete(back);
    free(text);

    /* Overwrites atomically and leaves no temporary behind. */
    tm_stats_set_str(o, "command", "filter");
    assert_int_equal(tm_stats_write(o, path), TM_OK);
    assert_int_equal(tm_read_file(path, 1 << 20, &text, &len), TM_OK);
    assert_non_null(strstr(text, "\"filter\""));
    free(text);
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
    assert_int_not_equal(access(tmp, F_OK), 0);

    /* A directory that does not exist: TM_ERR_IO, logged. */
    char *bad = tm_path_join(dir, "missing/stats.json");
    FILE *sink = tu_log_quiet();
    assert_int_equal(tm_stats_write(o, bad), TM_ERR_IO);
    tu_log_restore(sink);

    unlink(path);
    rmdir(dir);
    free(bad);
    cJSON_Delete(o);
    free(path);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counters),
        cmocka_unit_test(test_fields_and_objects),
        cmocka_unit_test(test_write),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
