/* flt_tox_lex.c: parses lexicon and allow-list files (format in flt_tox.h) into terms. Strict:
 * a line that does not parse is an error naming file:line, because a silently skipped term is a
 * filter that quietly lets its word through. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flt_tox_int.h"
#include "tm_err.h"
#include "tm_log.h"
#include "tm_mem.h"

/* Languages written without spaces between words: their terms match anywhere in the text. */
static const char *const flt_nospace_langs[] = {"ja", "zh", "th"};

/* Term flags by name (the 4th field of a lexicon line, comma-separated). */
static const struct flt_flag_name {
    const char *name;
    uint8_t bit;
} flt_flag_names[] = {
    {"name", FLT_F_NAME},
};

/* Fields of a lexicon line: term, weight, category, flags. */
#define FLT_LEX_NFIELDS 4

int flt_utf8_valid(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t len;
        uint32_t cp, min;
        if (c >= 0xC2 && c <= 0xDF) {
            len = 2, cp = c & 0x1F, min = 0x80;
        } else if (c >= 0xE0 && c <= 0xEF) {
            len = 3, cp = c & 0x0F, min = 0x800;
        } else if (c >= 0xF0 && c <= 0xF4) {
            len = 4, cp = c & 0x07, min = 0x10000;
        } else {
            return 0;
        }
        if (n - i < len)
            return 0;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return 0;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += len;
    }
    return 1;
}

static int is_space(char c)
{
    return c == ' ' || c == '\t';
}

/* Trims spaces and tabs from both ends of [*s, *e). */
static void trim(const char **s, const char **e)
{
    while (*s < *e && is_space(**s))
        (*s)++;
    while (*e > *s && is_space((*e)[-1]))
        (*e)--;
}

static int valid_category(const char *s, size_t n)
{
    if (n == 0 || n > FLT_TOX_MAX_CATEGORY_BYTES)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_' ||
              s[i] == '-'))
            return 0;
    return 1;
}

/* The index of category s[0..n), added when new; -1 past FLT_TOX_MAX_CATEGORIES. */
static int category_index(struct flt_lexset *ls, const char *s, size_t n)
{
    for (unsigned k = 0; k < ls->ncats; k++)
        if (strlen(ls->cats[k]) == n && memcmp(ls->cats[k], s, n) == 0)
            return (int)k;
    if (ls->ncats >= FLT_TOX_MAX_CATEGORIES)
        return -1;
    ls->cats = tm_xreallocarray(ls->cats, ls->ncats + 1, sizeof(*ls->cats));
    ls->cats[ls->ncats] = tm_xstrndup(s, n);
    return (int)ls->ncats++;
}

/* Checks a term or phrase s[0..n) (already trimmed); on error returns the reason. Sets
 * *stem_len (without a final '*' and the spaces before it) and *prefix. */
static const char *check_term(const char *s, size_t n, size_t *stem_len, int *prefix)
{
    if (n == 0)
        return "empty term";
    if (n > FLT_TOX_MAX_TERM_BYTES)
        return "term longer than 256 bytes";
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return "control character in term";
    if (!flt_utf8_valid((const unsigned char *)s, n))
        return "invalid UTF-8 in term";
    *prefix = s[n - 1] == '*';
    size_t m = n - (size_t)*prefix;
    while (m > 0 && s[m - 1] == ' ')
        m--;
    if (m == 0)
        return "term with nothing before '*'";
    *stem_len = m;
    return NULL;
}

/* Parses the flags field s[0..n) (already trimmed): names of flt_flag_names separated by commas,
 * spaces around them allowed, empty names skipped. On error returns the reason and sets *bad to
 * the offending name. */
static const char *parse_flags(const char *s, size_t n, uint8_t *flags, const char **bad,
                               size_t *badlen)
{
    const char *p = s, *end = s + n;
    *flags = 0;
    while (p < end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *fs = p, *fe = comma ? comma : end;
        p = comma ? comma + 1 : end;
        trim(&fs, &fe);
        if (fs == fe)
            continue;
        size_t k = 0, nk = sizeof(flt_flag_names) / sizeof(*flt_flag_names);
        while (k < nk && !(strlen(flt_flag_names[k].name) == (size_t)(fe - fs) &&
                           memcmp(flt_flag_names[k].name, fs, (size_t)(fe - fs)) == 0))
            k++;
        if (k == nk) {
            *bad = fs;
            *badlen = (size_t)(fe - fs);
            return "unknown flag";
        }
        *flags |= flt_flag_names[k].bit;
    }
    return NULL;
}

