/* ing_jsonl.c: JSON Lines records, parsed with cJSON.
 *
 * cJSON keeps strings NUL-terminated without a length, so a text holding "\u0000" (or a raw NUL
 * byte) would come back cut at the NUL. Such lines are rare; for them the text field is decoded
 * again here, straight from the line, so the document keeps every byte (normalization removes
 * the NULs later and counts them). */
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

/* ---- A minimal scanner over JSON text that cJSON has already accepted ---------------------- */

/* Skips what cJSON skips between tokens: every byte up to and including ' '. */
static size_t skip_space(const char *p, size_t n, size_t i)
{
    while (i < n && (unsigned char)p[i] <= ' ')
        i++;
    return i;
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

static int put_utf8(struct tm_buf *out, unsigned cp)
{
    unsigned char b[4];
    size_t n;
    if (cp < 0x80) {
        b[0] = (unsigned char)cp;
        n = 1;
    } else if (cp < 0x800) {
        b[0] = (unsigned char)(0xC0 | (cp >> 6));
        b[1] = (unsigned char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        b[0] = (unsigned char)(0xE0 | (cp >> 12));
        b[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        b[2] = (unsigned char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        b[0] = (unsigned char)(0xF0 | (cp >> 18));
        b[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
        b[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        b[3] = (unsigned char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    return tm_buf_append(out, b, n);
}

/* Decodes the JSON string starting at p[i] == '"' into `out` (when not NULL), keeping NULs.
 * Returns the index after the closing quote, or 0 on malformed input. */
static size_t decode_string(const char *p, size_t n, size_t i, struct tm_buf *out)
{
    i++; /* opening quote */
    while (i < n) {
        size_t run = i;
        while (i < n && p[i] != '"' && p[i] != '\\')
            i++;
        if (out != NULL && i > run && tm_buf_append(out, p + run, i - run) < 0)
            return 0;
        if (i >= n)
            return 0;
        if (p[i] == '"')
            return i + 1;
        if (i + 1 >= n)
            return 0;
        char e = p[i + 1];
        i += 2;
        unsigned cp;
        switch (e) {
        case '"':
            cp = '"';
            break;
        case '\\':
            cp = '\\';
            break;
        case '/':
            cp = '/';
            break;
        case 'b':
            cp = '\b';
            break;
        case 'f':
            cp = '\f';
            break;
        case 'n':
            cp = '\n';
            break;
        case 'r':
            cp = '\r';
            break;
        case 't':
            cp = '\t';
            break;
        case 'u':
            if (n - i < 4 || hex4(p + i, &cp) < 0)
                return 0;
            i += 4;
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
            break;
        default:
            return 0;
        }
        if (out != NULL && put_utf8(out, cp) < 0)
            return 0;
    }
    return 0;
}

/* Index after the JSON value at p[i], or 0 on malformed input. */
static size_t skip_value(const char *p, size_t n, size_t i)
{
    size_t depth = 0;
    while (i < n) {
        char c = p[i];
        if (c == '"') {
            i = decode_string(p, n, i, NULL);
            if (i == 0)
                return 0;
        } else if (c == '{' || c == '[') {
            depth++;
            i++;
        } else if (c == '}' || c == ']') {
            if (depth == 0)
                return i; /* the container around the value ends */
            depth--;
            i++;
        } else if (c == ',' && depth == 0) {
            return i;
        } else {
            i++;
        }
        if (depth == 0 && (c == '"' || c == '}' || c == ']'))
            return i;
    }
    return depth == 0 ? i : 0;
}

/* Finds the first member named field[0..flen) of the top-level object in p[0..n) and, when it
 * is a string, decodes it into `out`. Returns 1 when decoded, 0 otherwise. The first match wins,
 * as with cJSON_GetObjectItemCaseSensitive. */
static int raw_string_field(const char *p, size_t n, const char *field, struct tm_buf *key,
                            struct tm_buf *out)
{
    size_t flen = strlen(field);
    size_t i = skip_space(p, n, 0);
    if (i >= n || p[i] != '{')
        return 0;
    i++;
    for (;;) {
        i = skip_space(p, n, i);
        if (i >= n || p[i] != '"')
            return 0;
        tm_buf_reset(key);
        i = decode_string(p, n, i, key);
        if (i == 0)
            return 0;
        i = skip_space(p, n, i);
        if (i >= n || p[i] != ':')
            return 0;
        i = skip_space(p, n, i + 1);
        if (i >= n)
            return 0;
        if (key->len == flen && memcmp(key->data, field, flen) == 0) {
            if (p[i] != '"')
                return 0;
            return decode_string(p, n, i, out) != 0;
        }
        i = skip_value(p, n, i);
        if (i == 0)
            return 0;
        i = skip_space(p, n, i);
        if (i >= n || p[i] != ',')
            return 0;
        i++;
    }
}

/* Non-zero when a string in the line may hold a NUL that cJSON would cut at. "\\u0000" can
 * match falsely (an escaped backslash before "u0000"); the re-decode is then merely redundant. */
static int may_hold_nul(const char *p, size_t n)
{
    return memchr(p, '\0', n) != NULL || memmem(p, n, "\\u0000", 6) != NULL;
}

/* ---- The reader -------------------------------------------------------------------------- */

struct jsonl_line {
    const char *p;
    size_t n;
    uint64_t position;
};

static void problem(struct ing_sink *sink, uint64_t position, const char *reason,
                    const char *detail)
{
    sink->problem(sink->ctx, position, reason, detail);
}

/* Handles one non-blank line. Returns TM_OK (a record or a problem was delivered) or the
 * sink's error. */
static int jsonl_line(const struct jsonl_line *ln, const struct ing_jsonl_opts *o,
                      struct ing_sink *sink, struct tm_buf *text, struct tm_buf *key)
{
    const char *text_field = o->text_field && o->text_field[0] ? o->text_field : "text";
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(ln->p, ln->n, &end, 0);
    cJSON *text_item = NULL;
    char *meta = NULL;
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
    text_item = cJSON_GetObjectItemCaseSensitive(root, text_field);
    if (text_item == NULL || !cJSON_IsString(text_item) || text_item->valuestring == NULL) {
        problem(sink, ln->position, "missing_text",
                text_item == NULL ? "no text field" : "the text field is not a string");
        text_item = NULL;
        goto out;
    }

    int domain = -1;
    if (o->domain_field && o->domain_field[0]) {
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(root, o->domain_field);
        if (d != NULL) {
            domain = cJSON_IsString(d) && d->valuestring ? tm_domain_parse(d->valuestring) : -1;
            if (domain < 0) {
                problem(sink, ln->position, "bad_domain",
                        "the domain field is not \"text\", \"math\" or \"code\"");
                text_item = NULL;
                goto out;
            }
        }
    }
    const char *lang = NULL;
    if (o->lang_field && o->lang_field[0]) {
        const cJSON *l = cJSON_GetObjectItemCaseSensitive(root, o->lang_field);
        if (cJSON_IsString(l) && l->valuestring && l->valuestring[0])
            lang = l->valuestring;
    }

    /* The text leaves the tree so that the metadata is "everything else". */
    cJSON_DetachItemViaPointer(root, text_item);
    struct ing_record rec = {0};
    rec.text = text_item->valuestring;
    rec.text_len = strlen(text_item->valuestring);
    if (may_hold_nul(ln->p, ln->n)) {
        tm_buf_reset(text);
        if (raw_string_field(ln->p, ln->n, text_field, key, text)) {
            if (text->len > rec.text_len) {
                rec.text = text->data;
                rec.text_len = text->len;
            }
        } else if (sink->count) {
            /* Not expected for a line cJSON accepted; if it happens, cJSON's text may be cut at
             * a NUL, and that must not pass unnoticed. */
            sink->count(sink->ctx, "jsonl_nul_truncated");
        }
    }
    meta = cJSON_PrintUnformatted(root);
    if (meta == NULL) {
        rc = TM_ERR_NOMEM;
        goto out;
    }
    rec.meta = meta;
    rec.meta_len = strlen(meta);
    rec.domain = domain;
    rec.lang = lang;
    rec.name = NULL;
    rec.position = ln->position;
    rc = sink->record(sink->ctx, &rec);

out:
    cJSON_free(meta);
    if (text_item != NULL)
        cJSON_Delete(text_item);
    cJSON_Delete(root);
    return rc;
}

int ing_jsonl_read(struct ing_reader *r, const struct ing_jsonl_opts *o, struct ing_sink *sink)
{
    size_t max = o->max_line ? o->max_line : JSONL_DEFAULT_MAX_LINE;
    struct tm_buf text, key;
    int rc;

    /* The re-decoded text is never longer than its line. */
    tm_buf_init(&text, max);
    tm_buf_init(&key, max);
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
        rc = jsonl_line(&ln, o, sink, &text, &key);
        if (rc < 0)
            break;
    }
    tm_buf_release(&key);
    tm_buf_release(&text);
    return rc;
}
