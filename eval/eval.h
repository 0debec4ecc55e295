/* eval: scoring trained checkpoints. Bits per byte per domain on a token corpus (this file's
 * first part); compiler-checked code tasks and reports come with their parts of the eval issue.
 * Every function returns TM_OK or a tm_err and logs the detail; none prints to stdout. */
#ifndef EVAL_H
#define EVAL_H

#include <stdint.h>

#include "tm_doc.h"
#include "tokenize.h"
#include "tr_model.h"

/* ---- Bits per byte ------------------------------------------------------------------------
 *
 * A document of tokens t_0 .. t_{n-1} (its end-of-text token not counted) is scored as the
 * model sees it in training: the sequence <|endoftext|> t_0 .. t_{n-1} (the end-of-text token
 * that precedes every document in a token stream), each t_i predicted from what precedes it.
 * A document longer than the window is scored in windows of `window` tokens that start every
 * `stride` tokens; each token is scored once, in the first window that ends at or after it, so
 * all but the first `window` tokens see at least window - stride tokens of context (the
 * sliding-window evaluation of Hugging Face's perplexity guide). Special tokens inside a
 * document (ids past the vocabulary's ranks) are neither scored nor counted as bytes.
 *
 *   BPB = (sum of the scored tokens' negative log-likelihoods, in nats)
 *         / (ln 2 * the number of UTF-8 bytes those tokens decode to),
 * summed over the whole split (not averaged per document), per domain and overall. The bytes
 * are the decoded text's, so two tokenizers scoring the same text divide by the same count;
 * loss = nats / tokens and perplexity = exp(loss) are per token. */

struct ev_bpb_opts {
    int split;        /* enum tok_split: TOK_SPLIT_VAL normally */
    int window;       /* tokens per window, 2 .. the model's context; 0: the context */
    int stride;       /* 1 .. window; 0: window / 2 */
    int64_t max_docs; /* per domain, 0: all */
};

struct ev_bpb_sum {
    double nats;     /* sum of negative log-likelihoods */
    uint64_t tokens; /* scored tokens */
    uint64_t bytes;  /* UTF-8 bytes they decode to */
    uint64_t docs;
};

struct ev_bpb_result {
    struct ev_bpb_sum domain[TM_DOMAIN_COUNT];
    struct ev_bpb_sum all;
    int window, stride; /* as resolved */
};

/* BPB, loss per token and perplexity of a sum (0 when it holds no bytes or tokens). */
double ev_bpb(const struct ev_bpb_sum *s);
double ev_loss(const struct ev_bpb_sum *s);

/* Scores the documents of split o->split of corpus c (made with tokenizer tk, whose ids must
 * fit the model's vocabulary) with model m, on m->threads / m->gemm.threads workers inside each
 * forward pass. The model's multi-token-prediction module is not run (it is not part of the
 * model's prediction). Returns TM_OK, TM_ERR_USAGE (a window or stride out of range, a
 * tokenizer larger than the model's vocabulary), or the errors of the corpus reader and the
 * model (logged). */
int ev_bpb_score(struct tr_model *m, const struct tok_corpus *c, const struct tok_tokenizer *tk,
                 const struct ev_bpb_opts *o, struct ev_bpb_result *r);

/* `tokenmill eval bpb` (ev_bpb_cmd.c). */
struct tm_command;
extern const struct tm_command ev_bpb_command;

#endif
