/* tr_train: the CPU reference trainer's loop, its settings, its optimizer and its checkpoints.
 * Internal to train/ (not part of train.h); `tokenmill train` (tr_cmd.c) and the tests use it.
 *
 * Settings: the [train] section of the same INI file whose [model] section configures the
 * model (tr_model.h). Every key has the name of its field below.
 *
 * Steps are counted from 0: step s is the (s + 1)-th optimizer update, and metrics and
 * checkpoints are labelled with the number of updates done ("step": s + 1 after step s;
 * validation line "step": 0 before the first update).
 *
 * Files under WORKDIR/train (the layout the loop owns):
 *   lock              the trainer's lock (tm_lock_workdir): one trainer per workdir
 *   metrics.jsonl     one JSON object per line: per update
 *                       {"step", "loss", "loss_mtp", "lr", "grad_norm", "tokens_per_s",
 *                        "moe": [{"layer", "load_min", "load_max", "load_cv", "bias_mean",
 *                                 "bias_maxabs"}, ...]}
 *                     and per evaluation {"step", "val_loss"}. On resume the lines after the
 *                     checkpoint's step are dropped, so the file reads as one uninterrupted run.
 *   ckpt-N/           the checkpoint after N updates: model.safetensors, config.json, state.bin
 *   ckpt-N.partial/   a checkpoint being written (removed by the next run)
 *
 * Threading: one training run per workdir and process; nothing here is shared between
 * threads except inside the model (tr_model.h). */
#ifndef TR_TRAIN_H
#define TR_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "tr_model.h"

struct cJSON;
struct tok_corpus;

/* ==== Settings ============================================================================= */

/* The [train] section. */
struct tr_train_cfg {
    int steps;           /* optimizer updates of the whole run, 1 .. 100000000 */
    int batch;           /* B, sequences per step, 1 .. 65536 */
    int seq;             /* T, tokens per sequence, 1 .. model context */
    double lr;           /* peak learning rate, (0, 10] */
    double min_lr;       /* the cosine decay's floor, [0, lr] */
    int warmup;          /* linear warmup steps, 0 .. steps */
    double weight_decay; /* decoupled decay, [0, 10] (0.1 is common: GPT-3, DeepSeek-V3) */
    double beta1;        /* [0, 1) */
    double beta2;        /* [0, 1) */
    double eps;          /* (0, 1] */
    double clip;         /* global gradient norm limit; 0 disables clipping, [0, 1e6] */
    uint64_t seed;       /* the data order: windows are a pure function of (seed, step, index) */
    int eval_every;      /* validation every N updates (and at 0 and at the end); 0: only at 0
                            and at the end */
    int eval_batches;    /* batches of B validation windows per evaluation, 0 .. 100000 (0: off) */
    int ckpt_every;      /* a checkpoint every N updates (and at the end); 0: only at the end */
    int keep_ckpts;      /* the newest checkpoints kept, 1 .. 1000000 */
    /* Domain sampling weights (text, math, code), each [0, 1e6], or -1 when not given. When
     * none is given, windows are drawn in proportion to the domains' token counts; when some
     * are, the domains not given weigh 0. */
    double weights[3];
    int precision; /* enum tr_precision: how the products are computed */
    /* precision fp8 only (tr_fp8.h, tr_ops.h TR_GEMM_FP8): */
    int fp8_format;      /* enum tr_fp8_format: e4m3 (default, DeepSeek-V3) or e5m2 */
    int fp8_pow2;        /* 1: power-of-two scales; 0 (default): amax / max */
    int fp8_accum_bits;  /* bits the emulated tensor core keeps per WGMMA step, 0 .. 24 (0: an
                            ideal FP32 accumulator; default 14, DeepSeek-V3's measurement) */
    int fp8_promote;     /* K elements between promotions to FP32: 32, 64 or 128 (default) */
    int moments;         /* enum tr_moments: the AdamW moments' storage */
    int fp8_probe_every; /* every N updates (and the first) measure what FP8 does to each Linear
                            product (tr_gemm_probe; metrics "fp8_rel_err"), in any precision;
                            0 (default): never */
    int threads;         /* workers of every split operation (tr_ops.h), 1 .. 256 */
};

