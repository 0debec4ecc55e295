/* ev_code_cmd.c: `tokenmill eval code`: compile-and-run evaluation of code completions, with
 * pass@k and the outcome of every sample (see eval.h). */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "eval.h"
#include "ev_sandbox.h"
#include "tm_buf.h"
#include "tm_err.h"
#include "tm_fs.h"
#include "tm_log.h"
#include "tm_mem.h"
#include "tm_opt.h"
#include "tm_progress.h"
#include "tm_stats.h"
#include "tm_thread.h"
#include "tm_utf8.h"
#include "tr_gen.h"
#include "tr_infer.h"

struct code_options {
    char *workdir;
    char *problems;
    char *samples;
    int canonical;
    char *ckpt;
    char *vocab;
    long n;
    double temperature;
    double top_p;
    long seed;
    long max_tokens;
    char *out;
    long threads;
    char *cc, *cxx, *cflags, *cxxflags;
    double timeout;
};

#define OPT(field) offsetof(struct code_options, field)

static const struct tm_opt code_opts[] = {
    {TM_OPT_STR, "workdir", 'w', OPT(workdir), "DIR",
     "keep the results in DIR/eval/code (unless --out says otherwise), for `tokenmill report`"},
    {TM_OPT_STR, "problems", 'p', OPT(problems), "FILE",
     "problems, JSONL: task_id, prompt, test, [canonical_solution], [language c|cpp] (required)"},
    {TM_OPT_STR, "samples", 0, OPT(samples), "FILE",
     "completions to evaluate, JSONL: task_id, completion (any number per task)"},
    {TM_OPT_FLAG, "canonical", 0, OPT(canonical), NULL,
     "evaluate each problem's canonical_solution (checks the problems and the harness)"},
    {TM_OPT_STR, "ckpt", 0, OPT(ckpt), "PATH", "generate the completions with this checkpoint"},
    {TM_OPT_STR, "vocab", 0, OPT(vocab), "FILE", "the checkpoint's .tiktoken file (with --ckpt)"},
    {TM_OPT_INT, "samples-per-task", 'n', OPT(n), "N", "completions generated per task", "1", 1,
     100000},
    {TM_OPT_DOUBLE, "temperature", 't', OPT(temperature), "T",
     "sampling temperature (-1: 0 for one sample per task, else 0.8)", "-1", -1, 100},
    {TM_OPT_DOUBLE, "top-p", 0, OPT(top_p), "P", "nucleus sampling mass", "0.95", 1e-6, 1},
    {TM_OPT_INT, "seed", 0, OPT(seed), "N", "sampling seed (sample i of a task uses seed + i)", "1",
     0, 9.2e18},
    {TM_OPT_INT, "max-tokens", 0, OPT(max_tokens), "N", "the most tokens per completion", "384", 1,
     1 << 20},
    {TM_OPT_STR, "out", 'o', OPT(out), "DIR",
     "write results.jsonl (every sample) and summary.json into DIR"},
    {TM_OPT_INT, "threads", 'j', OPT(threads), "N", "samples evaluated at once (0: one per core)",
     "0", 0, 256},
    {TM_OPT_STR, "cc", 0, OPT(cc), "PATH", "C compiler", "/usr/bin/gcc"},
    {TM_OPT_STR, "cxx", 0, OPT(cxx), "PATH", "C++ compiler", "/usr/bin/g++"},
    {TM_OPT_STR, "cflags", 0, OPT(cflags), "FLAGS", "C flags", "-std=c11 -O1 -Wall"},
    {TM_OPT_STR, "cxxflags", 0, OPT(cxxflags), "FLAGS", "C++ flags", "-std=c++17 -O1 -Wall"},
    {TM_OPT_DOUBLE, "timeout", 0, OPT(timeout), "SECONDS", "wall-clock limit of each test run",
     "10", 0.1, 3600},
    {TM_OPT_END},
};

/* ---- samples from a file -------------------------------------------------------------------- */

static int find_task(const struct ev_problem *p, size_t np, const char *id)
{
    for (size_t i = 0; i < np; i++)
        if (strcmp(p[i].task_id, id) == 0)
            return (int)i;
    return -1;
}

static void push_sample(struct ev_sample **s, size_t *n, size_t *cap, int problem, char *text)
{
    if (*n == *cap) {
        *cap = *cap ? 2 * *cap : 64;
        *s = tm_xreallocarray(*s, *cap, sizeof(**s));
    }
    (*s)[*n] = (struct ev_sample){.problem = problem, .completion = text};
    (*n)++;
}

