/* ev_bpb: bits per byte of a checkpoint on a token corpus (see eval.h). */
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "eval.h"
#include "tm_err.h"
#include "tm_log.h"
#include "tm_mem.h"
#include "tr_ops.h"

/* Returned by the per-document callback to stop a stream at --max-docs (not an error). */
#define STOP_STREAM 1

double ev_bpb(const struct ev_bpb_sum *s)
{
    return s->bytes ? s->nats / (M_LN2 * (double)s->bytes) : 0.0;
}

double ev_loss(const struct ev_bpb_sum *s)
{
    return s->tokens ? s->nats / (double)s->tokens : 0.0;
}

struct scorer {
    struct tr_model *m;
    struct tr_acts acts;
    const struct tok_tokenizer *tk;
    const struct tok_shard *shard;
    const struct ev_bpb_opts *o;
    int window, stride, domain;
    struct ev_bpb_result *r;
    uint32_t *doc; /* the document's ids, grown as needed */
    size_t doc_cap;
    int32_t *seq, *targets; /* one window: inputs and targets */
    int err;
};

/* Scores targets (scored, b + w] of seq = <|endoftext|> doc[0 .. n): one forward pass over
 * inputs seq[b .. b + w). */
static int score_window(struct scorer *s, const uint32_t *doc, size_t b, int w, size_t scored,
                        struct ev_bpb_sum *sum)
{
    int counted = 0;
    uint64_t bytes = 0;
    for (int i = 0; i < w; i++) {
        size_t pos = b + (size_t)i; /* input seq[pos], target seq[pos + 1] = doc[pos] */
        s->seq[i] = pos == 0 ? (int32_t)s->tk->eot : (int32_t)doc[pos - 1];
        s->targets[i] = TR_XENT_IGNORE;
        if (pos + 1 <= scored)
            continue;
        size_t len;
        if (!tok_vocab_bytes(s->tk->vocab, doc[pos], &len))
            continue; /* a special token: neither scored nor counted */
        s->targets[i] = (int32_t)doc[pos];
        counted++;
        bytes += len;
    }
    if (!counted)
        return TM_OK;
    float loss = 0.0f;
    int rc = tr_model_forward(s->m, &s->acts, s->seq, s->targets, 1, w, &loss, NULL);
    if (rc)
        return rc;
    sum->nats += (double)loss * counted;
    sum->tokens += (uint64_t)counted;
    sum->bytes += bytes;
    return TM_OK;
}

static int score_doc(void *ctx, uint64_t doc_id, uint64_t pos, uint32_t ntokens)
{
    struct scorer *s = ctx;
    struct ev_bpb_sum *sum = &s->r->domain[s->domain];
    if (s->o->max_docs && sum->docs >= (uint64_t)s->o->max_docs)
        return STOP_STREAM;
    sum->docs++;
    size_t n = ntokens ? ntokens - 1 : 0; /* its end-of-text token is not scored */
    if (n == 0)
        return 0;
    if (n > s->doc_cap) {
        free(s->doc);
        s->doc_cap = n;
        s->doc = tm_xmalloc(n * sizeof(*s->doc));
    }
    int rc = tok_shard_read(s->shard, s->o->split, s->domain, pos, n, s->doc);
    if (rc) {
        tm_log_error("eval bpb: document %" PRIu64 ": its tokens cannot be read", doc_id);
        s->err = rc;
        return rc;
    }
    /* The sequence has n + 1 inputs (<|endoftext|> and the document) and n targets. Windows
     * start every stride tokens; each scores the targets the previous ones did not reach. */
    size_t scored = 0;
    for (size_t b = 0; scored < n; b += (size_t)s->stride) {
        size_t left = n - b; /* targets from this window's start to the document's end */
        int w = left < (size_t)s->window ? (int)left : s->window;
        if ((rc = score_window(s, s->doc, b, w, scored, sum))) {
            s->err = rc;
            return rc;
        }
        scored = b + (size_t)w;
    }
    return 0;
}

int ev_bpb_score(struct tr_model *m, const struct tok_corpus *c, const struct tok_tokenizer *tk,
                 const struct ev_bpb_opts *o, struct ev_bpb_result *r)
{
    memset(r, 0, sizeof(*r));
    int ctx = m->cfg.context;
    int window = o->window ? o->window : ctx;
    int stride = o->stride ? o->stride : (window / 2 > 0 ? window / 2 : 1);
    if (window < 1 || window > ctx || stride < 1 || stride > window) {
        tm_log_error("eval bpb: window %d and stride %d: want 1 <= stride <= window <= the "
                     "model's context %d",
                     window, stride, ctx);
        return TM_ERR_USAGE;
    }
    if (tk->id_end > (uint32_t)m->cfg.vocab_size) {
        tm_log_error("eval bpb: the tokenizer has %u ids, the model's vocabulary %d", tk->id_end,
                     m->cfg.vocab_size);
        return TM_ERR_USAGE;
    }
    r->window = window;
    r->stride = stride;
    struct scorer s = {.m = m, .tk = tk, .o = o, .window = window, .stride = stride, .r = r};
    int rc = tr_acts_init(&s.acts, m, (size_t)window);
    if (rc)
        return rc;
    s.seq = tm_xmalloc((size_t)window * sizeof(int32_t));
    s.targets = tm_xmalloc((size_t)window * sizeof(int32_t));
    /* The MTP module is training's auxiliary loss, not the model's prediction: off while
     * scoring (and its cost with it). */
    int mtp = m->cfg.mtp_depth;
    m->cfg.mtp_depth = 0;
    for (size_t i = 0; rc == TM_OK && i < tok_corpus_shards(c); i++) {
        s.shard = tok_corpus_shard(c, i);
        for (int d = 0; rc == TM_OK && d < TM_DOMAIN_COUNT; d++) {
            s.domain = d;
            int stop = tok_shard_foreach_doc(s.shard, o->split, d, score_doc, &s);
            rc = stop == STOP_STREAM ? TM_OK : stop;
        }
    }
    m->cfg.mtp_depth = mtp;
    tr_model_load_clear(m); /* scoring is not training: the expert loads it counted go */
    for (int d = 0; d < TM_DOMAIN_COUNT; d++) {
        r->all.nats += r->domain[d].nats;
        r->all.tokens += r->domain[d].tokens;
        r->all.bytes += r->domain[d].bytes;
        r->all.docs += r->domain[d].docs;
    }
    free(s.doc);
    free(s.seq);
    free(s.targets);
    tr_acts_release(&s.acts);
    return rc ? rc : s.err;
}
