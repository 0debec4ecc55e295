/* Unit tests for tm_opt: every option type and syntax, error messages, generated help, and
 * tm_command_main (positional counts, --help, log level, --stats-json). */
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
#include "tm_opt.h"
#include "tm_stats.h"
#include "test_util.h"

struct cfg {
    int force;
    int color;
    char *out;
    long jobs;
    size_t max_size;
    double ratio;
    int mode;
    struct tm_strlist inputs;
};

static const char *const modes[] = {"fast", "slow", "exact", NULL};

static const struct tm_opt opts[] = {
    {TM_OPT_FLAG, "force", 'f', offsetof(struct cfg, force), NULL, "overwrite", NULL, 0, 0, NULL},
    {TM_OPT_FLAG, "color", 0, offsetof(struct cfg, color), NULL, "use colors", "1", 0, 0, NULL},
    {TM_OPT_STR, "out", 'o', offsetof(struct cfg, out), "FILE", "output file", "out.txt", 0, 0,
     NULL},
    {TM_OPT_INT, "jobs", 'j', offsetof(struct cfg, jobs), "N", "worker threads", "4", 1, 64, NULL},
    {TM_OPT_SIZE, "max-size", 0, offsetof(struct cfg, max_size), "SIZE", "largest document", "8M",
     0, 0, NULL},
    {TM_OPT_DOUBLE, "ratio", 0, offsetof(struct cfg, ratio), "R", "a fraction", "0.5", 0, 1, NULL},
    {TM_OPT_ENUM, "mode", 'm', offsetof(struct cfg, mode), NULL, "how hard to try", "slow", 0, 0,
     modes},
    {TM_OPT_LIST, "input", 'i', offsetof(struct cfg, inputs), "PATH", "an input (repeatable)", NULL,
     0, 0, NULL},
    {TM_OPT_END, NULL, 0, 0, NULL, NULL, NULL, 0, 0, NULL},
};

/* What the fake command saw. */
static struct {
    int calls;
    struct cfg cfg;
    char *args[8];
    int nargs;
    int quiet, verbose, no_progress;
    enum tm_log_level level;
    int ret;
} seen;

static int fake_run(void *vcfg, struct tm_run *run)
{
    struct cfg *c = vcfg;
    seen.calls++;
    free(seen.cfg.out);
    seen.cfg = *c;
    seen.cfg.out = c->out ? strdup(c->out) : NULL;
    seen.cfg.inputs.items = NULL;
    seen.nargs = run->nargs;
    for (int i = 0; i < run->nargs && i < 8; i++)
        seen.args[i] = run->args[i];
    seen.quiet = run->common.quiet;
    seen.verbose = run->common.verbose;
    seen.no_progress = run->common.no_progress;
    seen.level = tm_log_get_level();
    assert_string_equal(run->command, "test");
    tm_stats_add(run->stats, "docs", 3);
    return seen.ret;
}

static const struct tm_command cmd = {
    .name = "test",
    .summary = "Test the option parser.",
    .synopsis = "INPUT...",
    .description = "A longer description\nover two lines.",
    .opts = opts,
    .cfg_size = sizeof(struct cfg),
    .min_args = 1,
    .max_args = 3,
    .run = fake_run,
};

static struct tu_capture logcap;

static int setup(void **state)
{
    (void)state;
    memset(&seen, 0, sizeof(seen));
    tu_capture_start(&logcap, 0);
    tm_log_set_level(TM_LOG_INFO);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    tu_capture_stop(&logcap);
    free(logcap.text);
    free(seen.cfg.out);
    return 0;
}

static const char *log_output(void)
{
    return tu_capture_text(&logcap);
}

static int run_cmd(int argc, const char **argv)
{
    return tm_command_main(&cmd, "tokenmill", argc, (char **)argv);
}

static void test_defaults(void **state)
{
    (void)state;
    struct cfg c = {0};
    assert_int_equal(tm_opt_defaults(opts, &c), TM_OK);
    assert_int_equal(c.force, 0);
    assert_int_equal(c.color, 1);
    assert_string_equal(c.out, "out.txt");
    assert_int_equal(c.jobs, 4);
    assert_int_equal(c.max_size, 8u << 20);
    assert_true(c.ratio == 0.5);
    assert_int_equal(c.mode, 1);
    assert_int_equal(c.inputs.count, 0);
    tm_opt_free(opts, &c);
    assert_null(c.out);
}

