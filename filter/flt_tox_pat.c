/* flt_tox_pat.c: the byte classes, the boundary table, the prefilter trie and the regex text of
 * every term variant. The tables here are the one place that says what a letter's disguises
 * are and which Unicode punctuation ends a word; both the C prefilter and the PCRE2 patterns are
 * generated from them, so they cannot drift apart.
 *
 * Why the prefilter is a superset of the patterns (every position where some pattern matches is
 * reported as a candidate). A match can only start where the left boundary holds, and the scan
 * loop tests exactly that condition (flt_bseq_ends_at mirrors the lookbehind). From such a
 * position the walker reads tokens, collapsing runs of equal tokens; the trie holds each term's
 * key, made by the same tokenizer from the term's own text. Variant by variant:
 *   - plain: the matched bytes are the term's bytes up to ASCII case (caseless byte mode folds
 *     ASCII only, and tokens ignore ASCII case), and a whitespace run (\s++) is one WS token;
 *   - obfuscated: a run of one term letter becomes a run of bytes of that letter's class (the
 *     letter, its leet symbols, '*' for a later vowel); all but '*' share the letter's token, so
 *     the collapsed tokens are the term's; a '*' makes the walker report a candidate outright;
 *   - spaced: one byte per letter, all with the same separator between them, walked by a second
 *     trie of uncollapsed letter tokens.
 * Collapsing can merge the term's last run with the bytes after the match ("ass" then "$"), so
 * the end of a complete term is not an edge but a node flag, FLT_N_ENDOK, checked before every
 * byte that can satisfy the right boundary (any byte but [A-Za-z0-9_]) and at the region end.
 * Keys are cut at FLT_TOX_KEY_DEPTH tokens, at a '*' in the term, at a byte of no class, and
 * after a prefix term's stem; each cut marks the node FLT_N_ACCEPT (a candidate without looking
 * further), which can only add candidates. Long runs make the walker give up with a candidate.
 * Each node also keeps the fewest bytes that any key through it has in the run of its token (a
 * plain or obfuscated match has at least as many bytes there as the term: "ass" needs two s,
 * "\s++" one); a text run that ends shorter rules out every term below the node, which is what
 * tells "as" from "ass" although collapsing made their tokens equal. A node where complete
 * terms end also keeps which runs of the path all of them need doubled ("tittie": the tt), so
 * "title" is no candidate for it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flt_tox_int.h"
#include "tm_err.h"
#include "tm_mem.h"

/* Look-alikes of letters, from the usual "leetspeak" substitutions (digits by shape, symbols by
 * shape or sound). A symbol listed for two letters (1, |) must give them the same token: i and l
 * share one class for that reason. */
static const struct flt_leet {
    char letter;
    const char *subs;
} flt_leet[] = {
    {'a', "4@"}, {'e', "3"}, {'i', "1!|"}, {'l', "1|"}, {'o', "0"}, {'s', "5$"}, {'t', "7"},
};
/* '*' stands for one of these (never for a term's first letter: "*ss" is rarely "ass"). */
static const char flt_vowels[] = "aeiou";
/* Digits that are no leet symbol: a class each, so terms like "2g1c" get precise keys. */
static const char flt_own_digits[] = "2689";
/* Separators of spaced letters ("f u c k", "s.h.i.t", "f-u-c-k", "f_u_c_k"); one kind per word. */
static const char flt_spaced_seps[] = " ._-";
/* ASCII whitespace as PCRE2's \s in byte mode (C-locale isspace). */
static const char flt_ws[] = " \t\n\v\f\r";

/* Unicode punctuation and spaces that end a word although their bytes are >= 0x80 (which
 * otherwise count as word bytes, so that "anal" is no word of "analógico"). General punctuation
 * and space separators common in web text; not the middle dot (Catalan "l·l" is one word). */
