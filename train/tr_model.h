/* tr_model: the CPU reference model of the trainer, a DeepSeek-V3-shaped decoder (small): its
 * configuration, its parameters, and the forward and backward passes of the whole network,
 * Mixture-of-Experts layers and multi-token prediction included. Internal to train/ (not part
 * of train.h); the trainer loop, checkpoints and tests use it. Built on tr_ops.h, whose
 * conventions (row-major float32, [outer, ..., inner] shapes, N = B * T token rows) hold here.
 *
 * The network (DeepSeek-V3, arXiv 2412.19437, sections 2.1 and 2.2), decoder-only, pre-norm:
 *   h_0 = embed[ids]
 *   for each layer l: h = h + attn(rmsnorm(h));  h = h + ffn(rmsnorm(h))
 *   logits = rmsnorm(h_L) head^T            head [V, D], not tied to embed
 * - attn: q = x wq^T, k = x wk^T, v = x wv^T; RoPE on q and k (tr_rope_fwd, position t of each
 *   sequence); causal grouped-query attention (tr_attn_fwd, scale 1 / sqrt(head_dim));
 *   out = att wo^T.
 * - ffn of the first dense_layers layers: dense SwiGLU, w2 (silu(x w1^T) * (x w3^T)), width d_ff.
 * - ffn of the other layers, MoE: n_shared_experts shared SwiGLU experts of width d_expert,
 *   always applied, plus n_routed_experts routed ones of the same shape. The router
 *   (tr_router_fwd) scores u = x router^T, s = sigmoid(u), picks the top_k experts by
 *   s + bias (the bias only selects) and weights them by g = route_scale * s / sum(s selected):
 *     ffn(x) = sum_shared expert_s(x) + sum_k g_k expert_{sel_k}(x).
 *   The backward pass runs through the experts and through g into the router weights; the
 *   selection is held fixed (a discrete choice). Tokens are dispatched to routed experts by a
 *   counting sort on the expert index (tokens in row order, slots in order within a token), so
 *   each expert multiplies one contiguous block of its tokens.
 * - Multi-token prediction, depth 1 (mtp_depth = 1): for positions t = 0 .. T-2 of each
 *   sequence, with h_L the main model's last hidden state BEFORE the final norm (as in
 *   DeepSeek-V3, eq. 21):
 *     c = [rmsnorm(h_L[t]; mtp.norm_h), rmsnorm(embed[ids[t + 1]]; mtp.norm_e)]   [2D]
 *     x = c mtp.proj^T                                                          [D]
 *     x = block(x) over the T - 1 positions (one causal sequence), a transformer block with a
 *         DENSE SwiGLU FFN of width d_ff (DeepSeek-V3's MTP block is MoE; a dense one keeps
 *         this reference small and is enough for the objective)
 *     logits_mtp = rmsnorm(x; mtp.norm) head^T   (its OWN final norm, as DeepSeek-V3's
 *         shared_head.norm; the head itself is SHARED with the main model)
 *   predicting targets[t + 1] (the token after next when targets are the next tokens). The
 *   embedding table and the head are shared: their gradients from both paths add up.
 *
 * Losses (all means over counted positions, tr_xent):
 *   loss_main  = xent(logits, targets)
 *   loss_mtp   = xent(logits_mtp, targets shifted by one) (0 when mtp_depth = 0 or T < 2)
 *   loss_bal   = sum over MoE layers of tr_router_balance(alpha = balance_alpha) (0 when off)
 *   total      = loss_main + mtp_lambda * loss_mtp + loss_bal
 * tr_model_backward() computes the gradient of `total`.
 *
 * Parameters live in one contiguous float array, m->params, with the layout of the named-tensor
 * table m->tensors (in this order; names follow the pattern below, so a checkpoint writer can
 * export them as they are):
 *   embed [V, D]
 *   layers.<l>.attn_norm [D], .attn.wq [H hd, D], .attn.wk [Hkv hd, D], .attn.wv [Hkv hd, D],
 *             .attn.wo [D, H hd], .ffn_norm [D], then for a dense layer
 *             .ffn.w1 [F, D], .ffn.w3 [F, D], .ffn.w2 [D, F]
 *             and for an MoE layer
 *             .moe.router [E, D], .moe.shared.w1 [S, De, D], .moe.shared.w3 [S, De, D],
 *             .moe.shared.w2 [S, D, De], .moe.experts.w1 [E, De, D], .moe.experts.w3 [E, De, D],
 *             .moe.experts.w2 [E, D, De]
 *   norm [D]
 *   head [V, D]
 *   and with mtp_depth 1: mtp.norm_h [D], mtp.norm_e [D], mtp.proj [D, 2D], then one dense
 *   block named like a layer with the prefix "mtp.block" (mtp.block.attn_norm, ...,
 *   mtp.block.ffn.w2), then mtp.norm [D].
 * (V vocab_size, D d_model, H n_heads, Hkv n_kv_heads, hd head_dim, F d_ff, E n_routed_experts,
 * S n_shared_experts, De d_expert.) Tensors are packed without gaps; the table covers the array
 * exactly once. The router selection biases are NOT parameters (no gradient; they move only by
 * tr_model_bias_update()): they live in m->router_bias, E floats per MoE layer.
 *
 * Threading: a model and its activations are used by one thread at a time. Inside a call,
 * attention and the cross-entropy split their work among m->threads workers and the products
 * among m->gemm.threads (tr_ops.h); every other step runs on the calling thread in a fixed
 * order. Results are bit-identical for the same seed, inputs and thread counts (the low bits
 * of the products depend on m->gemm.threads, see tr_gemm()). */
