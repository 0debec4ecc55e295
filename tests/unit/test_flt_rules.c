/* filter rules: every quality rule just inside and just outside its default threshold, the
 * n-gram statistics against a plain reference, spans, the decision record, configuration
 * parsing, and code regions. Toxicity is off here (test_flt_tox.c covers the lexicons), so
 * these tests do not depend on the built-in lexicon's contents. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"
#include "flt_internal.h"
#include "tm_buf.h"
#include "tm_rand.h"

/* ---- Helpers ------------------------------------------------------------------------------ */

struct text {
    char *s;
    size_t n, cap;
};

static void tx_add(struct text *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char tmp[4096];
    int k = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    assert_true(k >= 0 && (size_t)k < sizeof tmp);
    if (t->n + (size_t)k + 1 > t->cap) {
        t->cap = (t->n + (size_t)k + 1) * 2;
        t->s = realloc(t->s, t->cap);
    }
    memcpy(t->s + t->n, tmp, (size_t)k + 1);
    t->n += (size_t)k;
}

/* A unique pseudo-word of exactly `len` letters (len >= 3) for index i. */
static void word(char *out, unsigned i, size_t len)
{
    static const char cons[] = "bcdfgklmnprstvz";
    static const char vow[] = "aeiou";
    for (size_t k = 0; k < len; k++)
        out[k] = (k % 2 == 0) ? cons[(i + k * 7) % 15] : vow[(i / 15 + k) % 5];
    /* the index, in letters, at the end keeps words distinct */
    unsigned v = i;
    for (size_t k = len; k-- > 0 && v;) {
        out[k] = (char)('a' + v % 26);
        v /= 26;
    }
    out[len] = '\0';
}

/* `count` distinct words of length `len`, separated by spaces, starting at index `from`. */
static void words(struct text *t, unsigned from, unsigned count, size_t len)
{
    char w[64];
    for (unsigned i = 0; i < count; i++) {
        word(w, from + i, len);
        tx_add(t, "%s%s", t->n && t->s[t->n - 1] != '\n' ? " " : "", w);
    }
}

static struct flt_config cfg;
static const struct flt_config *use_cfg = &cfg; /* what decide() runs with */

static void decide(const char *text, size_t n, int domain, struct flt_decision *d)
{
    struct flt_engine e;
    flt_engine_init(&e, use_cfg, NULL);
    struct tm_doc doc = {.id = 1, .domain = domain, .lang = "und", .text = text, .text_len = n};
    if (domain == TM_DOMAIN_CODE)
        doc.lang = "c";
    assert_int_equal(flt_decide(&e, &doc, d), TM_OK);
    flt_engine_release(&e);
}

/* Asserts that `rule` passes on `inside` and fails on `outside` (text domain unless given). */
static void inside_outside(unsigned rule, int domain, struct text *inside, struct text *outside)
{
    struct flt_decision d;
    flt_decision_init(&d);
    const struct flt_rule *r = flt_rule_by_id(rule);
    decide(inside->s, inside->n, domain, &d);
    if (d.fired >> rule & 1)
        fail_msg("%s fired on the inside document (value %g)", r->name, d.values[rule]);
    assert_false(isnan(d.values[rule]));
    decide(outside->s, outside->n, domain, &d);
    if (!(d.fired >> rule & 1))
        fail_msg("%s did not fire on the outside document (value %g)", r->name, d.values[rule]);
    flt_decision_release(&d);
    free(inside->s);
    free(outside->s);
    memset(inside, 0, sizeof *inside);
    memset(outside, 0, sizeof *outside);
}

static int setup(void **state)
{
    (void)state;
    flt_config_defaults(&cfg);
    cfg.all_rules = 1; /* every rule evaluated, so each test sees its rule's verdict */
    for (int d = 0; d < TM_DOMAIN_COUNT; d++)
        cfg.dom[d].tox.enabled = 0;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    flt_config_release(&cfg);
    return 0;
}

/* ---- Gopher quality ------------------------------------------------------------------------ */

static void test_gopher_word_counts(void **state)
{
    (void)state;
    struct text in = {0}, out = {0};
    words(&in, 0, 50, 5);
    words(&out, 0, 49, 5);
    inside_outside(FLT_R_GOPHER_MIN_WORDS, TM_DOMAIN_TEXT, &in, &out);
    words(&in, 0, 100000, 4);
    words(&out, 0, 100001, 4);
    inside_outside(FLT_R_GOPHER_MAX_WORDS, TM_DOMAIN_TEXT, &in, &out);
}

