/* ev_bpb_cmd.c: `tokenmill eval bpb`: bits per byte of a checkpoint on a workdir's token
 * corpus, per domain and overall (see eval.h). */
#include <inttypes.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "eval.h"
#include "tm_err.h"
#include "tm_fs.h"
#include "tm_log.h"
#include "tm_opt.h"
#include "tm_progress.h"
#include "tm_stats.h"
#include "tr_gen.h"

struct bpb_options {
    char *workdir;
    char *ckpt;
    char *vocab;
    char *out;
    int split;
    long window;
    long stride;
    long max_docs;
    long threads;
};

#define OPT(field) offsetof(struct bpb_options, field)

static const char *const split_choices[] = {"val", "train", NULL};

static const struct tm_opt bpb_opts[] = {
    {TM_OPT_STR, "workdir", 'w', OPT(workdir), "DIR",
     "the workdir whose token shards are scored (required)"},
    {TM_OPT_STR, "ckpt", 0, OPT(ckpt), "PATH",
     "checkpoint directory (WORKDIR/train/ckpt-N), or a workdir: its newest checkpoint "
     "(default: --workdir's)"},
    {TM_OPT_STR, "vocab", 0, OPT(vocab), "FILE",
     "the .tiktoken file the corpus and the model were made with (required)"},
    {TM_OPT_STR, "out", 'o', OPT(out), "FILE",
     "write the result as JSON to FILE (atomically; default WORKDIR/eval/bpb.json, which "
     "`tokenmill report` reads)"},
    {TM_OPT_ENUM, "split", 0, OPT(split), "SPLIT", "the split to score", "val", 0, 0,
     split_choices},
    {TM_OPT_INT, "window", 0, OPT(window), "N", "tokens per window (0: the model's context)", "0",
     0, 1 << 24},
    {TM_OPT_INT, "stride", 0, OPT(stride), "N", "tokens between window starts (0: window / 2)", "0",
     0, 1 << 24},
    {TM_OPT_INT, "max-docs", 0, OPT(max_docs), "N", "score at most N documents per domain (0: all)",
     "0", 0, 9.2e18},
    {TM_OPT_INT, "threads", 'j', OPT(threads), "N", "worker threads", "1", 1, 256},
    {TM_OPT_END},
};

static cJSON *sum_json(const struct ev_bpb_sum *s)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "bpb", ev_bpb(s));
    cJSON_AddNumberToObject(o, "loss", ev_loss(s));
    cJSON_AddNumberToObject(o, "perplexity", s->tokens ? exp(ev_loss(s)) : 0.0);
    cJSON_AddNumberToObject(o, "nats", s->nats);
    cJSON_AddNumberToObject(o, "tokens", (double)s->tokens);
    cJSON_AddNumberToObject(o, "bytes", (double)s->bytes);
    cJSON_AddNumberToObject(o, "docs", (double)s->docs);
    return o;
}

static void print_row(const char *name, const struct ev_bpb_sum *s)
{
    printf("| %-7s | %8.4f | %8.4f | %10.2f | %10" PRIu64 " | %11" PRIu64 " | %7" PRIu64 " |\n",
           name, ev_bpb(s), ev_loss(s), s->tokens ? exp(ev_loss(s)) : 0.0, s->tokens, s->bytes,
           s->docs);
}

