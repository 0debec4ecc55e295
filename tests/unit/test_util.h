/* test_util.h: helpers the unit tests share. Header-only: static inline, so a test that uses
 * only some of them gets no unused-function warning. It includes cmocka (and what cmocka needs
 * first) itself. Not a test: tests/CMakeLists.txt globs unit/test_*.c, which skips it.
 *
 *   tu_make_tmpdir, tu_new_tmpdir       a fresh directory under $TM_TEST_TMP (or /tmp);
 *   tu_remove_tmpdir                    removes it
 *   tu_log_quiet / tu_log_restore       send log output to /dev/null while errors are expected
 *   struct tu_capture                   collect log output (or any stream) in memory
 *   tu_reduces_to, tu_every_prefix      exact output and every-prefix runs of a markup reducer
 *   struct got, got_on_*                a sink (struct ing_sink) that records what a reader
 *                                       delivered, in order
 *   struct chop, chop_read              a source handing out 1..7 bytes per call
 *                                       (../chop_source.h) */
#ifndef TM_TEST_UTIL_H
#define TM_TEST_UTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../chop_source.h"
#include "ing_internal.h"
#include "tm_err.h"
#include "tm_fs.h"
#include "tm_log.h"

/* ---- Temporary directories ---------------------------------------------------------------- */

/* Creates a fresh directory "<name>.XXXXXX" under $TM_TEST_TMP (created if missing; /tmp when
 * unset or empty). Returns its path, which the caller frees (tu_remove_tmpdir does both), or
 * NULL when it could not be made. */
static inline char *tu_make_tmpdir(const char *name)
{
    const char *base = getenv("TM_TEST_TMP");
    if (!base || !*base)
        base = "/tmp";
    if (tm_mkdirs(base) != TM_OK)
        return NULL;
    char tmpl[256];
    snprintf(tmpl, sizeof(tmpl), "%s.XXXXXX", name);
    char *dir = tm_path_join(base, tmpl);
    if (!mkdtemp(dir)) {
        free(dir);
        return NULL;
    }
    return dir;
}

/* tu_make_tmpdir() inside a test: the test fails when the directory cannot be made. */
static inline char *tu_new_tmpdir(const char *name)
{
    char *dir = tu_make_tmpdir(name);
    assert_non_null(dir);
    return dir;
}

/* Removes `dir` and everything in it, then frees the string. 0, or -1 when rm failed. */
static inline int tu_remove_tmpdir(char *dir)
{
    char cmd[4200];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    int rc = system(cmd);
    free(dir);
    return rc == 0 ? 0 : -1;
}

/* ---- Log output ----------------------------------------------------------------------------- */

/* Sends log output to /dev/null (tests that expect failures log errors; this keeps the test
 * output readable). Returns the stream to pass to tu_log_restore(). */
static inline FILE *tu_log_quiet(void)
{
    FILE *f = fopen("/dev/null", "w");
    tm_log_set_stream(f, 0);
    return f;
}

/* Logs to stderr again and closes the stream from tu_log_quiet(). */
static inline void tu_log_restore(FILE *quiet)
{
    tm_log_set_stream(NULL, -1);
    fclose(quiet);
}

/* An in-memory stream. `text` is NUL-terminated after a flush; the caller frees it. */
struct tu_capture {
    char *text;
    size_t len;
    FILE *f;
};

/* Opens the stream (not yet connected to the log). */
static inline void tu_capture_open(struct tu_capture *c)
{
    c->text = NULL;
    c->len = 0;
    c->f = open_memstream(&c->text, &c->len);
    assert_non_null(c->f);
}

/* Opens the stream and sends log output to it. */
static inline void tu_capture_start(struct tu_capture *c, int timestamps)
{
    tu_capture_open(c);
    tm_log_set_stream(c->f, timestamps);
}

/* What was logged so far ("" when nothing); valid until the next log call. */
static inline const char *tu_capture_text(struct tu_capture *c)
{
    fflush(c->f);
    return c->text ? c->text : "";
}

/* Logs to stderr again and closes the stream; c->text stays valid until free(). */
static inline void tu_capture_stop(struct tu_capture *c)
{
    tm_log_set_stream(NULL, -1);
    fclose(c->f);
}

/* ---- Markup reducers ---------------------------------------------------------------------- */

/* ing_html_to_text, ing_roff_to_text. */
typedef int (*tu_reducer_fn)(const char *in, size_t n, struct tm_buf *out);

/* Checks that `fn` turns in (a string) into exactly `want`; on a difference prints both, with
 * `label` and the input. */