static void test_gopher_mean_word_length(void **state)
{
    (void)state;
    struct text in = {0}, out = {0};
    words(&in, 0, 60, 3); /* mean exactly 3 */
    words(&out, 0, 59, 3);
    tx_add(&out, " ab"); /* one word of 2: mean just under 3 */
    inside_outside(FLT_R_GOPHER_MIN_MEAN_WORD, TM_DOMAIN_TEXT, &in, &out);
    words(&in, 0, 60, 10);
    words(&out, 0, 59, 10);
    tx_add(&out, " abcdefghijk");
    inside_outside(FLT_R_GOPHER_MAX_MEAN_WORD, TM_DOMAIN_TEXT, &in, &out);
    /* characters, not bytes: ten two-byte letters are a word of length 10 */
    words(&in, 0, 59, 10);
    tx_add(&in,
           " \xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9");
    words(&out, 0, 59, 10);
    tx_add(&out, " \xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                 "a");
    inside_outside(FLT_R_GOPHER_MAX_MEAN_WORD, TM_DOMAIN_TEXT, &in, &out);
}

static void test_gopher_symbols(void **state)
{
    (void)state;
    struct text in = {0}, out = {0};
    /* 100 words of which 10 are "#": ratio 0.1 (at most 0.1 passes) */
    words(&in, 0, 90, 5);
    words(&out, 0, 89, 5);
    for (int k = 0; k < 10; k++)
        tx_add(&in, " #");
    for (int k = 0; k < 11; k++)
        tx_add(&out, " #");
    inside_outside(FLT_R_GOPHER_HASH, TM_DOMAIN_TEXT, &in, &out);
    words(&in, 0, 90, 5);
    words(&out, 0, 89, 5);
    for (int k = 0; k < 10; k++)
        tx_add(&in, k % 2 ? " ..." : " \xe2\x80\xa6");
    for (int k = 0; k < 11; k++)
        tx_add(&out, k % 2 ? " ..." : " \xe2\x80\xa6");
    inside_outside(FLT_R_GOPHER_ELLIPSIS, TM_DOMAIN_TEXT, &in, &out);
}

/* Ten lines of six words; `special` of them start (or end) with `mark`. */
static void lines_with(struct text *t, int special, const char *start, const char *end)
{
    for (int l = 0; l < 10; l++) {
        tx_add(t, "%s", l < special ? start : "");
        words(t, (unsigned)l * 6, 6, 5);
        tx_add(t, "%s\n", l < special ? end : ".");
    }
}

static void test_gopher_lines(void **state)
{
    (void)state;
    struct text in = {0}, out = {0};
    lines_with(&in, 9, "\xe2\x80\xa2 ", "."); /* 90% bullets */
    lines_with(&out, 10, "- ", ".");
    inside_outside(FLT_R_GOPHER_BULLET_LINES, TM_DOMAIN_TEXT, &in, &out);
    lines_with(&in, 3, "", "...");
    lines_with(&out, 4, "", "\xe2\x80\xa6");
    inside_outside(FLT_R_GOPHER_ELLIPSIS_LINES, TM_DOMAIN_TEXT, &in, &out);
}

static void test_gopher_alpha_and_stop_words(void **state)
{
    (void)state;
    struct text in = {0}, out = {0};
    words(&in, 0, 80, 5);
    words(&out, 0, 79, 5);
    for (int k = 0; k < 20; k++)
        tx_add(&in, " 12-34");
    for (int k = 0; k < 21; k++)
        tx_add(&out, " 12-34");
    inside_outside(FLT_R_GOPHER_ALPHA_WORDS, TM_DOMAIN_TEXT, &in, &out);
    words(&in, 0, 60, 5);
    tx_add(&in, " The, (with).");
    words(&out, 0, 60, 5);
    tx_add(&out, " thee withe. THE");
    inside_outside(FLT_R_GOPHER_STOP_WORDS, TM_DOMAIN_TEXT, &in, &out);
}

/* ---- Gopher repetition --------------------------------------------------------------------- */

static void test_gopher_duplicate_lines_and_paragraphs(void **state)
{
    (void)state;
    struct text in = {0}, out = {0};
    /* 10 lines of 20 bytes (four 4-letter words), 3 repeating line 0: 0.3 of lines, 60 of 200
     * bytes = 0.3 of line bytes */
    for (int l = 0; l < 10; l++)
        words(&in, l < 7 ? (unsigned)l * 4 : 0, 4, 4), tx_add(&in, "\n");
    for (int l = 0; l < 10; l++)
        words(&out, l < 6 ? (unsigned)l * 4 : 0, 4, 4), tx_add(&out, "\n");
    inside_outside(FLT_R_GOPHER_DUP_LINES, TM_DOMAIN_TEXT, &in, &out);
    /* line bytes: 2 of 10 equal lines repeat (0.2), then 3 */
    for (int l = 0; l < 10; l++)
        words(&in, l < 8 ? (unsigned)l * 4 : 0, 4, 4), tx_add(&in, "\n");
    for (int l = 0; l < 10; l++)
        words(&out, l < 7 ? (unsigned)l * 4 : 0, 4, 4), tx_add(&out, "\n");
    inside_outside(FLT_R_GOPHER_DUP_LINE_CHARS, TM_DOMAIN_TEXT, &in, &out);
    /* FineWeb's stricter 0.1: one repeat of ten, then two */
    for (int l = 0; l < 10; l++)
        words(&in, l < 9 ? (unsigned)l * 4 : 0, 4, 4), tx_add(&in, "\n");
    for (int l = 0; l < 10; l++)
        words(&out, l < 8 ? (unsigned)l * 4 : 0, 4, 4), tx_add(&out, "\n");
    inside_outside(FLT_R_FINEWEB_DUP_LINE_CHARS, TM_DOMAIN_TEXT, &in, &out);
    /* paragraphs: 10 paragraphs of two lines, 3 then 4 repeating the first */
    for (int p = 0; p < 10; p++)
        words(&in, p < 7 ? (unsigned)p * 8 : 0, 4, 4), tx_add(&in, "\n"),
            words(&in, p < 7 ? (unsigned)p * 8 + 4 : 4, 4, 4), tx_add(&in, "\n\n");
    for (int p = 0; p < 10; p++)
        words(&out, p < 6 ? (unsigned)p * 8 : 0, 4, 4), tx_add(&out, "\n"),
            words(&out, p < 6 ? (unsigned)p * 8 + 4 : 4, 4, 4), tx_add(&out, "\n\n");
    inside_outside(FLT_R_GOPHER_DUP_PARAS, TM_DOMAIN_TEXT, &in, &out);
    for (int p = 0; p < 10; p++)
        words(&in, p < 8 ? (unsigned)p * 8 : 0, 4, 4), tx_add(&in, "\n"),
            words(&in, p < 8 ? (unsigned)p * 8 + 4 : 4, 4, 4), tx_add(&in, "\n\n");
    for (int p = 0; p < 10; p++)
        words(&out, p < 7 ? (unsigned)p * 8 : 0, 4, 4), tx_add(&out, "\n"),
            words(&out, p < 7 ? (unsigned)p * 8 + 4 : 4, 4, 4), tx_add(&out, "\n\n");
    inside_outside(FLT_R_GOPHER_DUP_PARA_CHARS, TM_DOMAIN_TEXT, &in, &out);
}

/* Filler of distinct 4-letter words, then `reps` copies of an n-word block of 4-letter words:
 * the block's n-gram has count `reps` and covers 4 * n * reps bytes. */
static void repeated_block(struct text *t, unsigned filler, unsigned n, unsigned reps)
{
    words(t, 1000, filler, 4);
    for (unsigned r = 0; r < reps; r++)
        words(t, 0, n, 4);
}

static void test_gopher_top_ngrams(void **state)
{
    (void)state;
    struct text in = {0}, out = {0};
    /* top 2-gram: 10 copies of a 2-word block = 80 bytes; 80 / 400 = 0.20 passes; with 11
     * copies, 88 / 404 fails. Blocks back to back also repeat the 2-gram across their join
     * (9 times, fewer), and the top 3- and 4-grams stay below their own thresholds. */
    repeated_block(&in, 80, 2, 10);
    repeated_block(&out, 80, 2, 11);
    inside_outside(FLT_R_GOPHER_TOP_2GRAM, TM_DOMAIN_TEXT, &in, &out);
    /* top 3-gram, 0.18: 6 copies of 3 words = 72 bytes of 400 (0.18); 7 copies: 84 / 412 */
    repeated_block(&in, 82, 3, 6);
    repeated_block(&out, 82, 3, 7);
    inside_outside(FLT_R_GOPHER_TOP_3GRAM, TM_DOMAIN_TEXT, &in, &out);
    /* top 4-gram, 0.16: 4 copies of 4 words = 64 of 400; 5 copies: 80 / 416 */
    repeated_block(&in, 84, 4, 4);
    repeated_block(&out, 84, 4, 5);
    inside_outside(FLT_R_GOPHER_TOP_4GRAM, TM_DOMAIN_TEXT, &in, &out);
}

static void test_gopher_duplicate_ngrams(void **state)
{
    (void)state;
    struct text in = {0}, out = {0};
    /* An n-word block twice: its second copy (4n bytes) is repeated n-gram bytes for every
     * size up to n. With n = 10 words (40 bytes): 40 / W. Thresholds 0.15 .. 0.10 for 5..10. */
    static const double thr[6] = {0.15, 0.14, 0.13, 0.12, 0.11, 0.10};
    for (unsigned g = 5; g <= 10; g++) {
        /* the block is g words; W = 4 * (filler + 2g); inside: largest filler with
         * 4g / W <= thr, outside: one word of filler less */
        unsigned f = 0;
        while (4.0 * g / (4.0 * (f + 2 * g)) > thr[g - 5])
            f++;
        repeated_block(&in, f, g, 2);
        repeated_block(&out, f - 1, g, 2);
        inside_outside(FLT_R_GOPHER_DUP_5GRAM + (g - 5), TM_DOMAIN_TEXT, &in, &out);
    }
}

/* Reference n-gram statistics, written plainly from the definitions (datatrove's
 * find_top_duplicate and find_all_duplicate, with words compared as strings). */
static double ref_top(char **w, size_t nw, unsigned n, double total)
{
    size_t best = 1, best_bytes = 0;
    for (size_t i = 0; i + n <= nw; i++) {
        size_t c = 0;
        for (size_t j = 0; j + n <= nw; j++) {
            size_t k = 0;
            while (k < n && strcmp(w[i + k], w[j + k]) == 0)
                k++;
            c += k == n;
        }
        size_t b = 0;
        for (size_t k = 0; k < n; k++)
            b += strlen(w[i + k]);
        if (c >= 2 && (c > best || (c == best && b > best_bytes))) {
            best = c;
            best_bytes = b;
        }
    }
    return best >= 2 ? (double)best_bytes * (double)best / total : 0;
}

static double ref_dup(char **w, size_t nw, unsigned n, double total)
{
    size_t *seen = calloc(nw + 1, sizeof(size_t)), nseen = 0, rep = 0, i = 0;
    while (i + n <= nw) {
        int found = 0;
        for (size_t s = 0; s < nseen && !found; s++) {
            size_t k = 0;
            while (k < n && strcmp(w[seen[s] + k], w[i + k]) == 0)
                k++;
            found = k == n;
        }
        if (found) {
            for (size_t k = 0; k < n; k++)
                rep += strlen(w[i + k]);
            i += n;
        } else {
            seen[nseen++] = i;
            i++;
        }
    }
    free(seen);
    return (double)rep / total;
}

static void test_ngrams_match_reference(void **state)
{
    (void)state;
    uint64_t rng = 12345;
    struct flt_scratch *s = flt_scratch_new();
    for (int round = 0; round < 300; round++) {
        /* few distinct words, so n-grams repeat at every size */
        size_t nw = 1 + tm_splitmix64(&rng) % 120;
        unsigned vocab = 2 + (unsigned)(tm_splitmix64(&rng) % (round % 3 == 0 ? 3 : 12));
        char **w = calloc(nw, sizeof(char *));
        struct text t = {0};
        double total = 0;
        for (size_t i = 0; i < nw; i++) {
            unsigned id = (unsigned)(tm_splitmix64(&rng) % vocab);
            w[i] = malloc(16);
            snprintf(w[i], 16, "%.*s", (int)(1 + id % 5), "wxyzv");
            w[i][0] = (char)('a' + id);
            total += (double)strlen(w[i]);
            tx_add(&t, "%s%s", i ? (tm_splitmix64(&rng) % 5 ? " " : "\n") : "", w[i]);
        }
        double v[FLT_R_COUNT];
        flt_metrics(s, t.s, t.n, NULL, FLT_G_NGRAMS, v, 0, NULL);
        flt_metrics_ngrams(s, v);
        for (unsigned n = 2; n <= 4; n++)
            assert_float_equal(v[FLT_R_GOPHER_TOP_2GRAM + n - 2], ref_top(w, nw, n, total), 1e-12);
        for (unsigned n = 5; n <= 10; n++)
            assert_float_equal(v[FLT_R_GOPHER_DUP_5GRAM + n - 5], ref_dup(w, nw, n, total), 1e-12);
        for (size_t i = 0; i < nw; i++)
            free(w[i]);
        free(w);
        free(t.s);
    }
    flt_scratch_free(s);
}

/* ---- FineWeb, C4 ----------------------------------------------------------------------------- */

static void test_fineweb_lines(void **state)
{
    (void)state;
    struct text in = {0}, out = {0};
    /* punctuation: at least 0.12 of lines end in . ' " ! ?: 3 of 25 (0.12), then 2 of 25 */
    for (int l = 0; l < 25; l++)
        words(&in, (unsigned)l * 8, 8, 5), tx_add(&in, l < 3 ? "!\n" : "\n");
    for (int l = 0; l < 25; l++)
        words(&out, (unsigned)l * 8, 8, 5), tx_add(&out, l < 2 ? "?\n" : ":\n");
    inside_outside(FLT_R_FINEWEB_PUNCT_LINES, TM_DOMAIN_TEXT, &in, &out);
    /* short lines (at most 30 characters): 0.67 passes; 67 of 100 lines, then 68 */
    for (int l = 0; l < 100; l++)
        words(&in, (unsigned)l * 8, l < 67 ? 5 : 8, 5), tx_add(&in, ".\n"); /* 30 or 48 */
    for (int l = 0; l < 100; l++)
        words(&out, (unsigned)l * 8, l < 68 ? 5 : 8, 5), tx_add(&out, ".\n");
    inside_outside(FLT_R_FINEWEB_SHORT_LINES, TM_DOMAIN_TEXT, &in, &out);
    /* newlines per word: 0.3 passes: 30 newlines per 100 words, then 31 */
    for (int l = 0; l < 30; l++)
        words(&in, (unsigned)l * 10, l < 10 ? 4 : 3, 5), tx_add(&in, "\n");
    for (int l = 0; l < 31; l++)
        words(&out, (unsigned)l * 10, l < 7 ? 4 : 3, 5), tx_add(&out, "\n");
    inside_outside(FLT_R_FINEWEB_NEWLINES, TM_DOMAIN_TEXT, &in, &out);
}

static void test_c4_document_rules(void **state)
{
    (void)state;
    struct text in = {0}, out = {0};
    words(&in, 0, 60, 5);
    tx_add(&in, " lorem is not ipsum.");
    words(&out, 0, 60, 5);
    tx_add(&out, " Lorem Ipsum dolor sit amet.");
    inside_outside(FLT_R_C4_LOREM, TM_DOMAIN_TEXT, &in, &out);
    words(&in, 0, 60, 5);
    tx_add(&in, " (brackets) [only].");
    words(&out, 0, 60, 5);
    tx_add(&out, " int main() { }");
    inside_outside(FLT_R_C4_CURLY, TM_DOMAIN_TEXT, &in, &out);
}

static void test_c4_line_rules_remove_lines(void **state)
{
    (void)state;
    const char *text = "The first line stays here.\n"
                       "Please enable JavaScript to view the comments.\n"
                       "The third line stays as well.\n"
                       "By using this site you accept our Cookie Policy today.\n"
                       "Read the terms of use first.\n"
                       "The last line ends it.";
    /* only the line rules: a document this short would otherwise be removed whole */
    struct flt_config lines_only = cfg;
    for (int r = 0; r < FLT_R_COUNT; r++)
        if (flt_rules[r].kind == FLT_DOC_MIN || flt_rules[r].kind == FLT_DOC_MAX)
            lines_only.dom[TM_DOMAIN_TEXT].thr[flt_rules[r].id] = NAN;
    use_cfg = &lines_only;
    struct flt_decision d;
    flt_decision_init(&d);
    decide(text, strlen(text), TM_DOMAIN_TEXT, &d);
    assert_int_equal(d.action, FLT_KEPT_SPANS);
    assert_true(d.fired >> FLT_R_C4_JAVASCRIPT & 1);
    assert_true(d.fired >> FLT_R_C4_POLICY & 1);
    assert_int_equal(d.spans.n, 2); /* line 2, and lines 4-5 merged */
    struct tm_buf kept;
    tm_buf_init(&kept, 0);
    assert_int_equal(flt_apply_spans(text, strlen(text), d.spans.v, d.spans.n, &kept), TM_OK);
    assert_string_equal(kept.data, "The first line stays here.\n"
                                   "The third line stays as well.\n"
                                   "The last line ends it.");
    tm_buf_release(&kept);
    /* in code, C4's prose rules are off: the same text is not touched */
    decide(text, strlen(text), TM_DOMAIN_CODE, &d);
    assert_int_equal(d.spans.n, 0);
    use_cfg = &cfg;
    flt_decision_release(&d);
}

static void test_c4_terminal_punctuation_lines(void **state)
{
    (void)state;
    /* off by default; when on, lines not ending in . ! ? " are removed */
    struct flt_config on = cfg;
    for (int r = 0; r < FLT_R_COUNT; r++)
        if (flt_rules[r].kind == FLT_DOC_MIN || flt_rules[r].kind == FLT_DOC_MAX)
            on.dom[TM_DOMAIN_TEXT].thr[flt_rules[r].id] = NAN;
    const char *text = "A finished line.\nA heading\n\"Quoted.\"\nDone!";
    struct flt_decision d;
    flt_decision_init(&d);
    use_cfg = &on;
    decide(text, strlen(text), TM_DOMAIN_TEXT, &d);
    assert_int_equal(d.spans.n, 0);
    on.dom[TM_DOMAIN_TEXT].thr[FLT_R_C4_PUNCT_LINES] = 1;
    decide(text, strlen(text), TM_DOMAIN_TEXT, &d);
    use_cfg = &cfg;
    assert_int_equal(d.spans.n, 1);
    assert_int_equal(d.spans.v[0].rule, FLT_R_C4_PUNCT_LINES);
    assert_memory_equal(text + d.spans.v[0].start, "A heading\n",
                        d.spans.v[0].end - d.spans.v[0].start);
    flt_decision_release(&d);
}

/* The toxicity threshold: a score equal to it keeps the document (spans removed), just above
 * removes it. The lexicon is given in memory: "grobble", weight 2. */
static void test_toxicity_threshold(void **state)
{
    (void)state;
    struct flt_lexicon_spec ls = {.lang = "en"};
    struct flt_tox_text lex = {"mem", "grobble\t2\n", 10};
    struct flt_tox_spec spec = {.lexicons = &ls, .nlexicons = 1};
    struct flt_tox *tox;
    assert_int_equal(flt_tox_new_mem(&spec, &lex, NULL, &tox), TM_OK);
    struct flt_config c = cfg;
    for (int r = 0; r < FLT_R_COUNT; r++)
        if (flt_rules[r].kind == FLT_DOC_MIN || flt_rules[r].kind == FLT_DOC_MAX)
            c.dom[TM_DOMAIN_TEXT].thr[flt_rules[r].id] = NAN;
    c.dom[TM_DOMAIN_TEXT].tox.enabled = 1;
    c.dom[TM_DOMAIN_TEXT].tox.threshold = 10; /* per 1,000 words: weight 2 in 200 words */
    struct flt_engine e;
    flt_engine_init(&e, &c, tox);
    for (int outside = 0; outside < 2; outside++) {
        struct text t = {0};
        words(&t, 0, outside ? 99 : 100, 5); /* with the 3 + 97 below: 199 or 200 words */
        tx_add(&t, ". One grobble here.");
        words(&t, 200, 97, 5);
        tx_add(&t, ".");
        struct tm_doc doc = {.domain = TM_DOMAIN_TEXT, .lang = "und", .text = t.s, .text_len = t.n};
        struct flt_decision d;
        flt_decision_init(&d);
        assert_int_equal(flt_decide(&e, &doc, &d), TM_OK);
        assert_int_equal(d.tox_hits, 1);
        if (outside) {
            assert_true(d.tox_score > 10);
            assert_int_equal(d.action, FLT_REMOVED);
            assert_int_equal(d.rule, FLT_R_TOXICITY);
        } else {
            assert_true(d.tox_score == 10);
            assert_int_equal(d.action, FLT_KEPT_SPANS);
            assert_int_equal(d.spans.n, 1);
            /* the sentence and the space after it */
            assert_int_equal(d.spans.v[0].end - d.spans.v[0].start, 18);
            assert_memory_equal(t.s + d.spans.v[0].start, "One grobble here. ", 18);
        }
        flt_decision_release(&d);
        free(t.s);
    }
    flt_engine_release(&e);
    flt_tox_free(tox);
}

/* ---- Code and math ---------------------------------------------------------------------- */

/* `lines` lines of exactly `len` bytes before their newline. */
static void code_lines(struct text *t, int lines, size_t len)
{
    for (int l = 0; l < lines; l++) {
        tx_add(t, "x = ");
        for (size_t k = 4; k < len; k++)
            tx_add(t, "%c", (char)('a' + (k + (size_t)l) % 26));
        tx_add(t, "\n");
    }
}

static void test_code_rules(void **state)
{
    (void)state;
    struct text in = {0}, out = {0};
    code_lines(&in, 3, 20);
    code_lines(&in, 1, 1000);
    code_lines(&out, 3, 20);
    code_lines(&out, 1, 1001);
    inside_outside(FLT_R_CODE_MAX_LINE, TM_DOMAIN_CODE, &in, &out);
    /* mean line length: bytes per line (newlines included) at most 100 */
    code_lines(&in, 10, 99); /* 100 bytes per line with its newline */
    code_lines(&out, 9, 99);
    code_lines(&out, 1, 100);
    inside_outside(FLT_R_CODE_MEAN_LINE, TM_DOMAIN_CODE, &in, &out);
    /* alphanumeric fraction at least 0.25: 100 bytes, 25 letters, then 24 */
    tx_add(&in, "abcdefghijklmnopqrstuvwxy%75s", "");
    tx_add(&out, "abcdefghijklmnopqrstuvwx%76s", "");
    inside_outside(FLT_R_CODE_ALNUM, TM_DOMAIN_CODE, &in, &out);
    tx_add(&in, "/* Generated documentation lives elsewhere. */\nint x;\n");
    tx_add(&out, "/* Code generated by protoc-gen-go. DO NOT EDIT. */\nint x;\n");
    inside_outside(FLT_R_CODE_AUTOGEN, TM_DOMAIN_CODE, &in, &out);
    /* data: numeric-array lines on at most half the bytes */
    tx_add(&in, "int table[] = {\n");
    tx_add(&in, "  10, 20, 30, 40, 50, 60, 70, 80, 90, 11, 12, 13,\n");
    tx_add(&in, "};\nint f(int a) { return table[a] + lookup(a) * scale_factor_of_it; }\n");
    tx_add(&out, "int table[] = {\n");
    for (int k = 0; k < 3; k++)
        tx_add(&out, "  10, 20, 30, 40, 50, 60, 70, 80, 90, 11, 12, 13,\n");
    tx_add(&out, "};\nint f(int a) { return table[a]; }\n");
    inside_outside(FLT_R_CODE_DATA, TM_DOMAIN_CODE, &in, &out);
    const char *mit = "/* Permission is hereby granted, free of charge, to any person obtaining a "
                      "copy of this software, to deal in the Software without restriction. */\n";
    tx_add(&in, "%sint add(int a, int b) { return a + b; }\n", mit);
    tx_add(&out, "%s\n", mit);
    inside_outside(FLT_R_CODE_LICENSE_ONLY, TM_DOMAIN_CODE, &in, &out);
    /* minified: long lines holding most bytes and under 10% whitespace */
    for (int k = 0; k < 40; k++)
        tx_add(&in, "var a%d = function(b){return b*%d}; ", k, k);
    for (int k = 0; k < 40; k++)
        tx_add(&out, "var a%d=function(b){return b*%d};", k, k);
    inside_outside(FLT_R_CODE_MINIFIED, TM_DOMAIN_CODE, &in, &out);
}

static void test_math_rules(void **state)
{
    (void)state;
    struct text in = {0}, out = {0};
    tx_add(&in, "Solve $x^2 + 1 = 5$ and then $$\\frac{a}{b}$$ for $b \\neq 0$. It costs $5.");
    tx_add(&out, "Solve $\\frac{a}{b} for the unknown.\n\nNothing closes it.");
    inside_outside(FLT_R_MATH_DOLLARS, TM_DOMAIN_MATH, &in, &out);
    tx_add(&in, "$\\sqrt{x} = \\{1, 2\\}$");
    tx_add(&out, "$\\sqrt{x = 2$");
    inside_outside(FLT_R_MATH_BRACES, TM_DOMAIN_MATH, &in, &out);
    /* density at least 0.02: 2 math bytes in 100 non-space bytes, then 1 in 100 */
    static const char az[] = "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz";
    tx_add(&in, "%.49s 1 %.49s 2", az, az);
    tx_add(&out, "%.49s 1 %.50s", az, az);
    inside_outside(FLT_R_MATH_DENSITY, TM_DOMAIN_MATH, &in, &out);
}

static void test_prose_rules_leave_code_and_math_alone(void **state)
{
    (void)state;
    /* A short, brace-heavy C file and a short worked problem: text rules would remove both. */
    const char *code = "#include <stdio.h>\nint main(void) {\n    printf(\"hi\\n\");\n"
                       "    return 0;\n}\n";
    const char *math = "If 3 pens cost $6, one pen costs 6 / 3 = $2.";
    struct flt_decision d;
    flt_decision_init(&d);
    decide(code, strlen(code), TM_DOMAIN_CODE, &d);
    assert_int_equal(d.action, FLT_KEPT);
    decide(math, strlen(math), TM_DOMAIN_MATH, &d);
    assert_int_equal(d.action, FLT_KEPT);
    decide(code, strlen(code), TM_DOMAIN_TEXT, &d);
    assert_int_equal(d.action, FLT_REMOVED);
    flt_decision_release(&d);
}

/* ---- Spans --------------------------------------------------------------------------------- */

static void test_sentence_and_line_spans(void **state)
{
    (void)state;
    const char *t = "First one. Second \"quoted!\" here? Third\nNext line.";
    size_t n = strlen(t), a, b;
    size_t second = (size_t)(strstr(t, "Second") - t), third = (size_t)(strstr(t, "Third") - t);
    size_t next = (size_t)(strstr(t, "Next") - t);
    flt_sentence_around(t, n, second + 3, &a, &b);
    assert_int_equal(a, second);
    assert_int_equal(b, (size_t)(strstr(t, "here") - t)); /* "quoted!" then a space ends it */
    flt_sentence_around(t, n, 2, &a, &b);
    assert_int_equal(a, 0);
    assert_int_equal(b, second);
    flt_sentence_around(t, n, third + 1, &a, &b);
    assert_int_equal(a, third);
    assert_int_equal(b, next); /* ends after its newline */
    flt_line_around(t, n, n - 2, &a, &b);
    assert_int_equal(a, next);
    assert_int_equal(b, n);
}

static int valid_utf8(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        if (!len || i + len > n)
            return 0;
        for (size_t k = 1; k < len; k++)
            if (((unsigned char)s[i + k] & 0xc0) != 0x80)
                return 0;
        i += len;
    }
    return 1;
}

