/* ddp_cmd.c: the `dedup` command's option table; the work is in ddp_run.c. */
#include <stddef.h>

#include "dedup.h"
#include "ddp_internal.h"
#include "../core/tm_err.h"
#include "../core/tm_log.h"
#include "../core/tm_store.h"

#define OPT(field) offsetof(struct ddp_options, field)

static const struct tm_opt dedup_opts[] = {
    {TM_OPT_STR, "workdir", 'w', OPT(workdir), "DIR", "the pipeline's work directory (required)"},
    {TM_OPT_STR, "config", 'c', OPT(config), "FILE",
     "INI file of dedup settings (see --print-config)"},
    {TM_OPT_LIST, "set", 0, OPT(set), "SECTION.KEY=VALUE",
     "override one setting, e.g. text.threshold=0.7 or dedup.scope=generation (repeatable)"},
    {TM_OPT_INT, "threads", 'j', OPT(threads), "N", "worker threads (0: one per core)", "0", 0,
     256},
    {TM_OPT_SIZE, "memory", 0, OPT(memory), "SIZE",
     "band keys held in memory before they spill to disk as sorted runs", "1G", 4096,
     1024.0 * 1024 * 1024 * 1024},
    {TM_OPT_FLAG, "dry-run", 'n', OPT(dry_run), NULL, "decide and report, write nothing"},
    {TM_OPT_FLAG, "redo", 0, OPT(redo), NULL,
     "forget every dedup decision and index entry, and deduplicate everything again"},
    {TM_OPT_FLAG, "print-config", 0, OPT(print_config), NULL,
     "print the effective settings and exit"},
    {TM_OPT_STR, "show-cluster", 0, OPT(show_cluster), "DOC_ID",
     "print the cluster of a document (its kept document and every duplicate) and exit"},
    {TM_OPT_STR, "export", 0, OPT(export_path), "FILE",
     "write every stored dedup decision as JSON Lines to FILE"},
    {TM_OPT_STR, "input-epoch", 0, OPT(input_epoch), "LABEL",
     "a label of the filter decisions read (tokenmill run sets it): generations deduplicated "
     "under another label count as done with other settings"},
    {TM_OPT_END},
};

static int dedup_run_cmd(void *vcfg, struct tm_run *run)
{
    struct ddp_options *opt = vcfg;
    if (!opt->workdir && !opt->print_config) {
        tm_log_error("dedup: --workdir is required");
        return TM_ERR_USAGE;
    }
    int progress = !run->common.no_progress && !run->common.quiet;
    run->query = opt->show_cluster || opt->print_config || opt->dry_run;
    return ddp_dedup_run(opt, progress, run->stats);
}

/* The generations a run would decide, from the stage records and the settings' hash. */
static int dedup_plan_cmd(void *vcfg, struct tm_run *run, struct tm_plan *out)
{
    (void)run;
    struct ddp_options *opt = vcfg;
    if (!opt->workdir)
        return TM_ERR_USAGE;
    struct ddp_config cfg;
    uint64_t hash;
    int rc = ddp_settings(opt, &cfg, &hash);
    if (rc == TM_OK)
        rc =
            tm_stage_plan(opt->workdir, "dedup", hash, opt->redo ? TM_REDO_ALL : TM_REDO_NONE, out);
    return rc;
}

const struct tm_command ddp_dedup_command = {
    .name = "dedup",
    .summary = "mark exact and near-duplicate documents (MinHash LSH), incrementally",
    .synopsis = "",
    .description =
        "Decides every document of the generations not deduplicated yet (those the filter kept,\n"
        "when it has run): kept, exact duplicate of the first document with the same\n"
        "normalized text, or near duplicate in the cluster of an earlier document (MinHash\n"
        "over word 5-grams, 14 bands x 8 rows, pairs verified by Jaccard >= 0.8 for text).\n"
        "Older generations win: a new document is checked against everything kept before.\n"
        "Safe to kill: a rerun ends as an uninterrupted run would, whatever the threads.",
    .opts = dedup_opts,
    .cfg_size = sizeof(struct ddp_options),
    .min_args = 0,
    .max_args = 0,
    .run = dedup_run_cmd,
    .plan = dedup_plan_cmd,
};
