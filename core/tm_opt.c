/* tm_opt: table-driven option parsing, generated help, and the command runner. */
#include "tm_opt.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <strings.h>
#include <unistd.h>
#include <time.h>
#include <fcntl.h>

#include "tm_err.h"
#include "tm_fs.h"
#include "tm_log.h"
#include "tm_mem.h"
#include "tm_progress.h"
#include "tm_stats.h"

#define OPT_ERR_MAX 512
/* Help text starts at this column at most; longer option names put it on the next line. */
#define HELP_COL_MAX 32

/* Kept here, in one table, so every command parses them and --help lists them. */
static const struct tm_opt common_opts[] = {
    {TM_OPT_FLAG, "quiet", 'q', offsetof(struct tm_common, quiet), NULL,
     "print only warnings and errors", NULL, 0, 0, NULL},
    {TM_OPT_FLAG, "verbose", 'v', offsetof(struct tm_common, verbose), NULL, "print debug messages",
     NULL, 0, 0, NULL},
    {TM_OPT_STR, "stats-json", 0, offsetof(struct tm_common, stats_json), "FILE",
     "write run statistics as JSON to FILE", NULL, 0, 0, NULL},
    {TM_OPT_FLAG, "no-progress", 0, offsetof(struct tm_common, no_progress), NULL,
     "do not show progress", NULL, 0, 0, NULL},
    {TM_OPT_FLAG, "help", 'h', offsetof(struct tm_common, help), NULL, "show this help and exit",
     NULL, 0, 0, NULL},
    {TM_OPT_END, NULL, 0, 0, NULL, NULL, NULL, 0, 0, NULL},
};

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* Finds `name[0..len)`; "no-NAME" finds flag NAME with *negated set. */
static const struct tm_opt *opt_find(const struct tm_opt *opts, const char *name, size_t len,
                                     int *negated)
{
    *negated = 0;
    for (const struct tm_opt *o = opts; o && o->type != TM_OPT_END; o++)
        if (strlen(o->name) == len && memcmp(o->name, name, len) == 0)
            return o;
    if (len > 3 && memcmp(name, "no-", 3) == 0) {
        for (const struct tm_opt *o = opts; o && o->type != TM_OPT_END; o++)
            if (o->type == TM_OPT_FLAG && strlen(o->name) == len - 3 &&
                memcmp(o->name, name + 3, len - 3) == 0) {
                *negated = 1;
                return o;
            }
    }
    return NULL;
}

static const struct tm_opt *opt_find_short(const struct tm_opt *opts, char c)
{
    for (const struct tm_opt *o = opts; o && o->type != TM_OPT_END; o++)
        if (o->short_name && o->short_name == c)
            return o;
    return NULL;
}

static int parse_bool(const char *s, int *out)
{
    static const char *const yes[] = {"1", "true", "yes", "on"};
    static const char *const no[] = {"0", "false", "no", "off"};
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = 1;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = 0;
            return 0;
        }
    }
    return -1;
}

/* Decimal with an optional K/M/G/T suffix (powers of 1024), then an optional "B" or "iB". */
static int parse_size(const char *s, size_t *out)
{
    if (!isdigit((unsigned char)*s))
        return -1;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno)
        return -1;
    unsigned shift = 0;
    switch (tolower((unsigned char)*end)) {
    case 'k':
        shift = 10;
        break;
    case 'm':
        shift = 20;
        break;
    case 'g':
        shift = 30;
        break;
    case 't':
        shift = 40;
        break;
    default:
        break;
    }
    if (shift)
        end++;
    if (shift && strcasecmp(end, "ib") == 0)
        end += 2;
    else if (strcasecmp(end, "b") == 0)
        end += 1;
    if (*end != '\0')
        return -1;
    if (v > (unsigned long long)(SIZE_MAX >> shift))
        return -1;
    *out = (size_t)v << shift;
    return 0;
}

