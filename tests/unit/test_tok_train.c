/* tokenize: the BPE trainer against a plain reference (count every pair of every word, take
 * the best by the documented rule, rewrite every word, repeat) on many random small corpora,
 * aliased merges included; the .tiktoken file it writes loaded back with tok_vocab_load() and
 * used to encode the training words; independence from word order and duplication; the
 * pre-token counter (pattern, UTF-8 check, long pieces) and the word table (merging, pruning). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tok_internal.h"
#include "tok_train.h"
#include "tm_buf.h"
#include "tm_err.h"
#include "tm_fs.h"
#include "tm_log.h"

/* ---- Random corpora ----------------------------------------------------------------------- */

static uint64_t rng_state;

static uint32_t rnd(uint32_t n)
{
    /* splitmix64: reproducible from the seed printed on failure. */
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return n ? (uint32_t)(z % n) : 0;
}

#define MAX_WORDS 64
#define MAX_LEN   16

struct corpus {
    unsigned char bytes[MAX_WORDS][MAX_LEN];
    struct tok_word w[MAX_WORDS];
    size_t n;
};

/* Words over a random alphabet of 1..6 bytes (byte 0 and bytes >= 0x80 included), many of
 * them repeats or extensions of earlier words so that long merges and aliased merges (the
 * same bytes from two different pairs) happen; counts 0..6, mostly small. */
static void make_corpus(struct corpus *c)
{
    unsigned char alpha[6];
    size_t na = 1 + rnd(6);
    for (size_t i = 0; i < na; i++)
        alpha[i] = (unsigned char)(rnd(4) == 0 ? rnd(256) : 'a' + rnd(8));
    c->n = 1 + rnd(MAX_WORDS);
    for (size_t i = 0; i < c->n; i++) {
        size_t len;
        if (i > 0 && rnd(3) == 0) {
            /* a prefix of an earlier word, extended */
            size_t j = rnd((uint32_t)i);
            len = c->w[j].len;
            memcpy(c->bytes[i], c->bytes[j], len);
            size_t extra = rnd(4);
            while (extra-- && len < MAX_LEN)
                c->bytes[i][len++] = alpha[rnd((uint32_t)na)];
        } else {
            len = 1 + rnd(MAX_LEN);
            for (size_t k = 0; k < len; k++)
                c->bytes[i][k] = alpha[rnd((uint32_t)na)];
        }
        uint32_t r = rnd(10);
        c->w[i].bytes = c->bytes[i];
        c->w[i].len = (uint32_t)len;
        c->w[i].count = r == 0 ? 0 : r < 6 ? 1 + rnd(2) : 1 + rnd(6);
    }
}

/* ---- The reference ------------------------------------------------------------------------ */

struct ref_tok {
    unsigned char b[MAX_LEN];
    size_t len;
};

struct ref_result {
    struct ref_tok *tok;
    uint32_t ntok;
    struct tok_merge *m;
    size_t nm;
    enum tok_train_stop stop;
};

