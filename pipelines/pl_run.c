/* pl_run: `tokenmill run PIPELINE.ini` (see pipeline.h). */
#include "pipeline.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <inttypes.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include <cjson/cJSON.h>

#include "dedup.h"
#include "eval.h"
#include "filter.h"
#include "ingest.h"
#include "tm_err.h"
#include "tm_fs.h"
#include "tm_ini.h"
#include "tm_log.h"
#include "tm_mem.h"
#include "tm_opt.h"
#include "tm_progress.h"
#include "tm_stats.h"
#include "tokenize.h"
#include "train.h"

enum stage {
    ST_INGEST,
    ST_FILTER,
    ST_DEDUP,
    ST_TRAIN_VOCAB,
    ST_TOKENIZE,
    ST_TRAIN,
    ST_EVAL_BPB,
    ST_EVAL_CODE,
    ST_REPORT,
    N_STAGES
};

struct stage_def {
    const char *name;
    const struct tm_command *cmd;
};

static const struct stage_def stage_defs[N_STAGES] = {
    {"ingest", &ing_ingest_command},     {"filter", &flt_filter_command},
    {"dedup", &ddp_dedup_command},       {"train-vocab", &tok_train_vocab_command},
    {"tokenize", &tok_tokenize_command}, {"train", &tr_train_command},
    {"eval-bpb", &ev_bpb_command},       {"eval-code", &ev_code_command},
    {"report", &ev_report_command},
};

#define MAX_KV   256
#define MAX_VARS 64

/* The passes over the settings: --set's [pipeline] keys first (so that they win over the
 * file's and are in place for every ${name} in it), then the file, then --set's stage keys. */
enum { SETS_PIPELINE, FILE_KEYS, SETS_STAGES };

struct kv {
    char *key, *value;
};

struct stage_cfg {
    int present;
    struct kv kv[MAX_KV];
    int n;
    void *check; /* the command's config, filled as keys arrive: validates them */
};

struct pipeline {
    int pass;                   /* SETS_PIPELINE, FILE_KEYS or SETS_STAGES (see run_cmd) */
    char *overridden[MAX_VARS]; /* [pipeline] keys given by --set: the file's values are ignored */
    int n_overridden;
    const char *path;
    char dir[4096]; /* the file's directory: ${pipeline_dir} */
    char *workdir, *vocab, *stages;
    struct kv vars[MAX_VARS];
    int nvars;
    struct stage_cfg st[N_STAGES];
};

static int stage_of(const char *name)
{
    for (int i = 0; i < N_STAGES; i++)
        if (strcmp(stage_defs[i].name, name) == 0)
            return i;
    return -1;
}

/* value with every ${name} replaced by the variable's value (a [pipeline] key set earlier), or
 * NULL with err set for an unknown or unterminated one. */
static char *interpolate(const struct pipeline *p, const char *value, char *err, size_t errlen)
{
    size_t cap = strlen(value) + 1, n = 0;
    char *out = tm_xmalloc(cap);
    for (const char *s = value; *s;) {
        if (s[0] == '$' && s[1] == '{') {
            const char *end = strchr(s + 2, '}');
            if (!end) {
                snprintf(err, errlen, "unterminated ${ in '%s'", value);
                free(out);
                return NULL;
            }
            size_t nl = (size_t)(end - s - 2);
            const char *v = NULL;
            for (int i = 0; i < p->nvars && !v; i++)
                if (strlen(p->vars[i].key) == nl && strncmp(p->vars[i].key, s + 2, nl) == 0)
                    v = p->vars[i].value;
            if (!v && nl == 7 && strncmp(s + 2, "workdir", 7) == 0)
                v = p->workdir;
            if (!v && nl == 12 && strncmp(s + 2, "pipeline_dir", 12) == 0)
                v = p->dir;
            if (!v) {
                snprintf(err, errlen, "unknown variable ${%.*s} (set it in [pipeline] first)",
                         (int)nl, s + 2);
                free(out);
                return NULL;
            }
            size_t vl = strlen(v);
            cap += vl;
            out = tm_xreallocarray(out, cap, 1);
            memcpy(out + n, v, vl);
            n += vl;
            s = end + 1;
        } else {
            out[n++] = *s++;
        }
    }
    out[n] = 0;
    return out;
}