static int bpb_cmd(void *vcfg, struct tm_run *run)
{
    struct bpb_options *opt = vcfg;
    if (!opt->workdir || !opt->vocab) {
        tm_log_error("eval bpb: --workdir and --vocab are required");
        return TM_ERR_USAGE;
    }
    const char *ckpt = opt->ckpt ? opt->ckpt : opt->workdir;
    struct tr_model m;
    uint64_t hash = 0;
    int rc = tr_ckpt_open(ckpt, &m, &hash);
    if (rc)
        return rc;
    m.threads = (int)opt->threads;
    m.gemm.threads = m.threads;
    struct tok_tokenizer tk;
    struct tok_corpus *c = NULL;
    cJSON *res = NULL;
    if ((rc = tok_tokenizer_load(opt->vocab, -1, &tk)))
        goto out;
    if (hash && tk.hash != hash) {
        tm_log_error("eval bpb: %s has hash %016" PRIx64 "; the model was trained with %016" PRIx64,
                     opt->vocab, tk.hash, hash);
        rc = TM_ERR_USAGE;
        goto out;
    }
    if ((rc = tok_corpus_open(opt->workdir, tk.hash, &c)))
        goto out;
    struct ev_bpb_opts o = {.split = opt->split == 0 ? TOK_SPLIT_VAL : TOK_SPLIT_TRAIN,
                            .window = (int)opt->window,
                            .stride = (int)opt->stride,
                            .max_docs = opt->max_docs};
    struct ev_bpb_result r;
    double t0 = tm_now();
    if ((rc = ev_bpb_score(&m, c, &tk, &o, &r)))
        goto out;
    double secs = tm_now() - t0;

    printf("bits per byte, split %s, window %d, stride %d\n\n", split_choices[opt->split], r.window,
           r.stride);
    printf("| domain  |      bpb | loss/tok | perplexity |     tokens |       bytes |    docs |\n");
    printf("|---------|---------:|---------:|-----------:|-----------:|------------:|--------:|\n");
    for (int d = 0; d < TM_DOMAIN_COUNT; d++)
        if (r.domain[d].docs)
            print_row(tm_domain_name(d), &r.domain[d]);
    print_row("all", &r.all);
    tm_log_info("eval bpb: %" PRIu64 " tokens in %.1f s (%.0f tokens/s)", r.all.tokens, secs,
                secs > 0 ? (double)r.all.tokens / secs : 0.0);

    res = cJSON_CreateObject();
    cJSON_AddStringToObject(res, "checkpoint", ckpt);
    cJSON_AddStringToObject(res, "vocab", opt->vocab);
    char hex[17];
    snprintf(hex, sizeof(hex), "%016" PRIx64, tk.hash);
    cJSON_AddStringToObject(res, "tokenizer_hash", hex);
    cJSON_AddStringToObject(res, "split", split_choices[opt->split]);
    cJSON_AddNumberToObject(res, "window", r.window);
    cJSON_AddNumberToObject(res, "stride", r.stride);
    cJSON *doms = cJSON_AddObjectToObject(res, "domains");
    for (int d = 0; d < TM_DOMAIN_COUNT; d++)
        if (r.domain[d].docs)
            cJSON_AddItemToObject(doms, tm_domain_name(d), sum_json(&r.domain[d]));
    cJSON_AddItemToObject(res, "overall", sum_json(&r.all));
    cJSON_AddNumberToObject(res, "seconds", secs);
    char def_out[4096];
    if (!opt->out) {
        snprintf(def_out, sizeof(def_out), "%s/eval", opt->workdir);
        if ((rc = tm_mkdirs(def_out)))
            goto out;
        snprintf(def_out, sizeof(def_out), "%s/eval/bpb.json", opt->workdir);
    }
    {
        char *text = cJSON_Print(res);
        size_t len = strlen(text);
        text[len] = '\n'; /* the NUL becomes the final newline; the length grows by one */
        rc = tm_write_atomic(opt->out ? opt->out : def_out, text, len + 1);
        cJSON_free(text);
        if (rc)
            goto out;
    }
    cJSON *st = tm_stats_obj(run->stats, "eval_bpb");
    tm_stats_set_num(st, "bpb", ev_bpb(&r.all));
    tm_stats_set_num(st, "tokens", (double)r.all.tokens);
    tm_stats_set_num(st, "bytes", (double)r.all.bytes);
    tm_stats_set_num(st, "seconds", secs);
out:
    cJSON_Delete(res);
    tok_corpus_free(c);
    tok_tokenizer_release(&tk);
    tr_model_release(&m);
    return rc;
}

const struct tm_command ev_bpb_command = {
    .name = "eval bpb",
    .summary = "bits per byte of a checkpoint per domain on a workdir's validation tokens",
    .synopsis = "",
    .description =
        "Scores every document of the workdir's --split (val by default) with the checkpoint's\n"
        "model, each as <|endoftext|> followed by its tokens, in windows of --window tokens\n"
        "every --stride tokens, each token scored once, and prints bits per byte per domain\n"
        "and overall: the summed negative log-likelihood in nats over ln 2 times the UTF-8\n"
        "bytes the scored tokens decode to (special tokens excluded), with the loss per token\n"
        "and the perplexity. --out writes the same as JSON.",
    .opts = bpb_opts,
    .cfg_size = sizeof(struct bpb_options),
    .min_args = 0,
    .max_args = 0,
    .run = bpb_cmd,
};