static const uint32_t flt_boundary_cps[] = {
    0x00A0, 0x00A1, 0x00AB, 0x00BB, 0x00BF,                                 /* Latin-1 */
    0x2000, 0x2001, 0x2002, 0x2003, 0x2004, 0x2005, 0x2006, 0x2007, 0x2008, /* spaces */
    0x2009, 0x200A, 0x200B, 0x202F, 0x205F, 0x3000, 0xFEFF,                 /* spaces */
    0x2010, 0x2011, 0x2012, 0x2013, 0x2014, 0x2015,                         /* dashes */
    0x2018, 0x2019, 0x201A, 0x201C, 0x201D, 0x201E, 0x2039, 0x203A,         /* quotes */
    0x2022, 0x2026, 0x2028, 0x2029,         /* bullet, ellipsis, line/para separators */
    0x3001, 0x3002, 0xFF01, 0xFF0C, 0xFF1F, /* CJK comma, full stop; fullwidth ! , ? */
};

static unsigned utf8_encode(uint32_t cp, uint8_t out[4])
{
    if (cp < 0x80) {
        out[0] = (uint8_t)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (uint8_t)(0xC0 | (cp >> 6));
        out[1] = (uint8_t)(0x80 | (cp & 0x3F));
        return 2;
    }
    out[0] = (uint8_t)(0xE0 | (cp >> 12));
    out[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
    out[2] = (uint8_t)(0x80 | (cp & 0x3F));
    return 3;
}

void flt_tables_init(struct flt_tables *tb)
{
    memset(tb, 0, sizeof(*tb));
    uint8_t letter_tok[26];
    uint8_t next = 1;
    for (int c = 0; c < 26; c++)
        letter_tok[c] = c == 'l' - 'a' ? letter_tok['i' - 'a'] : next++;
    for (int c = 0; c < 26; c++) {
        tb->tok['a' + c] = letter_tok[c];
        tb->tok['A' + c] = letter_tok[c];
    }
    for (const char *d = flt_own_digits; *d; d++)
        tb->tok[(unsigned char)*d] = next++;
    for (size_t k = 0; k < sizeof(flt_leet) / sizeof(*flt_leet); k++)
        for (const char *s = flt_leet[k].subs; *s; s++)
            tb->tok[(unsigned char)*s] = letter_tok[flt_leet[k].letter - 'a'];
    for (const char *s = flt_ws; *s; s++)
        tb->tok[(unsigned char)*s] = FLT_TOK_WS;
    tb->tok['\''] = FLT_TOK_APOS;
    tb->tok['*'] = FLT_TOK_WILD;

    for (int b = 0; b < 256; b++)
        if ((b >= '0' && b <= '9') || (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z') || b == '_')
            tb->flags[b] |= FLT_B_WORD | FLT_B_AWORD;
        else if (b >= 0x80)
            tb->flags[b] |= FLT_B_WORD;
    for (const char *s = flt_spaced_seps; *s; s++)
        tb->flags[(unsigned char)*s] |= FLT_B_SEP;

    tb->nbseq = sizeof(flt_boundary_cps) / sizeof(*flt_boundary_cps);
    for (unsigned k = 0; k < tb->nbseq; k++) {
        tb->bseqlen[k] = (uint8_t)utf8_encode(flt_boundary_cps[k], tb->bseq[k]);
        for (unsigned j = 0; j < tb->bseqlen[k]; j++)
            tb->bseqcode[k] = tb->bseqcode[k] << 8 | tb->bseq[k][j];
        tb->flags[tb->bseq[k][tb->bseqlen[k] - 1]] |= FLT_B_SEQEND;
    }
}

int flt_bseq_ends_at(const struct flt_tables *tb, const unsigned char *text, size_t end)
{
    /* Compare packed big-endian codes: no memcmp per entry (this runs at every byte that ends
     * some boundary sequence, i.e. often in non-ASCII text). */
    uint32_t last2 = end >= 2 ? (uint32_t)text[end - 2] << 8 | text[end - 1] : 0;
    uint32_t last3 = end >= 3 ? (uint32_t)text[end - 3] << 16 | last2 : 0;
    for (unsigned k = 0; k < tb->nbseq; k++)
        if (tb->bseqcode[k] == (tb->bseqlen[k] == 2 ? last2 : last3))
            return 1;
    return 0;
}

/* ---- Trie ----------------------------------------------------------------------------------- */

void flt_trie_init(struct flt_trie *tr)
{
    tr->cap = 64;
    tr->next = tm_xcalloc(tr->cap, sizeof(*tr->next));
    tr->nflags = tm_xcalloc(tr->cap, 1);
    tr->minrun = tm_xmalloc(tr->cap);
    memset(tr->minrun, 0xff, tr->cap);
    tr->endneed = tm_xcalloc(tr->cap, sizeof(*tr->endneed));
    tr->n = 3; /* 0: no node, FLT_TRIE_PLAIN, FLT_TRIE_SPACED */
}

void flt_trie_release(struct flt_trie *tr)
{
    free(tr->next);
    free(tr->nflags);
    free(tr->minrun);
    free(tr->endneed);
    memset(tr, 0, sizeof(*tr));
}

/* The child of `node` by token t, made when missing; 0 when the node budget is spent, in which
 * case `node` is marked accepting so the key stays a superset. */
static uint32_t trie_child(struct flt_trie *tr, uint32_t node, unsigned t)
{
    if (tr->next[node][t])
        return tr->next[node][t];
    if (tr->n >= FLT_TOX_MAX_TRIE_NODES) {
        tr->nflags[node] |= FLT_N_ACCEPT;
        return 0;
    }
    if (tr->n == tr->cap) {
        tr->next = tm_xreallocarray(tr->next, tr->cap * 2, sizeof(*tr->next));
        tr->nflags = tm_xreallocarray(tr->nflags, tr->cap * 2, 1);
        tr->minrun = tm_xreallocarray(tr->minrun, tr->cap * 2, 1);
        memset(tr->next + tr->cap, 0, tr->cap * sizeof(*tr->next));
        memset(tr->nflags + tr->cap, 0, tr->cap);
        memset(tr->minrun + tr->cap, 0xff, tr->cap);
        tr->endneed = tm_xreallocarray(tr->endneed, tr->cap * 2, sizeof(*tr->endneed));
        memset(tr->endneed + tr->cap, 0, tr->cap * sizeof(*tr->endneed));
        tr->cap *= 2;
    }
    uint32_t c = tr->n++;
    tr->next[node][t] = (uint16_t)c;
    return c;
}

/* Lowers node's minimum run to `run` bytes (a whitespace run needs one: \s++). */
static void note_run(struct flt_trie *tr, uint32_t node, unsigned tok, unsigned run)
{
    if (tok == FLT_TOK_WS)
        run = 1;
    if (run < tr->minrun[node])
        tr->minrun[node] = (uint8_t)(run > 255 ? 255 : run);
}

void flt_trie_add_plain(struct flt_trie *tr, const struct flt_tables *tb, const char *stem,
                        size_t len, int prefix)
{
    uint32_t node = FLT_TRIE_PLAIN;
    int prev = -1;
    unsigned depth = 0, run = 0, need = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned t = tb->tok[(unsigned char)stem[i]];
        if (t == FLT_TOK_WILD)
            goto cut;
        if ((int)t == prev) {
            run++;
            continue;
        }
        if (depth == FLT_TOX_KEY_DEPTH)
            goto cut;
        if (prev >= 0) {
            note_run(tr, node, (unsigned)prev, run);
            if (run >= 2 && prev != FLT_TOK_WS)
                need |= 1u << (depth - 1);
        }
        uint32_t c = trie_child(tr, node, t);
        if (!c)
            return;
        node = c;
        depth++;
        prev = (int)t;
        run = 1;
        if (t == FLT_TOK_END)
            goto cut;
    }
    if (prev >= 0) {
        note_run(tr, node, (unsigned)prev, run);
        if (run >= 2 && prev != FLT_TOK_WS)
            need |= 1u << (depth - 1);
    }
    if (prefix) {
        tr->nflags[node] |= FLT_N_ACCEPT;
        return;
    }
    tr->endneed[node] = (tr->nflags[node] & FLT_N_ENDOK) ? tr->endneed[node] & need : need;
    tr->nflags[node] |= FLT_N_ENDOK;
    return;
cut:
    /* The key stops here; the run counted so far is a lower bound of the term's. */
    if (prev >= 0)
        note_run(tr, node, (unsigned)prev, run);
    tr->nflags[node] |= FLT_N_ACCEPT;
}

void flt_trie_add_spaced(struct flt_trie *tr, const struct flt_tables *tb, const char *stem,
                         size_t len)
{
    uint32_t node = FLT_TRIE_SPACED;
    for (size_t i = 0; i < len; i++) {
        if (i == FLT_TOX_KEY_DEPTH) {
            tr->nflags[node] |= FLT_N_ACCEPT;
            return;
        }
        uint32_t c = trie_child(tr, node, tb->tok[(unsigned char)stem[i]]);
        if (!c)
            return;
        node = c;
        note_run(tr, node, 0, 1);
    }
    tr->nflags[node] |= FLT_N_ENDOK;
}

/* ---- Regex text ----------------------------------------------------------------------------- */

static int is_alnum(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int put_hex(struct tm_buf *out, unsigned char c)
{
    return tm_buf_printf(out, "\\x%02x", c);
}

/* The boundary sequences as an alternation "\xe2\x80\x94|\xc2\xa0|..." (byte mode). */
static int put_bseqs(struct tm_buf *out, const struct flt_tables *tb)
{
    int rc = TM_OK;
    for (unsigned k = 0; k < tb->nbseq && rc == TM_OK; k++) {
        if (k)
            rc = tm_buf_putc(out, '|');
        for (unsigned j = 0; j < tb->bseqlen[k] && rc == TM_OK; j++)
            rc = put_hex(out, tb->bseq[k][j]);
    }
    return rc;
}

#define FLT_WORD_CLASS "[0-9A-Za-z_\\x80-\\xff]"

int flt_pat_lb(struct tm_buf *out, const struct flt_tables *tb)
{
    int rc = tm_buf_puts(out, "(?:(?<!" FLT_WORD_CLASS ")|(?<=");
    if (rc == TM_OK)
        rc = put_bseqs(out, tb);
    return rc == TM_OK ? tm_buf_puts(out, "))") : rc;
}

int flt_pat_rb(struct tm_buf *out, const struct flt_tables *tb)
{
    int rc = tm_buf_puts(out, "(?:(?!" FLT_WORD_CLASS ")|(?=");
    if (rc == TM_OK)
        rc = put_bseqs(out, tb);
    return rc == TM_OK ? tm_buf_puts(out, "))") : rc;
}

/* The rest of a word after a prefix term's stem: word bytes, stopping before a boundary
 * sequence, possessive (it always stops where the right boundary holds). */
static int put_byte_tail(struct tm_buf *out, const struct flt_tables *tb)
{
    int rc = tm_buf_puts(out, "(?:[0-9A-Za-z_]|(?!");
    if (rc == TM_OK)
        rc = put_bseqs(out, tb);
    return rc == TM_OK ? tm_buf_puts(out, ")[\\x80-\\xff])*+") : rc;
}

/* The literal text of a term: alphanumerics as they are (caseless), spaces of a phrase as one
 * whitespace run, every other ASCII byte escaped; bytes >= 0x80 as they are (UTF patterns) or
 * escaped (byte patterns; such terms only reach byte mode when they are all ASCII). */
static int put_literal(struct tm_buf *out, const char *s, size_t n)
{
    int rc = TM_OK;
    for (size_t i = 0; i < n && rc == TM_OK; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == ' ') {
            while (i + 1 < n && s[i + 1] == ' ')
                i++;
            rc = tm_buf_puts(out, "\\s++");
        } else if (is_alnum(c) || c >= 0x80) {
            rc = tm_buf_putc(out, c);
        } else {
            rc = put_hex(out, c);
        }
    }
    return rc;
}

/* The class of bytes that may stand for letter `c` (lower case): the letter, its leet symbols,
 * and '*' for a vowel that is not the first letter. */
static int put_letter_class(struct tm_buf *out, char c, int first)
{
    int rc = tm_buf_putc(out, '[');
    if (rc == TM_OK)
        rc = tm_buf_putc(out, c);
    for (size_t k = 0; k < sizeof(flt_leet) / sizeof(*flt_leet) && rc == TM_OK; k++)
        if (flt_leet[k].letter == c)
            for (const char *s = flt_leet[k].subs; *s && rc == TM_OK; s++)
                rc = put_hex(out, (unsigned char)*s);
    if (rc == TM_OK && !first && strchr(flt_vowels, c))
        rc = put_hex(out, '*');
    return rc == TM_OK ? tm_buf_putc(out, ']') : rc;
}

static char lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

int flt_pat_obf_eligible(const char *stem, size_t len)
{
    if (len < FLT_TOX_OBF_MIN_LETTERS)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = lower(stem[i]);
        if (c < 'a' || c > 'z')
            return 0;
    }
    return 1;
}

int flt_pat_variant(struct tm_buf *out, const struct flt_term *t, enum flt_variant v,
                    const struct flt_tables *tb)
{
    const char *s = t->text;
    size_t n = t->stem_len;
    int rc = TM_OK;
    if (v == FLT_V_PLAIN) {
        rc = put_literal(out, s, n);
    } else if (v == FLT_V_OBF) {
        /* Each run of one letter: that many or more (up to the cap) bytes of its class. */
        for (size_t i = 0; i < n && rc == TM_OK;) {
            size_t j = i;
            while (j < n && lower(s[j]) == lower(s[i]))
                j++;
            size_t run = j - i;
            rc = put_letter_class(out, lower(s[i]), i == 0);
            if (rc == TM_OK)
                rc = tm_buf_printf(out, "{%zu,%zu}+", run,
                                   run > FLT_TOX_MAX_REPEAT ? run : (size_t)FLT_TOX_MAX_REPEAT);
            i = j;
        }
    } else {
        /* One byte per letter, the same separator between all of them. */
        for (size_t i = 0; i < n && rc == TM_OK; i++) {
            if (i == 1) {
                rc = tm_buf_puts(out, "([");
                for (const char *p = flt_spaced_seps; *p && rc == TM_OK; p++)
                    rc = put_hex(out, (unsigned char)*p);
                if (rc == TM_OK)
                    rc = tm_buf_puts(out, "])");
            } else if (i > 1) {
                rc = tm_buf_puts(out, "\\g{-1}");
            }
            if (rc == TM_OK)
                rc = put_letter_class(out, lower(s[i]), i == 0);
        }
        return rc;
    }
    if (rc == TM_OK && t->prefix) {
        if (t->group == FLT_G_FAST || t->group == FLT_G_BYTE)
            rc = put_byte_tail(out, tb);
        else if (t->group == FLT_G_UTF)
            rc = tm_buf_puts(out, "\\w*+");
        /* FLT_G_NOSPACE: terms match anywhere, so a tail would only stretch the hit. */
    }
    return rc;
}

int flt_pat_allow(struct tm_buf *out, const char *phrase, const struct flt_tables *tb)
{
    size_t n = strlen(phrase);
    int prefix = n && phrase[n - 1] == '*';
    int rc = put_literal(out, phrase, n - (size_t)prefix);
    return rc == TM_OK && prefix ? put_byte_tail(out, tb) : rc;
}
