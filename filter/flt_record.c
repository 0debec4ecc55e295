/* flt_record.c: the decision record (format in flt_internal.h). Values are kept for rules that
 * were evaluated only, so a record grows with the rules a domain runs, not with the table. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "flt_internal.h"
#include "../core/tm_db.h"
#include "../core/tm_err.h"
#include "../core/tm_log.h"

#define DEC_MAGIC   "TMFD"
#define DEC_VERSION 1
#define DEC_FIXED   (TM_REC_HDR + 1 + 1 + 2 + 4 + 8 + 8 + 8 + 8 + 4 + 2 + 4)
#define DEC_VALUE   5
#define DEC_SPAN    18

const char *flt_action_name(int action)
{
    switch (action) {
    case FLT_KEPT:
        return "kept";
    case FLT_REMOVED:
        return "removed";
    case FLT_KEPT_SPANS:
        return "spans";
    default:
        return "?";
    }
}

void flt_decision_init(struct flt_decision *d)
{
    memset(d, 0, sizeof(*d));
    d->rule = FLT_RULE_NONE;
    for (int r = 0; r < FLT_R_COUNT; r++)
        d->values[r] = NAN;
}

void flt_decision_release(struct flt_decision *d)
{
    flt_spans_release(&d->spans);
}

static size_t nvalues(const struct flt_decision *d)
{
    size_t k = 0;
    for (int r = 0; r < FLT_R_COUNT; r++)
        k += !isnan(d->values[r]);
    return k;
}

size_t flt_decision_encoded_size(const struct flt_decision *d)
{
    return DEC_FIXED + nvalues(d) * DEC_VALUE + d->spans.n * DEC_SPAN;
}

static void f32_put(unsigned char *p, float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    tm_le32_put(p, u);
}

static float f32_get(const unsigned char *p)
{
    uint32_t u = tm_le32_get(p);
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static void u16_put(unsigned char *p, unsigned v)
{
    p[0] = (unsigned char)(v & 0xff);
    p[1] = (unsigned char)(v >> 8);
}

static unsigned u16_get(const unsigned char *p)
{
    return (unsigned)p[0] | (unsigned)p[1] << 8;
}

void flt_decision_encode(const struct flt_decision *d, uint64_t config_hash, void *out)
{
    unsigned char *p = out;
    tm_rec_header(p, DEC_MAGIC, DEC_VERSION);
    p += TM_REC_HDR;
    *p++ = (unsigned char)d->action;
    *p++ = (unsigned char)d->domain;
    u16_put(p, d->rule);
    p += 2;
    tm_le32_put(p, d->tox_hits);
    p += 4;
    tm_le64_put(p, d->fired);
    p += 8;
    tm_le64_put(p, config_hash);
    p += 8;
    tm_le64_put(p, d->text_len);
    p += 8;
    tm_le64_put(p, d->removed_bytes);
    p += 8;
    f32_put(p, d->tox_score);
    p += 4;
    u16_put(p, (unsigned)nvalues(d));
    p += 2;
    tm_le32_put(p, (uint32_t)d->spans.n);
    p += 4;
    for (int r = 0; r < FLT_R_COUNT; r++) {
        if (isnan(d->values[r]))
            continue;
        *p++ = (unsigned char)r;
        f32_put(p, d->values[r]);
        p += 4;
    }
    for (size_t k = 0; k < d->spans.n; k++) {
        tm_le64_put(p, d->spans.v[k].start);
        tm_le64_put(p + 8, d->spans.v[k].end);
        u16_put(p + 16, d->spans.v[k].rule);
        p += DEC_SPAN;
    }
}

int flt_decision_decode(const void *val, size_t len, struct flt_decision *d, uint64_t *config_hash,
                        const char *what)
{
    int rc = tm_rec_check(val, len, DEC_MAGIC, DEC_VERSION, what, NULL);
    if (rc)
        return rc;
    if (len < DEC_FIXED)
        goto bad;
    const unsigned char *p = (const unsigned char *)val + TM_REC_HDR;
    struct flt_spans keep = d->spans;
    flt_decision_init(d);
    d->spans = keep;
    d->spans.n = 0;
    d->action = p[0];
    d->domain = p[1];
    d->rule = u16_get(p + 2);
    d->tox_hits = tm_le32_get(p + 4);
    d->fired = tm_le64_get(p + 8);
    if (config_hash)
        *config_hash = tm_le64_get(p + 16);
    d->text_len = tm_le64_get(p + 24);
    d->removed_bytes = tm_le64_get(p + 32);
    d->tox_score = f32_get(p + 40);
    size_t nv = u16_get(p + 44), ns = tm_le32_get(p + 46);
    if (d->action > FLT_KEPT_SPANS || d->domain >= TM_DOMAIN_COUNT)
        goto bad;
    if (len != DEC_FIXED + nv * DEC_VALUE + ns * DEC_SPAN)
        goto bad;
    p = (const unsigned char *)val + DEC_FIXED;
    for (size_t k = 0; k < nv; k++, p += DEC_VALUE) {
        if (p[0] >= FLT_R_COUNT)
            goto bad;
        d->values[p[0]] = f32_get(p + 1);
    }
    for (size_t k = 0; k < ns; k++, p += DEC_SPAN) {
        uint64_t a = tm_le64_get(p), b = tm_le64_get(p + 8);
        if (a > b || b > d->text_len)
            goto bad;
        flt_spans_add(&d->spans, a, b, u16_get(p + 16));
    }
    return TM_OK;
bad:
    tm_log_error("%s: malformed filter decision record (%zu bytes)", what ? what : "decision", len);
    return TM_ERR_FORMAT;
}
