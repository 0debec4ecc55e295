/* ing_internal.h: the pieces ingest is built from, shared by ingest's own files, its unit tests
 * and its fuzz targets. Not part of the public interface (ingest.h). */
#ifndef ING_INTERNAL_H
#define ING_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "../core/tm_buf.h"

/* ---- Text normalization (ing_text.c) ----------------------------------------------------- */

struct ing_norm_stats {
    uint64_t utf8_repairs; /* U+FFFD substitutions made */
    uint64_t nul_removed;  /* NUL bytes dropped */
    uint64_t crlf;         /* CRs dropped before an LF */
};

/* Appends the normalized form of in[0..n) to `out`: valid UTF-8 (each maximal ill-formed
 * subpart, as Unicode 15 ch. 3 "U+FFFD substitution of maximal subparts" defines it, becomes one
 * U+FFFD; surrogates and overlongs are ill-formed), NUL bytes removed, CRLF turned into LF (so
 * is a run of CRs before an LF, e.g. CRCRLF from a file converted twice; each CR dropped counts
 * in `crlf`; a lone CR is kept). The output never holds CRLF, so normalizing twice changes
 * nothing. Adds to *st. TM_OK or TM_ERR_TOOBIG when `out` would pass its cap (out is
 * then left with a prefix; callers discard it). ASCII runs are copied 8 bytes at a time. */
int ing_normalize(const char *in, size_t n, struct tm_buf *out, struct ing_norm_stats *st);

/* Non-zero when in[0..n) is valid UTF-8 without NUL and without CR, i.e. ing_normalize() would
 * copy it unchanged. */
int ing_is_clean(const char *in, size_t n);

/* ---- Content kinds and domains (ing_detect.c) --------------------------------------------- */

enum ing_kind {
    ING_KIND_TEXT = 0, /* plain text or source code: one document */
    ING_KIND_JSONL,    /* one JSON object per line */
    ING_KIND_WARC,     /* WARC records */
    ING_KIND_HTML,     /* one HTML document, reduced to text */
    ING_KIND_ROFF,     /* a man page, reduced to text */
    ING_KIND_BINARY,   /* known binary by name (images, objects, archives we do not open) */
};

/* Length of `name` without a trailing compression suffix (.gz .zst .xz .bz2 .lz4 .lzma .Z),
 * i.e. the name the content had before compression. */
size_t ing_strip_compression(const char *name, size_t len);
/* Non-zero when `name` ends in an archive suffix (.tar, .tar.*, .tgz, .tbz2, .txz, .tzst,
 * .zip, .7z, .cpio). */
int ing_is_archive_name(const char *name);
/* The content kind from a file name (compression suffix already stripped) and, when the name
 * says nothing, from the first bytes head[0..n): "WARC/" starts WARC, "<!DOCTYPE html" or
 * "<html" starts HTML, roff starts with ".TH", ".Dd", ".\\\"" or "'\\\"". */
enum ing_kind ing_kind_detect(const char *name, size_t name_len, const char *head, size_t n);

/* Non-zero when the sample looks binary: a known binary magic (ELF, PNG, JPEG, GIF, PDF, ZIP,
 * gzip, ...), or more than 10% of the sampled bytes (at most the first 8 KiB) are NUL or C0
 * controls other than \t \n \v \f \r and ESC. A few stray NULs in text do not make it binary
 * (they are removed and counted by ing_normalize). */
int ing_is_binary(const unsigned char *p, size_t n);

/* Code language from a file name: extension (".c" -> "c", ".hpp" -> "cpp", ".py" -> "python",
 * ...) or a well-known base name ("Makefile" -> "make", "CMakeLists.txt" -> "cmake",
 * "Dockerfile" -> "dockerfile"). NULL when the name says nothing. ".h" gives "c" (C++ headers
 * under /usr/include without an extension are found by content). */
const char *ing_lang_from_name(const char *name, size_t len);
/* Language from a "#!" first line ("#!/usr/bin/env python3" -> "python", sh/bash/dash -> "shell",
 * perl, ruby, node -> "javascript", ...). NULL when there is no shebang or it is unknown. */
const char *ing_lang_from_shebang(const char *text, size_t n);
/* Language from content alone, for files without a telling name: counts of strong markers in
 * the first 16 KiB (#include/#define -> c, with namespace/template/class/std:: -> cpp; def/
 * import/self -> python; ...). NULL when the evidence is weak, so prose stays prose. */
const char *ing_lang_from_content(const char *text, size_t n);

/* Math density heuristic, documented in README "Domains": the number of math markers per
 * 1,000 characters of the first 64 KiB, where markers are inline math spans ($...$, \(...\)),
 * display math ($$...$$, \[...\], \begin{equation|align|...}), LaTeX math commands (\frac,
 * \sqrt, \sum, \int, \alpha..., \cdot, \leq, ...) and Unicode math symbols (U+2200..U+22FF,
 * ×, ÷, ±; not superscript or subscript digits,
 * which prose uses for footnotes and units). */