/* Prints a range bound without exponent notation for whole numbers. */
static void format_bound(double v, char *out, size_t cap)
{
    /* No floor()/fabs(): tm_core does not link libm. */
    if (v > -1e18 && v < 1e18 && v == (double)(long long)v)
        snprintf(out, cap, "%.0f", v);
    else
        snprintf(out, cap, "%g", v);
}

static int check_range(const struct tm_opt *o, double v, const char *value, char *err,
                       size_t errlen)
{
    if (!(o->min < o->max) || (v >= o->min && v <= o->max))
        return TM_OK;
    char lo[32], hi[32];
    format_bound(o->min, lo, sizeof(lo));
    format_bound(o->max, hi, sizeof(hi));
    set_err(err, errlen, "option --%s: '%s' is out of range (%s to %s)", o->name, value, lo, hi);
    return TM_ERR_USAGE;
}

static void choices_text(const struct tm_opt *o, char *out, size_t cap)
{
    size_t n = 0;
    out[0] = '\0';
    for (const char *const *c = o->choices; c && *c && n < cap; c++) {
        int w = snprintf(out + n, cap - n, "%s%s", c == o->choices ? "" : "|", *c);
        if (w < 0)
            break;
        n += (size_t)w;
    }
}

/* Stores `value` into the field of `o` in `cfg`. `negated` is --no-NAME. */
static int opt_apply(const struct tm_opt *o, void *cfg, const char *value, int negated, char *err,
                     size_t errlen)
{
    char *field = (char *)cfg + o->offset;
    if (negated && value) {
        set_err(err, errlen, "option --no-%s takes no value", o->name);
        return TM_ERR_USAGE;
    }
    if (o->type == TM_OPT_FLAG) {
        int v = !negated;
        if (value && parse_bool(value, &v) != 0) {
            set_err(err, errlen, "option --%s: invalid boolean '%s' (use yes or no)", o->name,
                    value);
            return TM_ERR_USAGE;
        }
        *(int *)field = v;
        return TM_OK;
    }
    if (!value) {
        set_err(err, errlen, "option --%s needs a value", o->name);
        return TM_ERR_USAGE;
    }
    switch (o->type) {
    case TM_OPT_STR: {
        char **s = (char **)field;
        free(*s);
        *s = tm_xstrdup(value);
        return TM_OK;
    }
    case TM_OPT_INT: {
        char *end;
        errno = 0;
        long v = strtol(value, &end, 10);
        if (errno || end == value || *end != '\0') {
            set_err(err, errlen, "option --%s: invalid integer '%s'", o->name, value);
            return TM_ERR_USAGE;
        }
        int rc = check_range(o, (double)v, value, err, errlen);
        if (rc)
            return rc;
        *(long *)field = v;
        return TM_OK;
    }
    case TM_OPT_SIZE: {
        size_t v;
        if (parse_size(value, &v) != 0) {
            set_err(err, errlen, "option --%s: invalid size '%s'", o->name, value);
            return TM_ERR_USAGE;
        }
        int rc = check_range(o, (double)v, value, err, errlen);
        if (rc)
            return rc;
        *(size_t *)field = v;
        return TM_OK;
    }
    case TM_OPT_DOUBLE: {
        char *end;
        errno = 0;
        double v = strtod(value, &end);
        if (errno || end == value || *end != '\0' || !isfinite(v)) {
            set_err(err, errlen, "option --%s: invalid number '%s'", o->name, value);
            return TM_ERR_USAGE;
        }
        int rc = check_range(o, v, value, err, errlen);
        if (rc)
            return rc;
        *(double *)field = v;
        return TM_OK;
    }
    case TM_OPT_ENUM:
        for (int i = 0; o->choices && o->choices[i]; i++) {
            if (strcmp(value, o->choices[i]) == 0) {
                *(int *)field = i;
                return TM_OK;
            }
        }
        {
            char list[256];
            choices_text(o, list, sizeof(list));
            set_err(err, errlen, "option --%s: unknown choice '%s' (one of %s)", o->name, value,
                    list);
        }
        return TM_ERR_USAGE;
    case TM_OPT_LIST: {
        struct tm_strlist *l = (struct tm_strlist *)field;
        l->items = tm_xreallocarray(l->items, l->count + 1, sizeof(*l->items));
        l->items[l->count++] = tm_xstrdup(value);
        return TM_OK;
    }
    default:
        set_err(err, errlen, "option --%s has an unknown type %d", o->name, (int)o->type);
        return TM_ERR_INTERNAL;
    }
}