static void test_set_values(void **state)
{
    (void)state;
    struct cfg c = {0};
    char err[256];
    struct {
        const char *value;
        size_t want;
    } sizes[] = {{"0", 0},
                 {"123", 123},
                 {"8M", 8u << 20},
                 {"64KiB", 64u << 10},
                 {"64kib", 64u << 10},
                 {"2g", (size_t)2 << 30},
                 {"1T", (size_t)1 << 40},
                 {"3KB", 3u << 10},
                 {"10B", 10}};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        assert_int_equal(tm_opt_set(opts, &c, "max-size", sizes[i].value, err, sizeof(err)), TM_OK);
        assert_true(c.max_size == sizes[i].want);
    }
    const char *bad_sizes[] = {"",
                               "abc",
                               "-1",
                               "8X",
                               "8MiBs",
                               " 8",
                               "1.5G",
                               "8iB",
                               "99999999999999999999",
                               "20000000000T"};
    for (size_t i = 0; i < sizeof(bad_sizes) / sizeof(bad_sizes[0]); i++)
        assert_int_equal(tm_opt_set(opts, &c, "max-size", bad_sizes[i], err, sizeof(err)),
                         TM_ERR_USAGE);
    assert_int_equal(tm_opt_set(opts, &c, "max-size", "abc", err, sizeof(err)), TM_ERR_USAGE);
    assert_string_equal(err, "option --max-size: invalid size 'abc'");

    const char *yes[] = {NULL, "1", "true", "yes", "on", "YES"};
    const char *no[] = {"0", "false", "no", "off", "Off"};
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        c.force = 0;
        assert_int_equal(tm_opt_set(opts, &c, "force", yes[i], err, sizeof(err)), TM_OK);
        assert_int_equal(c.force, 1);
    }
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
        c.force = 1;
        assert_int_equal(tm_opt_set(opts, &c, "force", no[i], err, sizeof(err)), TM_OK);
        assert_int_equal(c.force, 0);
    }
    assert_int_equal(tm_opt_set(opts, &c, "force", "maybe", err, sizeof(err)), TM_ERR_USAGE);
    c.color = 1;
    assert_int_equal(tm_opt_set(opts, &c, "no-color", NULL, err, sizeof(err)), TM_OK);
    assert_int_equal(c.color, 0);

    assert_int_equal(tm_opt_set(opts, &c, "jobs", "64", err, sizeof(err)), TM_OK);
    assert_int_equal(c.jobs, 64);
    assert_int_equal(tm_opt_set(opts, &c, "jobs", "65", err, sizeof(err)), TM_ERR_USAGE);
    assert_string_equal(err, "option --jobs: '65' is out of range (1 to 64)");
    assert_int_equal(tm_opt_set(opts, &c, "jobs", "0", err, sizeof(err)), TM_ERR_USAGE);
    assert_int_equal(tm_opt_set(opts, &c, "jobs", "4x", err, sizeof(err)), TM_ERR_USAGE);
    assert_string_equal(err, "option --jobs: invalid integer '4x'");
    assert_int_equal(tm_opt_set(opts, &c, "jobs", "", err, sizeof(err)), TM_ERR_USAGE);
    assert_int_equal(tm_opt_set(opts, &c, "jobs", "99999999999999999999", err, sizeof(err)),
                     TM_ERR_USAGE);
    assert_int_equal(c.jobs, 64); /* failures leave the value alone */

    assert_int_equal(tm_opt_set(opts, &c, "ratio", "0.25", err, sizeof(err)), TM_OK);
    assert_true(c.ratio == 0.25);
    assert_int_equal(tm_opt_set(opts, &c, "ratio", "1.5", err, sizeof(err)), TM_ERR_USAGE);
    assert_int_equal(tm_opt_set(opts, &c, "ratio", "nan", err, sizeof(err)), TM_ERR_USAGE);
    assert_int_equal(tm_opt_set(opts, &c, "ratio", "x", err, sizeof(err)), TM_ERR_USAGE);

    assert_int_equal(tm_opt_set(opts, &c, "mode", "exact", err, sizeof(err)), TM_OK);
    assert_int_equal(c.mode, 2);
    assert_int_equal(tm_opt_set(opts, &c, "mode", "medium", err, sizeof(err)), TM_ERR_USAGE);
    assert_string_equal(err, "option --mode: unknown choice 'medium' (one of fast|slow|exact)");

    assert_int_equal(tm_opt_set(opts, &c, "out", "a", err, sizeof(err)), TM_OK);
    assert_int_equal(tm_opt_set(opts, &c, "out", "b", err, sizeof(err)), TM_OK);
    assert_string_equal(c.out, "b");
    assert_int_equal(tm_opt_set(opts, &c, "out", NULL, err, sizeof(err)), TM_ERR_USAGE);
    assert_string_equal(err, "option --out needs a value");

    assert_int_equal(tm_opt_set(opts, &c, "input", "x", err, sizeof(err)), TM_OK);
    assert_int_equal(tm_opt_set(opts, &c, "input", "y", err, sizeof(err)), TM_OK);
    assert_int_equal(c.inputs.count, 2);
    assert_string_equal(c.inputs.items[1], "y");

    assert_int_equal(tm_opt_set(opts, &c, "bogus", "1", err, sizeof(err)), TM_ERR_USAGE);
    assert_string_equal(err, "unknown option 'bogus'");
    /* --no- only negates flags. */
    assert_int_equal(tm_opt_set(opts, &c, "no-out", NULL, err, sizeof(err)), TM_ERR_USAGE);
    tm_opt_free(opts, &c);
    assert_null(c.inputs.items);
    assert_int_equal(c.inputs.count, 0);
}