/* [train] precision: every Linear product in FP32, in BF16 (inputs rounded), or in DeepSeek-V3's
 * FP8 (TR_GEMM_FP8; the output head, router and attention core then run in BF16). */
enum tr_precision { TR_PREC_FP32 = 0, TR_PREC_BF16 = 1, TR_PREC_FP8 = 2 };

/* [train] moments: auto (the default) stores AdamW's moments in BF16 under precision fp8, as
 * DeepSeek-V3 does, and in FP32 otherwise; fp32 and bf16 force one. BF16 storage is emulated:
 * each moment is rounded to BF16 after every update (the update itself computes in FP32 from
 * the stored values, as a kernel reading BF16 moments would). */
enum tr_moments { TR_MOMENTS_AUTO = 0, TR_MOMENTS_FP32 = 1, TR_MOMENTS_BF16 = 2 };

/* Whether t stores the moments in BF16 (resolving auto). */
int tr_train_moments_bf16(const struct tr_train_cfg *t);

/* The accepted words of the enum keys, NULL-terminated, indexed by the stored value
 * (fp8_promote: "32", "64", "128"). */
extern const char *const tr_precision_names[];
extern const char *const tr_fp8_format_names[];
extern const char *const tr_fp8_promote_names[];
extern const char *const tr_moments_names[];

/* The GEMM configuration for t's precision, FP8 settings and threads. */
void tr_train_gemm_cfg(const struct tr_train_cfg *t, struct tr_gemm_cfg *g);

/* Fills t with the defaults: steps 1000, batch 8, seq 128, lr 3e-4, min_lr 3e-5, warmup 100,
 * weight_decay 0.1, beta1 0.9, beta2 0.95, eps 1e-8, clip 1.0, seed 1, eval_every 100,
 * eval_batches 8, ckpt_every 500, keep_ckpts 2, weights by token counts, precision fp32,
 * fp8_format e4m3, fp8_pow2 0, fp8_accum_bits 14, fp8_promote 128, moments auto, fp8_probe_every 0,
 * threads 1. */
void tr_train_defaults(struct tr_train_cfg *t);

/* Applies one key of the [train] section to t (a tm_ini_set_fn): TM_OK, or TM_ERR_USAGE with
 * "key: want <range>, not '<value>'" or "unknown key 'key'" in err. Keys of other sections are
 * ignored (TM_OK). */
int tr_train_set(void *t, const char *section, const char *key, const char *value, char *err,
                 size_t errlen);

/* Checks the relations between keys and with the model: seq <= mc->context, min_lr <= lr,
 * warmup <= steps, and the sum of given weights > 0. TM_OK or TM_ERR_USAGE (logged with the key
 * named). */
int tr_train_check(const struct tr_train_cfg *t, const struct tr_config *mc);

/* Defaults, the [model] and [train] sections of the INI file at path, then both checks.
 * TM_OK, TM_ERR_USAGE (logged "path:line: key: reason" or by the checks), TM_ERR_IO,
 * TM_ERR_TOOBIG. */
int tr_train_load(const char *path, struct tr_config *mc, struct tr_train_cfg *t);

/* ==== Optimizer (tr_optim.c) =============================================================== */

/* The learning rate of step s (0-based): linear warmup lr (s + 1) / warmup for s < warmup,
 * then cosine decay from lr to min_lr over the remaining steps:
 *   min_lr + (lr - min_lr) (1 + cos(pi p)) / 2,  p = (s - warmup) / max(1, steps - warmup),
 * p clamped to [0, 1] (steps past the end stay at min_lr). (Warmup then cosine: Loshchilov and
 * Hutter, SGDR, 2017, as used by GPT-3 and LLaMA.) */
double tr_lr_at(const struct tr_train_cfg *t, int64_t s);

/* One AdamW update (Loshchilov and Hutter, "Decoupled Weight Decay Regularization", 2019) of
 * n parameters, in the form PyTorch's torch.optim.AdamW documents:
 *   p -= lr wd p;  m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;
 *   p -= lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
 * with g = gscale * (the stored gradient): gscale is the global-norm clipping factor (1 when
 * not clipping), applied here rather than in a pass of its own; the float product is the
 * value tr_grad_clip() would have stored. t is the 1-based update count (bias correction).
 * Arithmetic in float, the corrections in double then rounded once; a fixed order, so it is
 * deterministic. p, m, v are updated in place; g is read. */
