/* fuzz_sink.h: what the record-reader fuzz targets share. A sink (struct ing_sink) that folds
 * every record, problem and counter it is given into one FNV-1a hash, touching every byte so
 * ASan sees any bad read; two runs that must agree compare their hashes. Also the chopped
 * source (chop_source.h) that feeds a reader a few bytes at a time. Header-only. */
#ifndef TM_FUZZ_SINK_H
#define TM_FUZZ_SINK_H

#include <stdint.h>
#include <string.h>

#include "../chop_source.h"
#include "ing_internal.h"

/* FNV-1a, 64-bit (offset basis and prime from the FNV reference). */
#define FUZZ_FNV_OFFSET 0xcbf29ce484222325ULL
#define FUZZ_FNV_PRIME  0x100000001b3ULL

struct fuzz_digest {
    uint64_t h;
};

static inline void fuzz_mix(struct fuzz_digest *d, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        d->h = (d->h ^ b[i]) * FUZZ_FNV_PRIME;
}

static inline void fuzz_mix_u64(struct fuzz_digest *d, uint64_t v)
{
    fuzz_mix(d, &v, sizeof(v));
}

static inline int fuzz_on_record(void *ctx, const struct ing_record *rec)
{
    struct fuzz_digest *d = ctx;
    fuzz_mix_u64(d, 1);
    fuzz_mix(d, rec->text, rec->text_len);
    fuzz_mix(d, rec->meta, rec->meta_len);
    fuzz_mix_u64(d, (uint64_t)(int64_t)rec->domain);
    if (rec->lang)
        fuzz_mix(d, rec->lang, strlen(rec->lang));
    if (rec->name)
        fuzz_mix(d, rec->name, strlen(rec->name));
    fuzz_mix_u64(d, rec->position);
    return 0;
}

static inline void fuzz_on_problem(void *ctx, uint64_t position, const char *reason,
                                   const char *detail)
{
    struct fuzz_digest *d = ctx;
    fuzz_mix_u64(d, 2);
    fuzz_mix_u64(d, position);
    fuzz_mix(d, reason, strlen(reason));
    fuzz_mix(d, detail, strlen(detail));
}

static inline void fuzz_on_count(void *ctx, const char *key)
{
    struct fuzz_digest *d = ctx;
    fuzz_mix_u64(d, 3);
    fuzz_mix(d, key, strlen(key));
}

/* Resets *d and returns a sink that hashes into it (d is borrowed by the sink). */
static inline struct ing_sink fuzz_sink_init(struct fuzz_digest *d)
{
    d->h = FUZZ_FNV_OFFSET;
    struct ing_sink sink = {fuzz_on_record, fuzz_on_problem, fuzz_on_count, d};
    return sink;
}

#endif
