/* ing_jsonl.c: JSON Lines records. cJSON parses the structure and prints the metadata; the text
 * value is decoded here.
 *
 * Why not let cJSON decode the text: the text is ~99% of a line's bytes, and cJSON walks a string
 * twice byte by byte (a length pass, then a copy pass), after which the reader had to strlen() it
 * and memchr/memmem the line for NULs. `perf record` of `taskset -c 0 tokenmill ingest` on
 * bench/out/text.jsonl.zst (200 MB of JSONL) put cJSON at ~26% of all samples and memmem at ~4%.
 * So each line is first scanned at its top level here, the text value is decoded in one pass
 * that copies a block at a time between quotes and backslashes, and cJSON gets the line with
 * that value replaced by "" (the rest is small). Over every line of that file, cJSON's parse plus
 * strlen took 320-420 ms, decode_string 80-90 ms; cJSON's share of the ingest profile fell below
 * 1%. (Measured with a throwaway harness around these functions; rerun the ingest with `perf`.)
 *
 * Equivalence with parsing the whole line with cJSON, which ing_jsonl_read_reference() still
 * does and the fuzz target compares against: the rewritten line has the same bytes before and
 * after the text value, so cJSON accepts it exactly when it accepts the original, provided the
 * text string itself is one cJSON accepts with the same end. The decoder here accepts only
 * strict JSON escapes, on which cJSON agrees; anything else (a lone surrogate, which cJSON
 * rejects, or "\uZZZZ", which cJSON reads as U+0000) sends the line to the full cJSON path.
 * Raw control bytes and invalid UTF-8 inside strings are passed through, as cJSON 1.7.15 does.
 *
 * One deliberate difference: cJSON keeps strings NUL-terminated without a length, so a text
 * holding "\u0000" (or a raw NUL byte) comes back cut at the NUL. This decoder keeps every byte
 * (normalization removes the NULs later and counts them); the full path decodes such texts again
 * from the line for the same result. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "ing_internal.h"
#include "../core/tm_doc.h"
#include "../core/tm_err.h"

/* Used when the caller gives no max_line: far above any sane document, still a bound. */
#define JSONL_DEFAULT_MAX_LINE ((size_t)64 << 20)

static int is_json_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static int is_blank(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!is_json_space(p[i]))
            return 0;
    return 1;
}

/* ---- A top-level scanner over one line ---------------------------------------------------- */

/* Skips what cJSON skips between tokens: every byte up to and including ' '. */
static size_t skip_space(const char *p, size_t n, size_t i)
{
    while (i < n && (unsigned char)p[i] <= ' ')
        i++;
    return i;
}

/* Finding the next '"' or '\\' a block at a time: a run between escapes averages ~24 bytes in
 * the bench texts (a "\n" every line). Decoding all their texts (tools: a harness calling
 * decode_string over every line of bench/out/text.jsonl.zst, one core) took 77 ms with 16-byte
 * SSE2 blocks, 115 ms with 8-byte words, 150 ms with two memchr calls taking the nearer hit
 * (the farther kept for later); cJSON's two passes plus strlen took several times that. */
#if defined(__SSE2__)
#include <emmintrin.h>
#define JSONL_BLOCK 16

/* Index of the first '"' or '\\' in p[0..16), or 16. */
static size_t block_special(const char *p)
{
    __m128i w = _mm_loadu_si128((const __m128i *)(const void *)p);
    __m128i hit =
        _mm_or_si128(_mm_cmpeq_epi8(w, _mm_set1_epi8('"')), _mm_cmpeq_epi8(w, _mm_set1_epi8('\\')));
    unsigned m = (unsigned)_mm_movemask_epi8(hit);
    return m ? (size_t)__builtin_ctz(m) : JSONL_BLOCK;
}
#elif defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define JSONL_BLOCK 8
#define ONES        0x0101010101010101ULL
#define HIGHS       0x8080808080808080ULL

/* Index of the first '"' or '\\' in p[0..8), or 8. The zero-byte test can flag bytes above a
 * match (borrows), never below one, so the lowest flag is exact. */
