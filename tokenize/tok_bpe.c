/* tok_bpe.c: the byte-pair merge of one pre-token.
 *
 * tiktoken's rule: start from single bytes; while some adjacent pair of parts concatenates to a
 * token, merge the pair with the lowest such rank (the leftmost on ties). tiktoken rescans all
 * parts after every merge, which is quadratic on a long piece (a megabyte of one letter). Here
 * the parts are a doubly linked list over byte offsets and the candidate pairs sit in an
 * indexed binary min-heap keyed by (rank, offset of the left part): a merge touches two
 * neighbours, each an O(log n) heap update, so a piece costs O(n log n). Ordering by the left
 * part's offset is ordering by its index in tiktoken's array, so ties resolve the same way.
 *
 * Most pieces are short (a word, a run of punctuation), and for them tiktoken's own loop over a
 * small array is cheaper than the heap's bookkeeping: pieces up to BPE_SMALL bytes take that
 * path (bpe_small), which is O(n^2) in the worst case but n is bounded. */
#include <stdlib.h>
#include <string.h>

#include "tok_internal.h"
#include "tm_err.h"
#include "tm_log.h"
#include "tm_mem.h"

/* Per-byte scratch: five uint32 arrays of n entries (20 bytes per byte of piece). */
struct bpe_state {
    uint32_t *next; /* offset of the next part, n at the end */
    uint32_t *prev; /* offset of the previous part, TOK_NO_RANK at the start */
    uint32_t *rank; /* rank of (this part + next part), TOK_NO_RANK when none */
    uint32_t *pos;  /* index of this part in heap, TOK_NO_RANK when not there */
    uint32_t *heap; /* part offsets */
    uint32_t nheap;
};

static int heap_less(const struct bpe_state *s, uint32_t a, uint32_t b)
{
    return s->rank[a] < s->rank[b] || (s->rank[a] == s->rank[b] && a < b);
}

static void heap_set(struct bpe_state *s, uint32_t i, uint32_t part)
{
    s->heap[i] = part;
    s->pos[part] = i;
}

static void sift_up(struct bpe_state *s, uint32_t i)
{
    uint32_t part = s->heap[i];
    while (i > 0) {
        uint32_t parent = (i - 1) / 2;
        if (!heap_less(s, part, s->heap[parent]))
            break;
        heap_set(s, i, s->heap[parent]);
        i = parent;
    }
    heap_set(s, i, part);
}

static void sift_down(struct bpe_state *s, uint32_t i)
{
    uint32_t part = s->heap[i];
    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= s->nheap)
            break;
        if (c + 1 < s->nheap && heap_less(s, s->heap[c + 1], s->heap[c]))
            c++;
        if (!heap_less(s, s->heap[c], part))
            break;
        heap_set(s, i, s->heap[c]);
        i = c;
    }
    heap_set(s, i, part);
}

static void heap_remove(struct bpe_state *s, uint32_t part)
{
    uint32_t i = s->pos[part];
    s->pos[part] = TOK_NO_RANK;
    uint32_t last = s->heap[--s->nheap];
    if (i == s->nheap)
        return;
    heap_set(s, i, last);
    sift_down(s, i);
    sift_up(s, s->pos[last]);
}

/* Sets the rank of the pair starting at `part` and moves it in the heap. */
static void set_rank(struct bpe_state *s, uint32_t part, uint32_t rank)
{
    if (rank == TOK_NO_RANK) {
        if (s->pos[part] != TOK_NO_RANK)
            heap_remove(s, part);
        s->rank[part] = rank;
        return;
    }
    s->rank[part] = rank;
    if (s->pos[part] == TOK_NO_RANK) {
        heap_set(s, s->nheap++, part);
        sift_up(s, s->nheap - 1);
    } else {
        sift_down(s, s->pos[part]);
        sift_up(s, s->pos[part]);
    }
}

void tok_bpe_scratch_release(struct tok_bpe_scratch *s)
{
    free(s->mem);
    s->mem = NULL;
    s->cap = 0;
}

/* Where the merge asks its questions: the rank map when there is one, else the vocabulary. */
struct ranks {
    const struct tok_vocab *v;
    const struct tok_rankmap *m;
};