#ifndef TR_MODEL_H
#define TR_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "tr_ops.h"

/* ==== Configuration ======================================================================== */

/* The [model] section of a model INI file. Every key has the same name as the field. */
struct tr_config {
    int vocab_size;       /* V, 2 .. 16777216 */
    int context;          /* the largest T, 1 .. 1048576 */
    int layers;           /* L, 1 .. 1024 */
    int dense_layers;     /* the first dense_layers layers use a dense FFN, 0 .. layers */
    int d_model;          /* D, 1 .. 65536 */
    int n_heads;          /* H, 1 .. 1024 */
    int n_kv_heads;       /* Hkv, 1 .. n_heads, dividing n_heads */
    int head_dim;         /* hd, even, 2 .. 4096; 0 in a file means d_model / n_heads */
    int d_ff;             /* F, dense FFN hidden width, 1 .. 1048576 */
    double rope_theta;    /* RoPE base, > 1 (10000 in RoFormer and LLaMA) */
    float norm_eps;       /* RMSNorm epsilon, (0, 1] */
    int n_routed_experts; /* E, 1 .. 4096 (unused when dense_layers == layers) */
    int n_shared_experts; /* S, 0 .. 64 */
    int top_k;            /* K, 1 .. n_routed_experts */
    int d_expert;         /* De, expert hidden width, 1 .. 1048576 */
    float route_scale;    /* gate scale, (0, 1000] (DeepSeek-V3: 2.5) */
    float bias_gamma;     /* bias update speed, [0, 1] (DeepSeek-V3: 0.001) */
    float balance_alpha;  /* sequence balance loss weight, [0, 1]; 0 is off (DeepSeek-V3: 1e-4) */
    int mtp_depth;        /* 0 or 1 */
    float mtp_lambda;     /* MTP loss weight, [0, 10] (DeepSeek-V3: 0.3, then 0.1) */
    uint64_t seed;        /* initialization seed, any unsigned 64-bit value */
    float init_std;       /* std of the normal initialization, (0, 10]; output projections
                             (wo, w2) use init_std / sqrt(2 layers) (GPT-2's residual scaling) */
};

/* ---- Table-driven INI keys (the [model] and [train] sections) ------------------------------ */

enum tr_key_type { TR_KEY_INT, TR_KEY_FLOAT, TR_KEY_DOUBLE, TR_KEY_U64, TR_KEY_ENUM };

/* One key of a settings struct: its type, offset and inclusive range (min exclusive when
 * min_open). A TR_KEY_ENUM key is an int holding the index of its value in `names` (a NULL-
 * terminated list of the accepted words; min, max and min_open unused). */
struct tr_key {
    const char *name;
    enum tr_key_type type;
    size_t off;
    double min, max;
    int min_open;
    const char *const *names;
};

/* Parses `value` for key `key` of table keys[0..n) into obj: TM_OK, or TM_ERR_USAGE with
 * "key: want <range>, not '<value>'" or "unknown key 'k' (the keys)" in err[errlen]. */
int tr_key_set(const struct tr_key *keys, int n, void *obj, const char *key, const char *value,
               char *err, size_t errlen);