static void test_bad_default(void **state)
{
    (void)state;
    static const struct tm_opt broken[] = {
        {TM_OPT_INT, "n", 0, 0, "N", "a number", "many", 0, 0, NULL},
        {TM_OPT_END, NULL, 0, 0, NULL, NULL, NULL, 0, 0, NULL},
    };
    long v[2] = {0};
    assert_int_equal(tm_opt_defaults(broken, v), TM_ERR_USAGE);
    assert_non_null(strstr(log_output(), "invalid integer 'many'"));
}

static void test_parse_forms(void **state)
{
    (void)state;
    const char *argv[] = {"test",
                          "a",
                          "--out",
                          "o1",
                          "-j",
                          "8",
                          "b",
                          "-qf",
                          "--max-size=64KiB",
                          "--no-color",
                          "-mfast",
                          "-i",
                          "x",
                          "--input=y",
                          "--",
                          "--not-an-option"};
    int argc = (int)(sizeof(argv) / sizeof(argv[0]));
    assert_int_equal(run_cmd(argc, argv), TM_OK);
    assert_int_equal(seen.calls, 1);
    assert_string_equal(seen.cfg.out, "o1");
    assert_int_equal(seen.cfg.jobs, 8);
    assert_int_equal(seen.cfg.force, 1);
    assert_int_equal(seen.cfg.color, 0);
    assert_int_equal(seen.cfg.max_size, 64u << 10);
    assert_int_equal(seen.cfg.mode, 0);
    assert_int_equal(seen.cfg.inputs.count, 2);
    /* Positional arguments keep their order, options interleaved or not. */
    assert_int_equal(seen.nargs, 3);
    assert_string_equal(seen.args[0], "a");
    assert_string_equal(seen.args[1], "b");
    assert_string_equal(seen.args[2], "--not-an-option");
    /* -q: warnings only while running, restored afterwards; --quiet implies no progress. */
    assert_int_equal(seen.quiet, 1);
    assert_int_equal(seen.no_progress, 1);
    assert_int_equal(seen.level, TM_LOG_WARN);
    assert_int_equal(tm_log_get_level(), TM_LOG_INFO);
}

static void test_verbose_and_return(void **state)
{
    (void)state;
    const char *argv[] = {"test", "--verbose", "-", "--no-progress"};
    seen.ret = TM_ERR_PARTIAL;
    assert_int_equal(run_cmd(4, argv), TM_ERR_PARTIAL);
    assert_int_equal(seen.level, TM_LOG_DEBUG);
    assert_int_equal(seen.no_progress, 1);
    assert_int_equal(seen.nargs, 1);
    assert_string_equal(seen.args[0], "-");
}

static void expect_usage(int argc, const char **argv, const char *message)
{
    assert_int_equal(run_cmd(argc, argv), TM_ERR_USAGE);
    assert_int_equal(seen.calls, 0);
    const char *out = log_output();
    char want[512];
    snprintf(want, sizeof(want), "error: tokenmill test: %s\n", message);
    assert_non_null(strstr(out, want));
    assert_non_null(strstr(out, "see 'tokenmill test --help'"));
}

static void test_err_size(void **state)
{
    (void)state;
    const char *argv[] = {"test", "a", "--max-size", "abc"};
    expect_usage(4, argv, "option --max-size: invalid size 'abc'");
}

static void test_err_unknown(void **state)
{
    (void)state;
    const char *argv[] = {"test", "a", "--frobnicate"};
    expect_usage(3, argv, "unknown option --frobnicate");
}

static void test_err_unknown_short(void **state)
{
    (void)state;
    const char *argv[] = {"test", "a", "-z"};
    expect_usage(3, argv, "unknown option -z");
}

static void test_err_missing_value(void **state)
{
    (void)state;
    const char *argv[] = {"test", "a", "--out"};
    expect_usage(3, argv, "option --out needs a value");
}

static void test_err_enum(void **state)
{
    (void)state;
    const char *argv[] = {"test", "a", "--mode=turbo"};
    expect_usage(3, argv, "option --mode: unknown choice 'turbo' (one of fast|slow|exact)");
}

static void test_err_range(void **state)
{
    (void)state;
    const char *argv[] = {"test", "a", "-j", "100"};
    expect_usage(4, argv, "option --jobs: '100' is out of range (1 to 64)");
}