/* The rule of tok_train.h, written the obvious way. */
static void reference_train(const struct tok_word *words, size_t n, uint32_t vocab_size,
                            uint64_t min_count, struct ref_result *r)
{
    uint32_t sym[MAX_WORDS][MAX_LEN];
    size_t len[MAX_WORDS];
    r->tok = calloc(vocab_size, sizeof(*r->tok));
    /* Every step shortens a word: at most MAX_WORDS * MAX_LEN steps. */
    r->m = calloc((size_t)MAX_LEN * MAX_WORDS + 1, sizeof(*r->m));
    r->nm = 0;
    for (uint32_t b = 0; b < 256; b++) {
        r->tok[b].b[0] = (unsigned char)b;
        r->tok[b].len = 1;
    }
    r->ntok = 256;
    for (size_t i = 0; i < n; i++) {
        len[i] = words[i].len;
        for (size_t k = 0; k < len[i]; k++)
            sym[i][k] = words[i].bytes[k];
    }
    r->stop = TOK_STOP_VOCAB;
    while (r->ntok < vocab_size) {
        /* Count every adjacent pair of every word into a list; keep the best. */
        static uint32_t pl[MAX_WORDS * MAX_LEN], pr[MAX_WORDS * MAX_LEN];
        static uint64_t pc[MAX_WORDS * MAX_LEN];
        size_t np = 0;
        for (size_t i = 0; i < n; i++) {
            for (size_t k = 0; k + 1 < len[i]; k++) {
                size_t j = 0;
                while (j < np && !(pl[j] == sym[i][k] && pr[j] == sym[i][k + 1]))
                    j++;
                if (j == np) {
                    pl[np] = sym[i][k];
                    pr[np] = sym[i][k + 1];
                    pc[np++] = 0;
                }
                pc[j] += words[i].count;
            }
        }
        uint32_t bl = 0, br = 0;
        uint64_t best = 0;
        for (size_t j = 0; j < np; j++) {
            if (pc[j] > best ||
                (pc[j] == best && pc[j] > 0 && (pl[j] < bl || (pl[j] == bl && pr[j] < br)))) {
                best = pc[j];
                bl = pl[j];
                br = pr[j];
            }
        }
        if (best == 0) {
            r->stop = TOK_STOP_NO_PAIRS;
            break;
        }
        if (best < min_count) {
            r->stop = TOK_STOP_MIN_COUNT;
            break;
        }
        struct ref_tok nt;
        nt.len = r->tok[bl].len + r->tok[br].len;
        memcpy(nt.b, r->tok[bl].b, r->tok[bl].len);
        memcpy(nt.b + r->tok[bl].len, r->tok[br].b, r->tok[br].len);
        uint32_t z = r->ntok;
        for (uint32_t t = 0; t < r->ntok; t++)
            if (r->tok[t].len == nt.len && memcmp(r->tok[t].b, nt.b, nt.len) == 0)
                z = t;
        if (z == r->ntok)
            r->tok[r->ntok++] = nt;
        r->m[r->nm++] = (struct tok_merge){bl, br, z, best};
        for (size_t i = 0; i < n; i++) {
            size_t o = 0;
            for (size_t k = 0; k < len[i];) {
                if (k + 1 < len[i] && sym[i][k] == bl && sym[i][k + 1] == br) {
                    sym[i][o++] = z;
                    k += 2;
                } else {
                    sym[i][o++] = sym[i][k++];
                }
            }
            len[i] = o;
        }
    }
}

static void ref_free(struct ref_result *r)
{
    free(r->tok);
    free(r->m);
}

/* ---- Tests ------------------------------------------------------------------------------------
 */

static void expect_same(const struct tok_trained *got, const struct ref_result *want, uint64_t seed)
{
    if (got->nmerges != want->nm || got->ntokens != want->ntok || got->stop != want->stop)
        print_error("seed %llu: %zu merges / %u tokens / stop %d, reference %zu / %u / %d\n",
                    (unsigned long long)seed, got->nmerges, got->ntokens, (int)got->stop, want->nm,
                    want->ntok, (int)want->stop);
    assert_int_equal(got->nmerges, want->nm);
    assert_int_equal(got->ntokens, want->ntok);
    assert_int_equal(got->stop, want->stop);
    for (size_t i = 0; i < want->nm; i++) {
        const struct tok_merge *a = &got->merges[i], *b = &want->m[i];
        if (a->left != b->left || a->right != b->right || a->id != b->id || a->count != b->count)
            print_error("seed %llu merge %zu: (%u,%u)->%u count %llu, reference (%u,%u)->%u "
                        "count %llu\n",
                        (unsigned long long)seed, i, a->left, a->right, a->id,
                        (unsigned long long)a->count, b->left, b->right, b->id,
                        (unsigned long long)b->count);
        assert_int_equal(a->left, b->left);
        assert_int_equal(a->right, b->right);
        assert_int_equal(a->id, b->id);
        assert_int_equal(a->count, b->count);
    }
    for (uint32_t t = 0; t < want->ntok; t++) {
        assert_int_equal(got->len[t], want->tok[t].len);
        assert_memory_equal(got->bytes + got->off[t], want->tok[t].b, want->tok[t].len);
    }
}

#define TRIALS 1500