static void test_spans_merge_and_apply_keep_utf8(void **state)
{
    (void)state;
    uint64_t rng = 7;
    static const char *const pieces[] = {"Caf\xc3\xa9 ",
                                         "na\xc3\xafve. ",
                                         "\xe2\x80\x94 ",
                                         "ok! ",
                                         "\xf0\x9f\x98\x80 ",
                                         "end?\n",
                                         "\n",
                                         "line\n",
                                         "x. "};
    for (int round = 0; round < 500; round++) {
        struct text t = {0};
        int np = 1 + (int)(tm_splitmix64(&rng) % 30);
        for (int k = 0; k < np; k++)
            tx_add(&t, "%s", pieces[tm_splitmix64(&rng) % 9]);
        struct flt_spans sp = {0};
        int ns = (int)(tm_splitmix64(&rng) % 5);
        for (int k = 0; k < ns; k++) {
            size_t pos = tm_splitmix64(&rng) % t.n, a, b;
            if (k % 2)
                flt_sentence_around(t.s, t.n, pos, &a, &b);
            else
                flt_line_around(t.s, t.n, pos, &a, &b);
            assert_true(a <= pos && pos < b && b <= t.n);
            flt_spans_add(&sp, a, b, FLT_R_TOXICITY);
        }
        flt_spans_normalize(&sp);
        for (size_t k = 1; k < sp.n; k++)
            assert_true(sp.v[k - 1].end < sp.v[k].start);
        struct tm_buf out;
        tm_buf_init(&out, 0);
        assert_int_equal(flt_apply_spans(t.s, t.n, sp.v, sp.n, &out), TM_OK);
        assert_true(valid_utf8(out.data ? out.data : "", out.len));
        size_t removed = 0;
        for (size_t k = 0; k < sp.n; k++)
            removed += sp.v[k].end - sp.v[k].start;
        assert_int_equal(out.len + removed, t.n);
        /* nothing dangling: spans begin at a line start or after the whitespace that ended a
         * sentence, and end after a newline or such whitespace (or at the end) */
        for (size_t k = 0; k < sp.n; k++) {
            size_t a = sp.v[k].start, b = sp.v[k].end;
            assert_true(a == 0 || t.s[a - 1] == '\n' || t.s[a - 1] == ' ');
            assert_true(b == t.n || t.s[b - 1] == '\n' || t.s[b - 1] == ' ');
        }
        tm_buf_release(&out);
        flt_spans_release(&sp);
        free(t.s);
    }
}

