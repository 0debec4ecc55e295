/* ing_roff: man pages (man and mdoc macros) to plain text, line by line.
 *
 * Not a roff interpreter: requests that only lay out the page are dropped, macro definitions
 * and conditional blocks are skipped whole, and the macros that carry text keep it, joined the
 * way nroff would print it. Escapes that name characters become those characters. Every scan is
 * bounded by the line, so malformed input can only lose text. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../core/tm_err.h"
#include "ing_internal.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Arguments a request line may have; roff's classic limit is 9, groff has none. Extra ones are
 * dropped, which only matters for absurd lines. */
#define ROFF_MAX_ARGS 32
/* Longest escape name we look up (\[name]); glyph names are short, \[u1F600_1F3FB] is 13. */
#define ROFF_NAME_MAX 32
/* The .Nm name kept for bare ".Nm" in mdoc pages; program names are short. */
#define ROFF_NM_MAX 64

/* ---- Named characters -------------------------------------------------------------------- */

/* groff_char(7) names that man pages use, as \(xx, \[xx] or \*(xx. */
static const struct {
    const char *name, *text;
} glyphs[] = {
    {"em", "\u2014"}, {"en", "\u2013"}, {"hy", "-"},      {"mi", "-"},      {"bu", "\u2022"},
    {"aq", "'"},      {"dq", "\""},     {"lq", "\u201c"}, {"rq", "\u201d"}, {"oq", "\u2018"},
    {"cq", "\u2019"}, {"Bq", "\u201e"}, {"bq", "\u201a"}, {"Fo", "\u00ab"}, {"Fc", "\u00bb"},
    {"fo", "\u2039"}, {"fc", "\u203a"}, {"co", "\u00a9"}, {"rg", "\u00ae"}, {"tm", "\u2122"},
    {"de", "\u00b0"}, {"sc", "\u00a7"}, {"ps", "\u00b6"}, {"ct", "\u00a2"}, {"Po", "\u00a3"},
    {"Ye", "\u00a5"}, {"Eu", "\u20ac"}, {"eu", "\u20ac"}, {"ga", "`"},      {"aa", "\u00b4"},
    {"ti", "~"},      {"ha", "^"},      {"rs", "\\"},     {"sl", "/"},      {"ul", "_"},
    {"ru", "_"},      {"ba", "|"},      {"or", "|"},      {"pl", "+"},      {"eq", "="},
    {"mu", "\u00d7"}, {"di", "\u00f7"}, {"+-", "\u00b1"}, {"<=", "\u2264"}, {">=", "\u2265"},
    {"!=", "\u2260"}, {"==", "\u2261"}, {"~=", "\u2245"}, {"~~", "\u2248"}, {"->", "\u2192"},
    {"<-", "\u2190"}, {"<>", "\u2194"}, {"ua", "\u2191"}, {"da", "\u2193"}, {"rA", "\u21d2"},
    {"lA", "\u21d0"}, {"hA", "\u21d4"}, {"if", "\u221e"}, {"pd", "\u2202"}, {"sr", "\u221a"},
    {"dg", "\u2020"}, {"dd", "\u2021"}, {"Do", "$"},      {"at", "@"},      {"sh", "#"},
    {"lB", "["},      {"rB", "]"},      {"lC", "{"},      {"rC", "}"},      {"la", "\u27e8"},
    {"ra", "\u27e9"}, {"fm", "\u2032"}, {"sd", "\u2033"}, {"fi", "fi"},     {"fl", "fl"},
    {"ff", "ff"},     {"Fi", "ffi"},    {"Fl", "ffl"},    {"12", "\u00bd"}, {"14", "\u00bc"},
    {"34", "\u00be"}, {"S1", "\u00b9"}, {"S2", "\u00b2"}, {"S3", "\u00b3"}, {"es", "\u2205"},
    {"mo", "\u2208"}, {"AN", "\u2227"}, {"OR", "\u2228"}, {"no", "\u00ac"}, {"tf", "\u2234"},
    {"fa", "\u2200"}, {"te", "\u2203"}, {"ca", "\u2229"}, {"cu", "\u222a"}, {"sb", "\u2282"},
    {"sp", "\u2283"}, {"is", "\u222b"}, {"gr", "\u2207"}, {"pt", "\u221d"}, {"ss", "\u00df"},
    {"'a", "\u00e1"}, {"'e", "\u00e9"}, {"'i", "\u00ed"}, {"'o", "\u00f3"}, {"'u", "\u00fa"},
    {"`a", "\u00e0"}, {"`e", "\u00e8"}, {":a", "\u00e4"}, {":o", "\u00f6"}, {":u", "\u00fc"},
    {":A", "\u00c4"}, {":O", "\u00d6"}, {":U", "\u00dc"}, {"~n", "\u00f1"}, {",c", "\u00e7"},
    {"*a", "\u03b1"}, {"*b", "\u03b2"}, {"*g", "\u03b3"}, {"*d", "\u03b4"}, {"*l", "\u03bb"},
    {"*m", "\u03bc"}, {"*p", "\u03c0"}, {"*s", "\u03c3"}, {"ci", "\u25cb"}, {"sq", "\u25a1"},
};

