/* flt_code.c: comments and string literals of source code, for the toxicity scan (which reads
 * them and not the identifiers) and the license-only rule.
 *
 * A small table-driven lexer, not a parser: per language family, its line-comment openers,
 * block-comment pairs and string quotes. It errs towards finding too little rather than
 * misreading code as comments: an unterminated block comment or string runs to the end of the
 * text (or line, for single-line strings), as a compiler would read it. */
#include <stdlib.h>
#include <string.h>

#include "flt_internal.h"
#include "../core/tm_mem.h"

struct lexer {
    const char *line[3];        /* line-comment openers */
    const char *block[2][2];    /* block-comment open/close pairs */
    const char *quotes;         /* single-line string quotes */
    const char *long_quotes[2]; /* multi-line string delimiters ("\"\"\"", "`") */
};

static const struct lexer lex_c = {{"//"}, {{"/*", "*/"}}, "\"'", {"`"}};
static const struct lexer lex_hash = {{"#"}, {{0}}, "\"'", {"\"\"\"", "'''"}};
static const struct lexer lex_sql = {{"--"}, {{"/*", "*/"}}, "'\"", {0}};
static const struct lexer lex_lua = {{"--"}, {{"--[[", "]]"}}, "\"'", {"[["}};
static const struct lexer lex_haskell = {{"--"}, {{"{-", "-}"}}, "\"", {0}};
static const struct lexer lex_lisp = {{";"}, {{"#|", "|#"}}, "\"", {0}};
static const struct lexer lex_percent = {{"%"}, {{0}}, "'\"", {0}};
static const struct lexer lex_fortran = {{"!"}, {{0}}, "'\"", {0}};
static const struct lexer lex_markup = {{0}, {{"<!--", "-->"}}, "", {0}};
static const struct lexer lex_generic = {{"//", "#"}, {{"/*", "*/"}}, "\"'", {"\"\"\"", "`"}};

/* Languages whose text is mostly prose: scanned whole. */
static const char *const prose_langs[] = {"markdown", "tex", "latex",    "rst",
                                          "text",     "org", "asciidoc", "txt"};

static const struct {
    const char *lang;
    const struct lexer *lex;
} lang_lexers[] = {
    {"c", &lex_c},
    {"cpp", &lex_c},
    {"cuda", &lex_c},
    {"java", &lex_c},
    {"javascript", &lex_c},
    {"typescript", &lex_c},
    {"go", &lex_c},
    {"rust", &lex_c},
    {"csharp", &lex_c},
    {"swift", &lex_c},
    {"kotlin", &lex_c},
    {"scala", &lex_c},
    {"groovy", &lex_c},
    {"objective-c", &lex_c},
    {"php", &lex_c},
    {"css", &lex_c},
    {"dart", &lex_c},
    {"zig", &lex_c},
    {"python", &lex_hash},
    {"cython", &lex_hash},
    {"shell", &lex_hash},
    {"fish", &lex_hash},
    {"ruby", &lex_hash},
    {"perl", &lex_hash},
    {"r", &lex_hash},
    {"make", &lex_hash},
    {"cmake", &lex_hash},
    {"yaml", &lex_hash},
    {"toml", &lex_hash},
    {"dockerfile", &lex_hash},
    {"julia", &lex_hash},
    {"powershell", &lex_hash},
    {"nim", &lex_hash},
    {"sql", &lex_sql},
    {"lua", &lex_lua},
    {"haskell", &lex_haskell},
    {"lisp", &lex_lisp},
    {"scheme", &lex_lisp},
    {"clojure", &lex_lisp},
    {"emacs-lisp", &lex_lisp},
    {"matlab", &lex_percent},
    {"erlang", &lex_percent},
    {"fortran", &lex_fortran},
    {"html", &lex_markup},
    {"xml", &lex_markup},
};

void flt_regions_release(struct flt_regions *r)
{
    free(r->v);
    memset(r, 0, sizeof(*r));
}

