/* ing_html: HTML to plain text in one pass, for WARC responses and .html files.
 *
 * A small tokenizer in the spirit of the HTML5 one (comments, bogus comments, raw-text
 * elements, quoted attribute values, end of input inside a tag), without building a tree: the
 * text is what a reader sees, with block elements as line breaks. Every scan is bounded by the
 * input length, so malformed markup can only lose text, never read past the end. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../core/tm_err.h"
#include "ing_internal.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Named character references: the HTML 4 set (which is what pages use in practice) plus
 * &apos;. Sorted by strcmp for bsearch. */
static const struct entity {
    const char *name;
    uint32_t cp;
} entities[] = {
    {"AElig", 0xC6},     {"Aacute", 0xC1},   {"Acirc", 0xC2},     {"Agrave", 0xC0},
    {"Alpha", 0x391},    {"Aring", 0xC5},    {"Atilde", 0xC3},    {"Auml", 0xC4},
    {"Beta", 0x392},     {"Ccedil", 0xC7},   {"Chi", 0x3A7},      {"Dagger", 0x2021},
    {"Delta", 0x394},    {"ETH", 0xD0},      {"Eacute", 0xC9},    {"Ecirc", 0xCA},
    {"Egrave", 0xC8},    {"Epsilon", 0x395}, {"Eta", 0x397},      {"Euml", 0xCB},
    {"Gamma", 0x393},    {"Iacute", 0xCD},   {"Icirc", 0xCE},     {"Igrave", 0xCC},
    {"Iota", 0x399},     {"Iuml", 0xCF},     {"Kappa", 0x39A},    {"Lambda", 0x39B},
    {"Mu", 0x39C},       {"Ntilde", 0xD1},   {"Nu", 0x39D},       {"OElig", 0x152},
    {"Oacute", 0xD3},    {"Ocirc", 0xD4},    {"Ograve", 0xD2},    {"Omega", 0x3A9},
    {"Omicron", 0x39F},  {"Oslash", 0xD8},   {"Otilde", 0xD5},    {"Ouml", 0xD6},
    {"Phi", 0x3A6},      {"Pi", 0x3A0},      {"Prime", 0x2033},   {"Psi", 0x3A8},
    {"Rho", 0x3A1},      {"Scaron", 0x160},  {"Sigma", 0x3A3},    {"THORN", 0xDE},
    {"Tau", 0x3A4},      {"Theta", 0x398},   {"Uacute", 0xDA},    {"Ucirc", 0xDB},
    {"Ugrave", 0xD9},    {"Upsilon", 0x3A5}, {"Uuml", 0xDC},      {"Xi", 0x39E},
    {"Yacute", 0xDD},    {"Yuml", 0x178},    {"Zeta", 0x396},     {"aacute", 0xE1},
    {"acirc", 0xE2},     {"acute", 0xB4},    {"aelig", 0xE6},     {"agrave", 0xE0},
    {"alefsym", 0x2135}, {"alpha", 0x3B1},   {"amp", 0x26},       {"and", 0x2227},
    {"ang", 0x2220},     {"apos", 0x27},     {"aring", 0xE5},     {"asymp", 0x2248},
    {"atilde", 0xE3},    {"auml", 0xE4},     {"bdquo", 0x201E},   {"beta", 0x3B2},
    {"brvbar", 0xA6},    {"bull", 0x2022},   {"cap", 0x2229},     {"ccedil", 0xE7},
    {"cedil", 0xB8},     {"cent", 0xA2},     {"chi", 0x3C7},      {"circ", 0x2C6},
    {"clubs", 0x2663},   {"cong", 0x2245},   {"copy", 0xA9},      {"crarr", 0x21B5},
    {"cup", 0x222A},     {"curren", 0xA4},   {"dArr", 0x21D3},    {"dagger", 0x2020},
    {"darr", 0x2193},    {"deg", 0xB0},      {"delta", 0x3B4},    {"diams", 0x2666},
    {"divide", 0xF7},    {"eacute", 0xE9},   {"ecirc", 0xEA},     {"egrave", 0xE8},
    {"empty", 0x2205},   {"emsp", 0x2003},   {"ensp", 0x2002},    {"epsilon", 0x3B5},
    {"equiv", 0x2261},   {"eta", 0x3B7},     {"eth", 0xF0},       {"euml", 0xEB},
    {"euro", 0x20AC},    {"exist", 0x2203},  {"fnof", 0x192},     {"forall", 0x2200},
    {"frac12", 0xBD},    {"frac14", 0xBC},   {"frac34", 0xBE},    {"frasl", 0x2044},
    {"gamma", 0x3B3},    {"ge", 0x2265},     {"gt", 0x3E},        {"hArr", 0x21D4},
    {"harr", 0x2194},    {"hearts", 0x2665}, {"hellip", 0x2026},  {"iacute", 0xED},
    {"icirc", 0xEE},     {"iexcl", 0xA1},    {"igrave", 0xEC},    {"image", 0x2111},
    {"infin", 0x221E},   {"int", 0x222B},    {"iota", 0x3B9},     {"iquest", 0xBF},
    {"isin", 0x2208},    {"iuml", 0xEF},     {"kappa", 0x3BA},    {"lArr", 0x21D0},
    {"lambda", 0x3BB},   {"lang", 0x2329},   {"laquo", 0xAB},     {"larr", 0x2190},
    {"lceil", 0x2308},   {"ldquo", 0x201C},  {"le", 0x2264},      {"lfloor", 0x230A},
    {"lowast", 0x2217},  {"loz", 0x25CA},    {"lrm", 0x200E},     {"lsaquo", 0x2039},
    {"lsquo", 0x2018},   {"lt", 0x3C},       {"macr", 0xAF},      {"mdash", 0x2014},
    {"micro", 0xB5},     {"middot", 0xB7},   {"minus", 0x2212},   {"mu", 0x3BC},
    {"nabla", 0x2207},   {"nbsp", 0xA0},     {"ndash", 0x2013},   {"ne", 0x2260},
    {"ni", 0x220B},      {"not", 0xAC},      {"notin", 0x2209},   {"nsub", 0x2284},
    {"ntilde", 0xF1},    {"nu", 0x3BD},      {"oacute", 0xF3},    {"ocirc", 0xF4},
    {"oelig", 0x153},    {"ograve", 0xF2},   {"oline", 0x203E},   {"omega", 0x3C9},
    {"omicron", 0x3BF},  {"oplus", 0x2295},  {"or", 0x2228},      {"ordf", 0xAA},
    {"ordm", 0xBA},      {"oslash", 0xF8},   {"otilde", 0xF5},    {"otimes", 0x2297},
    {"ouml", 0xF6},      {"para", 0xB6},     {"part", 0x2202},    {"permil", 0x2030},
    {"perp", 0x22A5},    {"phi", 0x3C6},     {"pi", 0x3C0},       {"piv", 0x3D6},
    {"plusmn", 0xB1},    {"pound", 0xA3},    {"prime", 0x2032},   {"prod", 0x220F},
    {"prop", 0x221D},    {"psi", 0x3C8},     {"quot", 0x22},      {"rArr", 0x21D2},
    {"radic", 0x221A},   {"rang", 0x232A},   {"raquo", 0xBB},     {"rarr", 0x2192},
    {"rceil", 0x2309},   {"rdquo", 0x201D},  {"real", 0x211C},    {"reg", 0xAE},
    {"rfloor", 0x230B},  {"rho", 0x3C1},     {"rlm", 0x200F},     {"rsaquo", 0x203A},
    {"rsquo", 0x2019},   {"sbquo", 0x201A},  {"scaron", 0x161},   {"sdot", 0x22C5},
    {"sect", 0xA7},      {"shy", 0xAD},      {"sigma", 0x3C3},    {"sigmaf", 0x3C2},
    {"sim", 0x223C},     {"spades", 0x2660}, {"sub", 0x2282},     {"sube", 0x2286},
    {"sum", 0x2211},     {"sup", 0x2283},    {"sup1", 0xB9},      {"sup2", 0xB2},
    {"sup3", 0xB3},      {"supe", 0x2287},   {"szlig", 0xDF},     {"tau", 0x3C4},
    {"there4", 0x2234},  {"theta", 0x3B8},   {"thetasym", 0x3D1}, {"thinsp", 0x2009},
    {"thorn", 0xFE},     {"tilde", 0x2DC},   {"times", 0xD7},     {"trade", 0x2122},
    {"uArr", 0x21D1},    {"uacute", 0xFA},   {"uarr", 0x2191},    {"ucirc", 0xFB},
    {"ugrave", 0xF9},    {"uml", 0xA8},      {"upsih", 0x3D2},    {"upsilon", 0x3C5},
    {"uuml", 0xFC},      {"weierp", 0x2118}, {"xi", 0x3BE},       {"yacute", 0xFD},
    {"yen", 0xA5},       {"yuml", 0xFF},     {"zeta", 0x3B6},     {"zwj", 0x200D},
    {"zwnj", 0x200C},
};