/* The range of k in words ("an integer from 1 to 1024"), into buf[n]. */
void tr_key_range(const struct tr_key *k, char *buf, size_t n);

/* Fills c with the defaults: a small model (V 256, context 256, 4 layers of which 1 dense,
 * D 64, H 4, Hkv 2, hd 16, F 192, theta 10000, eps 1e-6, E 8, S 1, K 2, De 32, route_scale 1,
 * bias_gamma 0.001, balance_alpha 0, mtp_depth 1, mtp_lambda 0.3, seed 1, init_std 0.02). */
void tr_config_defaults(struct tr_config *c);

/* Applies one key of the [model] section to c (the tm_ini_set_fn of tm_ini.h, for --set
 * overrides too): TM_OK, or TM_ERR_USAGE with "key: want <range>, not '<value>'" or "unknown
 * key" in err. Keys of other sections are ignored (TM_OK), so one file can carry the model and
 * the trainer's settings. Checks each value's own range only; tr_config_check() checks the
 * relations between keys. */
int tr_config_set(void *c, const char *section, const char *key, const char *value, char *err,
                  size_t errlen);

/* Checks the relations between keys (n_heads % n_kv_heads, top_k <= n_routed_experts,
 * dense_layers <= layers, head_dim even, and that the parameter count fits) and resolves
 * head_dim 0 to d_model / n_heads (which must then be even and nonzero).
 * Returns TM_OK or TM_ERR_USAGE, logged with the key named and its allowed range. */
int tr_config_check(struct tr_config *c);

/* Defaults, then the keys of the INI text (`name` for messages), then tr_config_check().
 * Returns TM_OK or TM_ERR_USAGE (logged as "name:line: key: reason" by tm_ini_parse, or by
 * tr_config_check). On error c holds whatever was applied. */
int tr_config_parse(struct tr_config *c, const char *text, size_t len, const char *name);

/* tr_config_parse() on a file: also TM_ERR_IO, TM_ERR_TOOBIG (tm_ini_load). */
int tr_config_load(struct tr_config *c, const char *path);

/* ==== Parameters =========================================================================== */

#define TR_NAME_MAX 48

/* One named tensor of the parameter array: numel floats at params + offset. */
struct tr_tensor {
    char name[TR_NAME_MAX];
    size_t offset; /* in floats */
    size_t numel;
    int ndim;     /* 1 .. 3 */
    int shape[3]; /* outer to inner */
};

/* Where one block's tensors are, as offsets into the parameter (or gradient) array. A field
 * that the block does not have is SIZE_MAX. */
struct tr_block_off {
    size_t attn_norm, wq, wk, wv, wo, ffn_norm;
    size_t w1, w3, w2;            /* dense FFN */
    size_t router, sw1, sw3, sw2; /* MoE: router and shared experts (stacked) */
    size_t ew1, ew3, ew2;         /* MoE: routed experts (stacked) */
    int moe;                      /* 1 for an MoE block */
    int moe_index;                /* which MoE layer (0 ..), -1 for a dense block */
};

struct tr_model {
    struct tr_config cfg; /* validated */
    float *params;        /* n_params floats, owned */
    size_t n_params;
    struct tr_tensor *tensors; /* n_tensors entries, owned; the layout above */
    int n_tensors;
    struct tr_block_off *blocks; /* cfg.layers entries, owned */
    struct tr_block_off mtp_block;
    size_t embed, norm, head, mtp_norm_h, mtp_norm_e, mtp_proj, mtp_norm; /* offsets */
    int n_moe_layers;
    float *router_bias;      /* n_moe_layers * E, owned; zero at init */
    int64_t *load;           /* n_moe_layers * E, owned: (token, slot) pairs routed to each expert,
                                ADDED by every forward pass since the last bias update or
                                tr_model_load_clear() (summed over micro-batches) */
    struct tr_gemm_cfg gemm; /* every product's mode (TR_GEMM_BF16 for bf16) and workers (1
                                after tr_model_init) */
    int threads;             /* attention and cross-entropy workers, >= 1; 1 after
                                tr_model_init */
};