int tm_opt_defaults(const struct tm_opt *opts, void *cfg)
{
    char err[OPT_ERR_MAX];
    for (const struct tm_opt *o = opts; o && o->type != TM_OPT_END; o++) {
        if (!o->def)
            continue;
        if (opt_apply(o, cfg, o->def, 0, err, sizeof(err)) != TM_OK) {
            tm_log_error("bad default in option table: %s", err);
            return TM_ERR_USAGE;
        }
    }
    return TM_OK;
}

int tm_opt_set(const struct tm_opt *opts, void *cfg, const char *name, const char *value, char *err,
               size_t errlen)
{
    int negated;
    const struct tm_opt *o = opt_find(opts, name, strlen(name), &negated);
    if (!o) {
        set_err(err, errlen, "unknown option '%s'", name);
        return TM_ERR_USAGE;
    }
    return opt_apply(o, cfg, value, negated, err, errlen);
}

void tm_opt_free(const struct tm_opt *opts, void *cfg)
{
    for (const struct tm_opt *o = opts; o && o->type != TM_OPT_END; o++) {
        char *field = (char *)cfg + o->offset;
        if (o->type == TM_OPT_STR) {
            char **s = (char **)field;
            free(*s);
            *s = NULL;
        } else if (o->type == TM_OPT_LIST) {
            struct tm_strlist *l = (struct tm_strlist *)field;
            for (size_t i = 0; i < l->count; i++)
                free(l->items[i]);
            free(l->items);
            l->items = NULL;
            l->count = 0;
        }
    }
}

/* ---- help ---- */

/* The left column: "  -x, --name METAVAR" or "      --name METAVAR". */
static void help_left(const struct tm_opt *o, char *out, size_t cap)
{
    char meta[256] = "";
    if (o->type == TM_OPT_ENUM) {
        char list[240];
        choices_text(o, list, sizeof(list));
        snprintf(meta, sizeof(meta), " {%s}", list);
    } else if (o->type != TM_OPT_FLAG) {
        snprintf(meta, sizeof(meta), " %s", o->metavar ? o->metavar : "VALUE");
    }
    if (o->short_name)
        snprintf(out, cap, "  -%c, --%s%s", o->short_name, o->name, meta);
    else
        snprintf(out, cap, "      --%s%s", o->name, meta);
}

static size_t help_width(const struct tm_opt *opts, size_t width)
{
    char left[512];
    for (const struct tm_opt *o = opts; o && o->type != TM_OPT_END; o++) {
        help_left(o, left, sizeof(left));
        size_t w = strlen(left);
        if (w > width && w <= HELP_COL_MAX)
            width = w;
    }
    return width;
}

static void help_table(const struct tm_opt *opts, size_t width, FILE *out)
{
    char left[512];
    for (const struct tm_opt *o = opts; o && o->type != TM_OPT_END; o++) {
        help_left(o, left, sizeof(left));
        size_t w = strlen(left);
        if (w > width)
            fprintf(out, "%s\n%*s", left, (int)(width + 2), "");
        else
            fprintf(out, "%s%*s", left, (int)(width + 2 - w), "");
        fputs(o->help ? o->help : "", out);
        if (o->type == TM_OPT_FLAG) {
            int on = 0;
            if (o->def && parse_bool(o->def, &on) == 0 && on)
                fprintf(out, " (default: on; --no-%s turns it off)", o->name);
        } else if (o->def) {
            fprintf(out, " (default: %s)", o->def);
        }
        fputc('\n', out);
    }
}

