/* tok_train.c: pre-token counting and the BPE trainer (tok_train.h).
 *
 * The trainer keeps, for every adjacent pair of tokens, its count and the list of words it
 * occurs in, and a max-heap of (count, pair) entries. Counts of existing pairs only fall as
 * merges happen (a merge of (a, b) into z only creates pairs that contain z), so the heap is
 * lazy: a popped entry whose count is no longer the pair's is pushed again with the current
 * count, and an entry can only overstate its pair's count; the first popped entry that is
 * exact is therefore the true maximum, ties included. Pairs whose count rises (the new pairs
 * around z, and with aliased merges a pair of an existing token) get a fresh entry at the end
 * of the step. A step rewrites only the words in the chosen pair's list. This is the usual
 * fast BPE trainer (as in Hugging Face tokenizers and sentencepiece); the plain O(words *
 * merges) version of the same rule is the reference in tests/unit/test_tok_train.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tok_internal.h"
#include "tok_train.h"
#include "tm_buf.h"
#include "tm_err.h"
#include "tm_log.h"
#include "tm_mem.h"
#include "tm_progress.h"

/* ---- Pre-token counts ------------------------------------------------------------------- */

/* One open-addressing table (linear probing) whose slots hold the word itself when it has at
 * most 8 bytes (most pre-tokens of text: " the", " and", ","), so a lookup costs one cache
 * miss; longer words keep their first 8 bytes in the slot, which rejects almost every
 * mismatch, and all their bytes in `pool`. Counting spent more time in this table than in
 * the regex with a table of indexes into an entry array (perf, bench/tok_train_bench.py). */
struct wslot {
    uint64_t k0;    /* the first 8 bytes, zero-padded */
    uint64_t count; /* 0: empty */
    uint64_t meta;  /* length (low 16 bits); for words over 8 bytes, offset into pool << 16 */
};

#define WT_SHORT          8
#define WT_META(len, off) ((uint64_t)(len) | (uint64_t)(off) << 16)
#define WT_LEN(m)         ((size_t)((m)&0xFFFF))
#define WT_OFF(m)         ((size_t)((m) >> 16))
/* Grow at 3/4 load: 24-byte slots keep a probe sequence within a cache line or two, and the
 * cap (--max-words) then costs 32..64 bytes a word. */
#define WT_LOAD_NUM      3
#define WT_LOAD_DEN      4
#define WT_INITIAL_SLOTS 4096

struct tok_wordtab {
    struct wslot *slots;
    size_t mask;
    size_t n;
    unsigned char *pool; /* bytes of the words over WT_SHORT bytes */
    size_t pool_len, pool_cap;
    size_t max_words;
    uint64_t prune_unit;
    struct tok_wordtab_stats stats;
};

static uint64_t load_k0(const unsigned char *b, size_t len)
{
    uint64_t k = 0;
    memcpy(&k, b, len < WT_SHORT ? len : WT_SHORT);
    return k;
}

/* The slot hash. Words of at most 8 bytes are their k0, and a multiply-xorshift of k0 and the
 * length mixes them well enough for linear probing at a tenth of XXH3's cost per call (XXH3
 * was 8% of counting); longer words use XXH3. */
static uint64_t wt_hash(const unsigned char *b, size_t len, uint64_t k0)
{
    if (len > WT_SHORT)
        return tok_hash(b, len);
    uint64_t h = (k0 ^ ((uint64_t)len << 59)) * 0x9E3779B97F4A7C15ull;
    h ^= h >> 29;
    h *= 0xBF58476D1CE4E5B9ull;
    return h ^ (h >> 32);
}

static const unsigned char *wt_bytes(const struct tok_wordtab *t, const struct wslot *s)
{
    return WT_LEN(s->meta) <= WT_SHORT ? (const unsigned char *)&s->k0 : t->pool + WT_OFF(s->meta);
}

static size_t clamp_max(size_t max_words)
{
    if (max_words < 1)
        return 1;
    /* A table this large would not fit in memory anyway; the bound keeps sizes in range. */
    return max_words > ((size_t)1 << 40) ? (size_t)1 << 40 : max_words;
}

struct tok_wordtab *tok_wordtab_new(size_t max_words, uint64_t prune_unit)
{
    struct tok_wordtab *t = tm_xcalloc(1, sizeof(*t));
    t->max_words = clamp_max(max_words);
    t->prune_unit = prune_unit ? prune_unit : 1;
    t->mask = WT_INITIAL_SLOTS - 1;
    t->slots = tm_xcalloc(WT_INITIAL_SLOTS, sizeof(*t->slots));
    return t;
}