/* Strings (\*x) that pages use without defining them, or that the usual preambles (pod2man's)
 * define; in nroff output pod2man's C` and C' are plain double quotes. */
static const struct {
    const char *name, *text;
} strings[] = {
    {"R", "\u00ae"},   {"Tm", "\u2122"}, {"Aq", "'"},      {"C+", "C++"},
    {"C`", "\""},      {"C'", "\""},     {"PI", "pi"},     {"L\"", "\u201c"},
    {"R\"", "\u201d"}, {"Lq", "\u201c"}, {"Rq", "\u201d"}, {"--", "\u2014"},
};

static const char *glyph_text(const char *name, size_t len)
{
    for (size_t i = 0; i < ARRAY_LEN(glyphs); i++)
        if (strlen(glyphs[i].name) == len && memcmp(glyphs[i].name, name, len) == 0)
            return glyphs[i].text;
    return NULL;
}

static void put_glyph(struct ing_out *w, const char *name, size_t len)
{
    const char *g = glyph_text(name, len);
    if (g) {
        ing_out_str(w, g);
        return;
    }
    /* \[u00E9] and \[char233]: a code point by number. */
    if (len >= 2 && name[0] == 'u') {
        uint32_t cp = 0;
        size_t i = 1;
        for (; i < len && i < 7; i++) {
            char c = name[i];
            unsigned d = c >= '0' && c <= '9'   ? (unsigned)(c - '0')
                         : c >= 'A' && c <= 'F' ? (unsigned)(c - 'A' + 10)
                         : c >= 'a' && c <= 'f' ? (unsigned)(c - 'a' + 10)
                                                : 16;
            if (d == 16)
                break;
            cp = cp * 16 + d;
        }
        if (i > 1 && (i == len || name[i] == '_'))
            ing_out_cp(w, cp);
        return;
    }
    if (len > 4 && memcmp(name, "char", 4) == 0) {
        uint32_t cp = 0;
        for (size_t i = 4; i < len && i < 11 && name[i] >= '0' && name[i] <= '9'; i++)
            cp = cp * 10 + (uint32_t)(name[i] - '0');
        ing_out_cp(w, cp);
    }
}

static void put_string(struct ing_out *w, const char *name, size_t len)
{
    for (size_t i = 0; i < ARRAY_LEN(strings); i++)
        if (strlen(strings[i].name) == len && memcmp(strings[i].name, name, len) == 0) {
            ing_out_str(w, strings[i].text);
            return;
        }
    const char *g = glyph_text(name, len); /* \*(lq and friends */
    if (g)
        ing_out_str(w, g);
}

/* ---- Escapes ----------------------------------------------------------------------------- */

/* Reads an escape's name argument at s[*i]: "(xx", "[name]" or one character. Returns its start
 * and sets *len; *i moves past it. Clipped at n. */