void tm_opt_help(const struct tm_command *cmd, const char *prog, FILE *out)
{
    fprintf(out, "usage: %s %s [options]", prog, cmd->name);
    if (cmd->synopsis && *cmd->synopsis)
        fprintf(out, " %s", cmd->synopsis);
    fputc('\n', out);
    if (cmd->summary && *cmd->summary)
        fprintf(out, "\n%s\n", cmd->summary);
    if (cmd->description && *cmd->description) {
        size_t n = strlen(cmd->description);
        fprintf(out, "\n%s%s", cmd->description, cmd->description[n - 1] == '\n' ? "" : "\n");
    }
    /* One column width for both tables so they line up. */
    size_t width = help_width(common_opts, help_width(cmd->opts, 0));
    if (cmd->opts && cmd->opts[0].type != TM_OPT_END) {
        fputs("\nOptions:\n", out);
        help_table(cmd->opts, width, out);
    }
    fputs("\nCommon options:\n", out);
    help_table(common_opts, width, out);
}

/* ---- the command runner ---- */

struct parse_state {
    const struct tm_command *cmd;
    const char *prog;
    void *cfg;
    struct tm_run *run;
    char err[OPT_ERR_MAX];
};

/* Looks a long name up in the command's table, then in the common one. */
static const struct tm_opt *find_long(struct parse_state *ps, const char *name, size_t len,
                                      int *negated, void **base)
{
    const struct tm_opt *o = opt_find(ps->cmd->opts, name, len, negated);
    if (o) {
        *base = ps->cfg;
        return o;
    }
    o = opt_find(common_opts, name, len, negated);
    *base = &ps->run->common;
    return o;
}

static const struct tm_opt *find_short(struct parse_state *ps, char c, void **base)
{
    const struct tm_opt *o = opt_find_short(ps->cmd->opts, c);
    if (o) {
        *base = ps->cfg;
        return o;
    }
    *base = &ps->run->common;
    return opt_find_short(common_opts, c);
}

/* Parses "--name", "--name=value" or "--name value" at argv[*i]. */
static int parse_long(struct parse_state *ps, int argc, char **argv, int *i)
{
    const char *arg = argv[*i] + 2;
    const char *eq = strchr(arg, '=');
    size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
    int negated;
    void *base;
    const struct tm_opt *o = find_long(ps, arg, len, &negated, &base);
    if (!o) {
        set_err(ps->err, sizeof(ps->err), "unknown option --%.*s", (int)len, arg);
        return TM_ERR_USAGE;
    }
    const char *value = eq ? eq + 1 : NULL;
    if (!eq && o->type != TM_OPT_FLAG) {
        if (*i + 1 >= argc) {
            set_err(ps->err, sizeof(ps->err), "option --%s needs a value", o->name);
            return TM_ERR_USAGE;
        }
        value = argv[++*i];
    }
    return opt_apply(o, base, value, negated, ps->err, sizeof(ps->err));
}

/* Parses "-x", "-x value", "-xVALUE" and grouped flags "-qv" at argv[*i]. */
static int parse_short(struct parse_state *ps, int argc, char **argv, int *i)
{
    const char *p = argv[*i] + 1;
    while (*p) {
        void *base;
        const struct tm_opt *o = find_short(ps, *p, &base);
        if (!o) {
            set_err(ps->err, sizeof(ps->err), "unknown option -%c", *p);
            return TM_ERR_USAGE;
        }
        if (o->type == TM_OPT_FLAG) {
            int rc = opt_apply(o, base, NULL, 0, ps->err, sizeof(ps->err));
            if (rc)
                return rc;
            p++;
            continue;
        }
        const char *value = p[1] ? p + 1 : NULL;
        if (!value) {
            if (*i + 1 >= argc) {
                set_err(ps->err, sizeof(ps->err), "option -%c (--%s) needs a value", *p, o->name);
                return TM_ERR_USAGE;
            }
            value = argv[++*i];
        }
        return opt_apply(o, base, value, 0, ps->err, sizeof(ps->err));
    }
    return TM_OK;
}