struct samples_read {
    const char *path;
    const struct ev_problem *p;
    size_t np;
    struct ev_sample **s;
    size_t *n, cap;
};

static int add_sample(void *ctx, const cJSON *o, long lineno)
{
    struct samples_read *r = ctx;
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(o, "task_id");
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(o, "completion");
    if (!cJSON_IsString(id) || !cJSON_IsString(c)) {
        tm_log_error("%s:%ld: want an object with string task_id and completion", r->path, lineno);
        return TM_ERR_FORMAT;
    }
    int k = find_task(r->p, r->np, id->valuestring);
    if (k < 0) {
        tm_log_error("%s:%ld: task_id '%s' is not a problem", r->path, lineno, id->valuestring);
        return TM_ERR_FORMAT;
    }
    push_sample(r->s, r->n, &r->cap, k, tm_xstrdup(c->valuestring));
    return TM_OK;
}

static int load_samples(const char *path, const struct ev_problem *p, size_t np,
                        struct ev_sample **s, size_t *n)
{
    struct samples_read r = {.path = path, .p = p, .np = np, .s = s, .n = n};
    return ev_jsonl_read(path, add_sample, &r);
}

/* ---- samples from a checkpoint -------------------------------------------------------------- */

static int generate_samples(const struct code_options *opt, const struct ev_problem *p, size_t np,
                            struct ev_sample **s, size_t *n, int show_progress)
{
    struct tr_model m;
    uint64_t hash = 0;
    int rc = tr_ckpt_open(opt->ckpt, &m, &hash);
    if (rc)
        return rc;
    int threads = opt->threads > 0 ? (int)opt->threads : tm_thread_count(0);
    m.threads = threads;
    m.gemm.threads = threads;
    struct tok_tokenizer tk;
    struct tok_encoder *enc = NULL;
    if ((rc = tok_tokenizer_load(opt->vocab, -1, &tk)))
        goto out;
    if (hash && tk.hash != hash) {
        tm_log_error("eval code: %s is not the tokenizer the model was trained with", opt->vocab);
        rc = TM_ERR_USAGE;
        goto out;
    }
    if ((rc = tok_tokenizer_encoder(&tk, &enc)))
        goto out;
    double temp = opt->temperature >= 0 ? opt->temperature : (opt->n > 1 ? 0.8 : 0.0);
    /* A completion is a function body: it ends at a closing brace in the first column. */
    static const char *const stops[] = {"\n}"};
    size_t cap = 0;
    struct tm_progress prog;
    tm_progress_init(&prog, "generate", (uint64_t)np * (uint64_t)opt->n, 0, show_progress, 0);
    for (size_t i = 0; rc == TM_OK && i < np; i++)
        for (long k = 0; rc == TM_OK && k < opt->n; k++) {
            struct tr_complete_opts co = {.max_tokens = (int)opt->max_tokens,
                                          .temperature = (float)temp,
                                          .top_p = (float)opt->top_p,
                                          .seed = (uint64_t)opt->seed + (uint64_t)k,
                                          .stops = stops,
                                          .n_stops = 1,
                                          .id_end = tk.id_end};
            struct tm_buf text;
            tm_buf_init(&text, 0);
            struct tr_complete_result res;
            rc = tr_complete(&m, enc, tk.eot, p[i].prompt, &co, &text, &res);
            if (rc == TM_ERR_TOOBIG) { /* the prompt fills the context: an empty completion */
                text.len = 0;
                rc = TM_OK;
            }
            if (rc == TM_OK) {
                if (res.by_stop_text) /* the body's closing brace was the stop text */
                    tm_buf_append(&text, "\n}\n", 3);
                /* A model can emit any bytes: the completion is kept as valid UTF-8 (U+FFFD
                 * for what is not), as results.jsonl needs and as a compiler would see it
                 * anyway in a string or comment. */
                struct tm_buf clean;
                tm_buf_init(&clean, 0);
                rc = tm_utf8_repair(text.data, text.len, &clean, NULL);
                if (rc == TM_OK && (rc = tm_buf_append(&clean, "", 1)) == TM_OK)
                    push_sample(s, n, &cap, (int)i, tm_xstrdup(clean.data));
                tm_buf_release(&clean);
            }
            tm_buf_release(&text);
            tm_progress_add(&prog, 1, 0);
        }
    tm_progress_finish(&prog);
out:
    tok_encoder_free(enc);
    tok_tokenizer_release(&tk);
    tr_model_release(&m);
    return rc;
}