static const char *escape_name(const char *s, size_t n, size_t *i, size_t *len)
{
    if (*i >= n) {
        *len = 0;
        return s + n;
    }
    if (s[*i] == '(') {
        size_t st = *i + 1;
        size_t e = st + 2 <= n ? st + 2 : n;
        *i = e;
        *len = e - st;
        return s + st;
    }
    if (s[*i] == '[') {
        size_t st = *i + 1, e = st;
        while (e < n && s[e] != ']')
            e++;
        *i = e < n ? e + 1 : n;
        *len = e - st;
        return s + st;
    }
    *len = 1;
    return s + (*i)++;
}

/* Skips a delimited argument ('...' or any delimiter) at s[*i]. */
static void skip_delimited(const char *s, size_t n, size_t *i)
{
    if (*i >= n)
        return;
    char d = s[(*i)++];
    while (*i < n && s[*i] != d)
        (*i)++;
    if (*i < n)
        (*i)++;
}

/* Escapes that take a delimited argument and print nothing we keep (motions, widths, drawing,
 * overstrikes, device controls). */
static const char delimited_escapes[] = "hvwoLlDXbZxSHNRAB";
/* Escapes that take a name argument and print nothing (fonts, registers, colours, ...). */
static const char named_escapes[] = "fFnmMgkVY$";
/* Escapes that print nothing at all. */
static const char silent_escapes[] = "&|^%:)!{}acdprutzOj/,";

/* Emits text s[0..n) of one line, escapes interpreted. `fill`: spaces collapse. Returns 1 when
 * the line asks to be joined to the next without a space (\c, or a trailing backslash). */
static int put_text(struct ing_out *w, const char *s, size_t n, int fill)
{
    size_t i = 0;
    while (i < n && !w->rc) {
        char c = s[i];
        if (c == ' ' || c == '\t') {
            if (fill)
                w->sp = 1;
            else
                ing_out_put(w, c == '\t' ? "    " : " ", c == '\t' ? 4 : 1);
            i++;
            continue;
        }
        if (c != '\\') {
            size_t j = i + 1;
            while (j < n && s[j] != '\\' && s[j] != ' ' && s[j] != '\t')
                j++;
            ing_out_put(w, s + i, j - i);
            i = j;
            continue;
        }
        if (i + 1 >= n)
            return 1; /* a backslash ending the line continues it */
        char e = s[i + 1];
        i += 2;
        size_t len;
        const char *name;
        if (e == '"' || e == '#')
            return 0; /* comment to the end of the line */
        if (e == 'c')
            return 1;
        if (e == '(' || e == '[') {
            i--;
            name = escape_name(s, n, &i, &len);
            put_glyph(w, name, len);
        } else if (e == 'C') {
            if (i < n) {
                size_t st = i + 1;
                skip_delimited(s, n, &i);
                if (i > st && i - 1 > st)
                    put_glyph(w, s + st, i - 1 - st);
            }
        } else if (e == '*') {
            name = escape_name(s, n, &i, &len);
            put_string(w, name, len);
        } else if (e == 's') {
            /* \s+2 \s-1 \s0 \s12 \s(12 \s[12] \s'12' */
            if (i < n && (s[i] == '+' || s[i] == '-'))
                i++;
            if (i < n && s[i] == '\'') {
                skip_delimited(s, n, &i);
            } else if (i < n && (s[i] == '(' || s[i] == '[')) {
                escape_name(s, n, &i, &len);
            } else if (i < n && s[i] >= '0' && s[i] <= '9') {
                i++;
                if (s[i - 1] >= '1' && s[i - 1] <= '3' && i < n && s[i] >= '0' && s[i] <= '9')
                    i++;
            }
        } else if (e == 'n') {
            if (i < n && (s[i] == '+' || s[i] == '-'))
                i++;
            escape_name(s, n, &i, &len);
        } else if (strchr(named_escapes, e)) {
            escape_name(s, n, &i, &len);
        } else if (strchr(delimited_escapes, e)) {
            skip_delimited(s, n, &i);
        } else if (strchr(silent_escapes, e)) {
            /* nothing */
        } else if (e == 'e' || e == 'E' || e == '\\') {
            ing_out_put(w, "\\", 1);
        } else if (e == ' ' || e == '0' || e == '~') {
            ing_out_put(w, " ", 1); /* unpaddable space: kept even where spaces collapse */
        } else if (e == 't') {
            w->sp = 1;
        } else {
            ing_out_put(w, &s[i - 1], 1); /* \- \. \' \` and unknown escapes print the character */
        }
    }
    return 0;
}

