/* tm_opt: option tables, the command runner, and generated help.
 *
 * Every command describes its options in one table of struct tm_opt. The same table drives the
 * command-line parser, `--help`, and (through tm_opt_set()) the INI keys of pipeline files, so
 * the three cannot drift apart (git's parse-options.h is the model). Values are stored straight
 * into the command's configuration struct at `offset`.
 *
 * Common options, accepted by every command and stored in struct tm_common:
 *   --quiet, --verbose, --stats-json FILE, --no-progress, --help. */
#ifndef TM_OPT_H
#define TM_OPT_H

#include <stddef.h>
#include <stdio.h>

struct cJSON;

enum tm_opt_type {
    TM_OPT_END = 0, /* terminates a table */
    TM_OPT_FLAG,    /* int, set to 1 by --name and to 0 by --no-name */
    TM_OPT_STR,     /* char *, heap copy owned by the config (freed by tm_opt_free) */
    TM_OPT_INT,     /* long, decimal, range-checked against min/max */
    TM_OPT_SIZE,    /* size_t, with optional K, M, G, T suffix (powers of 1024) */
    TM_OPT_DOUBLE,  /* double, range-checked against min/max */
    TM_OPT_ENUM,    /* int, the index of the value in `choices` */
    TM_OPT_LIST,    /* struct tm_strlist, each occurrence appends one value */
};

/* A list of strings collected from a repeated option; owned by the config. */
struct tm_strlist {
    char **items;
    size_t count;
};

struct tm_opt {
    enum tm_opt_type type;
    const char *name;           /* long name without dashes; also the INI key */
    char short_name;            /* 0 for none */
    size_t offset;              /* offsetof() of the field in the config struct */
    const char *metavar;        /* e.g. "DIR" in help; NULL for flags */
    const char *help;           /* one line */
    const char *def;            /* default as text (applied by tm_opt_defaults), or NULL */
    double min, max;            /* range for INT/SIZE/DOUBLE when min < max */
    const char *const *choices; /* NULL-terminated, for ENUM */
};

/* The options every command accepts. */
struct tm_common {
    int quiet;
    int verbose;
    int no_progress;
    int help;
    char *stats_json;
};

/* What a command's run function gets besides its own configuration. */
struct tm_run {
    struct tm_common common;
    char **args; /* positional arguments, borrowed from argv */
    int nargs;
    struct cJSON *stats; /* the statistics object; the command adds its fields; written to
                            --stats-json after run() returns, whatever it returned */
    const char *command; /* the command's name */
    int query;           /* set by the command: this run only read (a query, a dry run), so its
                            statistics are not kept in WORKDIR/stats (they would replace a real run's) */
};

/* What a command would do now, computed without changing anything: for `tokenmill run`,
 * which prints it (--dry-run prints only it) and skips a stage with no work. */
struct tm_plan {
    int work;         /* 1: there is something to do */
    int stale;        /* 1: earlier work was done with other settings (or on other data) and is
                         redone only with the command's --redo (train: --fresh) */
    char what[1024];  /* one line: what it would do, on which generations, and why */
    unsigned new_gen; /* ingest: the generation it would add or finish (0: none) */
};

struct tm_command {
    const char *name;          /* e.g. "ingest" */
    const char *summary;       /* one line for the command list */
    const char *synopsis;      /* positional part of the usage line, e.g. "INPUT..." or "" */
    const char *description;   /* paragraph(s) printed by --help after the usage line, or NULL */
    const struct tm_opt *opts; /* table terminated by TM_OPT_END */
    size_t cfg_size;           /* sizeof the config struct */
    int min_args, max_args;    /* positional argument bounds; max_args < 0 means unbounded */
    /* Runs the command; returns TM_OK or a tm_err. `cfg` is filled and validated against the
     * table; semantic checks are the command's own (return TM_ERR_USAGE with a message). */
    int (*run)(void *cfg, struct tm_run *run);
    /* Optional: fills `out` with what run() would do with the same arguments, reading the
     * workdir and changing nothing. TM_OK or a tm_err (an error run() would meet too). */
    int (*plan)(void *cfg, struct tm_run *run, struct tm_plan *out);
};

/* Parses argv (argv[0] is the command's name) as tm_command_main() does and calls cmd->plan.
 * Log lines below errors are held back. TM_ERR_UNSUPPORTED when the command has no plan. */
int tm_command_plan(const struct tm_command *cmd, int argc, char **argv, struct tm_plan *out);

/* Appends printf-style text to out->what (truncated at its size). */
void tm_plan_add(struct tm_plan *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Applies every option's default to `cfg` (which must be zeroed). TM_OK or TM_ERR_USAGE (a
 * default that does not parse: a bug in the table, logged). */
int tm_opt_defaults(const struct tm_opt *opts, void *cfg);

/* Sets option `name` from text `value` (NULL for a bare flag). Used by the command line and by
 * pipeline files. On a bad name or value returns TM_ERR_USAGE and writes a message (without
 * file or line, which the caller adds) into err[errlen]. */
int tm_opt_set(const struct tm_opt *opts, void *cfg, const char *name, const char *value, char *err,
               size_t errlen);

/* Frees what the options own in `cfg` (strings, lists). Leaves the struct zeroed there. */
void tm_opt_free(const struct tm_opt *opts, void *cfg);

/* Writes the usage line, description and the option table (with the common options) as
 * generated help text. */
void tm_opt_help(const struct tm_command *cmd, const char *prog, FILE *out);

/* Parses argv (argv[0] is the command name), runs the command, writes --stats-json, frees the
 * configuration. Returns the command's tm_err, TM_ERR_USAGE for a parse error (with the
 * message and a hint to --help on stderr), or TM_OK after --help. `--` ends options. */
int tm_command_main(const struct tm_command *cmd, const char *prog, int argc, char **argv);

#endif
