/* ev_code: compiler-checked code tasks (see eval.h): problems, the compile-and-run of each
 * sample in the sandbox, the outcome, and pass@k. */
#define _XOPEN_SOURCE 700 /* nftw */
#include <cjson/cJSON.h>
#include <errno.h>
#include <ftw.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "eval.h"
#include "ev_sandbox.h"
#include "tm_err.h"
#include "tm_fs.h"
#include "tm_log.h"
#include "tm_mem.h"
#include "tm_thread.h"

const char *const ev_outcome_names[] = {"passed",       "compile_error", "runtime_error",
                                        "wrong_answer", "timeout",       "sandbox_violation"};

/* ---- problems ------------------------------------------------------------------------------- */

static char *field(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? tm_xstrdup(v->valuestring) : NULL;
}

void ev_problems_free(struct ev_problem *p, size_t n)
{
    for (size_t i = 0; p && i < n; i++) {
        free(p[i].task_id);
        free(p[i].language);
        free(p[i].prompt);
        free(p[i].test);
        free(p[i].canonical);
    }
    free(p);
}

int ev_jsonl_read(const char *path, int (*fn)(void *ctx, const cJSON *o, long lineno), void *ctx)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        tm_log_error("%s: %s", path, strerror(errno));
        return TM_ERR_IO;
    }
    size_t len = 0;
    char *line = NULL;
    int rc = TM_OK;
    for (long lineno = 1; rc == TM_OK && getline(&line, &len, f) >= 0; lineno++) {
        if (strspn(line, " \t\r\n") == strlen(line))
            continue;
        cJSON *o = cJSON_Parse(line);
        if (!o || !cJSON_IsObject(o)) {
            tm_log_error("%s:%ld: not a JSON object", path, lineno);
            rc = TM_ERR_FORMAT;
        } else {
            rc = fn(ctx, o, lineno);
        }
        cJSON_Delete(o);
    }
    if (rc == TM_OK && ferror(f)) {
        tm_log_error("%s: read error", path);
        rc = TM_ERR_IO;
    }
    free(line);
    fclose(f);
    return rc;
}

struct problems_read {
    const char *path;
    struct ev_problem *p;
    size_t count, cap;
};

static int add_problem(void *ctx, const cJSON *o, long lineno)
{
    struct problems_read *r = ctx;
    if (r->count == r->cap) {
        r->cap = r->cap ? 2 * r->cap : 64;
        r->p = tm_xreallocarray(r->p, r->cap, sizeof(*r->p));
    }
    struct ev_problem *q = &r->p[r->count++];
    *q = (struct ev_problem){field(o, "task_id"), field(o, "language"), field(o, "prompt"),
                             field(o, "test"), field(o, "canonical_solution")};
    if (!q->language)
        q->language = tm_xstrdup("c");
    if (!q->task_id || !q->prompt || !q->test) {
        tm_log_error("%s:%ld: task_id, prompt and test must be strings", r->path, lineno);
        return TM_ERR_FORMAT;
    }
    if (strcmp(q->language, "c") != 0 && strcmp(q->language, "cpp") != 0) {
        tm_log_error("%s:%ld: language '%s': want c or cpp", r->path, lineno, q->language);
        return TM_ERR_FORMAT;
    }
    for (size_t i = 0; i + 1 < r->count; i++)
        if (strcmp(r->p[i].task_id, q->task_id) == 0) {
            tm_log_error("%s:%ld: task_id '%s' repeats an earlier line's", r->path, lineno,
                         q->task_id);
            return TM_ERR_FORMAT;
        }
    return TM_OK;
}

int ev_problems_load(const char *path, struct ev_problem **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    struct problems_read r = {.path = path};
    int rc = ev_jsonl_read(path, add_problem, &r);
    if (rc == TM_OK && r.count == 0) {
        tm_log_error("%s: no problems", path);
        rc = TM_ERR_FORMAT;
    }
    if (rc) {
        ev_problems_free(r.p, r.count);
        return rc;
    }
    *out = r.p;
    *n = r.count;
    return TM_OK;
}

/* ---- pass@k --------------------------------------------------------------------------------- */

double ev_pass_at_k(int n, int c, int k)
{
    if (k > n || k < 1)
        return 0.0;
    if (n - c < k)
        return 1.0;
    /* C(n - c, k) / C(n, k) = prod over i in (n - c, n] of (1 - k / i) */
    double prod = 1.0;
    for (int i = n - c + 1; i <= n; i++)
        prod *= 1.0 - (double)k / i;
    return 1.0 - prod;
}

/* ---- one sample ----------------------------------------------------------------------------- */

static const char *const default_cflags = "-std=c11 -O1 -Wall";
static const char *const default_cxxflags = "-std=c++17 -O1 -Wall";