static inline uint32_t pair_rank(const struct ranks *rk, const unsigned char *piece, uint32_t from,
                                 uint32_t to)
{
    return rk->m ? tok_rankmap_get(rk->m, piece + from, to - from)
                 : tok_vocab_rank_or_none(rk->v, piece + from, to - from);
}

static int no_rank(const unsigned char *piece, uint32_t from)
{
    /* Only single bytes can lack a rank: merged parts are tokens by construction. */
    tm_log_error("tokenize: byte 0x%02x has no rank in the vocabulary", piece[from]);
    return TM_ERR_FORMAT;
}

static int push_part(const struct ranks *rk, const unsigned char *piece, uint32_t from, uint32_t to,
                     struct tok_ids *out)
{
    uint32_t r = pair_rank(rk, piece, from, to);
    if (r == TOK_NO_RANK)
        return no_rank(piece, from);
    return tok_ids_push(out, r);
}

/* Pieces up to this many bytes are merged by bpe_small(). At 64 a piece's arrays stay in two
 * cache lines each; longer pieces (rare outside runs of one character) take the heap. */
#define BPE_SMALL 64

/* tiktoken's merge loop: `st` holds the parts' start offsets (and the end), `pr[i]` the rank
 * of parts i and i+1 together, `tr[i]` the rank of part i. Each round finds the lowest pair
 * rank, leftmost first, merges, and asks again only about the two pairs the merge changed. */
static int bpe_small(const struct ranks *rk, const unsigned char *piece, uint32_t n,
                     struct tok_ids *out)
{
    uint32_t st[BPE_SMALL + 1], pr[BPE_SMALL], tr[BPE_SMALL];
    for (uint32_t i = 0; i < n; i++) {
        st[i] = i;
        tr[i] = pair_rank(rk, piece, i, i + 1);
        if (tr[i] == TOK_NO_RANK)
            return no_rank(piece, i);
    }
    st[n] = n;
    for (uint32_t i = 0; i + 1 < n; i++)
        pr[i] = pair_rank(rk, piece, i, i + 2);
    uint32_t k = n; /* parts */
    while (k > 1) {
        uint32_t best = TOK_NO_RANK, at = 0;
        for (uint32_t i = 0; i + 1 < k; i++)
            if (pr[i] < best) {
                best = pr[i];
                at = i;
            }
        if (best == TOK_NO_RANK)
            break;
        /* Part at+1 joins part at: drop its start, its rank and the pair rank it started. */
        memmove(&st[at + 1], &st[at + 2], (k - at - 1) * sizeof(*st));
        memmove(&tr[at + 1], &tr[at + 2], (k - at - 2) * sizeof(*tr));
        if (at + 2 < k)
            memmove(&pr[at + 1], &pr[at + 2], (k - at - 3) * sizeof(*pr));
        k--;
        tr[at] = best;
        pr[at] = at + 1 < k ? pair_rank(rk, piece, st[at], st[at + 2]) : TOK_NO_RANK;
        if (at > 0)
            pr[at - 1] = pair_rank(rk, piece, st[at - 1], st[at + 1]);
    }
    int rc = tok_ids_reserve(out, k);
    if (rc != TM_OK)
        return rc;
    memcpy(out->v + out->n, tr, k * sizeof(*tr));
    out->n += k;
    return TM_OK;
}