static void test_matches_reference(void **state)
{
    (void)state;
    static struct corpus c;
    size_t aliased = 0, stops[3] = {0, 0, 0}, merges = 0;
    for (uint64_t seed = 1; seed <= TRIALS; seed++) {
        rng_state = seed;
        make_corpus(&c);
        uint32_t vocab = 256 + rnd(80);
        uint64_t min_count = rnd(4) == 0 ? 1 + rnd(4) : 0;
        struct ref_result want;
        reference_train(c.w, c.n, vocab, min_count, &want);
        struct tok_trained got;
        struct tok_train_params p = {vocab, min_count};
        assert_int_equal(tok_train_bpe(c.w, c.n, &p, NULL, &got), TM_OK);
        expect_same(&got, &want, seed);
        aliased += got.naliased;
        merges += got.nmerges;
        stops[got.stop]++;
        tok_trained_release(&got);
        ref_free(&want);
    }
    print_message("%d corpora: %zu merges, %zu aliased; stops: vocab %zu, no pairs %zu, "
                  "min count %zu\n",
                  TRIALS, merges, aliased, stops[0], stops[1], stops[2]);
    /* The comparison proves something only if every way of stopping was taken. (No aliased
     * merge has turned up in any random corpus: see tok_train.h.) */
    assert_true(stops[TOK_STOP_VOCAB] > 0 && stops[TOK_STOP_NO_PAIRS] > 0 &&
                stops[TOK_STOP_MIN_COUNT] > 0);
}

/* The hand-checked case the rule is easiest to read from: "aaa" merges to "Z a", not "a Z";
 * ties go to the smallest (left, right). */
static void test_small_known(void **state)
{
    (void)state;
    struct tok_word w[] = {
        {(const unsigned char *)"aaa", 3, 2},
        {(const unsigned char *)"ab", 2, 2},
        {(const unsigned char *)"ba", 2, 2},
    };
    struct tok_train_params p = {259, 0};
    struct tok_trained r;
    assert_int_equal(tok_train_bpe(w, 3, &p, NULL, &r), TM_OK);
    /* Counts: aa 4, ab 2, ba 2. Merge 1: (a,a) -> 256 "aa"; aaa -> [aa, a]. Then (aa, a) 2,
     * (a, b) 2, (b, a) 2: the tie goes to (97, 98) = "ab", then (98, 97) = "ba". */
    assert_int_equal(r.nmerges, 3);
    assert_int_equal(r.merges[0].left, 'a');
    assert_int_equal(r.merges[0].right, 'a');
    assert_int_equal(r.merges[0].count, 4);
    assert_int_equal(r.merges[1].left, 'a');
    assert_int_equal(r.merges[1].right, 'b');
    assert_int_equal(r.merges[2].left, 'b');
    assert_int_equal(r.merges[2].right, 'a');
    assert_int_equal(r.ntokens, 259);
    assert_int_equal(r.stop, TOK_STOP_VOCAB);
    tok_trained_release(&r);

    /* Overlapping candidates for "abc" ((ab, c) and (a, bc)): one wins, as in the reference. */
    struct tok_word w2[] = {
        {(const unsigned char *)"abc", 3, 5},
        {(const unsigned char *)"ab", 2, 3},
        {(const unsigned char *)"bcx", 3, 4},
        {(const unsigned char *)"abcx", 4, 1},
    };
    p.vocab_size = 300;
    assert_int_equal(tok_train_bpe(w2, 4, &p, NULL, &r), TM_OK);
    struct ref_result want;
    reference_train(w2, 4, 300, 0, &want);
    expect_same(&r, &want, 0);
    tok_trained_release(&r);
    ref_free(&want);
}

static void test_bad_params(void **state)
{
    (void)state;
    FILE *q = fopen("/dev/null", "w");
    tm_log_set_stream(q, 0);
    struct tok_word w[] = {{(const unsigned char *)"ab", 2, 1}};
    struct tok_trained r;
    struct tok_train_params p = {255, 0};
    assert_int_equal(tok_train_bpe(w, 1, &p, NULL, &r), TM_ERR_USAGE);
    p.vocab_size = TOK_TRAIN_MAX_VOCAB + 1;
    assert_int_equal(tok_train_bpe(w, 1, &p, NULL, &r), TM_ERR_USAGE);
    p.vocab_size = 300;
    w[0].len = 0;
    assert_int_equal(tok_train_bpe(w, 1, &p, NULL, &r), TM_ERR_USAGE);
    tm_log_set_stream(NULL, -1);
    fclose(q);
    /* No words: nothing to merge, 256 tokens. */
    assert_int_equal(tok_train_bpe(NULL, 0, &p, NULL, &r), TM_OK);
    assert_int_equal(r.ntokens, 256);
    assert_int_equal(r.stop, TOK_STOP_NO_PAIRS);
    tok_trained_release(&r);
}

