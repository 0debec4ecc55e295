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
    long continue_steps;
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
    {TM_OPT_INT, "continue-steps", 0, OPT(continue_steps), "N",
     "continued training for refreshes: when the token shards changed since the newest "
     "checkpoint was trained, train N updates past it (the schedule's end, min_lr); with the "
     "same shards, finish an interrupted run and otherwise do nothing; 0: train to [train] steps",
     "0", 0, 1e9},
    {TM_OPT_END},
};

static void run_opts(const struct tr_cmd_options *opt, const struct tm_run *run,
                     struct tr_run_opts *o)
{
    *o = (struct tr_run_opts){
        .workdir = opt->workdir,
        .config = opt->config,
        .fresh = opt->fresh,
        .until = opt->until,
        .continue_steps = opt->continue_steps,
        .progress = !run->common.quiet,
    };
}

static int train_plan_cmd(void *vcfg, struct tm_run *run, struct tm_plan *out)
{
    struct tr_cmd_options *opt = vcfg;
    if (!opt->workdir || !opt->config)
        return TM_ERR_USAGE;
    struct tr_run_opts o;
    run_opts(opt, run, &o);
    return tr_train_plan(&o, out);
}

static int train_cmd(void *vcfg, struct tm_run *run)
{
    struct tr_cmd_options *opt = vcfg;
    if (!opt->workdir || !opt->config) {
        tm_log_error("train: --workdir and --config are required");
        return TM_ERR_USAGE;
    }
    struct tr_run_opts o;
    run_opts(opt, run, &o);
    int rc = tr_train_run(&o, run->stats);
    if (rc == TM_OK && !run->common.quiet) {
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(run->stats, "train");
        double done = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(s, "steps_done"));
        if (cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(s, "steps_run")) > 0)
            printf("trained to step %.0f: loss %.4f, val_loss %.4f\n", done,
                   cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(s, "loss")),
                   cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(s, "val_loss")));
        else
            printf("train: nothing to do: the newest checkpoint is step %.0f, the run's end\n",
                   done);
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
        "uninterrupted run at the same threads; --fresh starts over. --continue-steps trains a\n"
        "fixed number of updates more each time the shards grow (what a pipeline's refresh\n"
        "does), at the schedule's final learning rate once past [train] steps.",
    .opts = train_opts,
    .cfg_size = sizeof(struct tr_cmd_options),
    .min_args = 0,
    .max_args = 0,
    .run = train_cmd,
    .plan = train_plan_cmd,
};