/* ---- results -------------------------------------------------------------------------------- */

static cJSON *sample_json(const struct ev_problem *p, const struct ev_sample *s, size_t index)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "task_id", p[s->problem].task_id);
    cJSON_AddNumberToObject(o, "sample", (double)index);
    cJSON_AddStringToObject(o, "outcome", ev_outcome_names[s->outcome]);
    if (s->outcome == EV_WRONG_ANSWER)
        cJSON_AddNumberToObject(o, "exit_code", s->exit_code);
    if (s->signal)
        cJSON_AddNumberToObject(o, "signal", s->signal);
    cJSON_AddNumberToObject(o, "compile_s", s->compile_s);
    cJSON_AddNumberToObject(o, "run_s", s->run_s);
    cJSON_AddStringToObject(o, "completion", s->completion);
    if (s->compiler_out && s->compiler_out[0])
        cJSON_AddStringToObject(o, "compiler_output", s->compiler_out);
    if (s->program_out && s->program_out[0])
        cJSON_AddStringToObject(o, "program_output", s->program_out);
    return o;
}

static int write_results(const char *dir, const struct ev_problem *p, const struct ev_sample *s,
                         size_t n, const cJSON *summary)
{
    int rc = tm_mkdirs(dir);
    if (rc)
        return rc;
    struct tm_buf b;
    tm_buf_init(&b, 0);
    size_t *seen = tm_xcalloc(n ? n : 1, sizeof(size_t));
    for (size_t i = 0; i < n; i++) {
        cJSON *o = sample_json(p, &s[i], seen[s[i].problem]++);
        char *line = cJSON_PrintUnformatted(o);
        tm_buf_append(&b, line, strlen(line));
        tm_buf_append(&b, "\n", 1);
        cJSON_free(line);
        cJSON_Delete(o);
    }
    free(seen);
    char path[4200];
    snprintf(path, sizeof(path), "%s/results.jsonl", dir);
    rc = tm_write_atomic(path, b.data, b.len);
    tm_buf_release(&b);
    if (rc)
        return rc;
    char *text = cJSON_Print(summary);
    snprintf(path, sizeof(path), "%s/summary.json", dir);
    rc = tm_write_atomic(path, text, strlen(text));
    cJSON_free(text);
    return rc;
}

