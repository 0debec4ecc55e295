/* tok_corpus_cmd.c: option tables of `tokenize` and `export megatron`; the work is in tok_run.c
 * and tok_megatron.c. */
#include <stddef.h>

#include "tok_docs.h"
#include "tok_run.h"
#include "tokenize.h"
#include "tm_err.h"
#include "tm_log.h"

static const char *const pattern_choices[] = {"auto", "r50k", "cl100k", "o200k", NULL};

#define OPT(field) offsetof(struct tok_run_options, field)

static const struct tm_opt tokenize_opts[] = {
    {TM_OPT_STR, "workdir", 'w', OPT(workdir), "DIR", "the pipeline's work directory (required)"},
    {TM_OPT_STR, "vocab", 0, OPT(vocab), "FILE",
     ".tiktoken rank file (required); its pattern and special tokens come from FILE.json when "
     "`tokenize train-vocab` wrote it, else from the published encoding of that size"},
    {TM_OPT_ENUM, "pattern", 'p', OPT(pattern), "NAME",
     "pre-tokenization pattern: r50k, cl100k, o200k, or auto", "auto", 0, 0, pattern_choices},
    {TM_OPT_DOUBLE, "val-fraction", 0, OPT(val_fraction), "F",
     "fraction of documents (chosen by a stable hash of the id) in the validation split", "0.005",
     0, 1},
    {TM_OPT_SIZE, "shard-tokens", 0, OPT(shard_tokens), "N",
     "start a new shard once one holds this many tokens", "256M", 1, 1e12},
    {TM_OPT_SIZE, "chunk-tokens", 0, OPT(chunk_tokens), "N",
     "tokens per stored chunk inside a shard (windows crossing chunks are copied)", "1M", 16,
     1 << 26},
    {TM_OPT_INT, "threads", 'j', OPT(threads), "N", "encoding threads (0: one per core)", "0", 0,
     256},
    {TM_OPT_SIZE, "batch-size", 0, OPT(batch_bytes), "SIZE",
     "text gathered before the threads encode it", "32M", 1, 4.0 * 1024 * 1024 * 1024},
    {TM_OPT_ENUM, "require", 0, OPT(require), "WHAT",
     "decisions: tokenize a generation only after filter and dedup finished it, and only the "
     "documents both kept; none: also documents without decisions",
     "decisions", 0, 0, tok_require_names},
    {TM_OPT_FLAG, "redo", 0, OPT(redo), NULL,
     "delete every shard and tokenize all generations again (after changing the tokenizer)"},
    {TM_OPT_STR, "input-epoch", 0, OPT(input_epoch), "LABEL",
     "a label of the filter and dedup decisions read (tokenmill run sets it): generations "
     "tokenized under another label count as done with other settings"},
    {TM_OPT_END},
};

static int tokenize_plan_cmd(void *vcfg, struct tm_run *run, struct tm_plan *out)
{
    (void)run;
    struct tok_run_options *opt = vcfg;
    if (!opt->workdir || !opt->vocab)
        return TM_ERR_USAGE;
    return tok_tokenize_plan(opt, out);
}

static int tokenize_cmd(void *vcfg, struct tm_run *run)
{
    struct tok_run_options *opt = vcfg;
    if (!opt->workdir || !opt->vocab) {
        tm_log_error("tokenize: --workdir and --vocab are required");
        return TM_ERR_USAGE;
    }
    int progress = !run->common.no_progress && !run->common.quiet;
    return tok_tokenize_run(opt, progress, run->stats);
}

const struct tm_command tok_tokenize_command = {
    .name = "tokenize",
    .summary = "encode the documents filter and dedup kept into token shards",
    .synopsis = "",
    .description =
        "Encodes every kept document of the generations not tokenized yet and appends it,\n"
        "followed by <|endoftext|>, to the train or validation stream of its domain (the split\n"
        "is a stable hash of the document id). Shards are LMDB environments in\n"
        "WORKDIR/tokens/shard-N, uint16 when the vocabulary fits, else uint32; each records its\n"
        "tokenizer's hash, and a later run with another tokenizer is refused. Safe to kill: a\n"
        "rerun removes the unfinished shard and writes what an uninterrupted run would have.\n"
        "Subcommand: 'tokenmill tokenize train-vocab' trains a vocabulary.",
    .opts = tokenize_opts,
    .cfg_size = sizeof(struct tok_run_options),
    .min_args = 0,
    .max_args = 0,
    .run = tokenize_cmd,
    .plan = tokenize_plan_cmd,
};

#undef OPT
#define OPT(field) offsetof(struct tok_export_options, field)

static const char *const split_choices[] = {"train", "val", "both", NULL};

static const struct tm_opt export_opts[] = {
    {TM_OPT_STR, "workdir", 'w', OPT(workdir), "DIR", "the pipeline's work directory (required)"},
    {TM_OPT_STR, "out", 'o', OPT(out), "PREFIX",
     "output prefix: writes PREFIX_SPLIT.bin and PREFIX_SPLIT.idx (required)"},
    {TM_OPT_ENUM, "split", 0, OPT(split), "SPLIT", "which split to export: train, val or both",
     "both", 0, 0, split_choices},
    {TM_OPT_FLAG, "by-domain", 0, OPT(by_domain), NULL,
     "one dataset per domain (PREFIX_SPLIT_DOMAIN), for Megatron's weighted --data-path blends"},
    {TM_OPT_END},
};

static int export_cmd(void *vcfg, struct tm_run *run)
{
    struct tok_export_options *opt = vcfg;
    if (!opt->workdir || !opt->out) {
        tm_log_error("export megatron: --workdir and --out are required");
        return TM_ERR_USAGE;
    }
    int progress = !run->common.no_progress && !run->common.quiet;
    return tok_export_megatron(opt, progress, run->stats);
}

const struct tm_command tok_export_megatron_command = {
    .name = "export megatron",
    .summary = "write the token shards as Megatron-LM / NeMo indexed datasets (.bin, .idx)",
    .synopsis = "",
    .description =
        "Writes the documents of the token shards, one sequence each (tokens and\n"
        "<|endoftext|>), in Megatron-LM's MMIDIDX format: uint16 when the vocabulary fits,\n"
        "else int32. Files appear whole or not at all.",
    .opts = export_opts,
    .cfg_size = sizeof(struct tok_export_options),
    .min_args = 0,
    .max_args = 0,
    .run = export_cmd,
};