/* argv = cc, the flags split at spaces, then the trailing words; freed with free_argv(). */
static char **make_argv(const char *cc, const char *flags, const char *const *tail)
{
    size_t cap = 8, n = 0;
    char **v = tm_xmalloc(cap * sizeof(*v));
    v[n++] = tm_xstrdup(cc);
    char *copy = tm_xstrdup(flags ? flags : ""), *save = NULL;
    for (char *t = strtok_r(copy, " \t", &save); t; t = strtok_r(NULL, " \t", &save)) {
        if (n + 2 >= cap)
            v = tm_xreallocarray(v, cap *= 2, sizeof(*v));
        v[n++] = tm_xstrdup(t);
    }
    free(copy);
    for (; *tail; tail++) {
        if (n + 2 >= cap)
            v = tm_xreallocarray(v, cap *= 2, sizeof(*v));
        v[n++] = tm_xstrdup(*tail);
    }
    v[n] = NULL;
    return v;
}

static void free_argv(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

/* out + err, each already capped by the sandbox. */
static char *joined(const struct ev_result *r)
{
    size_t n = r->out_len + r->err_len;
    char *s = tm_xmalloc(n + 1);
    memcpy(s, r->out, r->out_len);
    memcpy(s + r->out_len, r->err, r->err_len);
    s[n] = 0;
    return s;
}

static int eval_sample(const struct ev_problem *p, struct ev_sample *s,
                       const struct ev_code_opts *o)
{
    int cpp = strcmp(p->language, "cpp") == 0;
    char dir[] = "/tmp/tm-eval-XXXXXX";
    if (!mkdtemp(dir)) {
        tm_log_error("eval code: mkdtemp: %s", strerror(errno));
        return TM_ERR_IO;
    }
    char src[64];
    snprintf(src, sizeof(src), "%s/%s", dir, cpp ? "prog.cpp" : "prog.c");
    size_t lp = strlen(p->prompt), lc = strlen(s->completion), lt = strlen(p->test);
    char *text = tm_xmalloc(lp + lc + lt + 2);
    memcpy(text, p->prompt, lp);
    memcpy(text + lp, s->completion, lc);
    text[lp + lc] = '\n';
    memcpy(text + lp + lc + 1, p->test, lt + 1);
    int rc = tm_write_atomic(src, text, lp + lc + lt + 1);
    free(text);
    struct ev_limits lim;
    struct ev_result r;
    memset(&r, 0, sizeof(r));
    if (rc == TM_OK) {
        static const char *const c_tail[] = {"prog.c", "-o", "prog", "-lm", NULL};
        static const char *const cxx_tail[] = {"prog.cpp", "-o", "prog", NULL};
        char **argv =
            cpp ? make_argv(o->cxx, o->cxxflags ? o->cxxflags : default_cxxflags, cxx_tail)
                : make_argv(o->cc, o->cflags ? o->cflags : default_cflags, c_tail);
        ev_limits_compile(&lim);
        rc = ev_sandbox_run(dir, argv, NULL, &lim, &r);
        free_argv(argv);
        s->compile_s = r.wall_s;
        s->protect = r.protect;
        s->compiler_out = joined(&r);
        if (rc == TM_OK && (r.end != EV_END_EXIT || r.exit_code != 0))
            s->outcome = EV_COMPILE_ERROR;
        int compiled = rc == TM_OK && s->outcome != EV_COMPILE_ERROR;
        ev_result_release(&r);
        if (compiled) {
            char *run_argv[] = {"./prog", NULL};
            ev_limits_run(&lim);
            if (o->run_timeout > 0)
                lim.wall_s = o->run_timeout;
            rc = ev_sandbox_run(dir, run_argv, NULL, &lim, &r);
            s->run_s = r.wall_s;
            s->protect &= r.protect;
            s->program_out = joined(&r);
            s->exit_code = r.exit_code;
            s->signal = r.signal;
            s->outcome = r.end == EV_END_EXIT     ? (r.exit_code == 0 ? EV_PASSED : EV_WRONG_ANSWER)
                         : r.end == EV_END_SIGNAL ? EV_RUNTIME_ERROR
                         : r.end == EV_END_TIMEOUT ? EV_TIMEOUT
                         : r.end == EV_END_BLOCKED ? EV_SANDBOX_VIOLATION
                                                   : EV_RUNTIME_ERROR;
            ev_result_release(&r);
        }
    }
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return rc;
}

/* ---- all samples ---------------------------------------------------------------------------- */

struct code_job {
    const struct ev_problem *p;
    struct ev_sample *s;
    size_t n;
    const struct ev_code_opts *o;
    atomic_size_t next;
    atomic_int err;
};

static void code_worker(void *ctx, int idx)
{
    struct code_job *j = ctx;
    (void)idx;
    for (;;) {
        size_t i = atomic_fetch_add(&j->next, 1);
        if (i >= j->n || atomic_load(&j->err))
            break;
        int rc = eval_sample(&j->p[j->s[i].problem], &j->s[i], j->o);
        if (rc) {
            int zero = 0;
            atomic_compare_exchange_strong(&j->err, &zero, rc);
        }
    }
}

int ev_code_run(const struct ev_problem *p, struct ev_sample *s, size_t n,
                const struct ev_code_opts *o)
{
    if (ev_sandbox_init() != TM_OK)
        return TM_ERR_INTERNAL;
    struct code_job j = {.p = p, .s = s, .n = n, .o = o};
    atomic_init(&j.next, 0);
    atomic_init(&j.err, TM_OK);
    int threads = o->threads > 0 ? o->threads : 1;
    tm_run_threads(threads, code_worker, &j);
    return atomic_load(&j.err);
}
