/* ing_warc.c: WARC 1.0/1.1 records (ISO 28500), reduced to documents.
 *
 * A record is a version line, header lines up to an empty line, a block of exactly
 * Content-Length bytes, and two line ends. Content-Length is the only framing, so a record whose
 * header cannot be trusted is reported once and the reader scans forward, line by line, to the
 * next "WARC/1." line. Only response records carrying HTTP are turned into documents; their
 * block is held in memory (bounded by max_record) because the HTTP payload must be de-chunked,
 * converted and reduced as a whole. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>

#include "ing_internal.h"
#include "../core/tm_err.h"
#include "../core/tm_log.h"

/* One header line: real target URIs stay far below this (browsers cap URLs near 64 KiB). */
#define WARC_LINE_MAX ((size_t)64 << 10)
/* A record's whole header section; real ones are a few hundred bytes. */
#define WARC_HEADER_MAX ((size_t)1 << 20)
/* Used when the caller gives no max_record. */
#define WARC_DEFAULT_MAX_RECORD ((size_t)64 << 20)
/* windows-1252 turns one byte into at most three UTF-8 bytes (0x80 -> U+20AC). */
#define WARC_CONV_GROWTH 3
/* The WHATWG encoding sniffing prescan looks at this many bytes for <meta charset>. */
#define WARC_META_PRESCAN 1024

enum warc_field { WF_TYPE, WF_LENGTH, WF_URI, WF_DATE, WF_ID, WF_CTYPE, WF_COUNT };

/* The WARC headers this reader uses; others are ignored. */
static const char *const warc_field_names[WF_COUNT] = {
    [WF_TYPE] = "WARC-Type", [WF_LENGTH] = "Content-Length", [WF_URI] = "WARC-Target-URI",
    [WF_DATE] = "WARC-Date", [WF_ID] = "WARC-Record-ID",     [WF_CTYPE] = "Content-Type",
};

enum http_field { HF_CTYPE, HF_TENC, HF_CENC, HF_COUNT };

static const char *const http_field_names[HF_COUNT] = {
    [HF_CTYPE] = "Content-Type",
    [HF_TENC] = "Transfer-Encoding",
    [HF_CENC] = "Content-Encoding",
};

/* Charset labels read as windows-1252. Following the WHATWG Encoding Standard, ISO-8859-1 and
 * ASCII labels mean windows-1252 too: web pages so labelled use 0x80-0x9F as windows-1252 far
 * more often than as C1 controls. */
static const char *const latin_labels[] = {
    "iso-8859-1",   "iso8859-1", "iso_8859-1", "latin1",     "latin-1",
    "l1",           "cp819",     "ibm819",     "iso-ir-100", "csisolatin1",
    "windows-1252", "cp1252",    "x-cp1252",   "us-ascii",   "ascii",
};

static const char *const utf8_labels[] = {"utf-8", "utf8", "unicode-1-1-utf-8"};

/* windows-1252 0x80-0x9F; the five undefined bytes map to the C1 control of the same value,
 * as WHATWG's index does. */
static const unsigned short cp1252_high[32] = {
    0x20AC, 0x0081, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160,
    0x2039, 0x0152, 0x008D, 0x017D, 0x008F, 0x0090, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022,
    0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x009D, 0x017E, 0x0178,
};

struct warc {
    struct ing_reader *r;
    struct ing_sink *sink;
    size_t max_record;
    int resyncing;        /* skipping the rest of a record already reported */
    int pending;          /* a "WARC/1." line was read while parsing a header */
    uint64_t pending_off; /* ... at this offset */
    int version_ok;       /* the last "WARC/1." line was "WARC/1.0" or "WARC/1.1" */
    struct tm_buf hdr;    /* wanted header values, each followed by a NUL */
    size_t val[WF_COUNT]; /* offset of each value in hdr, or SIZE_MAX when absent */
    struct tm_buf block;  /* the record block (response records only) */
    struct tm_buf conv;   /* payload converted to UTF-8 */
    struct tm_buf text;   /* text reduced from HTML */
    struct tm_buf name;   /* the URL path, for ing_record.name */
};