/* Word order and splitting a word's count over duplicates change nothing (what makes the
 * result independent of how threads shared the counting). */
static void test_order_independent(void **state)
{
    (void)state;
    static struct corpus c;
    size_t total = 0;
    for (uint64_t seed = 1; seed <= 200; seed++) {
        rng_state = seed * 7919;
        make_corpus(&c);
        struct tok_word *w2 = calloc(2 * c.n, sizeof(*w2));
        size_t n2 = 0;
        for (size_t i = c.n; i-- > 0;) {
            struct tok_word x = c.w[i];
            if (x.count >= 2) {
                uint64_t part = 1 + rnd((uint32_t)x.count - 1);
                w2[n2] = x;
                w2[n2++].count = part;
                x.count -= part;
            }
            w2[n2++] = x;
        }
        for (size_t i = n2; i > 1; i--) {
            size_t j = rnd((uint32_t)i);
            struct tok_word t = w2[i - 1];
            w2[i - 1] = w2[j];
            w2[j] = t;
        }
        struct tok_train_params p = {256 + 60, 0};
        struct tok_trained a, b;
        assert_int_equal(tok_train_bpe(c.w, c.n, &p, NULL, &a), TM_OK);
        assert_int_equal(tok_train_bpe(w2, n2, &p, NULL, &b), TM_OK);
        assert_int_equal(a.nmerges, b.nmerges);
        total += a.nmerges;
        for (size_t i = 0; i < a.nmerges; i++) {
            assert_int_equal(a.merges[i].left, b.merges[i].left);
            assert_int_equal(a.merges[i].right, b.merges[i].right);
            assert_int_equal(a.merges[i].id, b.merges[i].id);
            assert_int_equal(a.merges[i].count, b.merges[i].count);
        }
        tok_trained_release(&a);
        tok_trained_release(&b);
        free(w2);
    }
    assert_true(total > 1000);
}

/* A larger corpus of real-looking words through the pre-tokenizer; the trained file loads
 * with tok_vocab_load(), every token >= 256 is the concatenation of two lower-ranked tokens,
 * and every training word encodes to tokens that spell it. */