static int pl_set(void *ctx, const char *section, const char *key, const char *raw, char *err,
                  size_t errlen)
{
    struct pipeline *p = ctx;
    int is_pipeline = strcmp(section, "pipeline") == 0;
    if ((p->pass == SETS_PIPELINE && !is_pipeline) || (p->pass == SETS_STAGES && is_pipeline))
        return TM_OK; /* applied in the other pass */
    if (is_pipeline && p->pass == FILE_KEYS)
        for (int i = 0; i < p->n_overridden; i++)
            if (strcmp(p->overridden[i], key) == 0)
                return TM_OK; /* --set gave it */
    if (is_pipeline && p->pass == SETS_PIPELINE && p->n_overridden < MAX_VARS)
        p->overridden[p->n_overridden++] = tm_xstrdup(key);
    char *value = interpolate(p, raw, err, errlen);
    if (!value)
        return TM_ERR_USAGE;
    int rc = TM_OK;
    if (strcmp(section, "pipeline") == 0) {
        char **slot = strcmp(key, "workdir") == 0  ? &p->workdir
                      : strcmp(key, "vocab") == 0  ? &p->vocab
                      : strcmp(key, "stages") == 0 ? &p->stages
                                                   : NULL;
        if (slot) {
            free(*slot);
            *slot = value;
            return TM_OK;
        }
        if (p->nvars == MAX_VARS) {
            snprintf(err, errlen, "more than %d variables", MAX_VARS);
            free(value);
            return TM_ERR_USAGE;
        }
        p->vars[p->nvars++] = (struct kv){tm_xstrdup(key), value};
        return TM_OK;
    }
    int s = stage_of(section);
    if (s < 0) {
        snprintf(err, errlen,
                 "unknown section [%s] (want [pipeline] or a stage: ingest, filter, dedup, "
                 "train-vocab, tokenize, train, eval-bpb, eval-code, report)",
                 section);
        rc = TM_ERR_USAGE;
    } else if (strcmp(key, "workdir") == 0) {
        snprintf(err, errlen, "workdir belongs in [pipeline], for every stage at once");
        rc = TM_ERR_USAGE;
    } else if (strcmp(key, "input-epoch") == 0) {
        snprintf(err, errlen, "input-epoch is the pipeline's own (its redo epochs), not a setting");
        rc = TM_ERR_USAGE;
    } else {
        struct stage_cfg *c = &p->st[s];
        const struct tm_command *cmd = stage_defs[s].cmd;
        if (!c->check) {
            c->check = tm_xcalloc(1, cmd->cfg_size ? cmd->cfg_size : 1);
            tm_opt_defaults(cmd->opts, c->check);
        }
        /* `inputs` (ingest's positional arguments) is the one key that is not an option. */
        if (!(s == ST_INGEST && strcmp(key, "inputs") == 0))
            rc = tm_opt_set(cmd->opts, c->check, key, value[0] ? value : NULL, err, errlen);
        if (rc == TM_OK && c->n == MAX_KV) {
            snprintf(err, errlen, "more than %d keys in [%s]", MAX_KV, section);
            rc = TM_ERR_USAGE;
        }
        if (rc == TM_OK) {
            c->present = 1;
            c->kv[c->n++] = (struct kv){tm_xstrdup(key), value};
            return TM_OK;
        }
    }
    free(value);
    return rc;
}

static void pipeline_free(struct pipeline *p)
{
    for (int i = 0; i < p->n_overridden; i++)
        free(p->overridden[i]);
    free(p->workdir);
    free(p->vocab);
    free(p->stages);
    for (int i = 0; i < p->nvars; i++) {
        free(p->vars[i].key);
        free(p->vars[i].value);
    }
    for (int s = 0; s < N_STAGES; s++) {
        for (int i = 0; i < p->st[s].n; i++) {
            free(p->st[s].kv[i].key);
            free(p->st[s].kv[i].value);
        }
        if (p->st[s].check) {
            tm_opt_free(stage_defs[s].cmd->opts, p->st[s].check);
            free(p->st[s].check);
        }
    }
}

/* ---- one stage's command line --------------------------------------------------------------- */

struct argv_buf {
    char **v;
    int n, cap;
};

static void push(struct argv_buf *a, char *s)
{
    if (a->n + 2 > a->cap) {
        a->cap = a->cap ? 2 * a->cap : 16;
        a->v = tm_xreallocarray(a->v, (size_t)a->cap, sizeof(char *));
    }
    a->v[a->n++] = s;
    a->v[a->n] = NULL;
}