void tr_adamw_update(float *p, const float *g, float *m, float *v, size_t n, float lr, float wd,
                     float b1, float b2, float eps, float gscale, int64_t t);

/* Whether the tensor is decayed: matrices are, but not RMSNorm scales (ndim 1) and not the
 * embedding table "embed" (a lookup table, decayed by neither GPT-2's nor nanoGPT's recipe;
 * each row only gets gradient when its token appears, so decay would shrink rare tokens). */
int tr_tensor_decays(const struct tr_tensor *t);

/* AdamW over the whole model with t's settings, lr and the 1-based update count: each named
 * tensor of m->params with tr_tensor_decays() choosing wd or 0. mom and vel are n_params
 * floats each (the moments, caller-owned). The tensors are cut into pieces of 2^16 values
 * updated on t->threads workers (elementwise: the result does not depend on the count).
 * gscale multiplies every gradient (the clipping factor, see tr_adamw_update()). */
void tr_optim_step(struct tr_model *m, const float *grads, float *mom, float *vel,
                   const struct tr_train_cfg *t, float lr, float gscale, int64_t update);

/* ==== Checkpoints (tr_ckpt.c) ============================================================== */

#define TR_STATE_MAGIC   "TMTRSTAT"
#define TR_STATE_VERSION 1

/* What a checkpoint holds besides the parameters. */
struct tr_state {
    int64_t step; /* updates done */
    float *mom;   /* n_params AdamW first moments, borrowed */
    float *vel;   /* n_params second moments, borrowed */
    size_t n_params;
    /* The token shards' tokenizer (tok_shard_meta.tokenizer_hash); 0: unknown. Saved in
     * config.json ("data") and the safetensors metadata; a checkpoint of another tokenizer is
     * not resumed. */
    uint64_t tokenizer_hash;
    /* What the run that wrote the checkpoint was training towards, saved in config.json
     * ("data"): the corpus it read (tr_corpus_id(): shards, tokens, last document) and the step
     * it was to stop at. A continued run (tr_run_opts.continue_steps) compares them with the
     * corpus of now. Empty / 0 when unknown (a checkpoint of an older tokenmill). */
    char corpus[64];
    int64_t target;
};

/* Writes the model's parameters and router biases as safetensors to path: an 8-byte
 * little-endian header length N, N bytes of JSON padded with spaces to a multiple of 8
 * ({name: {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]}, ...,
 * "__metadata__": {...}}, tensors in offset order, then the router biases as
 * "layers.<l>.moe.router_bias" [E]), then the raw little-endian data. metadata: string pairs
 * added to __metadata__ (n_meta pairs, key then value; may be NULL when 0). Written directly
 * (the caller makes the directory atomic) and fsynced. TM_OK, TM_ERR_IO, TM_ERR_UNSUPPORTED
 * (big-endian host). */
int tr_safetensors_write(const struct tr_model *m, const char *path, const char *const *meta,
                         int n_meta);

/* Reads a file tr_safetensors_write() wrote (or any safetensors file holding every tensor of
 * m's table and every router bias, F32, with the same shapes) into m->params and
 * m->router_bias. Validates the header length, the JSON, each dtype, shape and byte range.
 * TM_OK, TM_ERR_IO, TM_ERR_FORMAT (logged with the tensor), TM_ERR_NOTFOUND (a tensor
 * missing). */
int tr_safetensors_read(struct tr_model *m, const char *path);

/* state.bin: the magic, version, step, counts, the moments, the model's load counters, then
 * an xxh3-64 of everything before it. tr_state_write writes and fsyncs path; tr_state_read
 * checks every count against m and st->n_params and the checksum before filling st->mom,
 * st->vel, st->step and m->load. TM_OK, TM_ERR_IO, TM_ERR_FORMAT, TM_ERR_VERSION. */
int tr_state_write(const struct tr_model *m, const struct tr_state *st, const char *path);
int tr_state_read(struct tr_model *m, struct tr_state *st, const char *path);

