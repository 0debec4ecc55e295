/* tr_cmd.c: the option table of `tokenmill train`; the work is in tr_loop.c. */
#include <stddef.h>
#include <stdio.h>

#include <cjson/cJSON.h>

#include "tm_err.h"
#include "tm_log.h"
#include "tm_opt.h"
#include "train.h"
#include "tr_train.h"

struct tr_cmd_options {
    char *workdir;
    char *config;
    int fresh;
    long until;
};

#define OPT(field) offsetof(struct tr_cmd_options, field)

static const struct tm_opt train_opts[] = {
    {TM_OPT_STR, "workdir", 'w', OPT(workdir), "DIR", "the pipeline's work directory (required)"},
    {TM_OPT_STR, "config", 'c', OPT(config), "FILE",
     "INI file with the [model] and [train] sections (required)"},
    {TM_OPT_FLAG, "fresh", 0, OPT(fresh), NULL,
     "start from step 0: delete the checkpoints and metrics of earlier runs"},
    {TM_OPT_INT, "until", 0, OPT(until), "N",
     "stop after N updates with a checkpoint (the schedule still spans [train] steps); 0: run "
     "to the end",
     "0", 0, 1e9},
    {TM_OPT_END},
};

static int train_cmd(void *vcfg, struct tm_run *run)
{
    struct tr_cmd_options *opt = vcfg;
    if (!opt->workdir || !opt->config) {
        tm_log_error("train: --workdir and --config are required");
        return TM_ERR_USAGE;
    }
    struct tr_run_opts o = {
        .workdir = opt->workdir,
        .config = opt->config,
        .fresh = opt->fresh,
        .until = opt->until,
        .progress = !run->common.quiet,
    };
    int rc = tr_train_run(&o, run->stats);
    if (rc == TM_OK && !run->common.quiet) {
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(run->stats, "train");
        printf("trained to step %.0f: loss %.4f, val_loss %.4f\n",
               cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(s, "steps_done")),
               cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(s, "loss")),
               cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(s, "val_loss")));
    }
    return rc;
}

const struct tm_command tr_train_command = {
    .name = "train",
    .summary = "train the MoE transformer on the token shards (CPU reference)",
    .synopsis = "",
    .description =
        "Trains the model of the [model] section of --config with the [train] settings on\n"
        "WORKDIR/tokens, writing WORKDIR/train/metrics.jsonl (one JSON line per update and per\n"
        "evaluation) and checkpoints WORKDIR/train/ckpt-STEP (model.safetensors, config.json,\n"
        "state.bin). Resumes from the newest checkpoint, with the same losses bit for bit as an\n"
        "uninterrupted run at the same threads; --fresh starts over.",
    .opts = train_opts,
    .cfg_size = sizeof(struct tr_cmd_options),
    .min_args = 0,
    .max_args = 0,
    .run = train_cmd,
};
