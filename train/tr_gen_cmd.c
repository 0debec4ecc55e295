/* tr_gen_cmd.c: `tokenmill generate`: a prompt through a trained checkpoint, greedy or sampled,
 * with stop sequences. */
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "tr_gen.h"
#include "tr_infer.h"
#include "tm_buf.h"
#include "tm_err.h"
#include "tm_log.h"
#include "tm_opt.h"
#include "tm_progress.h"
#include "tm_stats.h"
#include "tokenize.h"

struct gen_options {
    char *ckpt;
    char *vocab;
    char *prompt;
    long max_tokens;
    double temperature;
    double top_p;
    long seed;
    struct tm_strlist stop;
    long threads;
};

#define OPT(field) offsetof(struct gen_options, field)

static const struct tm_opt gen_opts[] = {
    {TM_OPT_STR, "ckpt", 0, OPT(ckpt), "PATH",
     "checkpoint directory (WORKDIR/train/ckpt-N), or a workdir: its newest checkpoint "
     "(required)"},
    {TM_OPT_STR, "vocab", 0, OPT(vocab), "FILE",
     "the .tiktoken file the model was trained with (required; its hash must match)"},
    {TM_OPT_STR, "prompt", 0, OPT(prompt), "TEXT", "the text to continue (required)"},
    {TM_OPT_INT, "max-tokens", 'n', OPT(max_tokens), "N", "the most tokens to generate", "128", 0,
     1 << 24},
    {TM_OPT_DOUBLE, "temperature", 't', OPT(temperature), "T",
     "0: greedy (the most probable token); above 0: sample from softmax(logits / T)", "0", 0, 100},
    {TM_OPT_DOUBLE, "top-p", 0, OPT(top_p), "P",
     "sample only from the most probable tokens whose mass reaches P (nucleus)", "1", 1e-6, 1},
    {TM_OPT_INT, "seed", 0, OPT(seed), "N", "sampling seed", "1", 0, 9.2e18},
    {TM_OPT_LIST, "stop", 0, OPT(stop), "TEXT",
     "stop when the generated text contains TEXT, which is left out (repeatable)"},
    {TM_OPT_INT, "threads", 'j', OPT(threads), "N", "worker threads", "1", 1, 256},
    {TM_OPT_END},
};

static const char *stop_name(enum tr_stop why, int by_sequence)
{
    if (by_sequence)
        return "stop sequence";
    switch (why) {
    case TR_STOP_EOT:
        return "end of text";
    case TR_STOP_MAX_NEW:
        return "max tokens";
    case TR_STOP_CONTEXT:
        return "context full";
    default:
        return "callback";
    }
}

static int generate_cmd(void *vcfg, struct tm_run *run)
{
    struct gen_options *opt = vcfg;
    if (!opt->ckpt || !opt->vocab || !opt->prompt) {
        tm_log_error("generate: --ckpt, --vocab and --prompt are required");
        return TM_ERR_USAGE;
    }
    struct tr_model m;
    uint64_t hash = 0;
    int rc = tr_ckpt_open(opt->ckpt, &m, &hash);
    if (rc)
        return rc;
    m.threads = (int)opt->threads;
    m.gemm.threads = m.threads;
    struct tok_tokenizer tk;
    struct tok_encoder *enc = NULL;
    struct tm_buf text;
    tm_buf_init(&text, 0);
    if ((rc = tok_tokenizer_load(opt->vocab, -1, &tk)))
        goto out_tk;
    if (hash && tk.hash != hash) {
        tm_log_error("generate: %s has hash %016" PRIx64 "; the model was trained with "
                     "%016" PRIx64,
                     opt->vocab, tk.hash, hash);
        rc = TM_ERR_USAGE;
        goto out;
    }
    if (tk.id_end > (uint32_t)m.cfg.vocab_size) {
        tm_log_error("generate: %s has %u ids, the model %d", opt->vocab, tk.id_end,
                     m.cfg.vocab_size);
        rc = TM_ERR_USAGE;
        goto out;
    }
    if ((rc = tok_tokenizer_encoder(&tk, &enc)))
        goto out;
    struct tr_complete_opts co = {.max_tokens = (int)opt->max_tokens,
                                  .temperature = (float)opt->temperature,
                                  .top_p = (float)opt->top_p,
                                  .seed = (uint64_t)opt->seed,
                                  .stops = (const char *const *)opt->stop.items,
                                  .n_stops = opt->stop.count,
                                  .id_end = tk.id_end};
    struct tr_complete_result res;
    double t0 = tm_now();
    rc = tr_complete(&m, enc, tk.eot, opt->prompt, &co, &text, &res);
    double secs = tm_now() - t0;
    if (rc)
        goto out;
    if (text.len)
        fwrite(text.data, 1, text.len, stdout);
    fputc('\n', stdout);
    tm_log_info("generate: %d tokens (%s), %.1f tokens/s", res.new_tokens,
                stop_name(res.why, res.by_stop_text), secs > 0 ? res.new_tokens / secs : 0.0);
    cJSON *o = tm_stats_obj(run->stats, "generate");
    tm_stats_set_num(o, "prompt_tokens", res.prompt_tokens);
    tm_stats_set_num(o, "tokens", res.new_tokens);
    tm_stats_set_str(o, "stop", stop_name(res.why, res.by_stop_text));
    tm_stats_set_num(o, "seconds", secs);
out:
    tok_encoder_free(enc);
out_tk:
    tok_tokenizer_release(&tk);
    tm_buf_release(&text);
    tr_model_release(&m);
    return rc;
}

const struct tm_command tr_generate_command = {
    .name = "generate",
    .summary = "continue a prompt with a trained checkpoint (greedy, temperature, top-p)",
    .synopsis = "",
    .description =
        "Encodes --prompt with --vocab, runs it through the checkpoint's model (the main model;\n"
        "the multi-token prediction module is skipped) with a KV cache, and prints the\n"
        "continuation: the most probable token each step with --temperature 0, else a sample\n"
        "from softmax(logits / T) restricted to the top-p nucleus, deterministic for --seed.\n"
        "Stops at <|endoftext|>, --max-tokens, the model's context, or a --stop text.",
    .opts = gen_opts,
    .cfg_size = sizeof(struct gen_options),
    .min_args = 0,
    .max_args = 0,
    .run = generate_cmd,
};