int tok_bpe_encode_with(const struct tok_vocab *v, const struct tok_rankmap *m,
                        const unsigned char *piece, size_t len, struct tok_bpe_scratch *scratch,
                        struct tok_ids *out)
{
    if (len == 0)
        return TM_OK;
    const struct ranks rks = {v, m}, *rk = &rks;
    uint32_t whole = m ? tok_rankmap_get(m, piece, len) : tok_vocab_rank_or_none(v, piece, len);
    if (whole != TOK_NO_RANK)
        return tok_ids_push(out, whole);
    if (len == 1)
        return push_part(rk, piece, 0, 1, out);
    if (len <= BPE_SMALL)
        return bpe_small(rk, piece, (uint32_t)len, out);
    if (len >= TOK_NO_RANK) {
        tm_log_error("tokenize: a pre-token of %zu bytes is over the 4 GiB limit", len);
        return TM_ERR_TOOBIG;
    }
    if (scratch->cap < len) {
        size_t bytes;
        if (tm_mul_overflow(len, 5 * sizeof(uint32_t), &bytes) != 0)
            return TM_ERR_TOOBIG;
        void *mem = realloc(scratch->mem, bytes);
        if (!mem) {
            tm_log_error("tokenize: no memory for the merge of a %zu-byte pre-token", len);
            return TM_ERR_NOMEM;
        }
        scratch->mem = mem;
        scratch->cap = len;
    }
    uint32_t n = (uint32_t)len;
    struct bpe_state s;
    uint32_t *mem = scratch->mem;
    s.next = mem;
    s.prev = mem + n;
    s.rank = mem + 2 * (size_t)n;
    s.pos = mem + 3 * (size_t)n;
    s.heap = mem + 4 * (size_t)n;
    s.nheap = 0;
    for (uint32_t i = 0; i < n; i++) {
        s.next[i] = i + 1;
        s.prev[i] = i ? i - 1 : TOK_NO_RANK;
        s.pos[i] = TOK_NO_RANK;
        s.rank[i] = i + 1 < n ? pair_rank(rk, piece, i, i + 2) : TOK_NO_RANK;
        if (s.rank[i] != TOK_NO_RANK)
            heap_set(&s, s.nheap++, i);
    }
    for (uint32_t i = s.nheap / 2; i-- > 0;)
        sift_down(&s, i);

    while (s.nheap) {
        uint32_t left = s.heap[0];
        uint32_t right = s.next[left];
        /* Merge: `right` disappears, `left` now ends where `right` ended. */
        if (s.pos[right] != TOK_NO_RANK)
            heap_remove(&s, right);
        s.next[left] = s.next[right];
        if (s.next[left] < n)
            s.prev[s.next[left]] = left;
        uint32_t after = s.next[left];
        set_rank(&s, left, after < n ? pair_rank(rk, piece, left, s.next[after]) : TOK_NO_RANK);
        uint32_t before = s.prev[left];
        if (before != TOK_NO_RANK)
            set_rank(&s, before, pair_rank(rk, piece, before, after));
    }
    for (uint32_t i = 0; i < n; i = s.next[i]) {
        int rc = push_part(rk, piece, i, s.next[i], out);
        if (rc != TM_OK)
            return rc;
    }
    return TM_OK;
}

int tok_bpe_encode_piece(const struct tok_vocab *v, const unsigned char *piece, size_t len,
                         struct tok_ids *out)
{
    struct tok_bpe_scratch s = {0};
    int rc = tok_bpe_encode_with(v, NULL, piece, len, &s, out);
    tok_bpe_scratch_release(&s);
    return rc;
}

void tok_ids_init(struct tok_ids *ids, size_t max)
{
    memset(ids, 0, sizeof(*ids));
    ids->max = max;
}

void tok_ids_release(struct tok_ids *ids)
{
    free(ids->v);
    memset(ids, 0, sizeof(*ids));
}

int tok_ids_reserve(struct tok_ids *ids, size_t k)
{
    if (ids->cap - ids->n >= k)
        return TM_OK;
    if (ids->max && (ids->n > ids->max || ids->max - ids->n < k)) {
        tm_log_error("tokenize: more than %zu ids", ids->max);
        return TM_ERR_TOOBIG;
    }
    size_t cap = ids->cap ? ids->cap : 256;
    while (cap - ids->n < k)
        cap *= 2;
    if (ids->max && cap > ids->max)
        cap = ids->max;
    ids->v = tm_xreallocarray(ids->v, cap, sizeof(*ids->v));
    ids->cap = cap;
    return TM_OK;
}

int tok_ids_push(struct tok_ids *ids, uint32_t id)
{
    if (ids->n == ids->cap) {
        int rc = tok_ids_reserve(ids, 1);
        if (rc != TM_OK)
            return rc;
    }
    ids->v[ids->n++] = id;
    return TM_OK;
}