void tok_wordtab_free(struct tok_wordtab *t)
{
    if (!t)
        return;
    free(t->slots);
    free(t->pool);
    free(t);
}

size_t tok_wordtab_size(const struct tok_wordtab *t)
{
    return t->n;
}

const struct tok_wordtab_stats *tok_wordtab_get_stats(const struct tok_wordtab *t)
{
    return &t->stats;
}

/* Rebuilds the table with `nslots` slots, keeping the words with count > threshold (all for
 * threshold 0) and compacting the pool. */
static void wt_rebuild(struct tok_wordtab *t, size_t nslots, uint64_t threshold)
{
    struct wslot *old = t->slots;
    size_t oldn = t->mask + 1;
    unsigned char *oldpool = t->pool;
    t->slots = tm_xcalloc(nslots, sizeof(*t->slots));
    t->mask = nslots - 1;
    t->pool = t->pool_cap ? tm_xmalloc(t->pool_cap) : NULL;
    t->pool_len = 0;
    t->n = 0;
    for (size_t j = 0; j < oldn; j++) {
        struct wslot s = old[j];
        if (!s.count)
            continue;
        if (s.count <= threshold) {
            t->stats.pruned_words++;
            t->stats.pruned_count += s.count;
            continue;
        }
        size_t len = WT_LEN(s.meta);
        const unsigned char *b =
            len <= WT_SHORT ? (const unsigned char *)&old[j].k0 : oldpool + WT_OFF(s.meta);
        if (len > WT_SHORT) {
            memcpy(t->pool + t->pool_len, b, len);
            s.meta = WT_META(len, t->pool_len);
            t->pool_len += len;
        }
        size_t i = (size_t)wt_hash(b, len, s.k0) & t->mask;
        while (t->slots[i].count)
            i = (i + 1) & t->mask;
        t->slots[i] = s;
        t->n++;
    }
    free(old);
    free(oldpool);
}

/* See tok_wordtab_new(): drop the words seen once, and rarer-than-that-doubled ones while the
 * table stays over 3/4 of its cap, so the next prune is at least a quarter of the cap away. */
static void wt_prune(struct tok_wordtab *t)
{
    t->stats.prunes++;
    uint64_t threshold = t->prune_unit;
    size_t target = t->max_words / 4 * 3;
    for (;;) {
        wt_rebuild(t, t->mask + 1, threshold);
        if (t->n <= target)
            break;
        threshold = threshold > UINT64_MAX / 2 ? UINT64_MAX : threshold * 2;
    }
    /* The first prune of a table is news; the ones after it are summed up by the caller. */
    tm_log(t->stats.prunes == 1 ? TM_LOG_INFO : TM_LOG_DEBUG,
           "train-vocab: %zu unique pre-tokens reached the cap; kept %zu with counts above %llu "
           "(pruned so far: %llu)",
           t->max_words, t->n, (unsigned long long)threshold,
           (unsigned long long)t->stats.pruned_words);
}

void tok_wordtab_set_max(struct tok_wordtab *t, size_t max_words)
{
    t->max_words = clamp_max(max_words);
    if (t->n > t->max_words)
        wt_prune(t);
}

/* The slot holding bytes[0..len), or the empty slot where it would go. */
static size_t wt_find(const struct tok_wordtab *t, const unsigned char *bytes, size_t len,
                      uint64_t k0, uint64_t hash)
{
    size_t i = (size_t)hash & t->mask;
    for (;; i = (i + 1) & t->mask) {
        const struct wslot *s = &t->slots[i];
        if (!s->count)
            return i;
        if (s->k0 == k0 && WT_LEN(s->meta) == len &&
            (len <= WT_SHORT || memcmp(t->pool + WT_OFF(s->meta), bytes, len) == 0))
            return i;
    }
}

static void wt_add(struct tok_wordtab *t, const unsigned char *bytes, size_t len, uint64_t count)
{
    uint64_t k0 = load_k0(bytes, len);
    uint64_t hash = wt_hash(bytes, len, k0);
    size_t i = wt_find(t, bytes, len, k0, hash);
    if (t->slots[i].count) {
        t->slots[i].count += count;
        return;
    }
    if (t->n >= t->max_words || (t->n + 1) * WT_LOAD_DEN > (t->mask + 1) * WT_LOAD_NUM) {
        if (t->n >= t->max_words)
            wt_prune(t);
        if ((t->n + 1) * WT_LOAD_DEN > (t->mask + 1) * WT_LOAD_NUM)
            wt_rebuild(t, (t->mask + 1) * 2, 0);
        i = wt_find(t, bytes, len, k0, hash);
    }
    uint64_t meta = WT_META(len, 0);
    if (len > WT_SHORT) {
        if (t->pool_cap - t->pool_len < len) {
            size_t want = t->pool_cap ? t->pool_cap * 2 : 64 * 1024;
            t->pool = tm_xreallocarray(t->pool, want, 1);
            t->pool_cap = want;
        }
        memcpy(t->pool + t->pool_len, bytes, len);
        meta = WT_META(len, t->pool_len);
        t->pool_len += len;
    }
    t->slots[i] = (struct wslot){k0, count, meta};
    t->n++;
}