/* Calls fn for each line that is neither blank nor a comment: [s, e) without the newline or a
 * final CR. Stops at the first error fn returns. */
typedef int (*line_fn)(void *ctx, const char *name, size_t lineno, const char *s, const char *e);
static int each_line(const char *name, const char *data, size_t len, line_fn fn, void *ctx)
{
    const char *p = data, *end = data + len;
    size_t lineno = 0;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *e = nl ? nl : end;
        const char *s = p;
        p = nl ? nl + 1 : end;
        lineno++;
        if (e > s && e[-1] == '\r')
            e--;
        if (s == e || *s == '#')
            continue;
        const char *ts = s, *te = e;
        trim(&ts, &te);
        if (ts == te)
            continue;
        int rc = fn(ctx, name, lineno, s, e);
        if (rc != TM_OK)
            return rc;
    }
    return TM_OK;
}

struct lex_ctx {
    struct flt_lexset *ls;
    const struct flt_tables *tb;
    int nospace;
    float weight;
    const char *category; /* the default, added to the categories when first used */
};

static int lex_line(void *vctx, const char *name, size_t lineno, const char *s, const char *e)
{
    struct lex_ctx *c = vctx;
    struct flt_lexset *ls = c->ls;
    const char *field[FLT_LEX_NFIELDS][2];
    int nf = 0;
    const char *p = s;
    for (;;) {
        const char *tab = memchr(p, '\t', (size_t)(e - p));
        if (nf == FLT_LEX_NFIELDS) {
            tm_log_error("%s:%zu: more than four TAB-separated fields", name, lineno);
            return TM_ERR_FORMAT;
        }
        field[nf][0] = p;
        field[nf][1] = tab ? tab : e;
        trim(&field[nf][0], &field[nf][1]);
        nf++;
        if (!tab)
            break;
        p = tab + 1;
    }
    size_t n = (size_t)(field[0][1] - field[0][0]), stem_len = 0;
    int prefix = 0;
    const char *why = check_term(field[0][0], n, &stem_len, &prefix);
    if (why) {
        tm_log_error("%s:%zu: %s", name, lineno, why);
        return TM_ERR_FORMAT;
    }
    float weight = c->weight;
    if (nf > 1 && field[1][1] > field[1][0]) {
        char buf[64];
        size_t wl = (size_t)(field[1][1] - field[1][0]);
        char *endp = NULL;
        double w = 0;
        if (wl < sizeof(buf)) {
            memcpy(buf, field[1][0], wl);
            buf[wl] = '\0';
            w = strtod(buf, &endp);
        }
        if (wl >= sizeof(buf) || *endp || !isfinite(w) || w <= 0 || w > FLT_TOX_MAX_WEIGHT) {
            tm_log_error("%s:%zu: weight '%.*s' is not a number in (0, %g]", name, lineno, (int)wl,
                         field[1][0], FLT_TOX_MAX_WEIGHT);
            return TM_ERR_FORMAT;
        }
        weight = (float)w;
    }
    const char *cat = c->category;
    size_t cl = strlen(cat);
    if (nf > 2 && field[2][1] > field[2][0]) {
        cat = field[2][0];
        cl = (size_t)(field[2][1] - field[2][0]);
        if (!valid_category(cat, cl)) {
            tm_log_error("%s:%zu: category '%.*s' is not 1 to 32 of [a-z0-9_-]", name, lineno,
                         (int)cl, cat);
            return TM_ERR_FORMAT;
        }
    }
    uint8_t flags = 0;
    if (nf > 3) {
        const char *bad = NULL;
        size_t badlen = 0;
        why = parse_flags(field[3][0], (size_t)(field[3][1] - field[3][0]), &flags, &bad, &badlen);
        if (why) {
            char known[128] = "";
            for (size_t k = 0; k < sizeof(flt_flag_names) / sizeof(*flt_flag_names); k++)
                snprintf(known + strlen(known), sizeof(known) - strlen(known), "%s%s",
                         k ? ", " : "", flt_flag_names[k].name);
            tm_log_error("%s:%zu: %s '%.*s' (known: %s)", name, lineno, why, (int)badlen, bad,
                         known);
            return TM_ERR_FORMAT;
        }
    }
    int category = category_index(ls, cat, cl);
    if (category < 0) {
        tm_log_error("%s:%zu: more than %d categories", name, lineno, FLT_TOX_MAX_CATEGORIES);
        return TM_ERR_TOOBIG;
    }
    if (ls->nterms >= FLT_TOX_MAX_TERMS) {
        tm_log_error("%s:%zu: more than %u terms", name, lineno, FLT_TOX_MAX_TERMS);
        return TM_ERR_TOOBIG;
    }
    if (ls->nterms == ls->cap) {
        ls->cap = ls->cap ? ls->cap * 2 : 256;
        ls->terms = tm_xreallocarray(ls->terms, ls->cap, sizeof(*ls->terms));
    }
    struct flt_term *t = &ls->terms[ls->nterms++];
    memset(t, 0, sizeof(*t));
    t->text = tm_xstrndup(field[0][0], n);
    char origin[512];
    snprintf(origin, sizeof(origin), "%s:%zu", name, lineno);
    t->origin = tm_xstrdup(origin);
    t->stem_len = stem_len;
    t->weight = weight;
    t->category = (uint16_t)category;
    t->prefix = (uint8_t)prefix;
    t->nospace = (uint8_t)c->nospace;
    t->flags = flags;
    int ascii = 1;
    for (size_t i = 0; i < n; i++)
        ascii &= (unsigned char)t->text[i] < 0x80;
    unsigned first = c->tb->tok[(unsigned char)t->text[0]];
    if (c->nospace)
        t->group = FLT_G_NOSPACE;
    else if (!ascii)
        t->group = FLT_G_UTF;
    else if (first >= 1 && first <= FLT_TOK_NCLASS)
        t->group = FLT_G_FAST;
    else
        t->group = FLT_G_BYTE;
    t->obf = (uint8_t)(ls->obfuscation && t->group == FLT_G_FAST &&
                       flt_pat_obf_eligible(t->text, t->stem_len));
    return TM_OK;
}

