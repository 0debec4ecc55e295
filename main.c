/* tokenmill: the command table and dispatch, nothing else. */
#include <stdio.h>
#include <string.h>

#include "core/tm_err.h"
#include "core/tm_opt.h"
#include "dedup/dedup.h"
#include "eval/eval.h"
#include "filter/filter.h"
#include "ingest/ingest.h"
#include "pipelines/pipeline.h"
#include "tokenize/tokenize.h"
#include "train/train.h"

#ifndef TOKENMILL_VERSION
#define TOKENMILL_VERSION "0.1.0"
#endif

static const struct tm_command *const commands[] = {
    &ing_ingest_command, &ing_inspect_command,  &flt_filter_command,
    &ddp_dedup_command,  &tok_tokenize_command, &tok_export_megatron_command,
    &tok_encode_command, &tok_decode_command,   &tok_train_vocab_command,
    &tr_train_command,   &tr_generate_command,  &ev_bpb_command,
    &ev_code_command,    &ev_report_command,    &pl_run_command,
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

/* Process exit codes, documented in README "Exit codes". */
enum exit_code {
    EXIT_OK = 0,
    EXIT_FAILURE_ = 1,
    EXIT_USAGE = 2,
    EXIT_PARTIAL = 3,
    EXIT_LOCKED = 4,
};

static int exit_code(int err)
{
    switch (err) {
    case TM_OK:
        return EXIT_OK;
    case TM_ERR_USAGE:
        return EXIT_USAGE;
    case TM_ERR_PARTIAL:
        return EXIT_PARTIAL;
    case TM_ERR_LOCKED:
        return EXIT_LOCKED;
    default:
        return EXIT_FAILURE_;
    }
}

static void usage(FILE *out)
{
    fprintf(out, "usage: tokenmill <command> [options] [args]\n\ncommands:\n");
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(out, "  %-22s %s\n", commands[i]->name, commands[i]->summary);
    fprintf(out, "\n'tokenmill <command> --help' describes a command's options.\n"
                 "exit status: 0 success, 1 failure, 2 usage, 3 some inputs failed, "
                 "4 workdir locked\n");
}

/* Whether command name `cmd` is "first second". */
static int two_words_match(const char *cmd, const char *first, const char *second)
{
    size_t n = strlen(first);
    return strncmp(cmd, first, n) == 0 && cmd[n] == ' ' && strcmp(cmd + n + 1, second) == 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    const char *name = argv[1];
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0 || strcmp(name, "help") == 0) {
        if (argc > 2 && strcmp(name, "help") == 0) {
            for (size_t i = 0; i < NCOMMANDS; i++)
                if (strcmp(commands[i]->name, argv[2]) == 0 ||
                    (argc > 3 && two_words_match(commands[i]->name, argv[2], argv[3]))) {
                    tm_opt_help(commands[i], "tokenmill", stdout);
                    return EXIT_OK;
                }
        }
        usage(stdout);
        return EXIT_OK;
    }
    if (strcmp(name, "--version") == 0) {
        printf("tokenmill %s\n", TOKENMILL_VERSION);
        return EXIT_OK;
    }
    /* Two-word commands ("tokenize train-vocab", "export megatron") before one-word ones. */
    if (argc > 2)
        for (size_t i = 0; i < NCOMMANDS; i++)
            if (two_words_match(commands[i]->name, name, argv[2]))
                return exit_code(tm_command_main(commands[i], "tokenmill", argc - 2, argv + 2));
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(commands[i]->name, name) == 0)
            return exit_code(tm_command_main(commands[i], "tokenmill", argc - 1, argv + 1));
    fprintf(stderr, "tokenmill: unknown command '%s'\n\n", name);
    usage(stderr);
    return EXIT_USAGE;
}