/* The longest entity name above ("thetasym") is 8; names in the full HTML5 list reach 31. */
#define ENTITY_NAME_MAX 32
/* Tag names longer than this are no tag we know ("blockquote" is 10). */
#define TAG_NAME_MAX 16

/* HTML5 "numeric character reference end state": code points 0x80..0x9F name the
 * windows-1252 characters pages meant (0 where the slot is unassigned and kept as is). */
static const uint16_t cp1252[32] = {
    0x20AC, 0,      0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, /* 80..87 */
    0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0,      0x017D, 0,      /* 88..8F */
    0,      0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014, /* 90..97 */
    0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0,      0x017E, 0x0178, /* 98..9F */
};

/* What a tag does to the text around it. */
enum {
    T_BREAK = 1 << 0, /* a line break */
    T_PARA = 1 << 1,  /* a blank line (paragraph) */
    T_SPACE = 1 << 2, /* a word separator (table cells) */
    T_SKIP = 1 << 3,  /* its content is dropped up to its end tag */
    T_PRE = 1 << 4,   /* whitespace inside is kept */
    T_HEAD = 1 << 5,  /* belongs in <head>: does not end it */
    T_TITLE = 1 << 6,
    T_BR = 1 << 7, /* one more line break each time (br, hr) */
};

static const struct tag {
    const char *name;
    unsigned flags;
} tags[] = {
    {"address", T_PARA},
    {"article", T_PARA},
    {"aside", T_PARA},
    {"base", T_HEAD},
    {"basefont", T_HEAD},
    {"bgsound", T_HEAD},
    {"blockquote", T_PARA},
    {"body", 0},
    {"br", T_BR},
    {"caption", T_BREAK},
    {"center", T_BREAK},
    {"dd", T_BREAK},
    {"details", T_PARA},
    {"dialog", T_PARA},
    {"dir", T_PARA},
    {"div", T_BREAK},
    {"dl", T_PARA},
    {"dt", T_BREAK},
    {"fieldset", T_PARA},
    {"figcaption", T_BREAK},
    {"figure", T_PARA},
    {"footer", T_PARA},
    {"form", T_PARA},
    {"h1", T_PARA},
    {"h2", T_PARA},
    {"h3", T_PARA},
    {"h4", T_PARA},
    {"h5", T_PARA},
    {"h6", T_PARA},
    {"head", T_HEAD},
    {"header", T_PARA},
    {"hr", T_BR},
    {"html", T_HEAD},
    {"iframe", T_SKIP},
    {"legend", T_BREAK},
    {"li", T_BREAK},
    {"link", T_HEAD},
    {"listing", T_PARA | T_PRE},
    {"main", T_PARA},
    {"menu", T_PARA},
    {"meta", T_HEAD},
    {"nav", T_PARA},
    {"noscript", T_SKIP | T_HEAD},
    {"ol", T_PARA},
    {"option", T_BREAK},
    {"p", T_PARA},
    {"pre", T_PARA | T_PRE},
    {"script", T_SKIP | T_HEAD},
    {"section", T_PARA},
    {"style", T_SKIP | T_HEAD},
    {"summary", T_BREAK},
    {"svg", T_SKIP},
    {"table", T_PARA},
    {"td", T_SPACE},
    {"template", T_SKIP | T_HEAD},
    {"textarea", T_BREAK},
    {"tfoot", T_BREAK},
    {"th", T_SPACE},
    {"thead", T_BREAK},
    {"title", T_TITLE | T_HEAD},
    {"tr", T_BREAK},
    {"ul", T_PARA},
    {"xmp", T_PARA | T_PRE},
};