static int parse_args(struct parse_state *ps, int argc, char **argv)
{
    struct tm_run *run = ps->run;
    int options_done = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int rc = TM_OK;
        if (options_done || a[0] != '-' || a[1] == '\0') {
            /* "-" alone is a positional argument (conventionally stdin). */
            run->args[run->nargs++] = argv[i];
            continue;
        }
        if (strcmp(a, "--") == 0) {
            options_done = 1;
            continue;
        }
        if (a[1] == '-')
            rc = parse_long(ps, argc, argv, &i);
        else
            rc = parse_short(ps, argc, argv, &i);
        if (rc)
            return rc;
        /* --help wins over whatever follows, including a wrong argument count. */
        if (run->common.help)
            return TM_OK;
    }
    const struct tm_command *cmd = ps->cmd;
    if (run->nargs < cmd->min_args) {
        set_err(ps->err, sizeof(ps->err), "expected %s%d argument%s (%s), got %d",
                cmd->max_args == cmd->min_args ? "" : "at least ", cmd->min_args,
                cmd->min_args == 1 ? "" : "s", cmd->synopsis ? cmd->synopsis : "", run->nargs);
        return TM_ERR_USAGE;
    }
    if (cmd->max_args >= 0 && run->nargs > cmd->max_args) {
        set_err(ps->err, sizeof(ps->err), "unexpected argument '%s'", run->args[cmd->max_args]);
        return TM_ERR_USAGE;
    }
    return TM_OK;
}

/* A command with a --workdir that succeeded (or partly) keeps its statistics as the workdir's
 * record of its last run: WORKDIR/stats/<command>.json ("eval bpb" as eval-bpb.json), written
 * atomically; `tokenmill report` reads them. A failure to write is logged, not fatal. */
static void keep_stats(const struct tm_command *cmd, const void *cfg, const cJSON *stats, int rc)
{
    if (rc != TM_OK && rc != TM_ERR_PARTIAL)
        return;
    const char *workdir = NULL;
    for (const struct tm_opt *o = cmd->opts; o && o->type != TM_OPT_END; o++)
        if (o->type == TM_OPT_STR && strcmp(o->name, "workdir") == 0)
            workdir = *(char *const *)((const char *)cfg + o->offset);
    struct stat st;
    if (!workdir || stat(workdir, &st) != 0 || !S_ISDIR(st.st_mode))
        return;
    char name[64], dir[4096], path[4200];
    snprintf(name, sizeof(name), "%s", cmd->name);
    for (char *c = name; *c; c++)
        if (*c == ' ')
            *c = '-';
    snprintf(dir, sizeof(dir), "%s/stats", workdir);
    snprintf(path, sizeof(path), "%s/%s.json", dir, name);
    if (tm_mkdirs(dir) != TM_OK || tm_stats_write(stats, path) != TM_OK)
        tm_log_warn("%s: the run's statistics were not kept in %s", cmd->name, path);
    /* And one line per run in stats/history.jsonl, the workdir's history across refreshes
     * (appended with one write: whole lines even when two commands finish at once). */
    cJSON *line = cJSON_Duplicate(stats, 1);
    char when[32];
    time_t now = time(NULL);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
    cJSON_AddStringToObject(line, "time", when);
    char *text = cJSON_PrintUnformatted(line);
    cJSON_Delete(line);
    snprintf(path, sizeof(path), "%s/history.jsonl", dir);
    int fd = text ? open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644) : -1;
    if (fd >= 0) {
        size_t n = strlen(text);
        text[n] = '\n'; /* the NUL becomes the line's end */
        if (write(fd, text, n + 1) != (ssize_t)(n + 1))
            tm_log_warn("%s: %s: a short write", cmd->name, path);
        close(fd);
    } else {
        tm_log_warn("%s: the run was not added to %s", cmd->name, path);
    }
    cJSON_free(text);
}

/* Fills ps (the command's config, with its defaults) and run from argv; the caller releases
 * both with command_release() whatever this returns. */
