/* tm_doc: the document record, as stored by ingest and read by every later stage.
 *
 * A document is written once and never changed. Its key in the `docs` database is its id as a
 * big-endian uint64: (generation << 40) | sequence, so documents sort by generation and then by
 * the order ingest met them. The value is a versioned record (tm_db.h):
 *
 *   header      "TMDC", version 1
 *   u64 id, u32 generation, u8 domain, u8 reserved[3]
 *   u32 lang_len, u32 source_len, u32 meta_len, u64 text_len   (little-endian)
 *   lang, source, meta, text, each followed by one NUL byte
 *
 * The NULs let readers hand the borrowed fields to C string functions. Text is UTF-8 with no
 * NUL bytes and LF line ends (ingest normalizes). */
#ifndef TM_DOC_H
#define TM_DOC_H

#include <stddef.h>
#include <stdint.h>

#define TM_DOC_MAGIC    "TMDC"
#define TM_DOC_VERSION  1
#define TM_DOC_SEQ_BITS 40

enum tm_domain { TM_DOMAIN_TEXT = 0, TM_DOMAIN_MATH = 1, TM_DOMAIN_CODE = 2, TM_DOMAIN_COUNT };

/* "text", "math", "code"; "?" for out-of-range values. */
const char *tm_domain_name(int domain);
/* Parses a domain name; -1 when unknown. */
int tm_domain_parse(const char *name);

struct tm_doc {
    uint64_t id;
    uint32_t generation;
    int domain;       /* enum tm_domain */
    const char *lang; /* code language ("c", "python", ...) or "und"; NUL-terminated */
    size_t lang_len;
    const char *source; /* "path" or "archive!member/path" (or "file#record=N" for WARC) */
    size_t source_len;
    const char *meta; /* JSON object text, "{}" when there is none */
    size_t meta_len;
    const char *text; /* UTF-8 */
    size_t text_len;
};

static inline uint64_t tm_doc_make_id(uint32_t generation, uint64_t seq)
{
    return ((uint64_t)generation << TM_DOC_SEQ_BITS) | seq;
}
static inline uint32_t tm_doc_id_generation(uint64_t id)
{
    return (uint32_t)(id >> TM_DOC_SEQ_BITS);
}
static inline uint64_t tm_doc_id_seq(uint64_t id)
{
    return id & (((uint64_t)1 << TM_DOC_SEQ_BITS) - 1);
}

/* Parses a document id written as a number or as GENERATION:SEQUENCE (what inspect --list
 * shows): 0 with *id set, or -1. */
int tm_doc_parse_id(const char *s, uint64_t *id);

/* Bytes tm_doc_encode() writes for `doc`. */
size_t tm_doc_encoded_size(const struct tm_doc *doc);
/* Writes the record into out[tm_doc_encoded_size(doc)]. The string fields must not contain
 * the NUL terminator in their lengths. */
void tm_doc_encode(const struct tm_doc *doc, void *out);
/* Parses a stored record. The string fields of *doc borrow from `val` (valid as long as `val`
 * is, i.e. until the LMDB transaction ends). TM_OK, TM_ERR_FORMAT (truncated, lengths past the
 * end, missing NULs, bad domain), TM_ERR_VERSION; each logged with `what` when not NULL. */
int tm_doc_decode(const void *val, size_t len, struct tm_doc *doc, const char *what);

#endif