int tok_wordtab_add(struct tok_wordtab *t, const unsigned char *bytes, size_t len, uint64_t count)
{
    if (len == 0 || len > TOK_TRAIN_MAX_PIECE)
        return TM_ERR_USAGE;
    if (count)
        wt_add(t, bytes, len, count);
    return TM_OK;
}

void tok_wordtab_merge(struct tok_wordtab *dst, const struct tok_wordtab *src)
{
    for (size_t j = 0; j <= src->mask; j++) {
        const struct wslot *s = &src->slots[j];
        if (!s->count)
            continue;
        const unsigned char *b = wt_bytes(src, s);
        size_t len = WT_LEN(s->meta);
        wt_add(dst, b, len, s->count);
    }
}

struct tok_word *tok_wordtab_words(const struct tok_wordtab *t, size_t *n)
{
    struct tok_word *w = tm_xcalloc(t->n ? t->n : 1, sizeof(*w));
    size_t k = 0;
    for (size_t j = 0; j <= t->mask; j++) {
        const struct wslot *s = &t->slots[j];
        if (s->count)
            w[k++] = (struct tok_word){wt_bytes(t, s), (uint32_t)WT_LEN(s->meta), s->count};
    }
    *n = k;
    return w;
}

/* ---- Pre-tokenization ------------------------------------------------------------------- */

struct tok_pretok {
    enum tok_pattern pat;
    int scan; /* try tok_scan_ascii() before PCRE2 */
    struct tok_matcher m;
};

int tok_pretok_new(enum tok_pattern pat, struct tok_pretok **out)
{
    *out = NULL;
    struct tok_pretok *p = tm_xcalloc(1, sizeof(*p));
    p->pat = pat;
    p->scan = 1;
    int rc = tok_matcher_init(&p->m, pat, "train-vocab");
    if (rc) {
        free(p);
        return rc;
    }
    *out = p;
    return TM_OK;
}

void tok_pretok_set_scan(struct tok_pretok *p, int on)
{
    p->scan = on;
}

void tok_pretok_free(struct tok_pretok *p)
{
    if (!p)
        return;
    tok_matcher_release(&p->m);
    free(p);
}

int tok_pretok_count(struct tok_pretok *p, const char *text, size_t len, uint64_t count,
                     struct tok_wordtab *t, struct tok_pretok_stats *st)
{
    const unsigned char *s = (const unsigned char *)text;
    /* Matching runs with PCRE2_NO_UTF_CHECK, which requires valid input. */
    if (tok_utf8_invalid_at(s, len) < len)
        return TM_ERR_FORMAT;
    uint64_t pieces = 0, long_skipped = 0, scanned = 0;
    int rc = TM_OK;
    size_t off = 0;
    while (off < len) {
        /* The hand-written ASCII matcher decides most pre-tokens of text at a fraction of a
         * pcre2_match() call; it returns 0 where a non-ASCII byte could change the match. */
        size_t start = off, end = p->scan ? tok_scan_ascii(p->pat, s, len, off) : 0;
        if (end) {
            scanned++;
        } else {
            int m = pcre2_match(p->m.code, s, len, off, PCRE2_NO_UTF_CHECK, p->m.md, p->m.mctx);
            if (m == PCRE2_ERROR_NOMATCH)
                break; /* as tiktoken's find_iter: what nothing matches is skipped */
            if (m < 0) {
                PCRE2_UCHAR msg[256];
                pcre2_get_error_message(m, msg, sizeof(msg));
                tm_log_error("train-vocab: matching at byte %zu: %s", off, (const char *)msg);
                rc = TM_ERR_INTERNAL;
                break;
            }
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(p->m.md);
            if (ov[1] <= ov[0]) {
                tm_log_error("train-vocab: empty match at byte %zu", (size_t)ov[0]);
                rc = TM_ERR_INTERNAL;
                break;
            }
            start = ov[0];
            end = ov[1];
        }
        size_t n = end - start;
        if (n > TOK_TRAIN_MAX_PIECE) {
            long_skipped++;
        } else {
            wt_add(t, s + start, n, count);
            pieces++;
        }
        off = end;
    }
    /* Counted locally: threads' stats may share a cache line. */
    st->pieces += pieces;
    st->long_skipped += long_skipped;
    st->scanned += scanned;
    return rc;
}