static int cmp_entity(const void *key, const void *elem)
{
    return strcmp(key, ((const struct entity *)elem)->name);
}

static int cmp_tag(const void *key, const void *elem)
{
    return strcmp(key, ((const struct tag *)elem)->name);
}

static int is_alpha(unsigned char c)
{
    return (c | 0x20) >= 'a' && (c | 0x20) <= 'z';
}

static int is_alnum(unsigned char c)
{
    return is_alpha(c) || (c >= '0' && c <= '9');
}

static int is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f';
}

/* ---- Character references ---------------------------------------------------------------- */

/* Names HTML5 also accepts without the ';' (the common ones of its legacy list). */
static const char *const legacy_names[] = {"amp", "lt", "gt", "quot", "nbsp", "copy", "reg"};

/* Decodes the reference at s[0] == '&'. Returns the bytes it spans (0: not a reference, the
 * '&' is literal) and sets *cp. */
static size_t decode_ref(const char *s, size_t n, uint32_t *cp)
{
    size_t i = 1;
    if (i < n && s[i] == '#') {
        i++;
        int hex = i < n && (s[i] == 'x' || s[i] == 'X');
        if (hex)
            i++;
        size_t d0 = i;
        uint32_t v = 0;
        for (; i < n; i++) {
            unsigned char c = (unsigned char)s[i];
            unsigned dig;
            if (c >= '0' && c <= '9')
                dig = c - '0';
            else if (hex && (c | 0x20) >= 'a' && (c | 0x20) <= 'f')
                dig = (c | 0x20) - 'a' + 10;
            else
                break;
            /* Saturate: anything past U+10FFFF is replaced anyway. */
            v = v > 0x10ffff ? v : v * (hex ? 16 : 10) + dig;
        }
        if (i == d0)
            return 0;
        if (i < n && s[i] == ';')
            i++;
        if (v == 0 || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
            v = 0xfffd;
        else if (v >= 0x80 && v <= 0x9f && cp1252[v - 0x80])
            v = cp1252[v - 0x80];
        *cp = v;
        return i;
    }
    size_t k = 0;
    char name[ENTITY_NAME_MAX + 1];
    while (i + k < n && k < ENTITY_NAME_MAX && is_alnum((unsigned char)s[i + k])) {
        name[k] = s[i + k];
        k++;
    }
    name[k] = '\0';
    if (k == 0)
        return 0;
    if (i + k < n && s[i + k] == ';') {
        const struct entity *e =
            bsearch(name, entities, ARRAY_LEN(entities), sizeof entities[0], cmp_entity);
        if (e) {
            *cp = e->cp;
            return i + k + 1;
        }
        return 0;
    }
    for (size_t j = 0; j < ARRAY_LEN(legacy_names); j++) {
        size_t len = strlen(legacy_names[j]);
        if (k >= len && memcmp(name, legacy_names[j], len) == 0) {
            name[len] = '\0';
            const struct entity *e =
                bsearch(name, entities, ARRAY_LEN(entities), sizeof entities[0], cmp_entity);
            if (e) {
                *cp = e->cp;
                return i + len;
            }
        }
    }
    return 0;
}

/* ---- Text -------------------------------------------------------------------------------- */

/* Emits text t[0..n): references decoded, whitespace collapsed (kept inside <pre>). */
static void put_text(struct ing_out *w, const char *t, size_t n, int pre)
{
    size_t i = 0;
    while (i < n && !w->rc) {
        unsigned char c = (unsigned char)t[i];
        if (is_space(c)) {
            if (!pre)
                w->sp = 1;
            else if (c == '\n')
                w->nl++;
            else if (c != '\r')
                ing_out_put(w, t + i, 1);
            i++;
            continue;
        }
        if (c == '&') {
            uint32_t cp;
            size_t k = decode_ref(t + i, n - i, &cp);
            if (k == 0) {
                ing_out_put(w, "&", 1);
                i++;
                continue;
            }
            i += k;
            if (cp == 0xa0) /* nbsp: a plain space, collapsed like any other */
                w->sp = 1;
            else if (cp != 0xad) /* a soft hyphen is invisible; it only splits words */
                ing_out_cp(w, cp);
            continue;
        }
        if (c == 0xc2 && i + 1 < n && (unsigned char)t[i + 1] == 0xa0) {
            w->sp = 1; /* a literal U+00A0, same as &nbsp; */
            i += 2;
            continue;
        }
        size_t j = i + 1;
        while (j < n) {
            unsigned char d = (unsigned char)t[j];
            if (is_space(d) || d == '&' || d == 0xc2)
                break;
            j++;
        }
        ing_out_put(w, t + i, j - i);
        i = j;
    }
}

static int has_visible(const char *t, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!is_space((unsigned char)t[i]))
            return 1;
    return 0;
}