static inline void tu_reduces_to(tu_reducer_fn fn, const char *label, const char *in,
                                 const char *want)
{
    struct tm_buf b;
    tm_buf_init(&b, 0);
    assert_int_equal(fn(in, strlen(in), &b), TM_OK);
    int same = strcmp(b.data ? b.data : "", want) == 0;
    if (!same)
        print_error("%s %s\n got [%s]\nwant [%s]\n", label, in, b.data ? b.data : "", want);
    tm_buf_release(&b);
    assert_true(same);
}

/* Runs `fn` over every prefix of doc[0..n), each a heap copy of exactly that many bytes so any
 * over-read hits ASan's redzone; each must succeed. With per_byte > 0, the output of a k-byte
 * prefix must also be at most per_byte * k + extra bytes. */
static inline void tu_every_prefix(tu_reducer_fn fn, const char *doc, size_t n, size_t per_byte,
                                   size_t extra)
{
    struct tm_buf b;
    tm_buf_init(&b, 0);
    for (size_t k = 0; k <= n; k++) {
        char *p = malloc(k ? k : 1);
        assert_non_null(p);
        memcpy(p, doc, k);
        tm_buf_reset(&b);
        assert_int_equal(fn(p, k, &b), TM_OK);
        if (per_byte)
            assert_true(b.len <= per_byte * k + extra);
        free(p);
    }
    tm_buf_release(&b);
}

/* ---- A recording sink ----------------------------------------------------------------------- */

#define GOT_MAX 32

/* What a reader delivered, in order. Strings are copies; got_free() releases them. Absent
 * name or language is recorded as "-". */
struct got {
    int n_records, n_problems, n_counts;
    struct {
        char *text;
        size_t text_len;
        char *meta;
        char name[64];
        int domain;
        char lang[16];
        uint64_t position;
    } rec[GOT_MAX];
    struct {
        char reason[32];
        uint64_t position;
    } prob[GOT_MAX];
    char counts[GOT_MAX][40];
    int stop_after; /* the record callback fails after this many records (0: never) */
};

/* ing_sink.record: copies the record; checks meta is a string of meta_len bytes. */
static inline int got_on_record(void *ctx, const struct ing_record *rec)
{
    struct got *g = ctx;
    assert_true(g->n_records < GOT_MAX);
    int i = g->n_records++;
    g->rec[i].text = malloc(rec->text_len + 1);
    memcpy(g->rec[i].text, rec->text, rec->text_len);
    g->rec[i].text[rec->text_len] = '\0';
    g->rec[i].text_len = rec->text_len;
    assert_int_equal(strlen(rec->meta), rec->meta_len);
    g->rec[i].meta = strdup(rec->meta);
    snprintf(g->rec[i].name, sizeof(g->rec[i].name), "%s", rec->name ? rec->name : "-");
    g->rec[i].domain = rec->domain;
    snprintf(g->rec[i].lang, sizeof(g->rec[i].lang), "%s", rec->lang ? rec->lang : "-");
    g->rec[i].position = rec->position;
    if (g->stop_after && g->n_records >= g->stop_after)
        return TM_ERR_IO;
    return TM_OK;
}

/* ing_sink.problem: keeps reason and position; checks a detail is given. */
static inline void got_on_problem(void *ctx, uint64_t position, const char *reason,
                                  const char *detail)
{
    struct got *g = ctx;
    assert_true(g->n_problems < GOT_MAX);
    assert_non_null(detail);
    snprintf(g->prob[g->n_problems].reason, sizeof(g->prob[0].reason), "%s", reason);
    g->prob[g->n_problems++].position = position;
}

/* ing_sink.count: keeps the key. */
static inline void got_on_count(void *ctx, const char *key)
{
    struct got *g = ctx;
    assert_true(g->n_counts < GOT_MAX);
    snprintf(g->counts[g->n_counts++], sizeof(g->counts[0]), "%s", key);
}

/* How many times counter `key` was bumped. */
static inline int got_count_of(const struct got *g, const char *key)
{
    int n = 0;
    for (int i = 0; i < g->n_counts; i++)
        n += strcmp(g->counts[i], key) == 0;
    return n;
}

/* Frees the copies and empties *g (stop_after included). */
static inline void got_free(struct got *g)
{
    for (int i = 0; i < g->n_records; i++) {
        free(g->rec[i].text);
        free(g->rec[i].meta);
    }
    memset(g, 0, sizeof(*g));
}

#endif