static char *opt_arg(const char *key, const char *value)
{
    size_t n = strlen(key) + strlen(value) + 4;
    char *s = tm_xmalloc(n);
    snprintf(s, n, "--%s=%s", key, value);
    return s;
}

static int has_opt(const struct tm_command *cmd, const char *name)
{
    for (const struct tm_opt *o = cmd->opts; o && o->type != TM_OPT_END; o++)
        if (strcmp(o->name, name) == 0)
            return 1;
    return 0;
}

static int has_key(const struct stage_cfg *c, const char *key)
{
    for (int i = 0; i < c->n; i++)
        if (strcmp(c->kv[i].key, key) == 0)
            return 1;
    return 0;
}

/* argv for stage s: the command's name, --workdir, the pipeline's vocabulary where the stage
 * takes one and its section does not set it, the section's keys, then (ingest) the inputs. */
static void build_argv(const struct pipeline *p, int s, const struct tm_run *run, const char *extra,
                       const char *extra2, struct argv_buf *a)
{
    const struct tm_command *cmd = stage_defs[s].cmd;
    const struct stage_cfg *c = &p->st[s];
    push(a, tm_xstrdup(cmd->name));
    if (has_opt(cmd, "workdir"))
        push(a, opt_arg("workdir", p->workdir));
    if (s == ST_TRAIN_VOCAB && !has_key(c, "out"))
        push(a, opt_arg("out", p->vocab));
    if ((s == ST_TOKENIZE || s == ST_EVAL_BPB) && !has_key(c, "vocab"))
        push(a, opt_arg("vocab", p->vocab));
    /* Code tasks without samples of their own are completed by the workdir's model. */
    if (s == ST_EVAL_CODE && !has_key(c, "samples") && !has_key(c, "canonical") &&
        !has_key(c, "ckpt")) {
        push(a, opt_arg("ckpt", p->workdir));
        if (!has_key(c, "vocab"))
            push(a, opt_arg("vocab", p->vocab));
    }
    if (extra)
        push(a, tm_xstrdup(extra));
    if (extra2 && *extra2)
        push(a, tm_xstrdup(extra2));
    if (run->common.no_progress && has_opt(cmd, "no-progress"))
        push(a, tm_xstrdup("--no-progress"));
    if (run->common.quiet)
        push(a, tm_xstrdup("--quiet"));
    for (int i = 0; i < c->n; i++)
        if (!(s == ST_INGEST && strcmp(c->kv[i].key, "inputs") == 0))
            push(a, opt_arg(c->kv[i].key, c->kv[i].value));
    if (s == ST_INGEST) {
        for (int i = 0; i < c->n; i++) {
            if (strcmp(c->kv[i].key, "inputs") != 0)
                continue;
            char *copy = tm_xstrdup(c->kv[i].value), *save = NULL;
            for (char *t = strtok_r(copy, " \t", &save); t; t = strtok_r(NULL, " \t", &save))
                push(a, tm_xstrdup(t));
            free(copy);
        }
    }
}

static void free_argv(struct argv_buf *a)
{
    for (int i = 0; i < a->n; i++)
        free(a->v[i]);
    free(a->v);
    memset(a, 0, sizeof(*a));
}

/* ---- the command ---------------------------------------------------------------------------- */

struct run_options {
    struct tm_strlist set;
    char *from;
    char *only;
    int dry_run;
};

#define OPT(field) offsetof(struct run_options, field)

static const struct tm_opt run_opts[] = {
    {TM_OPT_LIST, "set", 0, OPT(set), "SECTION.KEY=VALUE",
     "override a key of the file (repeatable; after the file, in order)"},
    {TM_OPT_STR, "from", 0, OPT(from), "STAGE",
     "start at this stage (the earlier ones are skipped)"},
    {TM_OPT_STR, "only", 0, OPT(only), "STAGE", "run this stage alone"},
    {TM_OPT_FLAG, "dry-run", 'n', OPT(dry_run), NULL,
     "print the plan (what each stage would do, on which generations, and why; its command "
     "line) and change nothing"},
    {TM_OPT_END},
};

/* A stage section without keys ([filter] alone) still asks for its stage: the key callback never
 * sees it, so the section headers are read here (the file has parsed already). */