static int command_parse(const struct tm_command *cmd, const char *prog, int argc, char **argv,
                         struct parse_state *ps, struct tm_run *run)
{
    *ps = (struct parse_state){.cmd = cmd, .prog = prog, .run = run};
    run->command = cmd->name;
    ps->cfg = tm_xcalloc(1, cmd->cfg_size ? cmd->cfg_size : 1);
    /* Every positional argument fits: there are at most argc of them. */
    run->args = tm_xcalloc((size_t)(argc > 0 ? argc : 1), sizeof(*run->args));
    int rc = tm_opt_defaults(cmd->opts, ps->cfg);
    if (rc == TM_OK && (rc = parse_args(ps, argc, argv)))
        tm_log_error("%s %s: %s", prog, cmd->name, ps->err);
    return rc;
}

static void command_release(struct parse_state *ps, struct tm_run *run)
{
    tm_opt_free(common_opts, &run->common);
    tm_opt_free(ps->cmd->opts, ps->cfg);
    free(run->args);
    free(ps->cfg);
}

int tm_command_main(const struct tm_command *cmd, const char *prog, int argc, char **argv)
{
    struct tm_run run = {0};
    struct parse_state ps;
    enum tm_log_level saved_level = tm_log_get_level();

    tm_mem_tune_for_batch();
    int rc = command_parse(cmd, prog, argc, argv, &ps, &run);
    if (rc) {
        tm_log_info("see '%s %s --help'", prog, cmd->name);
        goto out;
    }
    if (run.common.help) {
        tm_opt_help(cmd, prog, stdout);
        fflush(stdout);
        rc = TM_OK;
        goto out;
    }
    if (run.common.quiet)
        tm_log_set_level(TM_LOG_WARN);
    if (run.common.verbose)
        tm_log_set_level(TM_LOG_DEBUG);
    /* --quiet promises no progress lines either; commands then need to check one field. */
    if (run.common.quiet)
        run.common.no_progress = 1;

    run.stats = cJSON_CreateObject();
    if (!run.stats) {
        tm_log_error("out of memory creating statistics");
        rc = TM_ERR_NOMEM;
        goto out;
    }
    tm_stats_set_str(run.stats, "command", cmd->name);
    double t0 = tm_now();
    rc = cmd->run(ps.cfg, &run);
    tm_stats_set_str(run.stats, "status", tm_errname(rc));
    tm_stats_set_num(run.stats, "elapsed_s", tm_now() - t0);
    if (run.common.stats_json) {
        int wrc = tm_stats_write(run.stats, run.common.stats_json);
        if (wrc && rc == TM_OK)
            rc = TM_ERR_IO;
    }
    if (!run.query)
        keep_stats(cmd, ps.cfg, run.stats, rc);

out:
    tm_log_set_level(saved_level);
    cJSON_Delete(run.stats);
    command_release(&ps, &run);
    return rc;
}

int tm_command_plan(const struct tm_command *cmd, int argc, char **argv, struct tm_plan *out)
{
    memset(out, 0, sizeof(*out));
    if (!cmd->plan)
        return TM_ERR_UNSUPPORTED;
    struct tm_run run = {0};
    struct parse_state ps;
    enum tm_log_level saved_level = tm_log_get_level();
    int rc = command_parse(cmd, "tokenmill", argc, argv, &ps, &run);
    if (rc == TM_OK) {
        if (saved_level > TM_LOG_ERROR)
            tm_log_set_level(TM_LOG_ERROR); /* the plan says what the run would warn about */
        run.common.no_progress = 1;
        rc = cmd->plan(ps.cfg, &run, out);
    }
    tm_log_set_level(saved_level);
    command_release(&ps, &run);
    return rc;
}

void tm_plan_add(struct tm_plan *out, const char *fmt, ...)
{
    size_t n = strlen(out->what);
    if (n + 1 >= sizeof(out->what))
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out->what + n, sizeof(out->what) - n, fmt, ap);
    va_end(ap);
}