static void test_tiktoken_round_trip(void **state)
{
    (void)state;
    struct tok_pretok *pt;
    assert_int_equal(tok_pretok_new(TOK_PAT_CL100K, &pt), TM_OK);
    struct tok_wordtab *t = tok_wordtab_new(1000000, 1);
    struct tok_pretok_stats ps = {0};
    static const char *const syll[] = {"ka", "to", "ri", "mun", "e", "sha", "é",  "ü",   "日本",
                                       "  ", "\n", "42", "7",   ".", ",",   "'s", "ing", "tion"};
    struct tm_buf text;
    tm_buf_init(&text, 0);
    rng_state = 99;
    for (int i = 0; i < 20000; i++) {
        if (rnd(2))
            tm_buf_putc(&text, ' ');
        size_t k = 1 + rnd(4);
        while (k--)
            tm_buf_puts(&text, syll[rnd(sizeof(syll) / sizeof(syll[0]))]);
    }
    assert_int_equal(tok_pretok_count(pt, text.data, text.len, 1, t, &ps), TM_OK);
    assert_true(ps.pieces > 10000);
    size_t n;
    struct tok_word *w = tok_wordtab_words(t, &n);
    struct tok_train_params p = {1000, 2};
    struct tok_trained r;
    assert_int_equal(tok_train_bpe(w, n, &p, NULL, &r), TM_OK);
    assert_true(r.ntokens > 400);

    struct tm_buf f;
    tm_buf_init(&f, 0);
    assert_int_equal(tok_trained_write_tiktoken(&r, &f), TM_OK);
    struct tok_vocab *v;
    assert_int_equal(tok_vocab_load_mem("trained", f.data, f.len, &v), TM_OK);
    assert_int_equal(tok_vocab_count(v), r.ntokens);
    for (uint32_t b = 0; b < 256; b++) {
        size_t len;
        const unsigned char *x = tok_vocab_bytes(v, b, &len);
        assert_int_equal(len, 1);
        assert_int_equal(x[0], b);
    }
    for (uint32_t id = 256; id < r.ntokens; id++) {
        size_t len;
        const unsigned char *x = tok_vocab_bytes(v, id, &len);
        assert_non_null(x);
        int found = 0;
        for (size_t cut = 1; cut < len && !found; cut++) {
            uint32_t a, b;
            found = tok_vocab_rank(v, x, cut, &a) == TM_OK &&
                    tok_vocab_rank(v, x + cut, len - cut, &b) == TM_OK && a < id && b < id;
        }
        if (!found)
            print_error("token %u is not two lower-ranked tokens\n", id);
        assert_true(found);
    }
    struct tok_ids ids;
    tok_ids_init(&ids, 0);
    struct tm_buf back;
    tm_buf_init(&back, 0);
    size_t multi = 0;
    for (size_t i = 0; i < n; i++) {
        ids.n = 0;
        tm_buf_reset(&back);
        assert_int_equal(tok_bpe_encode_piece(v, w[i].bytes, w[i].len, &ids), TM_OK);
        for (size_t k = 0; k < ids.n; k++) {
            size_t len;
            const unsigned char *x = tok_vocab_bytes(v, ids.v[k], &len);
            assert_non_null(x);
            tm_buf_append(&back, x, len);
        }
        assert_int_equal(back.len, w[i].len);
        assert_memory_equal(back.data, w[i].bytes, w[i].len);
        multi += ids.n < w[i].len;
    }
    assert_true(multi > n / 2); /* the merges are used, not only bytes */
    tm_buf_release(&back);
    tok_ids_release(&ids);
    tok_vocab_free(v);

    /* Through a file too, as the command writes it. */
    const char *tmp = getenv("TM_TEST_TMP");
    char dir[512];
    snprintf(dir, sizeof(dir), "%s", tmp && *tmp ? tmp : "/tmp");
    assert_int_equal(tm_mkdirs(dir), TM_OK);
    char *path = tm_path_join(dir, "test_tok_train.tiktoken");
    assert_int_equal(tm_write_atomic(path, f.data, f.len), TM_OK);
    assert_int_equal(tok_vocab_load(path, &v), TM_OK);
    assert_int_equal(tok_vocab_count(v), r.ntokens);
    tok_vocab_free(v);
    remove(path);
    free(path);

    tm_buf_release(&f);
    tok_trained_release(&r);
    free(w);
    tm_buf_release(&text);
    tok_wordtab_free(t);
    tok_pretok_free(pt);
}

static uint64_t count_of(const struct tok_wordtab *t, const char *s)
{
    size_t n;
    struct tok_word *w = tok_wordtab_words(t, &n);
    uint64_t c = 0;
    for (size_t i = 0; i < n; i++)
        if (w[i].len == strlen(s) && memcmp(w[i].bytes, s, w[i].len) == 0)
            c += w[i].count;
    free(w);
    return c;
}