/* ---- Tags -------------------------------------------------------------------------------- */

/* Position of the end tag "</name" (any case, then a non-name byte) at or after `from`, or n. */
static size_t find_end_tag(const char *h, size_t n, size_t from, const char *name)
{
    size_t k = strlen(name);
    for (size_t i = from; i < n;) {
        const char *lt = memchr(h + i, '<', n - i);
        if (!lt)
            break;
        i = (size_t)(lt - h);
        if (i + 2 + k <= n && h[i + 1] == '/' && strncasecmp(h + i + 2, name, k) == 0 &&
            (i + 2 + k == n || !is_alnum((unsigned char)h[i + 2 + k])))
            return i;
        i++;
    }
    return n;
}

/* Position just after the '>' that ends the tag whose name ends at h[i], honouring quoted
 * attribute values; n when input ends first (HTML5 drops such a tag). */
static size_t tag_end(const char *h, size_t n, size_t i, int *self_closing)
{
    while (i < n) {
        char c = h[i];
        if (c == '>') {
            *self_closing = h[i - 1] == '/';
            return i + 1;
        }
        if (c == '=') {
            i++;
            while (i < n && is_space((unsigned char)h[i]))
                i++;
            if (i < n && (h[i] == '"' || h[i] == '\'')) {
                const char *q = memchr(h + i + 1, h[i], n - i - 1);
                if (!q)
                    return n;
                i = (size_t)(q - h) + 1;
            }
            continue;
        }
        i++;
    }
    return n;
}

