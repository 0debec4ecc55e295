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

struct gen_ctx {
    struct tok_decoder dec;
    struct tm_buf text; /* the decoded continuation */
    const struct gen_options *opt;
    size_t checked; /* bytes of text already searched for stop sequences */
    int stopped;
    int err;
};

static int gen_emit(void *vctx, const unsigned char *bytes, size_t len)
{
    struct gen_ctx *g = vctx;
    return tm_buf_append(&g->text, bytes, len);
}

/* Decodes the token and ends generation when the text now contains a stop sequence: the text
 * is cut where it starts. */
static int on_token(void *vctx, int32_t id)
{
    struct gen_ctx *g = vctx;
    int rc = tok_decoder_push(&g->dec, (uint32_t)id);
    if (rc) {
        g->err = rc;
        return 1;
    }
    for (size_t i = 0; i < g->opt->stop.count; i++) {
        const char *s = g->opt->stop.items[i];
        size_t sl = strlen(s);
        if (!sl || g->text.len < sl)
            continue;
        /* Only where the new bytes can complete it. */
        size_t from = g->checked >= sl ? g->checked - sl + 1 : 0;
        const char *hit = memmem(g->text.data + from, g->text.len - from, s, sl);
        if (hit) {
            g->text.len = (size_t)(hit - g->text.data);
            g->stopped = 1;
            return 1;
        }
    }
    g->checked = g->text.len;
    return 0;
}

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
    struct tr_kv_cache kv;
    int have_kv = 0;
    struct tok_ids ids;
    tok_ids_init(&ids, 0);
    struct gen_ctx g;
    memset(&g, 0, sizeof g);
    g.opt = opt;
    tm_buf_init(&g.text, 0);
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
    if ((rc = tok_encode_ordinary(enc, opt->prompt, strlen(opt->prompt), &ids)))
        goto out;
    if (ids.n == 0) {
        tm_log_error("generate: the prompt is empty");
        rc = TM_ERR_USAGE;
        goto out;
    }
    if ((rc = tr_kv_cache_init(&kv, &m, m.cfg.context)))
        goto out;
    have_kv = 1;
    struct tr_sampler s;
    tr_sampler_init(&s, (float)opt->temperature, (float)opt->top_p, (uint64_t)opt->seed);
    tok_decoder_init(&g.dec, enc, gen_emit, &g);
    int n_new = 0;
    enum tr_stop why = TR_STOP_MAX_NEW;
    double t0 = tm_now();
    rc = tr_generate(&m, &kv, (const int32_t *)ids.v, (int)ids.n, (int)opt->max_tokens, &s,
                     (int32_t)tk.eot, on_token, &g, &n_new, &why);
    double secs = tm_now() - t0;
    if (rc == TM_ERR_TOOBIG)
        tm_log_error("generate: the prompt's %zu tokens exceed the model's context of %d", ids.n,
                     m.cfg.context);
    if (!rc && g.err)
        rc = g.err;
    if (rc)
        goto out;
    if (!g.stopped)
        tok_decoder_finish(&g.dec);
    if (g.text.len)
        fwrite(g.text.data, 1, g.text.len, stdout);
    fputc('\n', stdout);
    tm_log_info("generate: %d tokens (%s), %.1f tokens/s", n_new, stop_name(why, g.stopped),
                secs > 0 ? n_new / secs : 0.0);
    cJSON *o = tm_stats_obj(run->stats, "generate");
    tm_stats_set_num(o, "prompt_tokens", (double)ids.n);
    tm_stats_set_num(o, "tokens", n_new);
    tm_stats_set_str(o, "stop", stop_name(why, g.stopped));
    tm_stats_set_num(o, "seconds", secs);
out:
    if (have_kv)
        tr_kv_cache_release(&kv);
    tok_encoder_free(enc);
out_tk:
    tok_tokenizer_release(&tk);
    tok_ids_release(&ids);
    tm_buf_release(&g.text);
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
