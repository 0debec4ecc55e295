/* tr_infer: inference with the CPU reference model (tr_model.h): a key/value cache, an
 * incremental forward pass over new tokens, token sampling (greedy, temperature, top-p) and a
 * generation loop. Internal to train/ (not part of train.h); `tokenmill generate` builds on it
 * once a checkpoint has been loaded into a struct tr_model.
 *
 * The incremental pass computes exactly the main model of tr_model_forward() (embedding, the
 * blocks, the final norm and the head) for one sequence (batch 1), position by position:
 * - each block's keys (after RoPE) and values of every position seen so far are kept in the
 *   cache, so a new token costs one row of projections plus attention over the cache;
 * - new tokens are rotated by RoPE at their absolute positions (cache length + i) and attend
 *   causally to the cached positions and to the new ones up to themselves;
 * - MoE layers route with the same top-K selection as training, router selection biases
 *   (m->router_bias) included, and the same gate weights;
 * - the multi-token-prediction module is not run: it only serves the training objective.
 * The logits equal those of tr_model_forward() at the same positions up to float rounding
 * (different GEMM shapes sum in a different order); tests/unit/test_tr_infer.c checks 1e-5 of
 * the row's largest logit.
 *
 * Inference only reads the model: it never writes m->params, m->router_bias or the expert
 * load counters m->load (those drive training's bias update and must not see generated text).
 *
 * Threading: the functions below read the model and write only the cache, sampler and buffers
 * they are given, so several threads may generate from one model with one cache each. The
 * products go through tr_gemm() and split among m->gemm.threads workers (tr_ops.h); results
 * are deterministic for a fixed count. */
#ifndef TR_INFER_H
#define TR_INFER_H

#include <stddef.h>
#include <stdint.h>

#include "tr_model.h"

/* ==== Key/value cache ====================================================================== */

/* The keys and values of one sequence (batch 1: generation serves one prompt at a time).
 * For layer l and position p, the key is at k + ((size_t)l * context + p) * kv_dim (kv_dim =
 * n_kv_heads * head_dim, heads consecutive, after RoPE), the value likewise in v. Positions
 * 0 .. len - 1 are valid. */
struct tr_kv_cache {
    int layers;  /* the model's cfg.layers */
    int context; /* the most positions it holds */
    int kv_dim;  /* n_kv_heads * head_dim */
    int len;     /* positions held, 0 .. context */
    float *k;    /* [layers, context, kv_dim], owned */
    float *v;    /* [layers, context, kv_dim], owned */
};

/* Allocates an empty cache (len 0) for model m and up to `context` positions; context 0 means
 * m->cfg.context. The cache is not tied to m's memory, only to its shape: it may be used with
 * any model of the same layers, n_kv_heads and head_dim (tr_infer_step checks).
 * Returns TM_OK; TM_ERR_USAGE for context < 0 or above m->cfg.context (RoPE positions past the
 * training context were never trained); TM_ERR_TOOBIG when 2 * layers * context * kv_dim
 * floats overflow size_t; TM_ERR_NOMEM when the allocation fails (both logged with the size).
 * On error kv is left released. Release with tr_kv_cache_release(). */
int tr_kv_cache_init(struct tr_kv_cache *kv, const struct tr_model *m, int context);

/* Frees the buffers; accepts a zeroed or released cache. */
void tr_kv_cache_release(struct tr_kv_cache *kv);

/* Forgets every position (len = 0) so the cache serves a new sequence; keeps the memory. */
void tr_kv_cache_reset(struct tr_kv_cache *kv);

/* ==== Incremental forward pass ============================================================= */

/* Runs n new tokens through the main model (no MTP) as positions kv->len .. kv->len + n - 1 of
 * the cached sequence: a whole prompt, a chunk of one, or the one token just generated. Their
 * keys and values are appended to the cache (kv->len grows by n).
 *
 * m:           the model, only read.
 * kv:          a cache made for m's shape (tr_kv_cache_init).
 * ids [n]:     token ids, each in [0, vocab_size); borrowed for the call.
 * logits_last: [vocab_size] written: the logits after the LAST new token (the distribution of
 *              the token at position kv->len + n, as tr_model_forward() computes it).
 * Scratch of n * (3 D + 2 H hd + 2 max(F, K De) + 2 E + K + 2 K D + len + n + 1) + D floats
 * and 2 n K + 2 E + 1 ints (len = kv->len before the call) is allocated for the call and freed
 * before returning. Attention runs on the calling thread (m->threads is not used: one row of
 * queries per token leaves too little work to split).
 *
 * Returns TM_OK; TM_ERR_USAGE (logged) for n < 1, an id outside the vocabulary, or a cache of
 * another shape; TM_ERR_TOOBIG (logged with the lengths) when kv->len + n exceeds
 * kv->context: the caller stops generating or starts over (tr_kv_cache_reset); TM_ERR_NOMEM
 * when the scratch cannot be allocated; tr_ops errors. On error kv->len is unchanged (rows past
 * it may have been overwritten, which no later call reads) and logits_last is unspecified. */