static void test_pretok(void **state)
{
    (void)state;
    struct tok_pretok *pt;
    assert_int_equal(tok_pretok_new(TOK_PAT_CL100K, &pt), TM_OK);
    struct tok_wordtab *t = tok_wordtab_new(100, 1);
    struct tok_pretok_stats ps = {0};
    const char *s = "Hello world hello world 12345\n\nit's";
    assert_int_equal(tok_pretok_count(pt, s, strlen(s), 3, t, &ps), TM_OK);
    /* cl100k: "Hello" " world" " hello" " world" " " "123" "45" "\n\n" "it" "'s" */
    assert_int_equal(ps.pieces, 10);
    assert_int_equal(count_of(t, " world"), 6);
    assert_int_equal(count_of(t, "Hello"), 3);
    assert_int_equal(count_of(t, "123"), 3);
    assert_int_equal(count_of(t, "45"), 3);
    assert_int_equal(count_of(t, "\n\n"), 3);
    assert_int_equal(count_of(t, "'s"), 3);
    assert_int_equal(tok_wordtab_size(t), 9);
    /* r50k splits digits differently: " 12345" is one piece. */
    struct tok_pretok *pr;
    assert_int_equal(tok_pretok_new(TOK_PAT_R50K, &pr), TM_OK);
    assert_int_equal(tok_pretok_count(pr, s, strlen(s), 1, t, &ps), TM_OK);
    assert_int_equal(count_of(t, " 12345"), 1);
    tok_pretok_free(pr);
    /* Invalid UTF-8: nothing counted. */
    size_t before = tok_wordtab_size(t);
    assert_int_equal(tok_pretok_count(pt, "abc \xff def", 9, 1, t, &ps), TM_ERR_FORMAT);
    assert_int_equal(tok_pretok_count(pt, "\xed\xa0\x80", 3, 1, t, &ps), TM_ERR_FORMAT);
    assert_int_equal(tok_wordtab_size(t), before);
    /* A piece over TOK_TRAIN_MAX_PIECE is skipped and counted. */
    char longw[TOK_TRAIN_MAX_PIECE + 10];
    memset(longw, 'x', sizeof(longw));
    uint64_t skipped = ps.long_skipped;
    assert_int_equal(tok_pretok_count(pt, longw, sizeof(longw), 1, t, &ps), TM_OK);
    assert_int_equal(ps.long_skipped, skipped + 1);
    assert_int_equal(tok_wordtab_size(t), before);
    FILE *q = fopen("/dev/null", "w");
    tm_log_set_stream(q, 0);
    assert_int_equal(tok_pretok_new(TOK_PAT_COUNT, &pr), TM_ERR_USAGE);
    tm_log_set_stream(NULL, -1);
    fclose(q);
    tok_wordtab_free(t);
    tok_pretok_free(pt);
}

static int word_cmp(const void *a, const void *b)
{
    const struct tok_word *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->bytes, y->bytes, n);
    return c ? c : (x->len > y->len) - (x->len < y->len);
}

/* The counts do not depend on whether the ASCII matcher or PCRE2 split the text: random text
 * over pieces that sit on the patterns' edges (apostrophes, digit runs, CR/LF, non-ASCII
 * letters, digits and spaces next to ASCII). */
static void test_pretok_scan_equals_pcre(void **state)
{
    (void)state;
    static const char *const real[] = {
        "a",
        "Z",
        "'s",
        "'T",
        "'ll",
        "'x",
        "1",
        "22",
        "333",
        " ",
        "  ",
        "\n",
        "\r\n",
        "\t",
        ".",
        "!?",
        "_",
        "-1",
        "\xc3\xa9",     /* é */
        "\xc3\x89",     /* É */
        "\xe6\x97\xa5", /* 日 */
        "\xd9\xa3",     /* Arabic-Indic digit three */
        "\xc2\xa0",     /* no-break space (White_Space) */
        "\xe2\x80\xa8", /* line separator (White_Space) */
        "\xc7\x85",     /* Dž (Lt) */
        "\xcc\x81",     /* combining acute (M) */
        "\xc5\xbf",     /* long s: case-folds to 's' in (?i:'s) */
    };
    struct tm_buf text;
    tm_buf_init(&text, 0);
    for (int pat = 0; pat < TOK_PAT_COUNT; pat++) {
        struct tok_pretok *a, *b;
        assert_int_equal(tok_pretok_new((enum tok_pattern)pat, &a), TM_OK);
        assert_int_equal(tok_pretok_new((enum tok_pattern)pat, &b), TM_OK);
        tok_pretok_set_scan(b, 0);
        struct tok_wordtab *ta = tok_wordtab_new(1 << 20, 1), *tb = tok_wordtab_new(1 << 20, 1);
        struct tok_pretok_stats sa = {0}, sb = {0};
        rng_state = 1234 + (uint64_t)pat;
        for (int doc = 0; doc < 300; doc++) {
            tm_buf_reset(&text);
            size_t k = 1 + rnd(60);
            while (k--)
                tm_buf_puts(&text, real[rnd(sizeof(real) / sizeof(real[0]))]);
            assert_int_equal(tok_pretok_count(a, text.data, text.len, 1, ta, &sa), TM_OK);
            assert_int_equal(tok_pretok_count(b, text.data, text.len, 1, tb, &sb), TM_OK);
        }
        assert_int_equal(sa.pieces, sb.pieces);
        /* Both paths were taken: the comparison means something. */
        assert_true(sa.scanned > sa.pieces / 4 && sa.scanned < sa.pieces);
        assert_int_equal(sb.scanned, 0);
        size_t na, nb;
        struct tok_word *wa = tok_wordtab_words(ta, &na), *wb = tok_wordtab_words(tb, &nb);
        assert_int_equal(na, nb);
        qsort(wa, na, sizeof(*wa), word_cmp);
        qsort(wb, nb, sizeof(*wb), word_cmp);
        for (size_t i = 0; i < na; i++) {
            assert_int_equal(wa[i].len, wb[i].len);
            assert_memory_equal(wa[i].bytes, wb[i].bytes, wa[i].len);
            assert_int_equal(wa[i].count, wb[i].count);
        }
        free(wa);
        free(wb);
        tok_wordtab_free(ta);
        tok_wordtab_free(tb);
        tok_pretok_free(a);
        tok_pretok_free(b);
    }
    tm_buf_release(&text);
}