static size_t block_special(const char *p)
{
    uint64_t w;
    memcpy(&w, p, sizeof(w));
    uint64_t q = w ^ (ONES * '"');
    uint64_t b = w ^ (ONES * '\\');
    uint64_t m = ((q - ONES) & ~q & HIGHS) | ((b - ONES) & ~b & HIGHS);
    return m ? (size_t)__builtin_ctzll(m) / 8 : JSONL_BLOCK;
}
#else
#define JSONL_BLOCK 1

static size_t block_special(const char *p)
{
    return *p == '"' || *p == '\\' ? 0 : 1;
}
#endif

/* Index of the first '"' or '\\' in p[i..n), or n. */
static size_t find_special(const char *p, size_t n, size_t i)
{
    while (n - i >= JSONL_BLOCK) {
        size_t k = block_special(p + i);
        if (k < JSONL_BLOCK)
            return i + k;
        i += JSONL_BLOCK;
    }
    while (i < n && p[i] != '"' && p[i] != '\\')
        i++;
    return i;
}

/* Copies p[i..) to *o up to the first '"' or '\\' (or n) and returns that index, advancing *o.
 * Whole blocks are stored, so up to JSONL_BLOCK - 1 bytes past the run get written; the caller
 * reserved that room. */
static size_t copy_run(const char *p, size_t n, size_t i, char **o)
{
    char *w = *o;
    while (n - i >= JSONL_BLOCK) {
        memcpy(w, p + i, JSONL_BLOCK);
        size_t k = block_special(p + i);
        if (k < JSONL_BLOCK) {
            *o = w + k;
            return i + k;
        }
        w += JSONL_BLOCK;
        i += JSONL_BLOCK;
    }
    while (i < n && p[i] != '"' && p[i] != '\\')
        *w++ = p[i++];
    *o = w;
    return i;
}

/* Index after the string starting at p[i] == '"', or 0 when it does not end in p[0..n). Ends
 * where cJSON ends a string: each backslash takes the next byte with it, whatever the escape. */
static size_t skip_string(const char *p, size_t n, size_t i)
{
    i++;
    for (;;) {
        i = find_special(p, n, i);
        if (i >= n)
            return 0;
        if (p[i] == '"')
            return i + 1;
        i += 2;
        if (i > n)
            return 0;
    }
}

static int hex4(const char *p, unsigned *out)
{
    unsigned v = 0;
    for (int k = 0; k < 4; k++) {
        char c = p[k];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
        else
            return -1;
    }
    *out = v;
    return 0;
}