double ing_math_density(const char *text, size_t n);
/* Markers per 1,000 characters from which a document counts as math. */
#define ING_MATH_THRESHOLD 2.0
/* Markers needed at least (so a two-line note with one $x$ is not math). */
#define ING_MATH_MIN_MARKERS 3

/* Decides the domain (enum tm_domain) and, for code, the language of a document whose member
 * name is name[0..len) (may be empty): name, then shebang, then content for code; then the
 * math heuristic; otherwise text. *lang gets a static string ("und" for text and math). */
int ing_detect_domain(const char *name, size_t len, const char *text, size_t n, const char **lang);

/* ---- Markup reducers (ing_html.c, ing_roff.c) -------------------------------------------- */

/* Appends the text of an HTML document: tags removed; script, style, noscript, template, svg,
 * head content and comments dropped; block elements (p, div, br, li, h1-h6, tr, pre, ...) turn
 * into line breaks; character references decoded (numeric, and the named HTML5 entities in
 * common use; an unknown one is kept as written); runs of spaces collapsed, at most two
 * consecutive newlines. Never fails on malformed markup (unclosed tags, stray '<'); returns
 * TM_OK or TM_ERR_TOOBIG from `out`. */
int ing_html_to_text(const char *html, size_t n, struct tm_buf *out);

/* Appends the text of a roff (man page) source: comment lines dropped; .TH becomes the title;
 * .SH/.SS become headings on their own line; font and text macros (.B .I .BR .IR .RB ...) keep
 * their arguments joined as roff does; paragraph macros (.PP .LP .P .TP .IP .br .sp) become
 * breaks; other requests are dropped; escapes \fB \fI \fR \fP \f(XX are removed, \- \(em \(en
 * \(bu \(aq \(lq \(rq \e \& \(co and others map to text. Never fails on malformed input. */
int ing_roff_to_text(const char *roff, size_t n, struct tm_buf *out);

/* ---- Markup text writer (ing_out.c) ------------------------------------------------------ */

/* The output side of the markup reducers: text appended to a tm_buf with separators held back
 * until the next visible text, so runs of spaces collapse, nothing leads or trails (relative to
 * what `out` held on init), and at most two newlines meet. Callers set `sp` (a pending space)
 * or raise `nl` (pending newlines) directly. The first error from `out` sticks in `rc` and
 * turns every later call into a no-op. Single-threaded; `out` is borrowed for the writer's
 * life. */
struct ing_out {
    struct tm_buf *out;
    size_t start; /* out->len on init: separators only go after our own text */
    int nl;       /* pending newlines */
    int sp;       /* a pending space */
    int rc;       /* TM_OK, or the first error from out (TM_ERR_TOOBIG) */
};

/* Starts writing to `out` (borrowed), after what it already holds. */
void ing_out_init(struct ing_out *w, struct tm_buf *out);

/* Appends p[0..n), preceded by the pending separator: up to two newlines, else one space, and
 * none at the start of the output. n == 0 does nothing (pending separators stay pending). */
void ing_out_put(struct ing_out *w, const char *p, size_t n);

/* ing_out_put() of a NUL-terminated string. */
void ing_out_str(struct ing_out *w, const char *s);

/* Asks for at least k newlines before the next text (k = 2: a paragraph break). */
void ing_out_break(struct ing_out *w, int k);

/* Appends code point `cp` as UTF-8; 0, surrogates and values past U+10FFFF become U+FFFD. */
void ing_out_cp(struct ing_out *w, uint32_t cp);

/* ---- Buffered pull reader (ing_reader.c) -------------------------------------------------- */

/* Reads up to `cap` bytes into buf: returns the count, 0 at end of stream, or a negative
 * tm_err (the source logged the detail). */
typedef long (*ing_read_fn)(void *ctx, void *buf, size_t cap);

struct ing_reader {
    ing_read_fn read;
    void *ctx;
    char *buf;             /* owned */
    size_t size;           /* allocated */
    size_t pos, len;       /* unread bytes are buf[pos..len) */
    uint64_t offset;       /* stream offset of buf[pos] */
    uint64_t line;         /* lines returned so far by ing_reader_line */
    int eof;               /* the source reported end of stream */
    int err;               /* the first error from the source, sticky */
    int borrowed;          /* buf belongs to the caller (ing_reader_init_buf) */
    struct tm_buf scratch; /* assembles lines that span refills */
};

/* bufsize 0 picks 1 MiB. */
void ing_reader_init(struct ing_reader *r, ing_read_fn read, void *ctx, size_t bufsize);
void ing_reader_release(struct ing_reader *r);
/* Like ing_reader_init, but reads into the caller's buffer buf[size] (borrowed until release;
 * the reader switches to its own allocation if a peek asks for more than `size`). Lets a
 * caller reading thousands of small members reuse one buffer. */
void ing_reader_init_buf(struct ing_reader *r, ing_read_fn read, void *ctx, char *buf, size_t size);
/* A reader over a memory buffer (borrowed), for tests and fuzz targets. */
void ing_reader_init_mem(struct ing_reader *r, const void *data, size_t len);