/* ---- Training ------------------------------------------------------------------------------ */

#define PAIR_KEY(l, r) ((uint64_t)(l) << 32 | (uint32_t)(r))

struct pair {
    uint64_t key;
    uint64_t count;
    uint32_t *words; /* the words containing it (and maybe some that no longer do) */
    uint32_t n, cap; /* cap 0 with n > 0: `words` points into the initial block */
    uint32_t stamp;  /* the step that last raised its count */
};

struct pslot {
    uint64_t key;
    uint32_t idx; /* pair index + 1; 0: empty */
};

struct hent {
    uint64_t count;
    uint64_t key;
};

struct trainer {
    /* Words with count > 0 and at least two bytes (the others never hold a pair). */
    size_t nw;
    uint32_t *sym; /* every word's tokens, back to back */
    size_t *woff;
    uint32_t *wlen;
    uint64_t *wcount;
    uint32_t *wstamp; /* the step that last rewrote the word */
    uint32_t *scratch;
    uint32_t *zpos;

    struct pair *pairs;
    size_t npairs, pcap;
    struct pslot *slots;
    size_t smask;
    uint32_t *block; /* the initial pairs' word lists */

    struct hent *heap;
    size_t nheap, hcap;
    uint32_t *touched; /* pairs raised in this step */
    size_t ntouched, tcap;

    uint32_t *tokmap; /* token bytes -> id + 1, linear probing */
    size_t tokmask;

    uint64_t alive; /* pairs with count > 0 */
    struct tok_trained *out;
    size_t bytes_cap, merges_cap;
};

static size_t pair_slot(uint64_t key, size_t mask)
{
    return (size_t)((key * 0x9E3779B97F4A7C15ull) >> 32) & mask;
}

/* The pair with `key`, or SIZE_MAX. */
static size_t pair_find(const struct trainer *tr, uint64_t key)
{
    for (size_t i = pair_slot(key, tr->smask);; i = (i + 1) & tr->smask) {
        if (!tr->slots[i].idx)
            return SIZE_MAX;
        if (tr->slots[i].key == key)
            return tr->slots[i].idx - 1;
    }
}

static void pair_grow_slots(struct trainer *tr)
{
    size_t n = (tr->smask + 1) * 2;
    struct pslot *old = tr->slots;
    size_t oldn = tr->smask + 1;
    tr->slots = tm_xcalloc(n, sizeof(*tr->slots));
    tr->smask = n - 1;
    for (size_t j = 0; j < oldn; j++) {
        if (!old[j].idx)
            continue;
        size_t i = pair_slot(old[j].key, tr->smask);
        while (tr->slots[i].idx)
            i = (i + 1) & tr->smask;
        tr->slots[i] = old[j];
    }
    free(old);
}

/* The pair with `key`, created with count 0 when missing. Pointers into tr->pairs do not
 * survive this call. */
static size_t pair_get(struct trainer *tr, uint64_t key)
{
    size_t i = pair_slot(key, tr->smask);
    for (; tr->slots[i].idx; i = (i + 1) & tr->smask)
        if (tr->slots[i].key == key)
            return tr->slots[i].idx - 1;
    if (tr->npairs == tr->pcap) {
        tr->pcap = tr->pcap ? tr->pcap * 2 : 4096;
        tr->pairs = tm_xreallocarray(tr->pairs, tr->pcap, sizeof(*tr->pairs));
    }
    size_t p = tr->npairs++;
    tr->pairs[p] = (struct pair){.key = key};
    tr->slots[i] = (struct pslot){key, (uint32_t)(p + 1)};
    if (tr->npairs * 2 > tr->smask + 1)
        pair_grow_slots(tr);
    return p;
}

static int heap_above(const struct hent *a, const struct hent *b)
{
    return a->count > b->count || (a->count == b->count && a->key < b->key);
}

static void heap_sift_down(struct hent *h, size_t n, size_t i)
{
    struct hent x = h[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && heap_above(&h[c + 1], &h[c]))
            c++;
        if (!heap_above(&h[c], &x))
            break;
        h[i] = h[c];
        i = c;
    }
    h[i] = x;
}