/* The settings as JSON {"model": {...}, "train": {...}}; caller frees with cJSON_Delete. */
struct cJSON *tr_config_json(const struct tr_config *mc, const struct tr_train_cfg *t);

/* Writes train_dir/ckpt-<step> atomically (ckpt-<step>.partial, each file fsynced, the
 * directory fsynced, renamed, the parent fsynced), then removes all but the keep newest
 * checkpoints. TM_OK or TM_ERR_IO (logged). */
int tr_ckpt_save(const char *train_dir, const struct tr_model *m, const struct tr_state *st,
                 const struct tr_config *mc, const struct tr_train_cfg *t, int keep);

/* The step of the newest complete checkpoint in train_dir in *step (-1 when none). Removes
 * leftover *.partial directories. TM_OK or TM_ERR_IO. */
int tr_ckpt_latest(const char *train_dir, int64_t *step);

/* The same without removing anything (for plans). */
int tr_ckpt_newest(const char *train_dir, int64_t *step);

/* What a checkpoint's config.json says, read without loading the model. */
struct tr_ckpt_info {
    int model_same;     /* its [model] settings equal mc's */
    char tokenizer[32]; /* the hash of its shards' tokenizer, hex ("" when unknown) */
    char corpus[64];    /* tr_state.corpus */
    int64_t target;     /* tr_state.target */
};
int tr_ckpt_info(const char *train_dir, int64_t step, const struct tr_config *mc,
                 struct tr_ckpt_info *out);

/* Removes every checkpoint (complete or partial) in train_dir. TM_OK or TM_ERR_IO. */
int tr_ckpt_remove_all(const char *train_dir);

/* Loads train_dir/ckpt-<step> into m (parameters, biases, load counters) and st (moments,
 * step). The checkpoint's model settings must equal mc, and when st->tokenizer_hash is not 0 its
 * tokenizer hash must equal it (TM_ERR_USAGE otherwise, logged: the file or the shards changed;
 * --fresh starts over). TM_OK or the errors above. */
int tr_ckpt_load(const char *train_dir, int64_t step, struct tr_model *m, struct tr_state *st,
                 const struct tr_config *mc);

/* ==== The loop (tr_loop.c) ================================================================= */

struct tr_run_opts {
    const char *workdir;
    const char *config; /* the INI file */
    int fresh;          /* 1: ignore and delete earlier checkpoints and metrics */
    int64_t until;      /* > 0: stop after this many updates (the schedule still spans
                           `steps`); a checkpoint is written there */
    int progress;       /* 1: log a line per evaluation at info level */
    /* > 0: continued training on a growing corpus (a pipeline's refresh). When the token
     * shards differ from those the newest checkpoint was trained towards, train this many
     * updates past it (at least to `steps`); when they are the same, finish what that run was
     * training towards and otherwise do nothing. 0: train to `steps`. */
    int64_t continue_steps;
};

/* Trains: loads the settings, opens the corpus (the model's vocab_size must be >= the shards'
 * id_end), resumes from the newest checkpoint unless fresh, runs the updates, evaluates, writes
 * metrics and checkpoints. Each step reads windows (seed, step, index 0 .. B-1) of the train
 * split with the [train] weights; each evaluation reads eval_batches * B windows of the val
 * split in proportion to its token counts, from a fixed seed, so every evaluation of every run
 * sees the same windows (none when no val domain holds seq + 1 tokens: a warning, no
 * val_loss lines). Adds "steps_done", "loss" (the last step's), "val_loss" (the last
 * evaluation's; null when none), "tokens" to the object "train" of stats (may be NULL). TM_OK;
 * TM_ERR_USAGE (bad settings, vocabulary too small, a changed model); TM_ERR_LOCKED (another
 * trainer); TM_ERR_NOTFOUND (no shards, or no domain with seq + 1 training tokens); TM_ERR_IO and
 * corpus errors. */
int tr_train_run(const struct tr_run_opts *o, struct cJSON *stats);

/* What tr_train_run() would do now: from which step to which and why, or that the newest
 * checkpoint cannot be continued (other [model] settings or tokenizer: stale, --fresh starts
 * over). Reads only. */
struct tm_plan;
int tr_train_plan(const struct tr_run_opts *o, struct tm_plan *out);

#endif
