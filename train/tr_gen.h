/* tr_gen.h: a trained model opened for generation, and `tokenmill generate`. Internal to
 * train. */
#ifndef TR_GEN_H
#define TR_GEN_H

#include <stddef.h>
#include <stdint.h>

#include "tm_buf.h"
#include "tokenize.h"
#include "tr_infer.h"
#include "tr_model.h"

/* Opens a checkpoint for inference: `path` is a checkpoint directory (WORKDIR/train/ckpt-N), a
 * train directory or a workdir (the newest checkpoint under it). Reads the model settings from
 * its config.json, builds the model and loads model.safetensors into it. *tokenizer_hash gets
 * the hash of the tokenizer the model was trained with (0 when the checkpoint does not say).
 * TM_OK, TM_ERR_NOTFOUND (no checkpoint), TM_ERR_FORMAT (config.json), the errors of
 * tr_model_init() and tr_safetensors_read(); all logged with the path. On success release m with
 * tr_model_release(). */
int tr_ckpt_open(const char *path, struct tr_model *m, uint64_t *tokenizer_hash);

/* How tr_complete() generates. */
struct tr_complete_opts {
    int max_tokens;           /* the most tokens generated */
    float temperature, top_p; /* 0: greedy; else sampled (tr_sampler) */
    uint64_t seed;
    const char *const *stops; /* stop texts: generation ends when the text contains one */
    size_t n_stops;
    uint32_t id_end; /* ids at or past this are never generated (the tokenizer's id_end); 0: all */
};

/* What tr_complete() did. */
struct tr_complete_result {
    int prompt_tokens, new_tokens;
    enum tr_stop why;
    int by_stop_text; /* 1 when a stop text ended it (cut from the output) */
};

/* Continues `prompt` (encoded as ordinary text with enc) with model m and a KV cache of the
 * model's context, decoding each token into *out (appended, not NUL-terminated; incomplete UTF-8
 * at the end is flushed as is), until <|endoftext|> (eot), o->max_tokens, the context, or the
 * first stop text, which is cut from the output with what follows it. Returns TM_OK,
 * TM_ERR_USAGE (an empty prompt), TM_ERR_TOOBIG (the prompt fills the context), or the errors of
 * the encoder and the model (logged). `generate` and `eval code` use it. */
int tr_complete(const struct tr_model *m, struct tok_encoder *enc, uint32_t eot, const char *prompt,
                const struct tr_complete_opts *o, struct tm_buf *out,
                struct tr_complete_result *res);

#endif