static void heap_push(struct trainer *tr, uint64_t count, uint64_t key)
{
    if (tr->nheap == tr->hcap) {
        tr->hcap = tr->hcap ? tr->hcap * 2 : 4096;
        tr->heap = tm_xreallocarray(tr->heap, tr->hcap, sizeof(*tr->heap));
    }
    struct hent x = {count, key};
    size_t i = tr->nheap++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!heap_above(&x, &tr->heap[parent]))
            break;
        tr->heap[i] = tr->heap[parent];
        i = parent;
    }
    tr->heap[i] = x;
}

static void heap_pop(struct trainer *tr)
{
    tr->heap[0] = tr->heap[--tr->nheap];
    if (tr->nheap)
        heap_sift_down(tr->heap, tr->nheap, 0);
}

static void pair_dec(struct trainer *tr, uint32_t l, uint32_t r, uint64_t c, int *bad)
{
    size_t p = pair_find(tr, PAIR_KEY(l, r));
    if (p == SIZE_MAX || tr->pairs[p].count < c) {
        *bad = 1;
        return;
    }
    struct pair *pr = &tr->pairs[p];
    pr->count -= c;
    if (pr->count == 0) {
        tr->alive--;
        /* No word holds it any more: its list is all stale. */
        if (pr->cap)
            free(pr->words);
        pr->words = NULL;
        pr->n = pr->cap = 0;
    }
}

static void pair_inc(struct trainer *tr, uint32_t l, uint32_t r, uint64_t c, uint32_t w,
                     uint32_t step)
{
    size_t p = pair_get(tr, PAIR_KEY(l, r));
    struct pair *pr = &tr->pairs[p];
    if (pr->count == 0)
        tr->alive++;
    pr->count += c;
    if (pr->stamp != step) {
        pr->stamp = step;
        if (tr->ntouched == tr->tcap) {
            tr->tcap = tr->tcap ? tr->tcap * 2 : 1024;
            tr->touched = tm_xreallocarray(tr->touched, tr->tcap, sizeof(*tr->touched));
        }
        tr->touched[tr->ntouched++] = (uint32_t)p;
    }
    /* A word's appends to one list within a step are consecutive, so this catches repeats. */
    if (pr->n && pr->words[pr->n - 1] == w)
        return;
    if (pr->n == pr->cap) {
        uint32_t ncap = pr->cap ? pr->cap * 2 : (pr->n > 4 ? pr->n * 2 : 4);
        uint32_t *nw = tm_xreallocarray(pr->cap ? pr->words : NULL, ncap, sizeof(*nw));
        if (!pr->cap && pr->n)
            memcpy(nw, pr->words, pr->n * sizeof(*nw));
        pr->words = nw;
        pr->cap = ncap;
    }
    pr->words[pr->n++] = w;
}

/* Rewrites word w with every (a, b) merged into z, left to right, and updates the counts of
 * the pairs that disappear (each old position next to a merge, once) and appear (each new
 * position next to a z, once). */
static void merge_word(struct trainer *tr, uint32_t w, uint32_t a, uint32_t b, uint32_t z,
                       uint32_t step, int *bad)
{
    uint32_t *s = tr->sym + tr->woff[w];
    size_t n = tr->wlen[w];
    uint64_t c = tr->wcount[w];
    size_t i = 0;
    while (i + 1 < n && !(s[i] == a && s[i + 1] == b))
        i++;
    if (i + 1 >= n)
        return; /* a stale list entry */
    /* The old tokens from the one before the first match on (those before it stay put). */
    uint32_t *old = tr->scratch;
    size_t from = i ? i - 1 : 0;
    memcpy(old + from, s + from, (n - from) * sizeof(*s));
    /* Positions q name the pair (x[q], x[q + 1]). */
    long last = -1;
    size_t k = i, nz = 0;
    while (i < n) {
        if (i + 1 < n && old[i] == a && old[i + 1] == b) {
            for (long q = (long)i - 1; q <= (long)i + 1; q++) {
                if (q <= last || q < 0 || (size_t)q + 1 >= n)
                    continue;
                pair_dec(tr, old[q], old[q + 1], c, bad);
                last = q;
            }
            tr->zpos[nz++] = k;
            s[k++] = z;
            i += 2;
        } else {
            s[k++] = old[i++];
        }
    }
    tr->wlen[w] = (uint32_t)k;
    last = -1;
    for (size_t j = 0; j < nz; j++) {
        size_t zp = tr->zpos[j];
        for (long q = (long)zp - 1; q <= (long)zp; q++) {
            if (q <= last || q < 0 || (size_t)q + 1 >= k)
                continue;
            pair_inc(tr, s[q], s[q + 1], c, w, step);
            last = q;
        }
    }
}