static void mark_sections(struct pipeline *p)
{
    char *data = NULL;
    size_t len = 0;
    if (tm_read_file(p->path, (size_t)1 << 20, &data, &len) != TM_OK)
        return;
    char *save = NULL;
    for (char *line = strtok_r(data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        line += strspn(line, " \t");
        if (*line != '[')
            continue;
        size_t n = strcspn(line + 1, "]");
        char name[64];
        snprintf(name, sizeof(name), "%.*s", (int)(n < 63 ? n : 63), line + 1);
        int st = stage_of(name);
        if (st >= 0)
            p->st[st].present = 1;
    }
    free(data);
}

/* ---- what each stage has to do ----------------------------------------------------------------
 */

/* WORKDIR/pipeline/state.json: for the stages without records of their own (train-vocab,
 * eval-bpb, eval-code, report), the signature of what their last successful run read: their
 * command line and the files it names, the newest checkpoint, the shards. */
static int file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static cJSON *state_load(const char *workdir)
{
    char path[4200], *text = NULL;
    size_t len = 0;
    snprintf(path, sizeof(path), "%s/pipeline/state.json", workdir);
    cJSON *j = NULL;
    if (file_exists(path) && tm_read_file(path, 1 << 20, &text, &len) == TM_OK)
        j = cJSON_ParseWithLength(text, len);
    free(text);
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        j = cJSON_CreateObject();
    }
    return j;
}

static int state_save(const char *workdir, cJSON *state)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/pipeline/state.json", workdir);
    char *text = cJSON_Print(state);
    if (!text)
        return TM_ERR_NOMEM;
    int rc = tm_write_atomic(path, text, strlen(text));
    cJSON_free(text);
    return rc;
}

static void hash_stat(XXH3_state_t *h, const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return;
    int64_t v[3] = {(int64_t)st.st_size, (int64_t)st.st_mtim.tv_sec, (int64_t)st.st_mtim.tv_nsec};
    XXH3_64bits_update(h, path, strlen(path) + 1);
    XXH3_64bits_update(h, v, sizeof(v));
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every entry of directory `dir` (name, size, mtime), in name order. */
static void hash_dir(XXH3_state_t *h, const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            names = tm_xreallocarray(names, cap, sizeof(char *));
        }
        names[n++] = tm_path_join(dir, e->d_name);
    }
    closedir(d);
    if (n > 1)
        qsort(names, n, sizeof(char *), cmp_name);
    for (size_t i = 0; i < n; i++) {
        hash_stat(h, names[i]);
        free(names[i]);
    }
    free(names);
}

/* What a stage without records of its own reads: its command line, every file the line names,
 * the vocabulary, the token shards and the checkpoints; settings_only: the command line alone
 * (train-vocab, whose vocabulary is its output). */
static void signature(const struct pipeline *p, const struct argv_buf *a, int settings_only,
                      char out[17])
{
    XXH3_state_t *h = XXH3_createState();
    XXH3_64bits_reset(h);
    for (int i = 0; i < a->n; i++) {
        if (!strcmp(a->v[i], "--quiet") || !strcmp(a->v[i], "--no-progress"))
            continue;
        XXH3_64bits_update(h, a->v[i], strlen(a->v[i]) + 1);
        const char *eq = strchr(a->v[i], '=');
        struct stat st;
        if (!settings_only && eq && stat(eq + 1, &st) == 0 && S_ISREG(st.st_mode))
            hash_stat(h, eq + 1);
    }
    if (settings_only)
        goto done;
    hash_stat(h, p->vocab);
    char dir[4200];
    snprintf(dir, sizeof(dir), "%s/tokens", p->workdir);
    hash_dir(h, dir);
    snprintf(dir, sizeof(dir), "%s/train", p->workdir);
    hash_dir(h, dir);
done:
    snprintf(out, 17, "%016" PRIx64, (uint64_t)XXH3_64bits_digest(h));
    XXH3_freeState(h);
}

/* The run's decision for one stage. */
struct decision {
    int run;          /* 1: run it */
    const char *flag; /* an option added to its command line (--redo, --fresh), or NULL */
    char why[1400];   /* the plan line */
    char sig[17];     /* signature-tracked stages: what to record after success */
    unsigned new_gen; /* ingest: the generation it would add or finish */
    char epoch[80];   /* dedup, tokenize: --input-epoch=LABEL of the decisions they read */
};

/* The redo epochs (state.json "epochs"): each time the filter or the dedup redoes every
 * generation, its epoch grows before it starts; the stages after it read that in their
 * --input-epoch label and so find every generation done under another label: they redo too.
 * A kill cannot lose such a redo, and a redo killed half-way goes on from where it was (the
 * generations it finished carry the new label). Epoch 0 (never redone) adds no label, so runs
 * of the stages by hand and by a pipeline mix freely until the first redo. */