/* ---- Requests ---------------------------------------------------------------------------- */

struct roff {
    struct ing_out w;
    int nofill;             /* .nf / .EX: lines kept as they are */
    int tag_pending;        /* .TP: the next text line is a tag on its own line */
    int heading_next;       /* .SH without arguments: the next text line is the heading */
    int skip_dots;          /* inside .de / .ig: skip to ".." */
    int skip_braces;        /* depth of a skipped conditional block \{ ... \} */
    const char *skip_until; /* inside .EQ / .PS: skip to this request */
    int table;              /* 0, 1: .TS format lines, 2: .TS data */
    char tab;               /* tbl's cell separator */
    int tblock;             /* inside a tbl text block T{ ... T} */
    size_t heading_end;     /* out->len just after a heading: a paragraph break there is a line */
    char nm[ROFF_NM_MAX];
    size_t nm_len;
};

struct args {
    const char *p[ROFF_MAX_ARGS];
    size_t len[ROFF_MAX_ARGS];
    int n;
};

/* Splits a request's arguments: blanks separate, double quotes group ("" is a quote inside),
 * \" starts a comment. */
static void split_args(const char *s, size_t n, struct args *a)
{
    size_t i = 0;
    a->n = 0;
    while (i < n && a->n < ROFF_MAX_ARGS) {
        while (i < n && (s[i] == ' ' || s[i] == '\t'))
            i++;
        if (i >= n || (s[i] == '\\' && i + 1 < n && s[i + 1] == '"'))
            break;
        size_t st;
        if (s[i] == '"') {
            st = ++i;
            while (i < n && !(s[i] == '"' && !(i + 1 < n && s[i + 1] == '"'))) {
                if (s[i] == '"')
                    i++; /* "" stands for one quote; kept doubled, put_args halves it */
                i++;
            }
            a->p[a->n] = s + st;
            a->len[a->n++] = i - st;
            if (i < n)
                i++;
        } else {
            st = i;
            while (i < n && s[i] != ' ' && s[i] != '\t')
                i++;
            a->p[a->n] = s + st;
            a->len[a->n++] = i - st;
        }
    }
}

/* Emits one argument, turning a quoted argument's "" back into ". */
static void put_arg(struct roff *r, const char *p, size_t len)
{
    size_t st = 0;
    for (size_t i = 0; i + 1 < len; i++) {
        if (p[i] == '"' && p[i + 1] == '"') {
            put_text(&r->w, p + st, i + 1 - st, 1);
            st = i + 2;
            i++;
        }
    }
    put_text(&r->w, p + st, len - st, 1);
}

/* The arguments, separated by a space (`sep`) or joined (.BR and friends alternate fonts
 * between arguments without a space). */
static void put_args(struct roff *r, const struct args *a, int first, int sep)
{
    for (int k = first; k < a->n; k++) {
        if (sep && k > first)
            r->w.sp = 1;
        put_arg(r, a->p[k], a->len[k]);
    }
}

/* A line of output ended: in fill mode the next one joins with a space. */
static void end_text_line(struct roff *r)
{
    if (r->tag_pending || r->heading_next) {
        ing_out_break(&r->w, 1);
        if (r->heading_next)
            r->heading_end = r->w.out->len;
        r->tag_pending = 0;
        r->heading_next = 0;
    } else if (r->nofill) {
        r->w.nl++;
    } else {
        r->w.sp = 1;
    }
}

static int is_mdoc_punct(const char *p, size_t len)
{
    return len == 1 && strchr(".,:;)]?!", p[0]) != NULL;
}

/* mdoc macros that may appear inside other mdoc lines, and what they put around their
 * arguments. */