static uint64_t tok_bytes_hash(const struct tok_trained *o, uint32_t id)
{
    return tok_hash(o->bytes + o->off[id], o->len[id]);
}

/* The id of the token with bytes[0..len), or UINT32_MAX; *slot is where it would go. */
static uint32_t token_find(const struct trainer *tr, const unsigned char *bytes, size_t len,
                           size_t *slot)
{
    const struct tok_trained *o = tr->out;
    size_t i = (size_t)tok_hash(bytes, len) & tr->tokmask;
    for (; tr->tokmap[i]; i = (i + 1) & tr->tokmask) {
        uint32_t id = tr->tokmap[i] - 1;
        if (o->len[id] == len && memcmp(o->bytes + o->off[id], bytes, len) == 0) {
            *slot = i;
            return id;
        }
    }
    *slot = i;
    return UINT32_MAX;
}

/* Appends token a+b as a new id (or finds the existing one with those bytes). */
static uint32_t token_concat(struct trainer *tr, uint32_t a, uint32_t b)
{
    struct tok_trained *o = tr->out;
    size_t la = o->len[a], lb = o->len[b];
    size_t need = o->off[o->ntokens - 1] + o->len[o->ntokens - 1] + la + lb;
    if (need > tr->bytes_cap) {
        tr->bytes_cap = need * 2;
        o->bytes = tm_xreallocarray(o->bytes, tr->bytes_cap, 1);
    }
    uint64_t end = o->off[o->ntokens - 1] + o->len[o->ntokens - 1];
    /* Build the candidate past the end; it only becomes a token if new. */
    memcpy(o->bytes + end, o->bytes + o->off[a], la);
    memcpy(o->bytes + end + la, o->bytes + o->off[b], lb);
    size_t slot;
    uint32_t id = token_find(tr, o->bytes + end, la + lb, &slot);
    if (id != UINT32_MAX)
        return id;
    id = o->ntokens++;
    o->off[id] = end;
    o->len[id] = (uint32_t)(la + lb);
    tr->tokmap[slot] = id + 1;
    return id;
}

static void trainer_release(struct trainer *tr)
{
    for (size_t p = 0; p < tr->npairs; p++)
        if (tr->pairs[p].cap)
            free(tr->pairs[p].words);
    free(tr->pairs);
    free(tr->slots);
    free(tr->block);
    free(tr->heap);
    free(tr->touched);
    free(tr->tokmap);
    free(tr->sym);
    free(tr->woff);
    free(tr->wlen);
    free(tr->wcount);
    free(tr->wstamp);
    free(tr->scratch);
    free(tr->zpos);
}

void tok_trained_release(struct tok_trained *r)
{
    if (!r)
        return;
    free(r->bytes);
    free(r->off);
    free(r->len);
    free(r->merges);
    memset(r, 0, sizeof(*r));
}

/* Copies the words in, counts every adjacent pair and builds each pair's word list in one
 * block (two passes: sizes, then contents) and the heap. */
