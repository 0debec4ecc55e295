/* tok_enc_ranks.c: the encoder's rank map, a faster copy of the short part of bytes -> rank.
 *
 * The BPE of a piece asks for the rank of every adjacent pair, then of each merged
 * neighbourhood. tok_vocab_rank_or_none() hashes with XXH3 and compares through rank -> bytes,
 * three dependent cache misses per question; perf put those at a third of encoding time. Here
 * every 2-byte string has its rank in a direct table (256 KiB), and tokens of 3..8 bytes sit
 * with their bytes inline in an open-addressing table, so a question costs one miss. Longer
 * strings (a few percent of the questions) still go to the vocabulary. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "tok_internal.h"
#include "tm_err.h"
#include "tm_log.h"
#include "tm_mem.h"

/* The table holds at most one entry per 2 slots: unsuccessful questions, the common kind in a
 * BPE, then probe 1.5 slots on average (Knuth's linear probing estimate). */
#define SLOTS_PER_ENTRY 2

int tok_rankmap_new(const struct tok_vocab *v, struct tok_rankmap **out)
{
    *out = NULL;
    struct tok_rankmap *m = tm_xcalloc(1, sizeof(*m));
    atomic_init(&m->refs, 1);
    m->vocab = v;
    memset(m->pair, 0xff, sizeof(m->pair));
    memset(m->byte, 0xff, sizeof(m->byte));
    uint32_t end = tok_vocab_end(v);
    size_t mid = 0;
    for (uint32_t r = 0; r < end; r++) {
        size_t len;
        const unsigned char *b = tok_vocab_bytes(v, r, &len);
        if (b && len >= 3 && len <= TOK_RANK_KEY_MAX)
            mid++;
    }
    size_t nslots = 16;
    unsigned bits = 4;
    while (nslots < mid * SLOTS_PER_ENTRY) {
        nslots *= 2;
        bits++;
    }
    m->slots = calloc(nslots, sizeof(*m->slots));
    if (!m->slots) {
        tm_log_error("tokenize: no memory for a rank map of %zu slots", nslots);
        free(m);
        return TM_ERR_NOMEM;
    }
    m->mask = nslots - 1;
    m->shift = 64 - bits;
    for (uint32_t r = 0; r < end; r++) {
        size_t len;
        const unsigned char *b = tok_vocab_bytes(v, r, &len);
        if (!b)
            continue;
        if (len == 1)
            m->byte[b[0]] = r;
        else if (len == 2)
            m->pair[b[0] << 8 | b[1]] = r;
        else if (len <= TOK_RANK_KEY_MAX) {
            uint64_t k = tok_rank_key(b, len);
            size_t i = tok_rank_slot(k, len, m->shift);
            while (m->slots[i].len)
                i = (i + 1) & m->mask;
            m->slots[i] = (struct tok_rank_slot){k, r, (uint32_t)len};
        }
    }
    *out = m;
    return TM_OK;
}

struct tok_rankmap *tok_rankmap_ref(struct tok_rankmap *m)
{
    atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
    return m;
}

void tok_rankmap_unref(struct tok_rankmap *m)
{
    if (!m || atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) != 1)
        return;
    free(m->slots);
    free(m);
}