static int code_cmd(void *vcfg, struct tm_run *run)
{
    struct code_options *opt = vcfg;
    int sources = (opt->samples != NULL) + (opt->canonical != 0) + (opt->ckpt != NULL);
    if (!opt->problems || sources != 1 || (opt->ckpt && !opt->vocab)) {
        tm_log_error("eval code: --problems and exactly one of --samples, --canonical, --ckpt "
                     "(with --vocab) are required");
        return TM_ERR_USAGE;
    }
    struct ev_problem *p = NULL;
    size_t np = 0, n = 0;
    struct ev_sample *s = NULL;
    cJSON *summary = NULL;
    int rc = ev_problems_load(opt->problems, &p, &np);
    if (rc)
        return rc;
    if (opt->canonical) {
        size_t cap = 0;
        for (size_t i = 0; rc == TM_OK && i < np; i++) {
            if (!p[i].canonical) {
                tm_log_error("eval code: %s: task %s has no canonical_solution", opt->problems,
                             p[i].task_id);
                rc = TM_ERR_USAGE;
            } else {
                push_sample(&s, &n, &cap, (int)i, tm_xstrdup(p[i].canonical));
            }
        }
    } else if (opt->samples) {
        rc = load_samples(opt->samples, p, np, &s, &n);
    } else {
        rc = generate_samples(opt, p, np, &s, &n, !run->common.no_progress && !run->common.quiet);
    }
    if (rc)
        goto out;
    struct ev_code_opts o = {.cc = opt->cc,
                             .cxx = opt->cxx,
                             .cflags = opt->cflags,
                             .cxxflags = opt->cxxflags,
                             .run_timeout = opt->timeout,
                             .threads = opt->threads > 0 ? (int)opt->threads : tm_thread_count(0)};
    double t0 = tm_now();
    if ((rc = ev_code_run(p, s, n, &o)))
        goto out;
    double secs = tm_now() - t0;

    /* Per task: samples and passes; pass@k for every k up to the smallest sample count. */
    int *per = tm_xcalloc(np, sizeof(int)), *ok = tm_xcalloc(np, sizeof(int));
    long outcomes[EV_N_OUTCOMES] = {0};
    unsigned prot = EV_P_ALL;
    for (size_t i = 0; i < n; i++) {
        per[s[i].problem]++;
        ok[s[i].problem] += s[i].outcome == EV_PASSED;
        outcomes[s[i].outcome]++;
        prot &= s[i].protect;
    }
    int kmax = 0, tasks = 0;
    for (size_t i = 0; i < np; i++)
        if (per[i]) {
            kmax = tasks++ == 0 || per[i] < kmax ? per[i] : kmax;
        }
    summary = cJSON_CreateObject();
    cJSON_AddStringToObject(summary, "problems", opt->problems);
    cJSON_AddStringToObject(summary, "source",
                            opt->canonical ? "canonical"
                            : opt->samples ? opt->samples
                                           : opt->ckpt);
    cJSON_AddNumberToObject(summary, "tasks", tasks);
    cJSON_AddNumberToObject(summary, "samples", (double)n);
    cJSON *pk = cJSON_AddObjectToObject(summary, "pass_at_k");
    printf("tasks %d, samples %zu, %.1f s (%.2f samples/s, %d workers)\n\n", tasks, n, secs,
           secs > 0 ? (double)n / secs : 0.0, o.threads);
    for (int k = 1; k <= kmax; k++) {
        double sum = 0;
        for (size_t i = 0; i < np; i++)
            if (per[i])
                sum += ev_pass_at_k(per[i], ok[i], k);
        char name[24];
        snprintf(name, sizeof(name), "%d", k);
        cJSON_AddNumberToObject(pk, name, sum / tasks);
        if (k <= 10 || k == kmax)
            printf("pass@%-3d %.4f\n", k, sum / tasks);
    }
    cJSON *oc = cJSON_AddObjectToObject(summary, "outcomes");
    printf("\n");
    for (int i = 0; i < EV_N_OUTCOMES; i++) {
        cJSON_AddNumberToObject(oc, ev_outcome_names[i], (double)outcomes[i]);
        printf("%-18s %ld\n", ev_outcome_names[i], outcomes[i]);
    }
    char desc[256];
    ev_sandbox_describe(prot, desc, sizeof(desc));
    printf("\nsandbox: %s\n", desc);
    if (prot != EV_P_ALL)
        tm_log_warn("eval code: the sandbox lacked protections on this machine: %s", desc);
    cJSON_AddStringToObject(summary, "sandbox", desc);
    cJSON_AddNumberToObject(summary, "seconds", secs);
    cJSON_AddNumberToObject(summary, "samples_per_s", secs > 0 ? (double)n / secs : 0.0);
    cJSON_AddNumberToObject(summary, "workers", o.threads);
    free(per);
    free(ok);
    char def_out[4000];
    const char *out_dir = opt->out;
    if (!out_dir && opt->workdir) {
        snprintf(def_out, sizeof(def_out), "%s/eval/code", opt->workdir);
        out_dir = def_out;
    }
    if (out_dir && (rc = write_results(out_dir, p, s, n, summary)))
        goto out;
    cJSON *st = tm_stats_obj(run->stats, "eval_code");
    tm_stats_set_num(st, "samples", (double)n);
    tm_stats_set_num(st, "passed", (double)outcomes[EV_PASSED]);
    tm_stats_set_num(st, "seconds", secs);
out:
    cJSON_Delete(summary);
    for (size_t i = 0; i < n; i++) {
        free(s[i].completion);
        free(s[i].compiler_out);
        free(s[i].program_out);
    }
    free(s);
    ev_problems_free(p, np);
    return rc;
}

const struct tm_command ev_code_command = {
    .name = "eval code",
    .summary = "compile and run code completions in a sandbox: pass@k and outcomes",
    .synopsis = "",
    .description =
        "Builds each sample's program (prompt + completion + test), compiles it with --cc or\n"
        "--cxx and runs it, both in the sandbox (namespaces, private root, uid nobody,\n"
        "cgroups, rlimits, seccomp, timeout; what this machine could not give is printed).\n"
        "Each sample's outcome is passed, compile_error, runtime_error, wrong_answer, timeout\n"
        "or sandbox_violation. Samples come from --samples, from the problems' canonical\n"
        "solutions (--canonical), or are generated with --ckpt (n per task). Prints pass@k\n"
        "(Chen et al. 2021) for every k up to n and the outcome counts; --out writes\n"
        "results.jsonl and summary.json.",
    .opts = code_opts,
    .cfg_size = sizeof(struct code_options),
    .min_args = 0,
    .max_args = 0,
    .run = code_cmd,
};
