/* tr_gen.h: a trained model opened for generation, and `tokenmill generate`. Internal to
 * train. */
#ifndef TR_GEN_H
#define TR_GEN_H

#include <stdint.h>

#include "tr_model.h"

/* Opens a checkpoint for inference: `path` is a checkpoint directory (WORKDIR/train/ckpt-N), a
 * train directory or a workdir (the newest checkpoint under it). Reads the model settings from
 * its config.json, builds the model and loads model.safetensors into it. *tokenizer_hash gets
 * the hash of the tokenizer the model was trained with (0 when the checkpoint does not say).
 * TM_OK, TM_ERR_NOTFOUND (no checkpoint), TM_ERR_FORMAT (config.json), the errors of
 * tr_model_init() and tr_safetensors_read(); all logged with the path. On success release m with
 * tr_model_release(). */
int tr_ckpt_open(const char *path, struct tr_model *m, uint64_t *tokenizer_hash);

#endif