/* ---- Decision records --------------------------------------------------------------------- */

static void test_decision_record_round_trip(void **state)
{
    (void)state;
    struct flt_decision d, e;
    flt_decision_init(&d);
    flt_decision_init(&e);
    d.action = FLT_KEPT_SPANS;
    d.domain = TM_DOMAIN_MATH;
    d.rule = FLT_R_TOXICITY;
    d.fired = (1ull << FLT_R_TOXICITY) | (1ull << FLT_R_MATH_BRACES);
    d.text_len = 1000;
    d.removed_bytes = 30;
    d.tox_score = 2.5f;
    d.tox_hits = 3;
    d.values[FLT_R_MATH_DENSITY] = 0.25f;
    d.values[FLT_R_TOXICITY] = 2.5f;
    flt_spans_add(&d.spans, 10, 20, FLT_R_TOXICITY);
    flt_spans_add(&d.spans, 500, 520, FLT_R_C4_POLICY);
    size_t len = flt_decision_encoded_size(&d);
    unsigned char *buf = malloc(len);
    flt_decision_encode(&d, 0xabcdef, buf);
    uint64_t hash = 0;
    assert_int_equal(flt_decision_decode(buf, len, &e, &hash, "test"), TM_OK);
    assert_int_equal(hash, 0xabcdef);
    assert_int_equal(e.action, d.action);
    assert_int_equal(e.domain, d.domain);
    assert_int_equal(e.rule, d.rule);
    assert_int_equal(e.fired, d.fired);
    assert_int_equal(e.text_len, 1000);
    assert_int_equal(e.removed_bytes, 30);
    assert_int_equal(e.tox_hits, 3);
    assert_true(e.tox_score == 2.5f);
    assert_true(e.values[FLT_R_MATH_DENSITY] == 0.25f);
    assert_true(isnan(e.values[FLT_R_GOPHER_MIN_WORDS]));
    assert_int_equal(e.spans.n, 2);
    assert_int_equal(e.spans.v[1].start, 500);
    assert_int_equal(e.spans.v[1].rule, FLT_R_C4_POLICY);
    /* every truncation, a span past the text, a wrong magic and a newer version are refused */
    FILE *quiet = tu_log_quiet();
    for (size_t cut = 0; cut < len; cut++)
        assert_int_not_equal(flt_decision_decode(buf, cut, &e, NULL, "cut"), TM_OK);
    unsigned char *bad = malloc(len);
    memcpy(bad, buf, len);
    bad[len - 18 + 8 + 7] = 0x7f; /* the last span's end, far past text_len */
    assert_int_equal(flt_decision_decode(bad, len, &e, NULL, "bad"), TM_ERR_FORMAT);
    memcpy(bad, buf, len);
    bad[0] = 'X';
    assert_int_equal(flt_decision_decode(bad, len, &e, NULL, "magic"), TM_ERR_FORMAT);
    memcpy(bad, buf, len);
    bad[4] = 9;
    assert_int_equal(flt_decision_decode(bad, len, &e, NULL, "version"), TM_ERR_VERSION);
    tu_log_restore(quiet);
    free(bad);
    free(buf);
    flt_decision_release(&d);
    flt_decision_release(&e);
}