static const struct {
    const char *name;
    const char *open, *close; /* enclosure, to the end of the line */
    int dash;                 /* arguments get a leading '-' (Fl) */
} mdoc_inline[] = {
    {"Fl", "", "", 1},
    {"Ar", "", "", 0},
    {"Cm", "", "", 0},
    {"Op", "[", "]", 0},
    {"Oo", "[", "", 0},
    {"Oc", "", "]", 0},
    {"Dq", "\u201c", "\u201d", 0},
    {"Sq", "\u2018", "\u2019", 0},
    {"Ql", "\u2018", "\u2019", 0},
    {"Pq", "(", ")", 0},
    {"Bq", "[", "]", 0},
    {"Em", "", "", 0},
    {"Sy", "", "", 0},
    {"Pa", "", "", 0},
    {"Ev", "", "", 0},
    {"Va", "", "", 0},
    {"Dv", "", "", 0},
    {"Ic", "", "", 0},
    {"Li", "", "", 0},
    {"Fa", "", "", 0},
    {"Fn", "", "", 0},
    {"Ft", "", "", 0},
    {"Er", "", "", 0},
    {"Ad", "", "", 0},
    {"An", "", "", 0},
    {"Lk", "", "", 0},
    {"Mt", "", "", 0},
    {"Ms", "", "", 0},
    {"No", "", "", 0},
    {"Nm", "", "", 0},
    {"Xr", "", "", 0},
    {"Ns", "", "", 0},
    {"Nd", "\u2014 ", "", 0},
    {"Tn", "", "", 0},
    {"Ux", "UNIX", "", 0},
    {"Aq", "\u27e8", "\u27e9", 0},
};

static int mdoc_find(const char *p, size_t len)
{
    for (size_t i = 0; i < ARRAY_LEN(mdoc_inline); i++)
        if (len == 2 && memcmp(mdoc_inline[i].name, p, 2) == 0)
            return (int)i;
    return -1;
}

/* One mdoc line whose first macro is mdoc_inline[m]: arguments are text, except the names of
 * other inline macros, which switch the decoration. Closers pile up and end with the line. */
static void mdoc_line(struct roff *r, int m, const struct args *a)
{
    const char *closers[ROFF_MAX_ARGS];
    int nclose = 0, dash = 0, nospace = 0, xr = 0, nm_args = 0, k = 0;
    for (;;) {
        const char *open = mdoc_inline[m].open;
        if (*open) {
            ing_out_str(&r->w, open);
            nospace = 1;
        }
        if (*mdoc_inline[m].close && nclose < ROFF_MAX_ARGS)
            closers[nclose++] = mdoc_inline[m].close;
        dash = mdoc_inline[m].dash;
        xr = strcmp(mdoc_inline[m].name, "Xr") == 0;
        if (strcmp(mdoc_inline[m].name, "Ns") == 0) {
            nospace = 1;
            r->w.sp = 0;
        }
        int is_nm = strcmp(mdoc_inline[m].name, "Nm") == 0;
        nm_args = 0;
        for (; k < a->n; k++) {
            int next = mdoc_find(a->p[k], a->len[k]);
            if (next >= 0) {
                m = next;
                break;
            }
            int punct = is_mdoc_punct(a->p[k], a->len[k]);
            if (!(nospace || punct || (xr && nm_args == 1)))
                r->w.sp = 1;
            nospace = 0;
            if (dash && !punct)
                ing_out_put(&r->w, "-", 1);
            if (xr && nm_args == 1) {
                ing_out_put(&r->w, "(", 1);
                put_arg(r, a->p[k], a->len[k]);
                ing_out_put(&r->w, ")", 1);
            } else {
                put_arg(r, a->p[k], a->len[k]);
            }
            if (is_nm && nm_args == 0 && r->nm_len == 0) {
                r->nm_len = a->len[k] < ROFF_NM_MAX ? a->len[k] : ROFF_NM_MAX;
                memcpy(r->nm, a->p[k], r->nm_len);
            }
            nm_args++;
        }
        if (is_nm && nm_args == 0 && r->nm_len) {
            r->w.sp = !nospace;
            put_text(&r->w, r->nm, r->nm_len, 1);
        }
        if (dash && nm_args == 0)
            ing_out_put(&r->w, "-", 1); /* a bare .Fl is a lone dash */
        if (k >= a->n)
            break;
        k++;
        if (!nospace)
            r->w.sp = 1;
    }
    while (nclose > 0)
        ing_out_str(&r->w, closers[--nclose]);
}