static int trainer_init(struct trainer *tr, const struct tok_word *words, size_t n)
{
    size_t nw = 0, nsym = 0, maxlen = 2;
    for (size_t i = 0; i < n; i++) {
        if (words[i].len == 0 || words[i].len > TOK_VOCAB_MAX_TOKEN_LEN) {
            tm_log_error("train-vocab: word %zu has %u bytes (1..%u allowed)", i, words[i].len,
                         TOK_VOCAB_MAX_TOKEN_LEN);
            return TM_ERR_USAGE;
        }
        if (words[i].count == 0 || words[i].len < 2)
            continue;
        nw++;
        nsym += words[i].len;
        if (words[i].len > maxlen)
            maxlen = words[i].len;
    }
    if (nw >= UINT32_MAX) {
        tm_log_error("train-vocab: %zu words; at most %u", nw, UINT32_MAX - 1);
        return TM_ERR_USAGE;
    }
    tr->nw = nw;
    tr->sym = tm_xcalloc(nsym ? nsym : 1, sizeof(*tr->sym));
    tr->woff = tm_xcalloc(nw ? nw : 1, sizeof(*tr->woff));
    tr->wlen = tm_xcalloc(nw ? nw : 1, sizeof(*tr->wlen));
    tr->wcount = tm_xcalloc(nw ? nw : 1, sizeof(*tr->wcount));
    tr->wstamp = tm_xcalloc(nw ? nw : 1, sizeof(*tr->wstamp));
    tr->scratch = tm_xcalloc(maxlen, sizeof(*tr->scratch));
    tr->zpos = tm_xcalloc(maxlen, sizeof(*tr->zpos));
    size_t w = 0, off = 0;
    for (size_t i = 0; i < n; i++) {
        if (words[i].count == 0 || words[i].len < 2)
            continue;
        tr->woff[w] = off;
        tr->wlen[w] = words[i].len;
        tr->wcount[w] = words[i].count;
        for (uint32_t j = 0; j < words[i].len; j++)
            tr->sym[off + j] = words[i].bytes[j];
        off += words[i].len;
        w++;
    }

    tr->smask = 4096 - 1;
    tr->slots = tm_xcalloc(tr->smask + 1, sizeof(*tr->slots));
    /* Pass 1: counts, and each pair's number of distinct words (stamp = last word + 1). */
    uint32_t *pidx = tm_xcalloc(nsym ? nsym : 1, sizeof(*pidx));
    for (w = 0; w < nw; w++) {
        const uint32_t *s = tr->sym + tr->woff[w];
        for (uint32_t j = 0; j + 1 < tr->wlen[w]; j++) {
            size_t p = pair_get(tr, PAIR_KEY(s[j], s[j + 1]));
            struct pair *pr = &tr->pairs[p];
            pr->count += tr->wcount[w];
            if (pr->stamp != w + 1) {
                pr->stamp = (uint32_t)w + 1;
                pr->n++;
            }
            pidx[tr->woff[w] + j] = (uint32_t)p;
        }
    }
    size_t total = 0;
    for (size_t p = 0; p < tr->npairs; p++)
        total += tr->pairs[p].n;
    tr->block = tm_xcalloc(total ? total : 1, sizeof(*tr->block));
    total = 0;
    for (size_t p = 0; p < tr->npairs; p++) {
        tr->pairs[p].words = tr->block + total;
        total += tr->pairs[p].n;
        tr->pairs[p].n = 0;
        tr->pairs[p].stamp = 0;
    }
    /* Pass 2: the lists, each in word order without repeats. */
    for (w = 0; w < nw; w++) {
        for (uint32_t j = 0; j + 1 < tr->wlen[w]; j++) {
            struct pair *pr = &tr->pairs[pidx[tr->woff[w] + j]];
            if (!pr->n || pr->words[pr->n - 1] != w)
                pr->words[pr->n++] = (uint32_t)w;
        }
    }
    free(pidx);
    tr->alive = tr->npairs;
    tr->out->peak_pairs = tr->npairs;
    tr->out->initial_pairs = tr->npairs;
    tr->out->symbols = nsym;
    tr->hcap = tr->npairs ? tr->npairs * 2 : 16;
    tr->heap = tm_xcalloc(tr->hcap, sizeof(*tr->heap));
    for (size_t p = 0; p < tr->npairs; p++)
        tr->heap[p] = (struct hent){tr->pairs[p].count, tr->pairs[p].key};
    tr->nheap = tr->npairs;
    for (size_t i = tr->nheap / 2; i-- > 0;)
        heap_sift_down(tr->heap, tr->nheap, i);
    return TM_OK;
}

/* The best pair by the rule, found by popping stale entries; SIZE_MAX when no pair is left.
 * The exact entry stays on top. */
static size_t best_pair(struct trainer *tr)
{
    while (tr->nheap) {
        struct hent top = tr->heap[0];
        size_t p = pair_find(tr, top.key);
        uint64_t now = p == SIZE_MAX ? 0 : tr->pairs[p].count;
        if (now == top.count)
            return p;
        heap_pop(tr);
        /* now > top.count: a fresher entry with the current count is in the heap already. */
        if (now && now < top.count)
            heap_push(tr, now, top.key);
    }
    return SIZE_MAX;
}

int tok_train_bpe(const struct tok_word *words, size_t n, const struct tok_train_params *prm,
                  struct tm_progress *prog, struct tok_trained *out)
{
    memset(out, 0, sizeof(*out));
    if (prm->vocab_size < 256 || prm->vocab_size > TOK_TRAIN_MAX_VOCAB) {
        tm_log_error("train-vocab: vocabulary size %u out of range (256..%u)", prm->vocab_size,
                     (unsigned)TOK_TRAIN_MAX_VOCAB);
        return TM_ERR_USAGE;
    }
    struct trainer tr;
    memset(&tr, 0, sizeof(tr));
    tr.out = out;
    out->off = tm_xcalloc(prm->vocab_size, sizeof(*out->off));
    out->len = tm_xcalloc(prm->vocab_size, sizeof(*out->len));
    tr.bytes_cap = 4096;
    out->bytes = tm_xmalloc(tr.bytes_cap);
    size_t tokslots = 1024;
    while (tokslots < (size_t)prm->vocab_size * 2)
        tokslots *= 2;
    tr.tokmap = tm_xcalloc(tokslots, sizeof(*tr.tokmap));
    tr.tokmask = tokslots - 1;
    for (uint32_t b = 0; b < 256; b++) {
        out->bytes[b] = (unsigned char)b;
        out->off[b] = b;
        out->len[b] = 1;
        size_t i = (size_t)tok_bytes_hash(out, b) & tr.tokmask;
        while (tr.tokmap[i])
            i = (i + 1) & tr.tokmask;
        tr.tokmap[i] = b + 1;
    }
    out->ntokens = 256;