static long epoch_of(cJSON *state, int s)
{
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(state, "epochs"), stage_defs[s].name);
    return cJSON_IsNumber(e) ? (long)e->valuedouble : 0;
}

static void epoch_bump(cJSON *state, int s)
{
    long next = epoch_of(state, s) + 1;
    cJSON *e = cJSON_GetObjectItemCaseSensitive(state, "epochs");
    if (!e)
        e = cJSON_AddObjectToObject(state, "epochs");
    cJSON_DeleteItemFromObjectCaseSensitive(e, stage_defs[s].name);
    cJSON_AddNumberToObject(e, stage_defs[s].name, (double)next);
}

static void epoch_arg(cJSON *state, int s, char *out, size_t n)
{
    long f = epoch_of(state, ST_FILTER), d = s == ST_TOKENIZE ? epoch_of(state, ST_DEDUP) : 0;
    out[0] = 0;
    if (s == ST_DEDUP && f)
        snprintf(out, n, "--input-epoch=f%ld", f);
    else if (s == ST_TOKENIZE && (f || d))
        snprintf(out, n, "--input-epoch=f%ld.d%ld", f, d);
}

/* Whether `vocab` is the file this pipeline's train-vocab wrote (state "train-vocab-out"). */
static int made_here(cJSON *state, const char *vocab)
{
    const cJSON *o = cJSON_GetObjectItemCaseSensitive(state, "train-vocab-out");
    return cJSON_IsString(o) && strcmp(o->valuestring, vocab) == 0;
}

/* Decides stage s from its own plan (the command's plan function) or, for the stages without
 * records, from the signature recorded after their last successful run. cause: what an earlier
 * stage of this run redid, or NULL. ran_before: some earlier stage runs in this run. */
static int decide(const struct pipeline *p, int s, const struct tm_run *run, cJSON *state,
                  const char *cause, int ran_before, unsigned pending_gen, struct decision *d)
{
    memset(d, 0, sizeof(*d));
    const struct tm_command *cmd = stage_defs[s].cmd;
    struct argv_buf a = {0};
    int rc = TM_OK;
    if (s == ST_TRAIN_VOCAB || s == ST_EVAL_BPB || s == ST_EVAL_CODE || s == ST_REPORT) {
        build_argv(p, s, run, NULL, NULL, &a);
        signature(p, &a, s == ST_TRAIN_VOCAB, d->sig);
        const cJSON *old = cJSON_GetObjectItemCaseSensitive(state, stage_defs[s].name);
        const char *was = cJSON_IsString(old) ? old->valuestring : NULL;
        if (s == ST_TRAIN_VOCAB) {
            if (!file_exists(p->vocab)) {
                d->run = 1;
                snprintf(d->why, sizeof(d->why), "%s does not exist yet", p->vocab);
            } else if (was && strcmp(was, d->sig) != 0 && !made_here(state, p->vocab)) {
                /* Another file than the one this pipeline made (a published vocabulary, say):
                 * never overwritten. */
                snprintf(d->why, sizeof(d->why), "%s exists (not made by this pipeline: kept)",
                         p->vocab);
            } else if (was && strcmp(was, d->sig) != 0) {
                d->run = 1;
                snprintf(d->why, sizeof(d->why),
                         "its settings changed: a new %s (tokenize redoes every generation, "
                         "train starts over)",
                         p->vocab);
            } else {
                snprintf(d->why, sizeof(d->why), "%s exists%s", p->vocab,
                         was ? " (made with these settings)" : "");
            }
        } else if (s == ST_REPORT) {
            char path[4200];
            snprintf(path, sizeof(path), "%s/report/report.json", p->workdir);
            d->run = ran_before || !was || strcmp(was, d->sig) != 0 || !file_exists(path);
            snprintf(d->why, sizeof(d->why), "%s",
                     ran_before                   ? "earlier stages ran in this run"
                     : !was || !file_exists(path) ? "no report yet"
                     : strcmp(was, d->sig) != 0   ? "its inputs or settings changed"
                                                  : "nothing changed since the last report");
        } else {
            d->run = !was || strcmp(was, d->sig) != 0;
            snprintf(d->why, sizeof(d->why), "%s",
                     !was     ? "not evaluated yet"
                     : d->run ? "the model, the shards or the settings changed since the last "
                                "evaluation"
                              : "nothing changed since the last evaluation");
        }
        free_argv(&a);
        return TM_OK;
    }
    /* Stages with a plan of their own. */
    epoch_arg(state, s, d->epoch, sizeof(d->epoch));
    build_argv(p, s, run, NULL, d->epoch, &a);
    struct tm_plan plan;
    rc = tm_command_plan(cmd, a.n, a.v, &plan);
    free_argv(&a);
    if (rc)
        return rc;
    d->run = plan.work;
    if (plan.stale) {
        /* The filter's decisions stand alone per document: only its stale generations again. */
        d->flag = s == ST_TRAIN ? "--fresh" : s == ST_FILTER ? "--redo-stale" : "--redo";
        d->run = 1;
        snprintf(d->why, sizeof(d->why), "%s; so %s: %s%s%s", plan.what, d->flag,
                 s == ST_TRAIN    ? "training starts over"
                 : s == ST_FILTER ? "those generations again"
                                  : "every generation again",
                 cause ? ", after " : "", cause ? cause : "");
    } else {
        snprintf(d->why, sizeof(d->why), "%s", plan.what);
    }
    /* A dry run: the generation ingest would add is new to every stage after it. */
    if (pending_gen && (s == ST_FILTER || s == ST_DEDUP || s == ST_TOKENIZE)) {
        size_t n = strlen(d->why);
        snprintf(d->why + n, sizeof(d->why) - n, "; generation %u, once ingest has run",
                 pending_gen);
        d->run = 1;
    }
    if (s == ST_INGEST)
        d->new_gen = plan.new_gen;
    return TM_OK;
}

