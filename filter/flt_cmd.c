/* flt_cmd.c: the `filter` command's option table; the work is in flt_run.c. */
#include <stddef.h>

#include "filter.h"
#include "flt_internal.h"
#include "../core/tm_err.h"
#include "../core/tm_log.h"

#include "../core/tm_store.h"

#define OPT(field) offsetof(struct flt_options, field)

static const struct tm_opt filter_opts[] = {
    {TM_OPT_STR, "workdir", 'w', OPT(workdir), "DIR", "the pipeline's work directory (required)"},
    {TM_OPT_STR, "config", 'c', OPT(config), "FILE",
     "INI file of rule settings (see --print-config)"},
    {TM_OPT_LIST, "set", 0, OPT(set), "SECTION.KEY=VALUE",
     "override one setting, e.g. text.gopher_min_words=40 (repeatable)"},
    {TM_OPT_LIST, "lexicon", 0, OPT(lexicons), "FILE",
     "toxicity lexicon 'FILE [lang=xx] [weight=w] [category=c]' or 'builtin'; replaces the "
     "built-in one unless 'builtin' is also given (repeatable)"},
    {TM_OPT_LIST, "allow", 0, OPT(allow), "FILE",
     "allow list: phrases whose matches cancel the hits they contain (repeatable)"},
    {TM_OPT_INT, "threads", 'j', OPT(threads), "N", "worker threads (0: one per core)", "0", 0,
     256},
    {TM_OPT_INT, "batch-docs", 0, OPT(batch_docs), "N",
     "commit decisions after this many documents", "4096", 1, 1e7},
    {TM_OPT_SIZE, "batch-size", 0, OPT(batch_bytes), "SIZE",
     "commit decisions after this many bytes of text", "64M", 1, 4.0 * 1024 * 1024 * 1024},
    {TM_OPT_FLAG, "dry-run", 'n', OPT(dry_run), NULL, "decide and report, write nothing"},
    {TM_OPT_FLAG, "all-rules", 0, OPT(all_rules), NULL,
     "evaluate every rule on every document (complete 'fired' statistics; slower) instead of "
     "stopping at the first rule that removes it; n-gram rules still skip documents over "
     "gopher_max_words"},
    {TM_OPT_FLAG, "redo", 0, OPT(redo), NULL,
     "decide every generation again (after a change of configuration or of tokenmill)"},
    {TM_OPT_FLAG, "redo-stale", 0, OPT(redo_stale), NULL,
     "decide again the generations decided with other settings, keeping those decided with "
     "these (each document's decision stands alone, so this equals --redo, resumably)"},
    {TM_OPT_FLAG, "print-config", 0, OPT(print_config), NULL,
     "print the effective configuration (every rule, threshold and source) and exit"},
    {TM_OPT_STR, "explain", 0, OPT(explain), "DOC_ID",
     "print which rules fire on one document and why, and exit"},
    {TM_OPT_STR, "export", 0, OPT(export_path), "FILE",
     "write every stored decision as JSON Lines to FILE"},
    {TM_OPT_END},
};

static int filter_run_cmd(void *vcfg, struct tm_run *run)
{
    struct flt_options *opt = vcfg;
    if (!opt->workdir && !opt->print_config) {
        tm_log_error("filter: --workdir is required");
        return TM_ERR_USAGE;
    }
    if (opt->dry_run && opt->export_path) {
        tm_log_error("filter: --export reads stored decisions; --dry-run stores none");
        return TM_ERR_USAGE;
    }
    int progress = !run->common.no_progress && !run->common.quiet;
    run->query = opt->explain || opt->print_config || opt->dry_run;
    return flt_filter_run(opt, progress, run->stats);
}

/* The generations a run would decide, from the stage records and the settings' hash. */
static int filter_plan_cmd(void *vcfg, struct tm_run *run, struct tm_plan *out)
{
    (void)run;
    struct flt_options *opt = vcfg;
    if (!opt->workdir)
        return TM_ERR_USAGE;
    struct flt_config cfg;
    struct flt_tox *tox = NULL;
    uint64_t hash = 0;
    int rc = flt_setup(opt, &cfg, &tox, &hash);
    if (rc == TM_OK)
        rc = tm_stage_plan(opt->workdir, "filter", hash,
                           opt->redo         ? TM_REDO_ALL
                           : opt->redo_stale ? TM_REDO_STALE
                                             : TM_REDO_NONE,
                           out);
    flt_tox_free(tox);
    flt_config_release(&cfg);
    return rc;
}

const struct tm_command flt_filter_command = {
    .name = "filter",
    .summary = "decide which documents (and spans) toxicity and quality rules remove",
    .synopsis = "",
    .description =
        "Decides every document of the generations not filtered yet: kept, removed (with the\n"
        "rule that decided and the values it measured), or kept with sentences or lines\n"
        "removed. Decisions are stored per document id in WORKDIR/store; text is not copied.\n"
        "Incremental and safe to kill: a rerun continues where the last commit left off and\n"
        "ends with the same decisions, whatever the thread count. Rules, thresholds and\n"
        "sources: --print-config. Exit status 3 when some stored documents could not be read.",
    .opts = filter_opts,
    .cfg_size = sizeof(struct flt_options),
    .min_args = 0,
    .max_args = 0,
    .run = filter_run_cmd,
    .plan = filter_plan_cmd,
};