static void test_wordtab(void **state)
{
    (void)state;
    struct tok_wordtab *a = tok_wordtab_new(1000000, 1), *b = tok_wordtab_new(1000000, 1);
    char w[32];
    /* Enough words to grow the index several times. */
    for (int i = 0; i < 50000; i++) {
        snprintf(w, sizeof(w), "w%d", i % 20000);
        assert_int_equal(tok_wordtab_add(i % 2 ? a : b, (const unsigned char *)w, strlen(w), 2),
                         TM_OK);
    }
    assert_int_equal(tok_wordtab_add(a, (const unsigned char *)w, 0, 1), TM_ERR_USAGE);
    tok_wordtab_merge(a, b);
    assert_int_equal(tok_wordtab_size(a), 20000);
    assert_int_equal(count_of(a, "w0"), 6);     /* i = 0, 20000, 40000 */
    assert_int_equal(count_of(a, "w19999"), 4); /* i = 19999, 39999 */
    assert_int_equal(tok_wordtab_get_stats(a)->pruned_words, 0);
    tok_wordtab_free(b);

    /* Pruning: 100 frequent words survive a flood of words seen once. (Each prune logs.) */
    tm_log_set_level(TM_LOG_WARN);
    struct tok_wordtab *p = tok_wordtab_new(1000, 1);
    for (int i = 0; i < 100; i++) {
        snprintf(w, sizeof(w), "freq%d", i);
        tok_wordtab_add(p, (const unsigned char *)w, strlen(w), 5);
    }
    for (int i = 0; i < 5000; i++) {
        snprintf(w, sizeof(w), "rare%d", i);
        tok_wordtab_add(p, (const unsigned char *)w, strlen(w), 1);
    }
    assert_true(tok_wordtab_size(p) <= 1000);
    const struct tok_wordtab_stats *st = tok_wordtab_get_stats(p);
    assert_true(st->prunes >= 1);
    assert_int_equal(st->pruned_words + tok_wordtab_size(p), 5100);
    assert_int_equal(st->pruned_count, st->pruned_words); /* only count-1 words went */
    for (int i = 0; i < 100; i++) {
        snprintf(w, sizeof(w), "freq%d", i);
        assert_int_equal(count_of(p, w), 5);
    }
    /* When every word is frequent, the threshold rises until the table is 3/4 full. */
    struct tok_wordtab *q = tok_wordtab_new(100, 1);
    for (int i = 0; i < 300; i++) {
        snprintf(w, sizeof(w), "x%d", i);
        tok_wordtab_add(q, (const unsigned char *)w, strlen(w), 2 + (uint64_t)i);
    }
    assert_true(tok_wordtab_size(q) <= 100);
    assert_int_equal(count_of(q, "x299"), 301); /* the most frequent survive */
    /* Lowering the cap prunes at once. */
    tok_wordtab_set_max(a, 1000);
    assert_true(tok_wordtab_size(a) <= 1000);
    tm_log_set_level(TM_LOG_INFO);
    tok_wordtab_free(q);
    tok_wordtab_free(p);
    tok_wordtab_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_small_known),
        cmocka_unit_test(test_matches_reference),
        cmocka_unit_test(test_bad_params),
        cmocka_unit_test(test_order_independent),
        cmocka_unit_test(test_tiktoken_round_trip),
        cmocka_unit_test(test_pretok),
        cmocka_unit_test(test_pretok_scan_equals_pcre),
        cmocka_unit_test(test_wordtab),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