    int rc = trainer_init(&tr, words, n);
    if (rc != TM_OK)
        goto out;
    out->stop = TOK_STOP_VOCAB;
    uint32_t step = 0;
    while (out->ntokens < prm->vocab_size) {
        size_t p = best_pair(&tr);
        if (p == SIZE_MAX) {
            out->stop = TOK_STOP_NO_PAIRS;
            break;
        }
        uint64_t count = tr.pairs[p].count;
        if (count < prm->min_count) {
            out->stop = TOK_STOP_MIN_COUNT;
            break;
        }
        heap_pop(&tr);
        uint32_t a = (uint32_t)(tr.pairs[p].key >> 32), b = (uint32_t)tr.pairs[p].key;
        uint32_t before = out->ntokens;
        uint32_t z = token_concat(&tr, a, b);
        if (out->nmerges == tr.merges_cap) {
            tr.merges_cap = tr.merges_cap ? tr.merges_cap * 2 : 1024;
            out->merges = tm_xreallocarray(out->merges, tr.merges_cap, sizeof(*out->merges));
        }
        out->merges[out->nmerges++] = (struct tok_merge){a, b, z, count};
        if (out->ntokens == before)
            out->naliased++;
        out->last_count = count;

        /* Detach the list: the pair's count falls to 0 and nothing adds to it this step (z is
         * longer than a and b, so no new pair is (a, b)). */
        step++;
        uint32_t *list = tr.pairs[p].words;
        uint32_t nlist = tr.pairs[p].n, owned = tr.pairs[p].cap;
        tr.pairs[p].words = NULL;
        tr.pairs[p].n = tr.pairs[p].cap = 0;
        int bad = 0;
        for (uint32_t j = 0; j < nlist; j++) {
            uint32_t w = list[j];
            if (tr.wstamp[w] == step)
                continue;
            tr.wstamp[w] = step;
            merge_word(&tr, w, a, b, z, step, &bad);
        }
        if (owned)
            free(list);
        if (bad || tr.pairs[p].count != 0) {
            tm_log_error("train-vocab: pair counts inconsistent after merge %zu (%u, %u)",
                         out->nmerges, a, b);
            rc = TM_ERR_INTERNAL;
            goto out;
        }
        for (size_t j = 0; j < tr.ntouched; j++) {
            struct pair *pr = &tr.pairs[tr.touched[j]];
            if (pr->count)
                heap_push(&tr, pr->count, pr->key);
        }
        tr.ntouched = 0;
        /* Taken between steps: within one, the count depends on the order words are visited. */
        if (tr.alive > out->peak_pairs)
            out->peak_pairs = tr.alive;
        if (prog)
            tm_progress_add(prog, out->ntokens - before, 0);
    }
out:
    trainer_release(&tr);
    if (rc != TM_OK)
        tok_trained_release(out);
    return rc;
}

int tok_trained_write_tiktoken(const struct tok_trained *r, struct tm_buf *out)
{
    static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char line[4 * (TOK_VOCAB_MAX_TOKEN_LEN + 2) / 3 + 32];
    for (uint32_t id = 0; id < r->ntokens; id++) {
        const unsigned char *s = r->bytes + r->off[id];
        size_t n = r->len[id], o = 0;
        for (size_t i = 0; i < n; i += 3) {
            uint32_t v = (uint32_t)s[i] << 16 | (i + 1 < n ? (uint32_t)s[i + 1] << 8 : 0) |
                         (i + 2 < n ? s[i + 2] : 0);
            line[o++] = al[v >> 18];
            line[o++] = al[(v >> 12) & 63];
            line[o++] = i + 1 < n ? al[(v >> 6) & 63] : '=';
            line[o++] = i + 2 < n ? al[v & 63] : '=';
        }
        o += (size_t)snprintf(line + o, sizeof(line) - o, " %u\n", id);
        int rc = tm_buf_append(out, line, o);
        if (rc != TM_OK)
            return rc;
    }
    return TM_OK;
}