#define ING_LINE_TOOLONG 1 /* positive: not an error, the line was skipped */
/* Reads the next line without its '\n' (a final line without '\n' counts). *line borrows from
 * the reader until the next call. Returns TM_OK, 0 with *line NULL at end of stream,
 * ING_LINE_TOOLONG when the line was longer than `max` bytes (it is consumed whole, its length
 * in *len, without buffering it), or a negative tm_err from the source. */
int ing_reader_line(struct ing_reader *r, size_t max, const char **line, size_t *len);
/* Appends exactly `n` bytes to `out`. TM_ERR_FORMAT if the stream ends first (truncated),
 * TM_ERR_TOOBIG from out's cap, or the source's error. */
int ing_reader_read(struct ing_reader *r, uint64_t n, struct tm_buf *out);
/* Discards `n` bytes. TM_ERR_FORMAT if the stream ends first. */
int ing_reader_skip(struct ing_reader *r, uint64_t n);
/* Peeks: makes at least `n` bytes available if the stream has them and returns how many are
 * (0 at end of stream). */
size_t ing_reader_peek(struct ing_reader *r, size_t n, const char **p);

/* ---- Record readers (ing_jsonl.c, ing_warc.c) -------------------------------------------- */

/* One document candidate handed from a record reader to the ingest driver. All pointers are
 * borrowed until the callback returns. */
struct ing_record {
    const char *text; /* raw text as found (not yet normalized), may contain any bytes */
    size_t text_len;
    const char *meta; /* JSON object text, "{}" when none */
    size_t meta_len;
    int domain;        /* from the record (JSONL domain field), or -1 to detect */
    const char *lang;  /* from the record, or NULL */
    const char *name;  /* a name hinting the kind/language (e.g. a URL path), or NULL */
    uint64_t position; /* line number (JSONL, 1-based) or byte offset (WARC) */
};

/* Where readers deliver what they find. Every record and every problem is one "unit": the
 * driver counts units in order, which is how a resumed ingest skips what it committed. */
struct ing_sink {
    /* A good record. Return TM_OK to go on; an error stops the reader, which returns it. */
    int (*record)(void *ctx, const struct ing_record *rec);
    /* A unit that was skipped: `reason` is a stable statistics key ("bad_json", "line_too_long",
     * "missing_text", "truncated_record", ...), `detail` a message; `position` as in
     * ing_record. */
    void (*problem)(void *ctx, uint64_t position, const char *reason, const char *detail);
    /* Bumps statistics counter `key` (not a unit): e.g. "warc_records_not_response". May be
     * NULL. */
    void (*count)(void *ctx, const char *key);
    void *ctx;
};

struct ing_jsonl_opts {
    const char *text_field;   /* default "text" */
    const char *domain_field; /* optional: a field holding "text", "math" or "code" */
    const char *lang_field;   /* optional: a field holding the code language */
    size_t max_line;          /* longer lines are problems "line_too_long" */
};

/* Reads JSONL: each non-blank line must be a JSON object with a string field text_field; the
 * other fields become the record's metadata (printed compactly, in their order). Bad JSON,
 * a non-object, a missing or non-string text field, and over-long lines are problems, and
 * reading goes on. Returns TM_OK at end of stream, or the error that stopped it (the source's
 * error, or the sink's). */
int ing_jsonl_read(struct ing_reader *r, const struct ing_jsonl_opts *o, struct ing_sink *sink);
/* ing_jsonl_read as it was before the text fast path: every line is parsed whole by cJSON (a
 * text holding NULs is decoded again from the line). Same contract and same results; the fuzz
 * target compares the two. Not for production use: it is slower on long texts. */
int ing_jsonl_read_reference(struct ing_reader *r, const struct ing_jsonl_opts *o,
                             struct ing_sink *sink);

struct ing_warc_opts {
    size_t max_record; /* records with a larger body are problems "record_too_large", skipped */
};

/* Reads WARC (1.0 and 1.1) records. Response records with an HTTP payload whose Content-Type is
 * text/html or xhtml become records with the HTML reduced to text (ing_html_to_text); text/plain
 * is kept as is; other types are counted ("warc_skipped_content_type") and skipped. Chunked
 * transfer encoding is decoded; a payload in ISO-8859-1/windows-1252 (by the HTTP charset) is
 * converted to UTF-8. Metadata: {"url": WARC-Target-URI, "date": WARC-Date, "record_id":
 * WARC-Record-ID, "content_type": ..., "http_status": N}. Non-response records are counted
 * ("warc_records_not_response") and skipped. A record with bad headers or cut short is a
 * problem ("bad_warc_header", "truncated_record"); the reader resynchronizes at the next
 * "WARC/" line when it can and otherwise returns TM_ERR_FORMAT. */
int ing_warc_read(struct ing_reader *r, const struct ing_warc_opts *o, struct ing_sink *sink);

#endif