static void test_err_flag_value(void **state)
{
    (void)state;
    const char *argv[] = {"test", "a", "--no-color=1"};
    expect_usage(3, argv, "option --no-color takes no value");
}

static void test_err_too_few(void **state)
{
    (void)state;
    const char *argv[] = {"test", "-f"};
    expect_usage(2, argv, "expected at least 1 argument (INPUT...), got 0");
}

static void test_err_too_many(void **state)
{
    (void)state;
    const char *argv[] = {"test", "a", "b", "c", "d"};
    expect_usage(5, argv, "unexpected argument 'd'");
}

static const char expected_help[] =
    "usage: tokenmill test [options] INPUT...\n"
    "\n"
    "Test the option parser.\n"
    "\n"
    "A longer description\n"
    "over two lines.\n"
    "\n"
    "Options:\n"
    "  -f, --force                   overwrite\n"
    "      --color                   use colors (default: on; --no-color turns it off)\n"
    "  -o, --out FILE                output file (default: out.txt)\n"
    "  -j, --jobs N                  worker threads (default: 4)\n"
    "      --max-size SIZE           largest document (default: 8M)\n"
    "      --ratio R                 a fraction (default: 0.5)\n"
    "  -m, --mode {fast|slow|exact}  how hard to try (default: slow)\n"
    "  -i, --input PATH              an input (repeatable)\n"
    "\n"
    "Common options:\n"
    "  -q, --quiet                   print only warnings and errors\n"
    "  -v, --verbose                 print debug messages\n"
    "      --stats-json FILE         write run statistics as JSON to FILE\n"
    "      --no-progress             do not show progress\n"
    "  -h, --help                    show this help and exit\n";

static void test_help_text(void **state)
{
    (void)state;
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    tm_opt_help(&cmd, "tokenmill", f);
    fclose(f);
    assert_string_equal(text, expected_help);
    free(text);
}

static void test_help_runs_nothing(void **state)
{
    (void)state;
    /* --help wins even though the argument count is wrong; output goes to stdout, which we
     * redirect into a file to compare. */
    char path[] = "/tmp/tm_opt_help.XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    fflush(stdout);
    int saved = dup(STDOUT_FILENO);
    assert_int_equal(dup2(fd, STDOUT_FILENO), STDOUT_FILENO);
    const char *argv[] = {"test", "--help", "--bogus"};
    int rc = run_cmd(3, argv);
    fflush(stdout);
    dup2(saved, STDOUT_FILENO);
    close(saved);
    close(fd);
    assert_int_equal(rc, TM_OK);
    assert_int_equal(seen.calls, 0);
    char *text;
    size_t len;
    assert_int_equal(tm_read_file(path, 1 << 16, &text, &len), TM_OK);
    assert_string_equal(text, expected_help);
    free(text);
    unlink(path);
}

static void test_stats_json(void **state)
{
    (void)state;
    char *dir = tu_new_tmpdir("core_opt");
    char *path = tm_path_join(dir, "stats.json");

    const char *argv[] = {"test", "--stats-json", path, "a"};
    seen.ret = TM_ERR_NOTFOUND;
    assert_int_equal(run_cmd(4, argv), TM_ERR_NOTFOUND);
    char *text;
    size_t len;
    assert_int_equal(tm_read_file(path, 1 << 16, &text, &len), TM_OK);
    cJSON *j = cJSON_Parse(text);
    assert_non_null(j);
    assert_string_equal(cJSON_GetObjectItem(j, "command")->valuestring, "test");
    assert_string_equal(cJSON_GetObjectItem(j, "status")->valuestring, "notfound");
    assert_int_equal(tm_stats_get(j, "docs"), 3);
    assert_true(cJSON_IsNumber(cJSON_GetObjectItem(j, "elapsed_s")));
    assert_true(cJSON_GetObjectItem(j, "elapsed_s")->valuedouble >= 0);
    cJSON_Delete(j);
    free(text);

    /* A stats file that cannot be written turns success into TM_ERR_IO. */
    char *bad = tm_path_join(dir, "missing/stats.json");
    const char *argv2[] = {"test", "a", "--stats-json", bad};
    seen.ret = TM_OK;
    assert_int_equal(run_cmd(4, argv2), TM_ERR_IO);
    assert_int_equal(seen.calls, 2);

    unlink(path);
    rmdir(dir);
    free(bad);
    free(path);
    free(dir);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_defaults),          T(test_set_values),         T(test_bad_default),
        T(test_parse_forms),       T(test_verbose_and_return), T(test_err_size),
        T(test_err_unknown),       T(test_err_unknown_short),  T(test_err_missing_value),
        T(test_err_enum),          T(test_err_range),          T(test_err_flag_value),
        T(test_err_too_few),       T(test_err_too_many),       T(test_help_text),
        T(test_help_runs_nothing), T(test_stats_json),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