/* ---- the run's log file ---------------------------------------------------------------------- */

/* Log lines go to stderr as always and to WORKDIR/logs/run-<time>-<pid>.log, through a stream
 * that writes to both (fopencookie). */
static ssize_t tee_write(void *cookie, const char *buf, size_t n)
{
    FILE *f = cookie;
    fwrite(buf, 1, n, stderr);
    fwrite(buf, 1, n, f);
    fflush(f);
    return (ssize_t)n;
}

static int tee_close(void *cookie)
{
    return fclose((FILE *)cookie);
}

static FILE *open_run_log(const char *workdir, char *path, size_t n)
{
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s/logs", workdir);
    if (tm_mkdirs(dir) != TM_OK)
        return NULL;
    char when[32];
    time_t now = time(NULL);
    strftime(when, sizeof(when), "%Y%m%dT%H%M%SZ", gmtime(&now));
    snprintf(path, n, "%s/run-%s-%ld.log", dir, when, (long)getpid());
    FILE *f = fopen(path, "a");
    if (!f)
        return NULL;
    cookie_io_functions_t io = {.write = tee_write, .close = tee_close};
    FILE *tee = fopencookie(f, "w", io);
    if (!tee) {
        fclose(f);
        return NULL;
    }
    setvbuf(tee, NULL, _IOLBF, 0);
    return tee;
}