static void region_add(struct flt_regions *r, size_t start, size_t end, int kind)
{
    if (end <= start)
        return;
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 32;
        r->v = tm_xreallocarray(r->v, r->cap, sizeof(*r->v));
    }
    r->v[r->n].start = start;
    r->v[r->n].end = end;
    r->v[r->n].kind = kind;
    r->n++;
}

static int starts(const char *t, size_t n, size_t i, const char *s)
{
    size_t k = strlen(s);
    return k && i + k <= n && memcmp(t + i, s, k) == 0;
}

static const char *find(const char *t, size_t n, size_t i, const char *s)
{
    size_t k = strlen(s);
    if (i >= n)
        return NULL;
    return memmem(t + i, n - i, s, k);
}

int flt_code_regions(const char *lang, const char *text, size_t n, struct flt_regions *r)
{
    r->n = 0;
    const struct lexer *lx = &lex_generic;
    if (lang) {
        for (size_t k = 0; k < sizeof(prose_langs) / sizeof(prose_langs[0]); k++)
            if (strcmp(lang, prose_langs[k]) == 0)
                return 1;
        for (size_t k = 0; k < sizeof(lang_lexers) / sizeof(lang_lexers[0]); k++)
            if (strcmp(lang, lang_lexers[k].lang) == 0) {
                lx = lang_lexers[k].lex;
                break;
            }
    }
    /* Bytes that can open a comment or string in this language: the loop skips the rest. */
    unsigned char first[256] = {0};
    for (int l = 0; l < 3 && lx->line[l]; l++)
        first[(unsigned char)lx->line[l][0]] = 1;
    for (int b = 0; b < 2 && lx->block[b][0]; b++)
        first[(unsigned char)lx->block[b][0][0]] = 1;
    for (int q = 0; q < 2 && lx->long_quotes[q]; q++)
        first[(unsigned char)lx->long_quotes[q][0]] = 1;
    for (const char *q = lx->quotes; *q; q++)
        first[(unsigned char)*q] = 1;
    size_t i = 0;
    while (i < n) {
        while (i < n && !first[(unsigned char)text[i]])
            i++;
        if (i >= n)
            break;
        char c = text[i];
        int matched = 0;
        for (int b = 0; b < 2 && lx->block[b][0]; b++) {
            if (starts(text, n, i, lx->block[b][0])) {
                size_t o = strlen(lx->block[b][0]);
                const char *e = find(text, n, i + o, lx->block[b][1]);
                size_t end = e ? (size_t)(e - text) + strlen(lx->block[b][1]) : n;
                region_add(r, i + o, e ? (size_t)(e - text) : n, FLT_REGION_COMMENT);
                i = end;
                matched = 1;
                break;
            }
        }
        if (matched)
            continue;
        for (int l = 0; l < 3 && lx->line[l]; l++) {
            if (starts(text, n, i, lx->line[l])) {
                size_t o = strlen(lx->line[l]);
                const char *e = find(text, n, i, "\n");
                size_t end = e ? (size_t)(e - text) : n;
                region_add(r, i + o, end, FLT_REGION_COMMENT);
                i = end;
                matched = 1;
                break;
            }
        }
        if (matched)
            continue;
        for (int q = 0; q < 2 && lx->long_quotes[q]; q++) {
            if (starts(text, n, i, lx->long_quotes[q])) {
                size_t o = strlen(lx->long_quotes[q]);
                const char *e = find(text, n, i + o, lx->long_quotes[q]);
                region_add(r, i + o, e ? (size_t)(e - text) : n, FLT_REGION_STRING);
                i = e ? (size_t)(e - text) + o : n;
                matched = 1;
                break;
            }
        }
        if (matched)
            continue;
        if (c && strchr(lx->quotes, c)) {
            size_t j = i + 1;
            while (j < n && text[j] != c && text[j] != '\n')
                j += text[j] == '\\' && j + 1 < n && text[j + 1] != '\n' ? 2 : 1;
            if (j > n)
                j = n;
            region_add(r, i + 1, j, FLT_REGION_STRING);
            i = j < n && text[j] == c ? j + 1 : j;
            continue;
        }
        i++;
    }
    return 0;
}