/* Builds the model of a configuration (tr_config_check() is run on a copy of cfg first):
 * allocates and lays out the parameters and initializes them from cfg->seed: every matrix from
 * a normal distribution of std init_std (wo and every w2 by init_std / sqrt(2 layers)), RMSNorm
 * scales to 1, router biases to 0. The draws come from tm_splitmix64 in table order (Box-Muller
 * with libm's log and cos), so the same seed gives the same bits on a given platform.
 * Returns TM_OK, TM_ERR_USAGE (bad configuration or too many parameters, logged) or
 * TM_ERR_INTERNAL (the layout disagrees with tr_config_param_count(): a bug). On error m is
 * left released. Release with tr_model_release(). */
int tr_model_init(struct tr_model *m, const struct tr_config *cfg);

/* Frees everything tr_model_init() allocated; accepts a zeroed or released model. */
void tr_model_release(struct tr_model *m);

/* The table entry named `name`, or NULL. */
const struct tr_tensor *tr_model_tensor(const struct tr_model *m, const char *name);

/* The closed-form parameter count of a configuration (after tr_config_check()). */
size_t tr_config_param_count(const struct tr_config *c);

/* Zeroes the load counters. */
void tr_model_load_clear(struct tr_model *m);

/* The auxiliary-loss-free balancing step (DeepSeek-V3 section 2.1.2) for every MoE layer:
 * bias += gamma * sign(mean load - load) (tr_router_bias_update) with the loads counted since
 * the last call, then the counters are cleared. Call once per optimizer step, after the
 * step's forward passes. gamma is usually cfg.bias_gamma; it is an argument so a schedule can
 * change it (DeepSeek-V3 uses 0.001, then 0 for its last 500B tokens). */
void tr_model_bias_update(struct tr_model *m, float gamma);

/* ==== Activations ========================================================================== */

/* What one block saves for its backward pass (internal layout; tests read sel and load).
 * Every buffer is sized for the largest N the activations were made for. */
struct tr_block_acts {
    float *x_in;  /* [N, D] block input (the residual stream) */
    float *xn1;   /* [N, D] rmsnorm(x_in) */
    float *rstd1; /* [N] */
    float *q;     /* [N, H hd] after RoPE */
    float *k, *v; /* [N, Hkv hd], k after RoPE */
    float *att;   /* [N, H hd] attention output before wo */
    float *lse;   /* [B, H, T] */
    float *x_mid; /* [N, D] x_in + attention */
    float *xn2;   /* [N, D] rmsnorm(x_mid) */
    float *rstd2; /* [N] */
    /* dense FFN */
    float *fa, *fb, *fg; /* [N, F] gate, up, silu(gate) * up */
    /* MoE */
    float *u, *s;        /* [N, E] router logits and affinities */
    int32_t *sel;        /* [N, K] */
    float *gate;         /* [N, K] */
    float *du_bal;       /* [N, E] gradient of the balance loss w.r.t. u (balance_alpha > 0) */
    float *sa, *sb, *sg; /* [S, N, De] shared experts */
    int32_t *disp;       /* [N K] dispatch order: entry r = token * K + slot, grouped by expert */
    int32_t *eoff;       /* [E + 1] expert e owns dispatch rows eoff[e] .. eoff[e + 1] - 1 */
    float *ex;           /* [N K, D] gathered expert inputs */
    float *ea, *eb, *eg; /* [N K, De] */
    float *ey;           /* [N K, D] expert outputs before gating */
};

/* Activations and scratch for batches of up to max_tokens rows (B T <= max_tokens; T is also
 * bounded by cfg.context). */