/* ---- Small helpers ----------------------------------------------------------------------- */

static void trim(const char **p, size_t *n);

/* Remembers whether a record start line names a version this reader knows. */
static void note_version(struct warc *w, const char *line, size_t len)
{
    trim(&line, &len);
    w->version_ok =
        len == 8 && (memcmp(line, "WARC/1.0", 8) == 0 || memcmp(line, "WARC/1.1", 8) == 0);
}

static void problem(struct warc *w, uint64_t position, const char *reason, const char *detail)
{
    w->sink->problem(w->sink->ctx, position, reason, detail);
}

static void count(struct warc *w, const char *key)
{
    if (w->sink->count)
        w->sink->count(w->sink->ctx, key);
}

static int is_hspace(char c)
{
    return c == ' ' || c == '\t';
}

static void trim(const char **p, size_t *n)
{
    while (*n > 0 && is_hspace(**p)) {
        (*p)++;
        (*n)--;
    }
    while (*n > 0 && (is_hspace((*p)[*n - 1]) || (*p)[*n - 1] == '\r'))
        (*n)--;
}

static int eq_nocase(const char *p, size_t n, const char *s)
{
    return strlen(s) == n && strncasecmp(p, s, n) == 0;
}

static int starts_with(const char *p, size_t n, const char *s)
{
    size_t k = strlen(s);
    return n >= k && memcmp(p, s, k) == 0;
}

static int in_table(const char *p, size_t n, const char *const *table, size_t count_)
{
    for (size_t i = 0; i < count_; i++)
        if (eq_nocase(p, n, table[i]))
            return 1;
    return 0;
}

/* Non-zero when p[0..n) is well-formed UTF-8 (NUL and CR allowed: they are still UTF-8). */
static int utf8_valid(const unsigned char *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char c = p[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t k;
        unsigned lo = 0x80, hi = 0xBF;
        if (c >= 0xC2 && c <= 0xDF) {
            k = 1;
        } else if (c >= 0xE0 && c <= 0xEF) {
            k = 2;
            if (c == 0xE0)
                lo = 0xA0; /* overlong */
            else if (c == 0xED)
                hi = 0x9F; /* surrogates */
        } else if (c >= 0xF0 && c <= 0xF4) {
            k = 3;
            if (c == 0xF0)
                lo = 0x90;
            else if (c == 0xF4)
                hi = 0x8F;
        } else {
            return 0;
        }
        if (n - i <= k || p[i + 1] < lo || p[i + 1] > hi)
            return 0;
        for (size_t j = 2; j <= k; j++)
            if (p[i + j] < 0x80 || p[i + j] > 0xBF)
                return 0;
        i += k + 1;
    }
    return 1;
}