enum req {
    R_TITLE,   /* .TH name section ... */
    R_HEADING, /* .SH .SS .Sh .Ss */
    R_SPACED,  /* .B .I .SM .SB: arguments with spaces */
    R_JOINED,  /* .BR .IR ...: arguments joined */
    R_PARA,    /* .PP .LP .P .HP .sp .Pp .Lp */
    R_TP,      /* .TP: tag line, then the body */
    R_IP,      /* .IP tag */
    R_BREAK,   /* .br .RS .RE .in .Bl .El .Bd .Ed ... */
    R_NOFILL,  /* .nf .EX */
    R_FILL,    /* .fi .EE */
    R_DEFINE,  /* .de .am .ig: skip to ".." */
    R_COND,    /* .if .ie .el .while: skipped, with any \{ block */
    R_TS,      /* .TS table start */
    R_TE,      /* .TE */
    R_TFMT,    /* .T&: new format lines follow */
    R_EQ,      /* .EQ eqn block, skipped to .EN */
    R_PS,      /* .PS pic block, skipped to .PE */
    R_IT,      /* mdoc .It: a list item */
    R_DT,      /* mdoc .Dt: title */
};

static const struct {
    const char *name;
    enum req req;
} requests[] = {
    {"TH", R_TITLE},
    {"Dt", R_DT},
    {"SH", R_HEADING},
    {"SS", R_HEADING},
    {"Sh", R_HEADING},
    {"Ss", R_HEADING},
    {"B", R_SPACED},
    {"I", R_SPACED},
    {"SM", R_SPACED},
    {"SB", R_SPACED},
    {"BR", R_JOINED},
    {"BI", R_JOINED},
    {"IB", R_JOINED},
    {"IR", R_JOINED},
    {"RB", R_JOINED},
    {"RI", R_JOINED},
    {"PP", R_PARA},
    {"LP", R_PARA},
    {"P", R_PARA},
    {"HP", R_PARA},
    {"sp", R_PARA},
    {"Pp", R_PARA},
    {"Lp", R_PARA},
    {"TP", R_TP},
    {"TQ", R_TP},
    {"IP", R_IP},
    {"br", R_BREAK},
    {"RS", R_BREAK},
    {"RE", R_BREAK},
    {"in", R_BREAK},
    {"ti", R_BREAK},
    {"Bl", R_BREAK},
    {"El", R_BREAK},
    {"Bd", R_BREAK},
    {"Ed", R_BREAK},
    {"SY", R_BREAK},
    {"YS", R_BREAK},
    {"nf", R_NOFILL},
    {"EX", R_NOFILL},
    {"fi", R_FILL},
    {"EE", R_FILL},
    {"de", R_DEFINE},
    {"de1", R_DEFINE},
    {"am", R_DEFINE},
    {"ig", R_DEFINE},
    {"if", R_COND},
    {"ie", R_COND},
    {"el", R_COND},
    {"while", R_COND},
    {"TS", R_TS},
    {"TE", R_TE},
    {"EQ", R_EQ},
    {"PS", R_PS},
    /* pod2man's preamble macros (their definitions are skipped with every .de). */
    {"Vb", R_NOFILL},
    {"Ve", R_FILL},
    {"Sp", R_PARA},
    {"Ip", R_IP},
    {"It", R_IT},
    {"T&", R_TFMT},
};

/* Net \{ minus \} on a line. */
static int brace_delta(const char *s, size_t n)
{
    int d = 0;
    for (size_t i = 0; i + 1 < n; i++) {
        if (s[i] == '\\' && (s[i + 1] == '{' || s[i + 1] == '}')) {
            d += s[i + 1] == '{' ? 1 : -1;
            i++;
        } else if (s[i] == '\\') {
            i++;
        }
    }
    return d;
}

/* A paragraph break, except right after a heading, whose text follows on the next line. */
static void para(struct roff *r)
{
    ing_out_break(&r->w, r->w.out->len == r->heading_end ? 1 : 2);
}