int tr_infer_step(const struct tr_model *m, struct tr_kv_cache *kv, const int32_t *ids, int n,
                  float *logits_last);

/* ==== Sampling ============================================================================= */

/* How the next token is chosen from the logits:
 * - temperature 0: greedy, the largest logit (among equal ones the lowest id);
 * - temperature > 0: from softmax(logits / temperature), restricted by top_p to the nucleus
 *   (Holtzman et al., "The Curious Case of Neural Text Degeneration", ICLR 2020): the smallest
 *   set of the most probable tokens whose probability mass is >= top_p (tokens ordered by
 *   descending probability, equal ones by ascending id), renormalized. top_p 1 keeps every
 *   token.
 * Draws take one tm_splitmix64() value from `state` each, so a seed fixes the sequence on
 * every platform (up to libm's exp in the last bits of a probability). */
struct tr_sampler {
    float temperature; /* >= 0, finite */
    float top_p;       /* (0, 1] */
    uint64_t state;    /* the seed before the first draw; advanced by each sampled draw */
    int n_valid;       /* tr_generate() chooses only ids below this (a model's vocabulary may
                          be larger than its tokenizer's ids); 0: all */
};

/* Fills s: temperature, top_p and the seed as given (not validated here; tr_sample checks);
 * n_valid 0. */
void tr_sampler_init(struct tr_sampler *s, float temperature, float top_p, uint64_t seed);

/* Chooses a token from logits [V] (borrowed) as s says, into *out (in [0, V)). Greedy choice
 * does not touch s->state; a sampled one advances it by one tm_splitmix64() step. NaN logits
 * are never chosen; when the largest logit is +Inf, the choice is greedy among the +Inf ones.
 * Temperature > 0 with top_p < 1 sorts the V candidates (O(V log V)) in scratch allocated for
 * the call; top_p 1 needs none.
 * Returns TM_OK; TM_ERR_USAGE (logged) for V < 1, a temperature that is negative or not finite,
 * or top_p outside (0, 1]; TM_ERR_FORMAT (logged) when every logit is NaN (a diverged model);
 * TM_ERR_NOMEM when the scratch cannot be allocated. */
int tr_sample(struct tr_sampler *s, const float *logits, int V, int32_t *out);

/* ==== Generation =========================================================================== */

/* Why tr_generate() stopped. */
enum tr_stop {
    TR_STOP_EOT = 1,      /* the end-of-text token was sampled (it is not passed to on_token) */
    TR_STOP_MAX_NEW = 2,  /* max_new tokens were generated */
    TR_STOP_CONTEXT = 3,  /* the cache is full: the last token passed could not be fed back */
    TR_STOP_CALLBACK = 4, /* on_token returned non-zero */
};

/* Called with each generated token, in order. Returns 0 to go on, non-zero to stop. Stop
 * sequences live here: the caller decodes the ids it receives and returns non-zero once its
 * text ends with one (and trims it). An error of the caller's is kept in its ctx. */
typedef int (*tr_token_fn)(void *ctx, int32_t id);

/* Generates a continuation of a prompt:
 *   tr_kv_cache_reset(kv); logits = tr_infer_step(prompt, all n_prompt tokens at once);
 *   repeat: id = sample(logits); stop at eot_id; pass id to on_token; stop when it asks, after
 *           max_new tokens, or when the cache is full; else logits = tr_infer_step(id).
 * The prompt and the generated tokens together may fill kv->context positions, plus one last
 * generated token (predicted from the final position, never fed back), so at most
 * kv->context - n_prompt + 1 tokens are generated; reaching that is a clean stop
 * (TR_STOP_CONTEXT), not an error.
 *
 * m, kv:       as for tr_infer_step(); kv is reset first, and holds the sequence afterwards.
 * prompt:      [n_prompt] ids, n_prompt >= 1 (the model has no begin-of-text convention of its
 *              own: the caller puts one in the prompt if it trained with one); borrowed.
 * max_new:     the most tokens to generate, >= 0 (0 runs the prompt and stops).
 * s:           the sampling settings, only read: generation draws from a copy of s->state, so
 *              the same arguments give the same tokens.
 * eot_id:      the token that ends the text, or -1 for none.
 * on_token:    may be NULL (then every token is only counted); ctx is passed to it as is.
 * n_new:       when not NULL, set to the number of tokens passed to on_token (on error too).
 * why:         when not NULL, set to the reason for stopping (on TM_OK).
 * Returns TM_OK when it stopped for one of the reasons above; TM_ERR_USAGE (logged) for
 * n_prompt < 1 or max_new < 0; TM_ERR_TOOBIG when the prompt alone exceeds kv->context; the
 * errors of tr_infer_step() and tr_sample(). */
int tr_generate(const struct tr_model *m, struct tr_kv_cache *kv, const int32_t *prompt,
                int n_prompt, int max_new, const struct tr_sampler *s, int32_t eot_id,
                tr_token_fn on_token, void *ctx, int *n_new, enum tr_stop *why);

#endif
