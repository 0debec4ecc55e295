/* tm_doc: encoding and validating document records (layout in tm_doc.h). */
#include "tm_doc.h"

#include <stdlib.h>
#include <string.h>

#include "tm_db.h"
#include "tm_err.h"
#include "tm_log.h"

/* Offsets of the fixed part, after the 8-byte record header. */
#define DOC_OFF_ID         (TM_REC_HDR)
#define DOC_OFF_GEN        (DOC_OFF_ID + 8)
#define DOC_OFF_DOMAIN     (DOC_OFF_GEN + 4)
#define DOC_OFF_LANG_LEN   (DOC_OFF_DOMAIN + 4)
#define DOC_OFF_SOURCE_LEN (DOC_OFF_LANG_LEN + 4)
#define DOC_OFF_META_LEN   (DOC_OFF_SOURCE_LEN + 4)
#define DOC_OFF_TEXT_LEN   (DOC_OFF_META_LEN + 4)
#define DOC_FIXED          (DOC_OFF_TEXT_LEN + 8)

static const char *const domain_names[TM_DOMAIN_COUNT] = {"text", "math", "code"};

const char *tm_domain_name(int domain)
{
    if (domain < 0 || domain >= TM_DOMAIN_COUNT)
        return "?";
    return domain_names[domain];
}

int tm_domain_parse(const char *name)
{
    for (int i = 0; i < TM_DOMAIN_COUNT; i++)
        if (strcmp(name, domain_names[i]) == 0)
            return i;
    return -1;
}

size_t tm_doc_encoded_size(const struct tm_doc *doc)
{
    return DOC_FIXED + doc->lang_len + 1 + doc->source_len + 1 + doc->meta_len + 1 + doc->text_len +
           1;
}

static unsigned char *put_field(unsigned char *p, const char *s, size_t len)
{
    if (len)
        memcpy(p, s, len);
    p[len] = '\0';
    return p + len + 1;
}

void tm_doc_encode(const struct tm_doc *doc, void *out)
{
    unsigned char *p = out;
    tm_rec_header(p, TM_DOC_MAGIC, TM_DOC_VERSION);
    tm_le64_put(p + DOC_OFF_ID, doc->id);
    tm_le32_put(p + DOC_OFF_GEN, doc->generation);
    p[DOC_OFF_DOMAIN] = (unsigned char)doc->domain;
    memset(p + DOC_OFF_DOMAIN + 1, 0, 3);
    tm_le32_put(p + DOC_OFF_LANG_LEN, (uint32_t)doc->lang_len);
    tm_le32_put(p + DOC_OFF_SOURCE_LEN, (uint32_t)doc->source_len);
    tm_le32_put(p + DOC_OFF_META_LEN, (uint32_t)doc->meta_len);
    tm_le64_put(p + DOC_OFF_TEXT_LEN, (uint64_t)doc->text_len);
    p += DOC_FIXED;
    p = put_field(p, doc->lang, doc->lang_len);
    p = put_field(p, doc->source, doc->source_len);
    p = put_field(p, doc->meta, doc->meta_len);
    put_field(p, doc->text, doc->text_len);
}

/* Takes a field of `flen` bytes plus its NUL at *off, checking both lie within len. */
static int take_field(const unsigned char *base, size_t len, size_t *off, uint64_t flen,
                      const char **field, size_t *field_len)
{
    size_t room = len - *off;
    if (room == 0 || flen > room - 1 || base[*off + flen] != '\0')
        return -1;
    *field = (const char *)base + *off;
    *field_len = (size_t)flen;
    *off += (size_t)flen + 1;
    return 0;
}

int tm_doc_decode(const void *val, size_t len, struct tm_doc *doc, const char *what)
{
    const unsigned char *p = val;
    const char *name = what ? what : "document";
    memset(doc, 0, sizeof(*doc));
    int rc = tm_rec_check(val, len, TM_DOC_MAGIC, TM_DOC_VERSION, name, NULL);
    if (rc)
        return rc;
    if (len < DOC_FIXED) {
        tm_log_error("%s: document record truncated at %zu bytes", name, len);
        return TM_ERR_FORMAT;
    }
    unsigned domain = p[DOC_OFF_DOMAIN];
    if (domain >= TM_DOMAIN_COUNT) {
        tm_log_error("%s: bad domain %u in document record", name, domain);
        return TM_ERR_FORMAT;
    }
    struct tm_doc d = {0};
    d.id = tm_le64_get(p + DOC_OFF_ID);
    d.generation = tm_le32_get(p + DOC_OFF_GEN);
    d.domain = (int)domain;
    size_t off = DOC_FIXED;
    if (take_field(p, len, &off, tm_le32_get(p + DOC_OFF_LANG_LEN), &d.lang, &d.lang_len) ||
        take_field(p, len, &off, tm_le32_get(p + DOC_OFF_SOURCE_LEN), &d.source, &d.source_len) ||
        take_field(p, len, &off, tm_le32_get(p + DOC_OFF_META_LEN), &d.meta, &d.meta_len) ||
        take_field(p, len, &off, tm_le64_get(p + DOC_OFF_TEXT_LEN), &d.text, &d.text_len)) {
        tm_log_error("%s: document record fields overrun its %zu bytes or lack a NUL", name, len);
        return TM_ERR_FORMAT;
    }
    if (off != len) {
        tm_log_error("%s: document record has %zu trailing bytes", name, len - off);
        return TM_ERR_FORMAT;
    }
    *doc = d;
    return TM_OK;
}

int tm_doc_parse_id(const char *s, uint64_t *id)
{
    char *end;
    const char *colon = strchr(s, ':');
    if (colon) {
        unsigned long long g = strtoull(s, &end, 10);
        if (end != colon || g == 0 || g > UINT32_MAX || s[0] == '-')
            return -1;
        unsigned long long q = strtoull(colon + 1, &end, 10);
        if (end == colon + 1 || *end || colon[1] == '-' || q >= (1ull << TM_DOC_SEQ_BITS))
            return -1;
        *id = tm_doc_make_id((uint32_t)g, q);
        return 0;
    }
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s || *end || s[0] == '-')
        return -1;
    *id = v;
    return 0;
}