static void request(struct roff *r, const char *name, size_t nlen, const char *rest, size_t rlen)
{
    struct args a;
    int m = mdoc_find(name, nlen);
    if (m >= 0) {
        split_args(rest, rlen, &a);
        mdoc_line(r, m, &a);
        end_text_line(r);
        return;
    }
    size_t q = 0;
    while (q < ARRAY_LEN(requests) &&
           !(strlen(requests[q].name) == nlen && memcmp(requests[q].name, name, nlen) == 0))
        q++;
    if (q == ARRAY_LEN(requests))
        return; /* layout requests and unknown macros print nothing */
    switch (requests[q].req) {
    case R_TITLE:
    case R_DT:
        split_args(rest, rlen, &a);
        if (a.n > 0) {
            put_arg(r, a.p[0], a.len[0]);
            if (a.n > 1) {
                ing_out_put(&r->w, "(", 1);
                put_arg(r, a.p[1], a.len[1]);
                ing_out_put(&r->w, ")", 1);
            }
        }
        ing_out_break(&r->w, 2);
        break;
    case R_HEADING:
        split_args(rest, rlen, &a);
        ing_out_break(&r->w, 2);
        if (a.n == 0) {
            r->heading_next = 1;
            break;
        }
        put_args(r, &a, 0, 1);
        ing_out_break(&r->w, 1);
        r->heading_end = r->w.out->len;
        break;
    case R_SPACED:
    case R_JOINED:
        split_args(rest, rlen, &a);
        if (a.n == 0)
            break; /* applies to the next line, which prints as text anyway */
        put_args(r, &a, 0, requests[q].req == R_SPACED);
        end_text_line(r);
        break;
    case R_PARA:
        para(r);
        break;
    case R_TP:
        para(r);
        r->tag_pending = 1;
        break;
    case R_IP:
        split_args(rest, rlen, &a);
        para(r);
        if (a.n > 0 && a.len[0] > 0) {
            put_arg(r, a.p[0], a.len[0]);
            ing_out_break(&r->w, 1);
        }
        break;
    case R_IT:
        split_args(rest, rlen, &a);
        ing_out_break(&r->w, 1);
        if (a.n > 0) {
            m = mdoc_find(a.p[0], a.len[0]);
            if (m >= 0) {
                struct args b = a;
                memmove(b.p, b.p + 1, (size_t)(b.n - 1) * sizeof b.p[0]);
                memmove(b.len, b.len + 1, (size_t)(b.n - 1) * sizeof b.len[0]);
                b.n--;
                mdoc_line(r, m, &b);
            } else {
                put_args(r, &a, 0, 1);
            }
            ing_out_break(&r->w, 1);
        }
        break;
    case R_BREAK:
        ing_out_break(&r->w, 1);
        break;
    case R_NOFILL:
        r->nofill = 1;
        ing_out_break(&r->w, 1);
        break;
    case R_FILL:
        r->nofill = 0;
        ing_out_break(&r->w, 1);
        break;
    case R_DEFINE:
        r->skip_dots = 1;
        break;
    case R_COND:
        r->skip_braces = brace_delta(rest, rlen);
        if (r->skip_braces < 0)
            r->skip_braces = 0;
        break;
    case R_TS:
        r->table = 1;
        r->tab = '\t';
        ing_out_break(&r->w, 1);
        break;
    case R_TE:
        r->table = 0;
        ing_out_break(&r->w, 1);
        break;
    case R_TFMT:
        if (r->table)
            r->table = 1;
        break;
    case R_EQ:
        r->skip_until = "EN";
        break;
    case R_PS:
        r->skip_until = "PE";
        break;
    }
}

/* A tbl format section: an options line ending in ';' ("tab(@);" sets the separator), then
 * format lines up to one ending in '.'. */
static void table_format_line(struct roff *r, const char *s, size_t n)
{
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    if (n > 0 && s[n - 1] == ';') {
        const char *t = memmem(s, n, "tab(", 4);
        if (t && (size_t)(t - s) + 5 < n)
            r->tab = t[4];
        return;
    }
    if (n > 0 && s[n - 1] == '.')
        r->table = 2;
}