/* Appends windows-1252 text as UTF-8. */
static int cp1252_to_utf8(const unsigned char *p, size_t n, struct tm_buf *out)
{
    for (size_t i = 0; i < n;) {
        size_t run = i;
        while (i < n && p[i] < 0x80)
            i++;
        if (i > run && tm_buf_append(out, p + run, i - run) < 0)
            return TM_ERR_TOOBIG;
        if (i == n)
            break;
        unsigned cp = p[i] < 0xA0 ? cp1252_high[p[i] - 0x80] : p[i];
        unsigned char b[3];
        size_t k;
        if (cp < 0x800) {
            b[0] = (unsigned char)(0xC0 | (cp >> 6));
            b[1] = (unsigned char)(0x80 | (cp & 0x3F));
            k = 2;
        } else {
            b[0] = (unsigned char)(0xE0 | (cp >> 12));
            b[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
            b[2] = (unsigned char)(0x80 | (cp & 0x3F));
            k = 3;
        }
        int rc = tm_buf_append(out, b, k);
        if (rc < 0)
            return rc;
        i++;
    }
    return TM_OK;
}

/* Parses a Content-Length: decimal digits only, no sign, no overflow. */
static int parse_length(const char *p, size_t n, uint64_t *out)
{
    uint64_t v = 0;
    if (n == 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        unsigned d = (unsigned)(p[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

/* Finds parameter `name` in the parameters of a media type value ("text/html; charset=x").
 * The value is returned without quotes. */
static int media_param(const char *p, size_t n, const char *name, const char **v, size_t *vn)
{
    const char *semi = memchr(p, ';', n);
    while (semi != NULL) {
        const char *q = semi + 1;
        size_t left = (size_t)(p + n - q);
        const char *next = memchr(q, ';', left);
        size_t len = next ? (size_t)(next - q) : left;
        const char *eq = memchr(q, '=', len);
        if (eq != NULL) {
            const char *k = q;
            size_t kn = (size_t)(eq - q);
            const char *val = eq + 1;
            size_t valn = len - kn - 1;
            trim(&k, &kn);
            trim(&val, &valn);
            if (valn >= 2 && val[0] == '"' && val[valn - 1] == '"') {
                val++;
                valn -= 2;
            }
            if (eq_nocase(k, kn, name)) {
                *v = val;
                *vn = valn;
                return 1;
            }
        }
        semi = next;
    }
    return 0;
}

/* The media type of a Content-Type value, without parameters. */
static void media_type(const char *p, size_t n, const char **t, size_t *tn)
{
    const char *semi = memchr(p, ';', n);
    *t = p;
    *tn = semi ? (size_t)(semi - p) : n;
    trim(t, tn);
}

/* A charset declared in the first bytes of an HTML page (<meta charset=...> or the
 * http-equiv form, which both carry "charset="), for pages whose HTTP header has none. */
static int html_meta_charset(const char *p, size_t n, const char **v, size_t *vn)
{
    static const char key[] = "charset=";
    size_t kn = sizeof(key) - 1;
    if (n > WARC_META_PRESCAN)
        n = WARC_META_PRESCAN;
    for (size_t i = 0; i + kn <= n; i++) {
        if (strncasecmp(p + i, key, kn) != 0)
            continue;
        size_t s = i + kn;
        if (s < n && (p[s] == '"' || p[s] == '\''))
            s++;
        size_t e = s;
        while (e < n && (p[e] == '-' || p[e] == '_' || p[e] == ':' || p[e] == '.' ||
                         (p[e] >= '0' && p[e] <= '9') || (p[e] >= 'a' && p[e] <= 'z') ||
                         (p[e] >= 'A' && p[e] <= 'Z')))
            e++;
        if (e > s) {
            *v = p + s;
            *vn = e - s;
            return 1;
        }
    }
    return 0;
}

/* Decodes an HTTP/1.1 chunked body in place (the output never passes the input). Ending
 * exactly at a chunk boundary without the final zero chunk is accepted: the data is whole.
 * Returns 0, or -1 when the chunking is malformed. */
static int dechunk(char *p, size_t n, size_t *out_len)
{
    size_t i = 0, w = 0;
    while (i < n) {
        while (i < n && is_hspace(p[i]))
            i++;
        uint64_t size = 0;
        size_t digits = 0;
        for (; i < n; i++, digits++) {
            char c = p[i];
            unsigned d;
            if (c >= '0' && c <= '9')
                d = (unsigned)(c - '0');
            else if (c >= 'a' && c <= 'f')
                d = (unsigned)(c - 'a' + 10);
            else if (c >= 'A' && c <= 'F')
                d = (unsigned)(c - 'A' + 10);
            else
                break;
            if (size > (UINT64_MAX >> 4))
                return -1;
            size = size * 16 + d;
        }
        if (digits == 0 || i >= n)
            return -1;
        /* Chunk extensions (";name=value") and padding are ignored up to the line end. */
        if (p[i] != ';' && p[i] != '\r' && p[i] != '\n' && !is_hspace(p[i]))
            return -1;
        const char *nl = memchr(p + i, '\n', n - i);
        if (nl == NULL)
            return -1;
        i = (size_t)(nl - p) + 1;
        if (size == 0)
            break; /* trailers, if any, are ignored */
        if (size > n - i)
            return -1;
        memmove(p + w, p + i, (size_t)size);
        w += (size_t)size;
        i += (size_t)size;
        if (i < n && p[i] == '\r')
            i++;
        if (i >= n || p[i] != '\n')
            return -1;
        i++;
    }
    *out_len = w;
    return 0;
}

/* ---- Record framing ---------------------------------------------------------------------- */

/* Reads lines up to the next record start ("WARC/1." line); blank lines are skipped and
 * anything else is garbage, reported once per stretch. Returns 1 with *off set, 0 at end of
 * stream, or the source's error. *garbage is set when something other than blank lines was
 * skipped. */
static int find_record(struct warc *w, uint64_t *off, int *garbage)
{
    for (;;) {
        uint64_t at = w->r->offset;
        const char *line;
        size_t len;
        int rc = ing_reader_line(w->r, WARC_LINE_MAX, &line, &len);
        if (rc < 0)
            return rc;
        if (rc == TM_OK && line == NULL)
            return 0;
        if (rc == TM_OK) {
            trim(&line, &len);
            if (len == 0)
                continue;
            if (starts_with(line, len, "WARC/1.")) {
                note_version(w, line, len);
                *off = at;
                w->resyncing = 0;
                return 1;
            }
        }
        *garbage = 1;
        if (!w->resyncing) {
            w->resyncing = 1;
            problem(w, at, "bad_warc_header", "expected a \"WARC/1.0\" or \"WARC/1.1\" line");
        }
    }
}

static void bad_header(struct warc *w, uint64_t off, const char *detail)
{
    problem(w, off, "bad_warc_header", detail);
    w->resyncing = 1; /* what follows belongs to this record: skip it silently */
}

static int is_token_char(unsigned char c)
{
    return c > ' ' && c < 0x7F && c != ':';
}

/* Parses the header lines after the version line. Returns 1 when the header is complete, 0
 * when the record was reported (bad or truncated; *end set when the stream ended), or a
 * source error. */
static int read_header(struct warc *w, uint64_t off, int *end)
{
    size_t total = 0;
    int last = -1; /* the field a continuation line extends */

    tm_buf_reset(&w->hdr);
    for (int f = 0; f < WF_COUNT; f++)
        w->val[f] = SIZE_MAX;
    for (;;) {
        uint64_t at = w->r->offset;
        const char *line;
        size_t len;
        int rc = ing_reader_line(w->r, WARC_LINE_MAX, &line, &len);
        if (rc < 0)
            return rc;
        if (rc == ING_LINE_TOOLONG) {
            bad_header(w, off, "header line too long");
            return 0;
        }
        if (line == NULL) {
            problem(w, off, "truncated_record", "the stream ends inside a record header");
            *end = 1;
            return 0;
        }
        if (len > 0 && line[len - 1] == '\r')
            len--;
        if (len == 0)
            return 1;
        total += len;
        if (total > WARC_HEADER_MAX) {
            bad_header(w, off, "record header too large");
            return 0;
        }
        if (starts_with(line, len, "WARC/1.")) {
            /* The header was cut short by the next record: report this one, parse that one. */
            problem(w, off, "bad_warc_header", "record header cut short by a new record");
            note_version(w, line, len);
            w->pending = 1;
            w->pending_off = at;
            return 0;
        }
        if (is_hspace(line[0])) {
            /* A folded continuation line (WARC allows them, as HTTP/1.0 did). */
            if (last >= 0) {
                trim(&line, &len);
                w->hdr.len--; /* drop the NUL, extend the value, put the NUL back */
                if (tm_buf_putc(&w->hdr, ' ') < 0 || tm_buf_append(&w->hdr, line, len) < 0 ||
                    tm_buf_putc(&w->hdr, '\0') < 0) {
                    bad_header(w, off, "record header too large");
                    return 0;
                }
            }
            continue;
        }
        const char *colon = memchr(line, ':', len);
        size_t name_len = colon ? (size_t)(colon - line) : 0;
        for (size_t i = 0; i < name_len; i++)
            if (!is_token_char((unsigned char)line[i]))
                name_len = 0;
        if (name_len == 0) {
            bad_header(w, off, "malformed header line");
            return 0;
        }
        last = -1;
        for (int f = 0; f < WF_COUNT; f++) {
            if (w->val[f] != SIZE_MAX || !eq_nocase(line, name_len, warc_field_names[f]))
                continue;
            const char *v = colon + 1;
            size_t vn = len - name_len - 1;
            trim(&v, &vn);
            w->val[f] = w->hdr.len;
            if (tm_buf_append(&w->hdr, v, vn) < 0 || tm_buf_putc(&w->hdr, '\0') < 0) {
                bad_header(w, off, "record header too large");
                return 0;
            }
            last = f;
            break;
        }
    }
}

static const char *field(const struct warc *w, enum warc_field f)
{
    return w->val[f] == SIZE_MAX ? NULL : w->hdr.data + w->val[f];
}

/* Consumes the two line ends after a block. Lenient where no harm is done: LF alone, a single
 * line end right before the next "WARC/" line, or the end of the stream are accepted. Returns 1
 * when they are there, 0 when something else follows (Content-Length was wrong), or an error. */
static int read_separator(struct warc *w)
{
    for (int k = 0; k < 2; k++) {
        const char *p;
        size_t avail = ing_reader_peek(w->r, 2, &p);
        if (avail == 0)
            return w->r->err ? w->r->err : 1;
        if (p[0] == '\n') {
            ing_reader_skip(w->r, 1);
        } else if (p[0] == '\r' && (avail == 1 || p[1] == '\n')) {
            ing_reader_skip(w->r, avail == 1 ? 1 : 2);
        } else if (k == 1 && p[0] == 'W') {
            return 1;
        } else {
            return 0;
        }
    }
    return 1;
}

/* ---- Response payloads ------------------------------------------------------------------- */

struct http_msg {
    int status;
    const char *val[HF_COUNT];
    size_t len[HF_COUNT];
    char *body;
    size_t body_len;
};

/* Parses the HTTP status line and headers at the start of the block. A header section that
 * runs to the end of the block is taken as a response without a body. */
static int parse_http(char *p, size_t n, struct http_msg *m)
{
    memset(m, 0, sizeof(*m));
    if (n < 5)
        return -1; /* also keeps an empty block's NULL data away from memchr */
    const char *nl = memchr(p, '\n', n);
    size_t ll = nl ? (size_t)(nl - p) : n;
    if (ll > 0 && p[ll - 1] == '\r')
        ll--;
    /* "HTTP/x.y NNN reason" (the reason may be empty or missing) */
    size_t i = 5;
    if (!starts_with(p, ll, "HTTP/"))
        return -1;
    while (i < ll && !is_hspace(p[i]))
        i++;
    while (i < ll && is_hspace(p[i]))
        i++;
    if (ll - i < 3 || (ll - i > 3 && !is_hspace(p[i + 3])))
        return -1;
    for (size_t k = 0; k < 3; k++) {
        if (p[i + k] < '0' || p[i + k] > '9')
            return -1;
        m->status = m->status * 10 + (p[i + k] - '0');
    }
    size_t pos = nl ? (size_t)(nl - p) + 1 : n;
    while (pos < n) {
        nl = memchr(p + pos, '\n', n - pos);
        size_t end = nl ? (size_t)(nl - p) : n;
        const char *line = p + pos;
        size_t len = end - pos;
        pos = nl ? end + 1 : n;
        if (len > 0 && line[len - 1] == '\r')
            len--;
        if (len == 0) {
            m->body = p + pos;
            m->body_len = n - pos;
            return 0;
        }
        const char *colon = memchr(line, ':', len);
        if (colon == NULL || is_hspace(line[0]))
            continue; /* folded or malformed lines carry nothing this reader needs */
        size_t name_len = (size_t)(colon - line);
        for (int f = 0; f < HF_COUNT; f++) {
            if (m->val[f] != NULL || !eq_nocase(line, name_len, http_field_names[f]))
                continue;
            const char *v = colon + 1;
            size_t vn = len - name_len - 1;
            trim(&v, &vn);
            m->val[f] = v;
            m->len[f] = vn;
        }
    }
    m->body = p + n;
    m->body_len = 0;
    return 0;
}

/* Non-zero when a Content-Encoding or Transfer-Encoding list holds a coding other than
 * identity (and, for transfer codings, chunked), i.e. a compressed payload. *chunked is set
 * when the last transfer coding is chunked. */
static int has_compression(const char *p, size_t n, int *chunked)
{
    int other = 0;
    while (n > 0) {
        const char *comma = memchr(p, ',', n);
        size_t tn = comma ? (size_t)(comma - p) : n;
        const char *t = p;
        size_t k = tn;
        trim(&t, &k);
        if (chunked != NULL)
            *chunked = eq_nocase(t, k, "chunked");
        if (k > 0 && !eq_nocase(t, k, "identity") && !eq_nocase(t, k, "chunked"))
            other = 1;
        if (chunked == NULL && eq_nocase(t, k, "chunked"))
            other = 1; /* "chunked" is not a content coding */
        if (comma == NULL)
            break;
        p = comma + 1;
        n -= tn + 1;
    }
    return other;
}

/* Adds a string member, with bytes that are not UTF-8 replaced so the JSON stays valid;
 * `lower` lower-cases ASCII (media types, so that statistics group by them). */
static int meta_string(cJSON *obj, const char *key, const char *v, size_t n, int lower,
                       struct tm_buf *tmp)
{
    tm_buf_reset(tmp);
    if (tm_buf_append(tmp, v, n) < 0)
        return TM_ERR_TOOBIG;
    int valid = utf8_valid((const unsigned char *)tmp->data, tmp->len);
    for (size_t i = 0; i < tmp->len; i++) {
        unsigned char c = (unsigned char)tmp->data[i];
        if (c >= 0x80 && !valid)
            tmp->data[i] = '?';
        else if (lower && c >= 'A' && c <= 'Z')
            tmp->data[i] = (char)(c - 'A' + 'a');
    }
    return cJSON_AddStringToObject(obj, key, tmp->data) ? TM_OK : TM_ERR_NOMEM;
}

/* The path of a URL ("/a/b.py" from "http://host/a/b.py?q"), as a name hint. */
static void url_path(const char *url, size_t n, struct tm_buf *out)
{
    const char *end = url + n;
    const char *p = url;
    const char *scheme = memmem(url, n, "://", 3);
    tm_buf_reset(out);
    if (scheme != NULL) {
        p = memchr(scheme + 3, '/', (size_t)(end - scheme - 3));
        if (p == NULL)
            p = end;
    }
    size_t k = 0;
    while (p + k < end && p[k] != '?' && p[k] != '#')
        k++;
    if (k == 0)
        tm_buf_puts(out, "/");
    else
        tm_buf_append(out, p, k);
}

/* Turns a response record into a document. Returns TM_OK or the sink's error. */
static int response(struct warc *w, uint64_t off)
{
    const char *wct = field(w, WF_CTYPE);
    const char *t, *v;
    size_t tn, vn;
    struct http_msg m;
    int rc = TM_OK;

    media_type(wct ? wct : "", wct ? strlen(wct) : 0, &t, &tn);
    if (!eq_nocase(t, tn, "application/http") ||
        (media_param(wct, strlen(wct), "msgtype", &v, &vn) && !eq_nocase(v, vn, "response"))) {
        count(w, "warc_skipped_content_type");
        return TM_OK;
    }
    if (parse_http(w->block.data, w->block.len, &m) < 0) {
        problem(w, off, "bad_http_response", "malformed HTTP status line");
        return TM_OK;
    }
    int chunked = 0;
    if ((m.val[HF_CENC] && has_compression(m.val[HF_CENC], m.len[HF_CENC], NULL)) ||
        (m.val[HF_TENC] && has_compression(m.val[HF_TENC], m.len[HF_TENC], &chunked))) {
        count(w, "warc_skipped_content_encoding");
        return TM_OK;
    }
    if (chunked && dechunk(m.body, m.body_len, &m.body_len) < 0) {
        problem(w, off, "bad_chunked_encoding", "malformed chunked transfer encoding");
        return TM_OK;
    }

    const char *ct = m.val[HF_CTYPE] ? m.val[HF_CTYPE] : "";
    size_t ctn = m.val[HF_CTYPE] ? m.len[HF_CTYPE] : 0;
    media_type(ct, ctn, &t, &tn);
    int html = eq_nocase(t, tn, "text/html") || eq_nocase(t, tn, "application/xhtml+xml");
    if (!html && !eq_nocase(t, tn, "text/plain")) {
        count(w, "warc_skipped_content_type");
        return TM_OK;
    }

    const char *body = m.body;
    size_t body_len = m.body_len;
    if (!utf8_valid((const unsigned char *)body, body_len)) {
        int have = media_param(ct, ctn, "charset", &v, &vn);
        if (!have && html)
            have = html_meta_charset(body, body_len, &v, &vn);
        if (have && in_table(v, vn, latin_labels, sizeof(latin_labels) / sizeof(*latin_labels))) {
            tm_buf_reset(&w->conv);
            w->conv.max = body_len > SIZE_MAX / 2 / WARC_CONV_GROWTH
                              ? SIZE_MAX / 2
                              : body_len * WARC_CONV_GROWTH + 1;
            if (cp1252_to_utf8((const unsigned char *)body, body_len, &w->conv) < 0) {
                problem(w, off, "record_too_large", "payload too large to convert");
                return TM_OK;
            }
            body = w->conv.data;
            body_len = w->conv.len;
            count(w, "warc_converted_latin1");
        } else if (have &&
                   !in_table(v, vn, utf8_labels, sizeof(utf8_labels) / sizeof(*utf8_labels))) {
            /* Kept as is: normalization repairs the bytes; the count shows how often. */
            count(w, "warc_unsupported_charset");
        }
    }
    if (html) {
        tm_buf_reset(&w->text);
        if (ing_html_to_text(body, body_len, &w->text) < 0) {
            problem(w, off, "record_too_large", "text of the HTML page too large");
            return TM_OK;
        }
        body = w->text.data ? w->text.data : "";
        body_len = w->text.len;
    }

    struct tm_buf tmp;
    tm_buf_init(&tmp, 0);
    cJSON *meta = cJSON_CreateObject();
    char *meta_text = NULL;
    const char *uri = field(w, WF_URI);
    const char *date = field(w, WF_DATE);
    const char *id = field(w, WF_ID);
    size_t un = uri ? strlen(uri) : 0;
    if (un >= 2 && uri[0] == '<' && uri[un - 1] == '>') {
        uri++; /* WARC/1.0 examples wrote the URI in angle brackets; some writers copied it */
        un -= 2;
    }
    if (meta == NULL || (uri && meta_string(meta, "url", uri, un, 0, &tmp) < 0) ||
        (date && meta_string(meta, "date", date, strlen(date), 0, &tmp) < 0) ||
        (id && meta_string(meta, "record_id", id, strlen(id), 0, &tmp) < 0) ||
        (tn > 0 && meta_string(meta, "content_type", t, tn, 1, &tmp) < 0) ||
        cJSON_AddNumberToObject(meta, "http_status", m.status) == NULL ||
        (meta_text = cJSON_PrintUnformatted(meta)) == NULL) {
        rc = TM_ERR_NOMEM;
        goto out;
    }
    struct ing_record rec = {0};
    rec.text = body;
    rec.text_len = body_len;
    rec.meta = meta_text;
    rec.meta_len = strlen(meta_text);
    rec.domain = -1;
    rec.lang = NULL;
    rec.name = NULL;
    if (uri != NULL) {
        url_path(uri, un, &w->name);
        rec.name = w->name.data; /* NULL if even the empty path could not be stored */
    }
    rec.position = off;
    rc = w->sink->record(w->sink->ctx, &rec);

out:
    cJSON_free(meta_text);
    cJSON_Delete(meta);
    tm_buf_release(&tmp);
    return rc;
}

/* Reads one record whose version line was at `off`. Returns TM_OK to go on, 1 at end of
 * stream, or an error. */
static int record(struct warc *w, uint64_t off)
{
    int end = 0;
    if (!w->version_ok) {
        bad_header(w, off, "unsupported WARC version");
        return TM_OK;
    }
    int rc = read_header(w, off, &end);
    if (rc < 0)
        return rc;
    if (rc == 0)
        return end ? 1 : TM_OK;

    const char *cl = field(w, WF_LENGTH);
    uint64_t length;
    if (cl == NULL) {
        bad_header(w, off, "missing Content-Length");
        return TM_OK;
    }
    if (parse_length(cl, strlen(cl), &length) < 0) {
        bad_header(w, off, "invalid Content-Length");
        return TM_OK;
    }
    const char *type = field(w, WF_TYPE);
    int is_response = type != NULL && strcasecmp(type, "response") == 0;
    int keep = 0;
    if (!is_response) {
        count(w, "warc_records_not_response");
    } else if (length > w->max_record) {
        char detail[96];
        snprintf(detail, sizeof(detail), "record block of %llu bytes, the limit is %zu",
                 (unsigned long long)length, w->max_record);
        problem(w, off, "record_too_large", detail);
    } else {
        keep = 1;
    }

    if (keep) {
        tm_buf_reset(&w->block);
        rc = ing_reader_read(w->r, length, &w->block);
    } else {
        rc = ing_reader_skip(w->r, length);
    }
    if (rc == TM_ERR_FORMAT) {
        if (keep || !is_response)
            problem(w, off, "truncated_record", "the stream ends inside a record block");
        return 1;
    }
    if (rc < 0)
        return rc;
    rc = read_separator(w);
    if (rc < 0)
        return rc;
    if (rc == 0) {
        bad_header(w, off, "the block does not end where Content-Length says");
        return TM_OK;
    }
    return keep ? response(w, off) : TM_OK;
}

int ing_warc_read(struct ing_reader *r, const struct ing_warc_opts *o, struct ing_sink *sink)
{
    struct warc w;
    int rc = TM_OK;
    int records = 0, garbage = 0;

    memset(&w, 0, sizeof(w));
    w.r = r;
    w.sink = sink;
    w.max_record = o && o->max_record ? o->max_record : WARC_DEFAULT_MAX_RECORD;
    tm_buf_init(&w.hdr, WARC_HEADER_MAX * 2);
    tm_buf_init(&w.block, w.max_record);
    tm_buf_init(&w.conv, 0);
    tm_buf_init(&w.text, w.max_record > SIZE_MAX / 2 / WARC_CONV_GROWTH
                             ? 0
                             : w.max_record * WARC_CONV_GROWTH);
    tm_buf_init(&w.name, WARC_LINE_MAX);
    for (;;) {
        uint64_t off;
        if (w.pending) {
            off = w.pending_off;
            w.pending = 0;
        } else {
            rc = find_record(&w, &off, &garbage);
            if (rc < 0)
                break;
            if (rc == 0) {
                rc = TM_OK;
                break;
            }
        }
        records++;
        rc = record(&w, off);
        if (rc < 0)
            break;
        if (rc == 1) {
            rc = TM_OK;
            break;
        }
    }
    if (rc == TM_OK && records == 0 && garbage) {
        tm_log_warn("warc: no WARC record found in the stream");
        rc = TM_ERR_FORMAT;
    }
    tm_buf_release(&w.name);
    tm_buf_release(&w.text);
    tm_buf_release(&w.conv);
    tm_buf_release(&w.block);
    tm_buf_release(&w.hdr);
    return rc;
}