/* Writes cp as UTF-8 at o; returns the byte count (1..4). */
static size_t put_utf8(char *o, unsigned cp)
{
    unsigned char *b = (unsigned char *)o;
    if (cp < 0x80) {
        b[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        b[0] = (unsigned char)(0xC0 | (cp >> 6));
        b[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        b[0] = (unsigned char)(0xE0 | (cp >> 12));
        b[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        b[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    b[0] = (unsigned char)(0xF0 | (cp >> 18));
    b[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    b[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    b[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Decodes the escape at p[i] == '\\' to o. Returns the index after it and sets *len to the bytes
 * written (never more than the escape's own length), or returns 0 for anything but a strict JSON
 * escape: cJSON fails on some of those and reads "\u" with bad hex digits as U+0000, so the
 * caller leaves such lines to cJSON whole. */
static size_t decode_escape(const char *p, size_t n, size_t i, char *o, size_t *len)
{
    /* The byte each one-letter escape stands for; 0 where the letter is not one. */
    static const char simple[256] = {['"'] = '"',  ['\\'] = '\\', ['/'] = '/',  ['b'] = '\b',
                                     ['f'] = '\f', ['n'] = '\n',  ['r'] = '\r', ['t'] = '\t'};
    if (n - i < 2)
        return 0;
    char e = p[i + 1];
    if (simple[(unsigned char)e]) {
        *o = simple[(unsigned char)e];
        *len = 1;
        return i + 2;
    }
    unsigned cp;
    if (e != 'u' || n - i < 6 || hex4(p + i + 2, &cp) < 0)
        return 0;
    i += 6;
    if (cp >= 0xD800 && cp <= 0xDBFF) {
        unsigned lo;
        if (n - i < 6 || p[i] != '\\' || p[i + 1] != 'u' || hex4(p + i + 2, &lo) < 0 ||
            lo < 0xDC00 || lo > 0xDFFF)
            return 0;
        i += 6;
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
    } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
        return 0;
    }
    *len = put_utf8(o, cp);
    return i;
}

/* Appends the decoded JSON string starting at p[i] == '"' to `out`, keeping NULs, and returns
 * the index after the closing quote; 0 when the string does not end in p[0..n), holds an escape
 * decode_escape refuses, or `out` cannot hold n - i bytes more. Runs between escapes are copied
 * a block at a time while they are searched, into room reserved up front (decoding never
 * lengthens, so n - i plus one block of overrun is enough); callers pass n as the end of the
 * string when they know it, to keep that reservation small. */
static size_t decode_string(const char *p, size_t n, size_t i, struct tm_buf *out)
{
    if (tm_buf_reserve(out, n - i + JSONL_BLOCK) < 0)
        return 0;
    char *o = out->data + out->len;
    i++; /* opening quote */
    for (;;) {
        i = copy_run(p, n, i, &o);
        if (i >= n)
            return 0;
        if (p[i] == '"')
            break;
        size_t len;
        i = decode_escape(p, n, i, o, &len);
        if (i == 0)
            return 0;
        o += len;
    }
    out->len = (size_t)(o - out->data);
    out->data[out->len] = '\0';
    return i + 1;
}

/* Index after the JSON value at p[i] (a scalar ends before the ',', '}' or ']' that follows
 * it), or 0 when brackets do not balance or a string does not end. Not a validator: it only has
 * to agree with cJSON on where the value ends whenever cJSON accepts the line, and cJSON checks
 * the rewritten line whole. */
static size_t skip_value(const char *p, size_t n, size_t i)
{
    size_t depth = 0;
    while (i < n) {
        char c = p[i];
        if (c == '"') {
            i = skip_string(p, n, i);
            if (i == 0 || depth == 0)
                return i;
            continue;
        }
        if (c == '{' || c == '[') {
            depth++;
        } else if (c == '}' || c == ']') {
            if (depth == 0)
                return i; /* the container around the value ends */
            if (--depth == 0)
                return i + 1;
        } else if (c == ',' && depth == 0) {
            return i;
        }
        i++;
    }
    return depth == 0 ? i : 0;
}

/* Finds the value of the first member of the top-level object in p[0..n) whose key, decoded and
 * compared as a C string (cJSON keeps keys NUL-terminated, so "text\u0000x" is "text"), equals
 * field[0..flen). The first match wins, as with cJSON_GetObjectItemCaseSensitive. Returns the
 * value's index (it may be any value), or 0 when there is none or the scan cannot tell. */
static size_t find_member(const char *p, size_t n, const char *field, size_t flen,
                          struct tm_buf *key)
{
    size_t i = skip_space(p, n, 0);
    if (i >= n || p[i] != '{')
        return 0;
    i = skip_space(p, n, i + 1);
    for (;;) {
        if (i >= n || p[i] != '"')
            return 0;
        size_t end = skip_string(p, n, i);
        tm_buf_reset(key);
        if (end == 0 || decode_string(p, end, i, key) != end)
            return 0;
        i = skip_space(p, n, end);
        if (i >= n || p[i] != ':')
            return 0;
        i = skip_space(p, n, i + 1);
        if (i >= n)
            return 0;
        if (strlen(key->data) == flen && memcmp(key->data, field, flen) == 0)
            return i;
        i = skip_value(p, n, i);
        if (i == 0)
            return 0;
        i = skip_space(p, n, i);
        if (i >= n || p[i] != ',')
            return 0;
        i = skip_space(p, n, i + 1);
    }
}

/* ---- The reader -------------------------------------------------------------------------- */

struct jsonl_line {
    const char *p;
    size_t n;
    uint64_t position;
};

/* What the reader keeps between lines. The buffers are reused; each is capped a little above
 * the line limit (a decoded string is never longer than its line, plus one word of overrun). */
struct jsonl_state {
    const struct ing_jsonl_opts *o;
    const char *text_field;
    size_t flen;
    int fast;            /* try jsonl_line_fast first */
    struct tm_buf text;  /* the decoded text */
    struct tm_buf key;   /* a decoded key */
    struct tm_buf shell; /* the line with the text value replaced by "" */
};

static void problem(struct ing_sink *sink, uint64_t position, const char *reason,
                    const char *detail)
{
    sink->problem(sink->ctx, position, reason, detail);
}

/* Delivers the record from a parsed line: `root` is the object with `text_item` (a member of
 * it, a string) attached, the text is text[0..text_len) (it may borrow from text_item). Checks
 * the domain field; then detaches the text item so that the metadata is "everything else", and
 * frees it once the sink is done. The caller still owns and frees root. */
static int deliver(const struct jsonl_line *ln, struct jsonl_state *st, struct ing_sink *sink,
                   cJSON *root, cJSON *text_item, const char *text, size_t text_len)
{
    const struct ing_jsonl_opts *o = st->o;
    int domain = -1;
    if (o->domain_field && o->domain_field[0]) {
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(root, o->domain_field);
        if (d != NULL) {
            domain = cJSON_IsString(d) && d->valuestring ? tm_domain_parse(d->valuestring) : -1;
            if (domain < 0) {
                problem(sink, ln->position, "bad_domain",
                        "the domain field is not \"text\", \"math\" or \"code\"");
                return TM_OK;
            }
        }
    }
    const char *lang = NULL;
    if (o->lang_field && o->lang_field[0]) {
        const cJSON *l = cJSON_GetObjectItemCaseSensitive(root, o->lang_field);
        if (cJSON_IsString(l) && l->valuestring && l->valuestring[0])
            lang = l->valuestring;
    }

    cJSON_DetachItemViaPointer(root, text_item);
    char *meta = cJSON_PrintUnformatted(root);
    if (meta == NULL) {
        cJSON_Delete(text_item);
        return TM_ERR_NOMEM;
    }
    struct ing_record rec = {0};
    rec.text = text;
    rec.text_len = text_len;
    rec.meta = meta;
    rec.meta_len = strlen(meta);
    rec.domain = domain;
    rec.lang = lang;
    rec.name = NULL;
    rec.position = ln->position;
    int rc = sink->record(sink->ctx, &rec);
    cJSON_free(meta);
    cJSON_Delete(text_item);
    return rc;
}

/* Non-zero when a string in the line may hold a NUL that cJSON would cut at. "\\u0000" can
 * match falsely (an escaped backslash before "u0000"); the re-decode is then merely redundant. */
static int may_hold_nul(const char *p, size_t n)
{
    return memchr(p, '\0', n) != NULL || memmem(p, n, "\\u0000", 6) != NULL;
}

/* The whole line through cJSON: every problem is decided here. Returns TM_OK (a record or a
 * problem was delivered) or the sink's error. */
static int jsonl_line_full(const struct jsonl_line *ln, struct jsonl_state *st,
                           struct ing_sink *sink)
{
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(ln->p, ln->n, &end, 0);
    int rc = TM_OK;

    if (root == NULL) {
        problem(sink, ln->position, "bad_json", "not valid JSON");
        goto out;
    }
    if (end == NULL || end < ln->p || end > ln->p + ln->n ||
        !is_blank(end, (size_t)(ln->p + ln->n - end))) {
        problem(sink, ln->position, "bad_json", "data after the JSON value");
        goto out;
    }
    if (!cJSON_IsObject(root)) {
        problem(sink, ln->position, "not_object", "the line is not a JSON object");
        goto out;
    }
    cJSON *text_item = cJSON_GetObjectItemCaseSensitive(root, st->text_field);
    if (text_item == NULL || !cJSON_IsString(text_item) || text_item->valuestring == NULL) {
        problem(sink, ln->position, "missing_text",
                text_item == NULL ? "no text field" : "the text field is not a string");
        goto out;
    }
    const char *text = text_item->valuestring;
    size_t text_len = strlen(text);
    if (may_hold_nul(ln->p, ln->n)) {
        tm_buf_reset(&st->text);
        size_t v = find_member(ln->p, ln->n, st->text_field, st->flen, &st->key);
        if (v != 0 && ln->p[v] == '"' && decode_string(ln->p, ln->n, v, &st->text) != 0) {
            if (st->text.len > text_len) {
                text = st->text.data;
                text_len = st->text.len;
            }
        } else if (sink->count) {
            /* cJSON took an escape decode_escape refuses ("\uZZZZ" is U+0000 to cJSON); its
             * text may be cut at a NUL, and that must not pass unnoticed. */
            sink->count(sink->ctx, "jsonl_nul_truncated");
        }
    }
    rc = deliver(ln, st, sink, root, text_item, text, text_len);
out:
    cJSON_Delete(root);
    return rc;
}

/* The text value decoded here, the rest of the line through cJSON (see the top of the file).
 * Returns 1 when the line was handled (*rc is then TM_OK or the sink's error), 0 when it must go
 * through jsonl_line_full: the scan found no string text member, the string is not strict JSON,
 * or cJSON refuses the rest (so the problem reported is the full path's). */
static int jsonl_line_fast(const struct jsonl_line *ln, struct jsonl_state *st,
                           struct ing_sink *sink, int *rc)
{
    const char *p = ln->p;
    size_t n = ln->n;
    size_t v = find_member(p, n, st->text_field, st->flen, &st->key);
    if (v == 0 || p[v] != '"')
        return 0;
    tm_buf_reset(&st->text);
    size_t after = decode_string(p, n, v, &st->text);
    if (after == 0)
        return 0;

    struct tm_buf *sh = &st->shell;
    tm_buf_reset(sh);
    if (tm_buf_append(sh, p, v) < 0 || tm_buf_append(sh, "\"\"", 2) < 0 ||
        tm_buf_append(sh, p + after, n - after) < 0)
        return 0;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(sh->data, sh->len, &end, 0);
    if (root == NULL)
        return 0;
    cJSON *text_item = cJSON_GetObjectItemCaseSensitive(root, st->text_field);
    /* The last two checks cannot fail when the scan agrees with cJSON; they keep a disagreement
     * from passing as a record. */
    if (end == NULL || end < sh->data || end > sh->data + sh->len ||
        !is_blank(end, (size_t)(sh->data + sh->len - end)) || !cJSON_IsObject(root) ||
        !cJSON_IsString(text_item) || text_item->valuestring == NULL ||
        text_item->valuestring[0] != '\0') {
        cJSON_Delete(root);
        return 0;
    }
    *rc = deliver(ln, st, sink, root, text_item, st->text.data, st->text.len);
    cJSON_Delete(root);
    return 1;
}

static int jsonl_read(struct ing_reader *r, const struct ing_jsonl_opts *o, struct ing_sink *sink,
                      int fast)
{
    size_t max = o->max_line ? o->max_line : JSONL_DEFAULT_MAX_LINE;
    struct jsonl_state st;
    int rc;

    st.o = o;
    st.text_field = o->text_field && o->text_field[0] ? o->text_field : "text";
    st.flen = strlen(st.text_field);
    /* A domain or language field that is the text field itself would see "" on the fast path. */
    st.fast = fast && !(o->domain_field && strcmp(o->domain_field, st.text_field) == 0) &&
              !(o->lang_field && strcmp(o->lang_field, st.text_field) == 0);
    tm_buf_init(&st.text, max + 2 * JSONL_BLOCK);
    tm_buf_init(&st.key, max + 2 * JSONL_BLOCK);
    tm_buf_init(&st.shell, max + 2 * JSONL_BLOCK);
    for (;;) {
        struct jsonl_line ln;
        rc = ing_reader_line(r, max, &ln.p, &ln.n);
        ln.position = r->line;
        if (rc < 0)
            break;
        if (rc == ING_LINE_TOOLONG) {
            char detail[96];
            snprintf(detail, sizeof(detail), "line of %zu bytes, the limit is %zu", ln.n, max);
            problem(sink, ln.position, "line_too_long", detail);
            continue;
        }
        if (ln.p == NULL) {
            rc = TM_OK;
            break;
        }
        if (is_blank(ln.p, ln.n))
            continue;
        if (!st.fast || !jsonl_line_fast(&ln, &st, sink, &rc))
            rc = jsonl_line_full(&ln, &st, sink);
        if (rc < 0)
            break;
    }
    tm_buf_release(&st.shell);
    tm_buf_release(&st.key);
    tm_buf_release(&st.text);
    return rc;
}

int ing_jsonl_read(struct ing_reader *r, const struct ing_jsonl_opts *o, struct ing_sink *sink)
{
    return jsonl_read(r, o, sink, 1);
}

int ing_jsonl_read_reference(struct ing_reader *r, const struct ing_jsonl_opts *o,
                             struct ing_sink *sink)
{
    return jsonl_read(r, o, sink, 0);
}