/* A tbl data row: cells separated by r->tab, rules ("_", "=") dropped. A cell "T{" opens a
 * text block whose lines are plain text up to a line starting "T}", after which the row goes
 * on. */
static void table_row(struct roff *r, const char *s, size_t n)
{
    size_t i = 0;
    if (r->tblock) {
        if (!(n >= 2 && s[0] == 'T' && s[1] == '}')) {
            r->w.sp = 1;
            put_text(&r->w, s, n, 1);
            r->w.sp = 1;
            return;
        }
        r->tblock = 0;
        i = 2;
        if (i >= n) {
            ing_out_break(&r->w, 1);
            return;
        }
        if (s[i] == r->tab)
            i++;
    } else if (n == 1 && (s[0] == '_' || s[0] == '=')) {
        return;
    }
    while (i <= n) {
        size_t j = i;
        while (j < n && s[j] != r->tab)
            j++;
        size_t cl = j - i;
        if (cl >= 2 && s[j - 2] == 'T' && s[j - 1] == '{' && j == n) {
            r->tblock = 1;
            cl -= 2;
        }
        r->w.sp = 1;
        put_text(&r->w, s + i, cl, 1);
        i = j + 1;
    }
    if (r->tblock)
        r->w.sp = 1;
    else
        ing_out_break(&r->w, 1);
}

static void line(struct roff *r, const char *s, size_t n)
{
    if (n > 0 && s[n - 1] == '\r')
        n--;
    int control = n > 0 && (s[0] == '.' || s[0] == '\'');
    size_t i = 1, ns, ne;
    if (control) {
        while (i < n && (s[i] == ' ' || s[i] == '\t'))
            i++;
        ns = i;
        while (i < n && s[i] != ' ' && s[i] != '\t')
            i++;
        ne = i;
    } else {
        ns = ne = 0;
    }

    if (r->skip_dots) {
        if (control && ne - ns >= 1 && s[ns] == '.')
            r->skip_dots = 0;
        return;
    }
    if (r->skip_braces > 0) {
        r->skip_braces += brace_delta(s, n);
        if (r->skip_braces < 0)
            r->skip_braces = 0;
        return;
    }
    if (r->skip_until) {
        if (control && ne - ns == 2 && memcmp(s + ns, r->skip_until, 2) == 0)
            r->skip_until = NULL;
        return;
    }
    if (control) {
        if (ne - ns >= 2 && s[ns] == '\\' && (s[ns + 1] == '"' || s[ns + 1] == '#'))
            return; /* comment line */
        if (r->table == 1)
            r->table = 2;
        request(r, s + ns, ne - ns, s + ne, n - ne);
        return;
    }
    if (r->table == 1) {
        table_format_line(r, s, n);
        return;
    }
    if (r->table == 2) {
        table_row(r, s, n);
        return;
    }
    size_t k = 0;
    while (k < n && (s[k] == ' ' || s[k] == '\t'))
        k++;
    if (k == n) {
        /* A blank line is a paragraph break in fill mode, an empty line in no-fill mode. */
        if (r->nofill)
            r->w.nl++;
        else
            ing_out_break(&r->w, 2);
        return;
    }
    if (k > 0 && !r->nofill)
        ing_out_break(&r->w, 1); /* a line starting with a space breaks the filled text */
    if (put_text(&r->w, s, n, !r->nofill))
        return; /* \c: the next line continues this one directly */
    end_text_line(r);
}

int ing_roff_to_text(const char *roff, size_t n, struct tm_buf *out)
{
    struct roff r;
    memset(&r, 0, sizeof r);
    ing_out_init(&r.w, out);
    r.tab = '\t';
    r.heading_end = SIZE_MAX;
    size_t i = 0;
    while (i < n && !r.w.rc) {
        const char *nl = memchr(roff + i, '\n', n - i);
        size_t e = nl ? (size_t)(nl - roff) : n;
        line(&r, roff + i, e - i);
        i = e + 1;
    }
    return r.w.rc;
}