static int run_cmd(void *vcfg, struct tm_run *run)
{
    struct run_options *opt = vcfg;
    const char *path = run->args[0];
    struct pipeline p;
    memset(&p, 0, sizeof(p));
    p.path = path;
    snprintf(p.dir, sizeof(p.dir), "%s", path);
    char *slash = strrchr(p.dir, '/');
    if (slash)
        *slash = 0;
    else
        snprintf(p.dir, sizeof(p.dir), ".");
    p.pass = SETS_PIPELINE;
    int rc = tm_ini_apply_sets(&opt->set, "--set", pl_set, &p);
    p.pass = FILE_KEYS;
    if (rc == TM_OK)
        rc = tm_ini_load(path, pl_set, &p);
    if (rc == TM_OK)
        mark_sections(&p);
    p.pass = SETS_STAGES;
    if (rc == TM_OK)
        rc = tm_ini_apply_sets(&opt->set, "--set", pl_set, &p);
    if (rc == TM_OK && !p.workdir) {
        tm_log_error("%s: [pipeline] has no workdir", path);
        rc = TM_ERR_USAGE;
    }
    int from = 0, only = -1;
    if (rc == TM_OK && opt->from && (from = stage_of(opt->from)) < 0) {
        tm_log_error("run: --from %s: not a stage", opt->from);
        rc = TM_ERR_USAGE;
    }
    if (rc == TM_OK && opt->only && (only = stage_of(opt->only)) < 0) {
        tm_log_error("run: --only %s: not a stage", opt->only);
        rc = TM_ERR_USAGE;
    }
    /* Which stages: [pipeline] stages, else every stage with a section. */
    int want[N_STAGES] = {0};
    if (rc == TM_OK && p.stages) {
        char *copy = tm_xstrdup(p.stages), *save = NULL;
        for (char *t = strtok_r(copy, " \t,", &save); t && rc == TM_OK;
             t = strtok_r(NULL, " \t,", &save)) {
            int s = stage_of(t);
            if (s < 0) {
                tm_log_error("%s: [pipeline] stages: '%s' is not a stage", path, t);
                rc = TM_ERR_USAGE;
            } else {
                want[s] = 1;
            }
        }
        free(copy);
        if (want[ST_TOKENIZE])
            want[ST_TRAIN_VOCAB] = 1; /* the vocabulary comes with tokenize when it is missing */
    } else if (rc == TM_OK) {
        for (int s = 0; s < N_STAGES; s++)
            want[s] = p.st[s].present;
        want[ST_TRAIN_VOCAB] |= want[ST_TOKENIZE];
    }
    if (rc == TM_OK && want[ST_INGEST] && !has_key(&p.st[ST_INGEST], "inputs") &&
        !has_key(&p.st[ST_INGEST], "default-corpus")) {
        tm_log_error("%s: [ingest] needs inputs (or default-corpus = yes)", path);
        rc = TM_ERR_USAGE;
    }
    if (rc) {
        pipeline_free(&p);
        return rc;
    }
    if (!p.vocab) {
        size_t n = strlen(p.workdir) + 32;
        p.vocab = tm_xmalloc(n);
        snprintf(p.vocab, n, "%s/vocab.tiktoken", p.workdir);
    }

    /* One run at a time per workdir, for the whole run (stages lock WORKDIR itself in turn). */
    int lock = -1;
    if (!opt->dry_run) {
        char ldir[4096];
        snprintf(ldir, sizeof(ldir), "%s/pipeline", p.workdir);
        if ((rc = tm_mkdirs(ldir)) == TM_OK && (lock = tm_lock_workdir(ldir)) < 0)
            rc = lock;
        if (rc) {
            pipeline_free(&p);
            return rc;
        }
    }
    char log_path[4400] = "";
    FILE *log = opt->dry_run ? NULL : open_run_log(p.workdir, log_path, sizeof(log_path));
    if (log) {
        tm_log_set_stream(log, isatty(2) ? 0 : 1);
        tm_log_info("run: %s: log in %s", path, log_path);
    }
    double t0 = tm_now();
    int ran = 0, skipped = 0, partial = 0, last = -1;
    unsigned pending_gen = 0;
    const char *cause = NULL; /* what an earlier stage of this run redid */
    cJSON *state = state_load(p.workdir);
    cJSON *stages = cJSON_AddArrayToObject(tm_stats_obj(run->stats, "run"), "stages");
    for (int s = 0; s < N_STAGES && rc == TM_OK; s++) {
        if (!want[s] || s < from ||
            (only >= 0 && s != only && !(only == ST_TOKENIZE && s == ST_TRAIN_VOCAB)))
            continue;
        /* Each stage is planned just before it runs, so it sees what the earlier ones did; a
         * dry run plans on the workdir as it is. */
        struct decision d;
        int drc = decide(&p, s, run, state, cause, ran > 0 || (opt->dry_run && last >= 0),
                         opt->dry_run ? pending_gen : 0, &d);
        if (drc) {
            tm_log_error("run: %s: cannot plan the stage (%s)", stage_defs[s].name,
                         tm_errname(drc));
            rc = drc;
            last = s;
            break;
        }
        if (s == ST_INGEST && d.run)
            pending_gen = d.new_gen;
        printf("run: %s: %s%s%s\n", stage_defs[s].name, d.run ? "" : "nothing to do: ", d.why,
               opt->dry_run && last >= 0 && s >= ST_TRAIN_VOCAB && s != ST_REPORT
                   ? " [as the workdir is now, before the stages above run]"
                   : "");
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "stage", stage_defs[s].name);
        cJSON_AddStringToObject(o, "plan", d.why);
        cJSON_AddItemToArray(stages, o);
        /* A filter or dedup redo starts a new epoch, recorded before it runs (see epoch_of). */
        if (d.run && d.flag && strncmp(d.flag, "--redo", 6) == 0 &&
            (s == ST_FILTER || s == ST_DEDUP)) {
            epoch_bump(state, s);
            cause = s == ST_FILTER ? "the filter's redo" : "the dedup's redo";
            if (!opt->dry_run && (rc = state_save(p.workdir, state)))
                break;
        }
        if (d.run && s == ST_TRAIN_VOCAB && file_exists(p.vocab))
            cause = "the new vocabulary";
        if (!d.run) {
            cJSON_AddStringToObject(o, "status", "nothing_to_do");
            skipped++;
            continue;
        }
        struct argv_buf a = {0};
        build_argv(&p, s, run, d.flag, d.epoch, &a);
        printf("run: %s:", stage_defs[s].name);
        for (int i = 0; i < a.n; i++)
            printf(" %s", a.v[i]);
        printf("\n");
        fflush(stdout);
        last = s;
        if (opt->dry_run) {
            cJSON_AddStringToObject(o, "status", "planned");
            free_argv(&a);
            continue;
        }
        double ts = tm_now();
        int src = tm_command_main(stage_defs[s].cmd, "tokenmill", a.n, a.v);
        free_argv(&a);
        cJSON_AddStringToObject(o, "status", tm_errname(src));
        cJSON_AddNumberToObject(o, "seconds", tm_now() - ts);
        ran++;
        if (src == TM_ERR_PARTIAL) {
            partial = 1;
        } else if (src != TM_OK) {
            tm_log_error("run: stage %s failed (%s); the later stages were not run",
                         stage_defs[s].name, tm_errname(src));
            rc = src;
        }
        if (rc == TM_OK && d.sig[0]) {
            cJSON_DeleteItemFromObjectCaseSensitive(state, stage_defs[s].name);
            cJSON_AddStringToObject(state, stage_defs[s].name, d.sig);
            if (s == ST_TRAIN_VOCAB) {
                cJSON_DeleteItemFromObjectCaseSensitive(state, "train-vocab-out");
                cJSON_AddStringToObject(state, "train-vocab-out", p.vocab);
            }
            int wrc = state_save(p.workdir, state);
            if (wrc) {
                tm_log_error("run: cannot record the state in %s/pipeline", p.workdir);
                rc = wrc;
            }
        }
    }
    cJSON_Delete(state);
    if (!opt->dry_run)
        tm_log_info("run: %d stages run, %d with nothing to do, %s", ran, skipped,
                    rc        ? tm_errname(rc)
                    : partial ? "done with input errors"
                              : "done");
    if (log) {
        tm_log_set_stream(NULL, -1);
        fclose(log);
    }
    if (lock >= 0)
        tm_unlock(lock);
    if (!opt->dry_run) {
        char skip_note[64] = "";
        if (skipped)
            snprintf(skip_note, sizeof(skip_note), " (%d with nothing to do)", skipped);
        printf("run: %s: %d stages in %.1f s%s, %s%s\n", p.workdir, ran, tm_now() - t0, skip_note,
               rc        ? "failed at "
               : partial ? "done with input errors"
                         : "done",
               rc && last >= 0 ? stage_defs[last].name : "");
        char report[4200];
        snprintf(report, sizeof(report), "%s/report/report.html", p.workdir);
        if (want[ST_REPORT] && file_exists(report))
            printf("run: the report: %s\n", report);
    }
    pipeline_free(&p);
    return rc ? rc : partial ? TM_ERR_PARTIAL : TM_OK;
}

const struct tm_command pl_run_command = {
    .name = "run",
    .summary = "run a pipeline file: every stage from ingest to report, incrementally",
    .synopsis = "PIPELINE.ini",
    .description =
        "Reads PIPELINE.ini: [pipeline] (workdir, stages, vocab, and variables for ${name}), then\n"
        "one section per stage (ingest, filter, dedup, train-vocab, tokenize, train, eval-bpb,\n"
        "eval-code, report) whose keys are that command's options, checked before anything\n"
        "runs; [ingest] inputs lists the input paths. Runs the stages in that order, each only\n"
        "when it has something new to do (its plan line says what and why), holding\n"
        "WORKDIR/pipeline/lock throughout (a concurrent run exits at once with the locked exit\n"
        "code), and stops at the first that fails. A stage whose settings changed redoes every\n"
        "generation, and the stages its output feeds redo theirs (see pipelines/pipeline.h).\n"
        "Exit status: 0 success, 1 failure, 2 usage, 3 done with input errors, 4 locked.",
    .opts = run_opts,
    .cfg_size = sizeof(struct run_options),
    .min_args = 1,
    .max_args = 1,
    .run = run_cmd,
};