struct tr_acts {
    size_t max_tokens;
    int B, T;                  /* of the last forward pass */
    int32_t *ids;              /* [N] copy of the last forward's inputs */
    int32_t *targets;          /* [N] */
    int32_t *ids_mtp;          /* [B (T-1)] embedding inputs of the MTP path: ids[b][t + 1] */
    int32_t *tgt_mtp;          /* [B (T-1)] its targets: targets[b][t + 1] */
    struct tr_block_acts *blk; /* [layers] */
    float *h_last;             /* [N, D] output of the last block (before the final norm) */
    float *xf;                 /* [N, D] rmsnorm(h_last) */
    float *rstdf;              /* [N] */
    float *logits;             /* [N, V]: logits after forward (their gradient instead when
                                  grad_in_forward was set); the backward pass overwrites them */
    /* MTP (mtp_depth 1) */
    struct tr_block_acts mblk;
    float *m_h, *m_nh, *m_rh; /* [N', D] gathered h_last rows, their norm, [N'] rstd in m_rh */
    float *m_e, *m_ne, *m_re; /* [N', D] embeddings of ids_mtp, their norm, [N'] rstd */
    float *m_cat;             /* [N', 2D] */
    float *m_out;             /* [N', D] block output */
    float *m_xf, *m_rf;       /* [N', D] rmsnorm(m_out), [N'] rstd */
    float *m_logits;          /* [N', V] */
    /* results of the last forward pass */
    float loss_main, loss_mtp, loss_bal, loss_total;
    /* Set by the caller before a forward pass that a backward pass will follow (the trainer's
     * steps; 0 after tr_acts_init): the forward pass then writes each cross-entropy's
     * gradient over its logits in the same pass as the loss, and the backward pass starts from
     * it, instead of computing the softmax twice. The gradients are the same bits either way;
     * only the logits are not kept. */
    int grad_in_forward;
    int logits_hold_grad; /* the last forward pass wrote gradients over the logits */
    /* backward scratch */
    float *d_res, *d_a, *d_b, *d_c;     /* [N, D] each (d_c: [N, 2D]) */
    float *d_wide1, *d_wide2, *d_wide3; /* [N, max(F, K De, H hd)] */
    float *d_q, *d_k, *d_v;             /* [N, H hd], [N, Hkv hd] x2 */
    float *d_gate;                      /* [N, K] */
    float *d_ex;                        /* [N K, D] */
    float *d_u;                         /* [N, E] */
    void **allocs;                      /* every buffer above, for release */
    int n_allocs;
};

/* Allocates activations for m's configuration and up to max_tokens rows per forward pass.
 * Returns TM_OK, TM_ERR_USAGE (max_tokens < 1) or TM_ERR_TOOBIG (a buffer size overflows).
 * Release with tr_acts_release(). The activations belong to one model configuration. */
int tr_acts_init(struct tr_acts *a, const struct tr_model *m, size_t max_tokens);

/* Frees the buffers; accepts a zeroed or released struct. */
void tr_acts_release(struct tr_acts *a);

/* ==== Forward and backward ================================================================= */

/* The forward pass over B sequences of T tokens. ids [B T] and targets [B T] (each in [0, V) or
 * TR_XENT_IGNORE for targets) are copied into a; row b T + t is token t of sequence b.
 * Writes *loss_main and *loss_mtp (either may be NULL) and a->loss_* (see the losses above),
 * and ADDS this batch's expert loads to m->load.
 * Returns TM_OK; TM_ERR_USAGE for B < 1, T < 1, T > context, B T > a->max_tokens, or an id or
 * target out of range (logged); tr_ops errors. On error the activations and the loads are
 * unspecified. */
int tr_model_forward(struct tr_model *m, struct tr_acts *a, const int32_t *ids,
                     const int32_t *targets, int B, int T, float *loss_main, float *loss_mtp);

/* The backward pass of the last (successful) forward pass on a: ACCUMULATES (+=) d(total
 * loss)/d(params) into grads (n_params floats, the same layout as m->params; the caller zeroes it
 * once per optimizer step, so micro-batches add up). Overwrites a->logits and a->m_logits with
 * their gradients, so call it once per forward pass. Returns TM_OK or a tr_ops error. */
int tr_model_backward(struct tr_model *m, struct tr_acts *a, float *grads);

/* ==== Blocks (tr_moe.c; used by the functions above) ===================================== */

/* One transformer block over B sequences of T tokens: reads ba->x_in [B T, D] (filled by the
 * caller), saves what the backward pass needs in ba, writes the block output to out [B T, D]
 * (not overlapping ba's buffers). An MoE block ADDS its balance loss to *bal and its expert
 * loads to m->load. Returns TM_OK or a tr_ops error. */
int tr_block_fwd(struct tr_model *m, const struct tr_block_off *o, struct tr_block_acts *ba,
                 float *out, int B, int T, float *bal);

/* The backward pass of tr_block_fwd(): reads d(loss)/d(out) from a->d_res and replaces it
 * with d(loss)/d(x_in); accumulates the block's parameter gradients into grads (the layout of
 * m->params). Uses a's d_* scratch buffers. Returns TM_OK or a tr_ops error. */
int tr_block_bwd(struct tr_model *m, const struct tr_block_off *o, struct tr_block_acts *ba,
                 struct tr_acts *a, float *grads, int B, int T);

#endif