/* ---- Configuration ---------------------------------------------------------------------- */

static void test_config_parse(void **state)
{
    (void)state;
    struct flt_config c;
    flt_config_defaults(&c);
    const char *ini = "; a comment\n[text]\ngopher_min_words = 40\ntoxicity_threshold = 3.5\n"
                      "toxicity_spans = line\nc4_curly_braces = off\n[all]\n"
                      "gopher_dup_lines = 0.5\n[code]\ntoxicity = off\n"
                      "[lexicons]\nlexicon = /x/en lang=en weight=2 category=slur\n"
                      "allow = /x/allow\nobfuscation = off\n";
    assert_int_equal(flt_config_parse(&c, ini, strlen(ini), "t.ini"), TM_OK);
    assert_true(c.dom[TM_DOMAIN_TEXT].thr[FLT_R_GOPHER_MIN_WORDS] == 40);
    assert_true(isnan(c.dom[TM_DOMAIN_TEXT].thr[FLT_R_C4_CURLY]));
    assert_true(c.dom[TM_DOMAIN_TEXT].tox.threshold == 3.5);
    assert_int_equal(c.dom[TM_DOMAIN_TEXT].tox.spans, FLT_SPAN_LINE);
    for (int d = 0; d < TM_DOMAIN_COUNT; d++)
        assert_true(c.dom[d].thr[FLT_R_GOPHER_DUP_LINES] == 0.5);
    assert_int_equal(c.dom[TM_DOMAIN_CODE].tox.enabled, 0);
    assert_int_equal(c.nlexicons, 1); /* the named lexicon replaced the built-in one */
    assert_string_equal(c.lexicons[0].path, "/x/en");
    assert_string_equal(c.lexicons[0].category, "slur");
    assert_true(c.lexicons[0].weight == 2);
    assert_int_equal(c.nallow, 1);
    assert_int_equal(c.obfuscation, 0);
    uint64_t h1 = flt_config_hash(&c, 1);
    assert_true(h1 != flt_config_hash(&c, 2));
    char err[256];
    assert_int_equal(flt_config_set(&c, "text", "gopher_min_words", "41", err, sizeof err), TM_OK);
    assert_true(flt_config_hash(&c, 1) != h1);
    flt_config_release(&c);

    /* errors name the line */
    static const struct {
        const char *ini, *want;
    } bad[] = {
        {"[text]\ngopher_min_words = 40\nno_such_rule = 1\n", "t.ini:3: unknown rule"},
        {"[text]\ngopher_min_words = lots\n", "t.ini:2: gopher_min_words: want a number"},
        {"[prose]\nx = 1\n", "t.ini:2: unknown section [prose]"},
        {"gopher_min_words = 1\n", "t.ini:1: 'gopher_min_words' is outside a section"},
        {"[text]\n\nthis is not ini\n", "t.ini:3: not an INI line"},
        {"[text]\ntoxicity_spans = words\n", "t.ini:2: toxicity_spans: want sentence"},
        {"[lexicons]\nlexicon = f colour=red\n", "t.ini:2: lexicon: cannot read"},
        {"[text]\ntoxicity_threshold = -1\n", "t.ini:2: toxicity_threshold"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        flt_config_defaults(&c);
        struct tu_capture cap;
        tu_capture_start(&cap, 0);
        int rc = flt_config_parse(&c, bad[k].ini, strlen(bad[k].ini), "t.ini");
        tu_capture_stop(&cap);
        assert_int_equal(rc, TM_ERR_USAGE);
        if (!cap.text || !strstr(cap.text, bad[k].want))
            fail_msg("config %zu: expected '%s' in: %s", k, bad[k].want, cap.text);
        free(cap.text);
        flt_config_release(&c);
    }
}

static void test_config_print_reads_back(void **state)
{
    (void)state;
    struct flt_config c, back;
    flt_config_defaults(&c);
    char err[128];
    assert_int_equal(flt_config_set(&c, "math", "gopher_min_words", "12", err, sizeof err), TM_OK);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    flt_config_print(&c, f);
    fclose(f);
    assert_non_null(strstr(buf, "Rae et al. 2021")); /* sources are written as comments */
    flt_config_defaults(&back);
    assert_int_equal(flt_config_parse(&back, buf, len, "printed"), TM_OK);
    assert_true(flt_config_hash(&back, 0) == flt_config_hash(&c, 0));
    free(buf);
    flt_config_release(&c);
    flt_config_release(&back);
}

/* ---- Word counts and evaluation order -------------------------------------------------- */

static void test_count_words_matches_scalar(void **state)
{
    (void)state;
    uint64_t rng = 99;
    static const char alphabet[] = "ab \n\t\r\v\f.\xc3\xa9";
    for (int round = 0; round < 2000; round++) {
        size_t n = tm_splitmix64(&rng) % 300;
        char *t = malloc(n + 1);
        for (size_t i = 0; i < n; i++)
            t[i] = alphabet[tm_splitmix64(&rng) % (sizeof alphabet - 1)];
        size_t want = 0;
        int in = 0;
        for (size_t i = 0; i < n; i++) {
            int w = !(t[i] == ' ' || (t[i] >= '\t' && t[i] <= '\r'));
            want += w && !in;
            in = w;
        }
        assert_int_equal(flt_count_words(t, n), want);
        free(t);
    }
}

/* Stopping at the first failing rule (the default) decides exactly as evaluating every rule. */
static void test_first_failure_equals_all_rules(void **state)
{
    (void)state;
    uint64_t rng = 5;
    struct flt_config first = cfg;
    first.all_rules = 0;
    struct flt_decision a, b;
    flt_decision_init(&a);
    flt_decision_init(&b);
    for (int round = 0; round < 400; round++) {
        struct text t = {0};
        int lines = 1 + (int)(tm_splitmix64(&rng) % 12);
        for (int l = 0; l < lines; l++) {
            words(&t, (unsigned)(tm_splitmix64(&rng) % 40),
                  1 + (unsigned)(tm_splitmix64(&rng) % 20), 3 + tm_splitmix64(&rng) % 8);
            static const char *const ends[] = {".\n",    "\n",    "...\n", " the of.\n",
                                               " {x}\n", "!\n\n", " #\n",  " javascript\n"};
            tx_add(&t, "%s", ends[tm_splitmix64(&rng) % 8]);
        }
        int dom = (int)(tm_splitmix64(&rng) % TM_DOMAIN_COUNT);
        use_cfg = &first;
        decide(t.s, t.n, dom, &a);
        use_cfg = &cfg;
        decide(t.s, t.n, dom, &b);
        assert_int_equal(a.action, b.action);
        assert_int_equal(a.rule, b.rule);
        assert_int_equal(a.spans.n, b.spans.n);
        assert_true((a.fired & ~b.fired) == 0); /* the short path never fires more */
        free(t.s);
    }
    flt_decision_release(&a);
    flt_decision_release(&b);
}

/* ---- Code regions ---------------------------------------------------------------------------- */

static void test_code_regions(void **state)
{
    (void)state;
    struct flt_regions r = {0};
    const char *c = "int shit_count; // a comment\nchar *s = \"a \\\" string\"; /* block\n */ x";
    assert_int_equal(flt_code_regions("c", c, strlen(c), &r), 0);
    assert_int_equal(r.n, 3);
    assert_memory_equal(c + r.v[0].start, " a comment", r.v[0].end - r.v[0].start);
    assert_int_equal(r.v[0].kind, FLT_REGION_COMMENT);
    assert_memory_equal(c + r.v[1].start, "a \\\" string", r.v[1].end - r.v[1].start);
    assert_int_equal(r.v[1].kind, FLT_REGION_STRING);
    assert_memory_equal(c + r.v[2].start, " block\n ", r.v[2].end - r.v[2].start);
    const char *py = "def f():\n    '''doc\nstring'''\n    return 1  # note\n";
    assert_int_equal(flt_code_regions("python", py, strlen(py), &r), 0);
    assert_int_equal(r.n, 2);
    assert_memory_equal(py + r.v[0].start, "doc\nstring", r.v[0].end - r.v[0].start);
    assert_memory_equal(py + r.v[1].start, " note", r.v[1].end - r.v[1].start);
    /* unterminated: to the end, never past it */
    const char *open = "x = 1 /* never closed";
    assert_int_equal(flt_code_regions("c", open, strlen(open), &r), 0);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.v[0].end, strlen(open));
    assert_int_equal(flt_code_regions("markdown", "# Title", 7, &r), 1);
    flt_regions_release(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gopher_word_counts),
        cmocka_unit_test(test_gopher_mean_word_length),
        cmocka_unit_test(test_gopher_symbols),
        cmocka_unit_test(test_gopher_lines),
        cmocka_unit_test(test_gopher_alpha_and_stop_words),
        cmocka_unit_test(test_gopher_duplicate_lines_and_paragraphs),
        cmocka_unit_test(test_gopher_top_ngrams),
        cmocka_unit_test(test_gopher_duplicate_ngrams),
        cmocka_unit_test(test_ngrams_match_reference),
        cmocka_unit_test(test_fineweb_lines),
        cmocka_unit_test(test_c4_document_rules),
        cmocka_unit_test(test_c4_line_rules_remove_lines),
        cmocka_unit_test(test_c4_terminal_punctuation_lines),
        cmocka_unit_test(test_toxicity_threshold),
        cmocka_unit_test(test_code_rules),
        cmocka_unit_test(test_math_rules),
        cmocka_unit_test(test_prose_rules_leave_code_and_math_alone),
        cmocka_unit_test(test_sentence_and_line_spans),
        cmocka_unit_test(test_spans_merge_and_apply_keep_utf8),
        cmocka_unit_test(test_decision_record_round_trip),
        cmocka_unit_test(test_config_parse),
        cmocka_unit_test(test_config_print_reads_back),
        cmocka_unit_test(test_code_regions),
        cmocka_unit_test(test_count_words_matches_scalar),
        cmocka_unit_test(test_first_failure_equals_all_rules),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