static const struct tag *find_tag(const char *h, size_t len)
{
    char name[TAG_NAME_MAX + 1];
    if (len > TAG_NAME_MAX)
        return NULL;
    for (size_t i = 0; i < len; i++)
        name[i] = (char)(h[i] | 0x20); /* names are ASCII letters and digits */
    name[len] = '\0';
    return bsearch(name, tags, ARRAY_LEN(tags), sizeof tags[0], cmp_tag);
}

static void block(struct ing_out *w, unsigned flags)
{
    if (flags & T_PARA)
        ing_out_break(w, 2);
    else if (flags & T_BREAK)
        ing_out_break(w, 1);
    else if (flags & T_BR)
        w->nl++;
    else if (flags & T_SPACE)
        w->sp = 1;
}

int ing_html_to_text(const char *h, size_t n, struct tm_buf *out)
{
    struct ing_out w;
    ing_out_init(&w, out);
    int in_head = 0, pre = 0;
    size_t i = 0;
    while (i < n && !w.rc) {
        if (h[i] != '<') {
            const char *lt = memchr(h + i, '<', n - i);
            size_t j = lt ? (size_t)(lt - h) : n;
            if (in_head && has_visible(h + i, j - i))
                in_head = 0; /* text cannot be in <head>: the body began without a tag */
            if (!in_head)
                put_text(&w, h + i, j - i, pre > 0);
            i = j;
            continue;
        }
        if (i + 1 >= n) {
            put_text(&w, "<", 1, pre > 0);
            break;
        }
        char d = h[i + 1];
        if (d == '!' && i + 3 < n && h[i + 2] == '-' && h[i + 3] == '-') {
            /* Comment. "<!-->" and "<!--->" close at once (HTML5 "abrupt closing"). */
            size_t s = i + 4;
            if (s < n && h[s] == '>') {
                i = s + 1;
            } else if (s + 1 < n && h[s] == '-' && h[s + 1] == '>') {
                i = s + 2;
            } else {
                const char *e = memmem(h + s, n - s, "-->", 3);
                i = e ? (size_t)(e - h) + 3 : n;
            }
            continue;
        }
        if (d == '!' || d == '?' ||
            (d == '/' && (i + 2 >= n || !is_alpha((unsigned char)h[i + 2])))) {
            /* Doctype, CDATA, processing instruction, "</ >": bogus comments up to '>'. */
            const char *e = memchr(h + i + 1, '>', n - i - 1);
            i = e ? (size_t)(e - h) + 1 : n;
            continue;
        }
        int end = d == '/';
        size_t s = i + 1 + (size_t)end;
        if (!is_alpha((unsigned char)h[s])) {
            put_text(&w, "<", 1, pre > 0); /* "a < b": a literal '<' */
            i++;
            continue;
        }
        size_t e = s;
        while (e < n && (is_alnum((unsigned char)h[e]) || h[e] == '-' || h[e] == ':'))
            e++;
        int self_closing = 0;
        size_t after = tag_end(h, n, e, &self_closing);
        const struct tag *t = find_tag(h + s, e - s);
        i = after;
        if (!t)
            continue; /* inline or unknown: no effect on the text */
        unsigned f = t->flags;
        if (in_head && !end && !(f & T_HEAD) && strcmp(t->name, "body") != 0)
            in_head = 0;
        if (end) {
            if (strcmp(t->name, "head") == 0)
                in_head = 0;
            if ((f & T_PRE) && pre > 0)
                pre--;
            block(&w, f);
            continue;
        }
        if (strcmp(t->name, "head") == 0) {
            in_head = 1;
        } else if (strcmp(t->name, "body") == 0) {
            in_head = 0;
        } else if (f & T_TITLE) {
            /* Title text is RCDATA: no tags inside, references decoded. It leads the text. */
            size_t close = find_end_tag(h, n, i, "title");
            put_text(&w, h + i, close - i, 0);
            ing_out_break(&w, 2);
            i = close;
        } else if ((f & T_SKIP) && !(self_closing && strcmp(t->name, "svg") == 0)) {
            /* Raw text (script, style) and content we drop: jump to the end tag. A self-closed
             * <svg/> is empty (foreign content honours "/>"); <script/> is not. */
            i = find_end_tag(h, n, i, t->name);
        } else {
            if (f & T_PRE)
                pre++;
            block(&w, f);
        }
    }
    return w.rc;
}