int flt_lex_parse(struct flt_lexset *ls, const struct flt_tables *tb, const char *name,
                  const char *data, size_t len, const char *lang, double weight,
                  const char *category)
{
    const char *cat = category ? category : "general";
    struct lex_ctx c = {ls, tb, 0, weight > 0 ? (float)weight : 1.0f, cat};
    if (weight > FLT_TOX_MAX_WEIGHT || !isfinite(weight)) {
        tm_log_error("%s: default weight %g is not in (0, %g]", name, weight, FLT_TOX_MAX_WEIGHT);
        return TM_ERR_USAGE;
    }
    for (size_t k = 0; k < sizeof(flt_nospace_langs) / sizeof(*flt_nospace_langs); k++)
        c.nospace |= strcmp(lang, flt_nospace_langs[k]) == 0;
    if (!valid_category(cat, strlen(cat))) {
        tm_log_error("%s: default category '%s' is not 1 to 32 of [a-z0-9_-]", name, cat);
        return TM_ERR_USAGE;
    }
    return each_line(name, data, len, lex_line, &c);
}

static int allow_line(void *vctx, const char *name, size_t lineno, const char *s, const char *e)
{
    struct flt_lexset *ls = vctx;
    trim(&s, &e);
    if (memchr(s, '\t', (size_t)(e - s))) {
        tm_log_error("%s:%zu: allow-list lines take no TAB-separated fields", name, lineno);
        return TM_ERR_FORMAT;
    }
    size_t stem_len;
    int prefix;
    const char *why = check_term(s, (size_t)(e - s), &stem_len, &prefix);
    if (why) {
        tm_log_error("%s:%zu: %s", name, lineno, why);
        return TM_ERR_FORMAT;
    }
    if (ls->nallow >= FLT_TOX_MAX_TERMS) {
        tm_log_error("%s:%zu: more than %u allow phrases", name, lineno, FLT_TOX_MAX_TERMS);
        return TM_ERR_TOOBIG;
    }
    if (ls->nallow == ls->allowcap) {
        ls->allowcap = ls->allowcap ? ls->allowcap * 2 : 64;
        ls->allow = tm_xreallocarray(ls->allow, ls->allowcap, sizeof(*ls->allow));
    }
    ls->allow[ls->nallow++] = tm_xstrndup(s, (size_t)(e - s));
    return TM_OK;
}

int flt_lex_parse_allow(struct flt_lexset *ls, const char *name, const char *data, size_t len)
{
    return each_line(name, data, len, allow_line, ls);
}

void flt_lex_release(struct flt_lexset *ls)
{
    for (size_t i = 0; i < ls->nterms; i++) {
        free(ls->terms[i].text);
        free(ls->terms[i].origin);
    }
    free(ls->terms);
    for (unsigned k = 0; k < ls->ncats; k++)
        free(ls->cats[k]);
    free(ls->cats);
    for (size_t i = 0; i < ls->nallow; i++)
        free(ls->allow[i]);
    free(ls->allow);
    memset(ls, 0, sizeof(*ls));
}
