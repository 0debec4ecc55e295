/* fuzz_jsonl.c: libFuzzer target for the JSONL record reader (ing_jsonl_read).
 *
 * Each input is read three times: from memory in one piece, through a source that hands out 1
 * to 7 bytes per call into a 64-byte buffer (so lines span refills and pass through the reader's
 * scratch buffer), and from memory by ing_jsonl_read_reference, which parses every line whole
 * with cJSON. That makes it a differential test of the text fast path: the records (text bytes
 * and length, metadata, domain, language, position), the problems (position, reason, detail)
 * and the counters must agree exactly, in order. Texts with NULs need no exception: cJSON cuts
 * them, but the reference decodes them again from the line, keeping the NULs as the fast path
 * does. The sink hashes every byte it is given (so ASan sees any bad read); a difference aborts.
 * A second set of options, where the domain field is the text field, covers the case the fast
 * path leaves to cJSON. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ing_internal.h"
#include "tm_log.h"

/* Small enough that lines often exceed it, so the too-long path is fuzzed too. */
#define FUZZ_MAX_LINE     1024
#define FUZZ_CHOP_BUFSIZE 64

struct digest {
    uint64_t h;
};

static void mix(struct digest *d, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        d->h = (d->h ^ b[i]) * 0x100000001b3ULL; /* FNV-1a */
}

static void mix_u64(struct digest *d, uint64_t v)
{
    mix(d, &v, sizeof(v));
}

static int on_record(void *ctx, const struct ing_record *rec)
{
    struct digest *d = ctx;
    mix_u64(d, 1);
    mix(d, rec->text, rec->text_len);
    mix(d, rec->meta, rec->meta_len);
    mix_u64(d, (uint64_t)(int64_t)rec->domain);
    if (rec->lang)
        mix(d, rec->lang, strlen(rec->lang));
    if (rec->name)
        mix(d, rec->name, strlen(rec->name));
    mix_u64(d, rec->position);
    return 0;
}

static void on_problem(void *ctx, uint64_t position, const char *reason, const char *detail)
{
    struct digest *d = ctx;
    mix_u64(d, 2);
    mix_u64(d, position);
    mix(d, reason, strlen(reason));
    mix(d, detail, strlen(detail));
}

static void on_count(void *ctx, const char *key)
{
    struct digest *d = ctx;
    mix_u64(d, 3);
    mix(d, key, strlen(key));
}

struct chop {
    const uint8_t *p;
    size_t n, pos;
    uint32_t state;
};

static long chop_read(void *ctx, void *buf, size_t cap)
{
    struct chop *c = ctx;
    c->state = c->state * 1103515245u + 12345u;
    size_t k = 1 + (c->state >> 16) % 7;
    if (k > cap)
        k = cap;
    if (k > c->n - c->pos)
        k = c->n - c->pos;
    if (k)
        memcpy(buf, c->p + c->pos, k);
    c->pos += k;
    return (long)k;
}

enum how { FAST_MEM, FAST_CHOPPED, REFERENCE };

static uint64_t run(const uint8_t *data, size_t size, const struct ing_jsonl_opts *o, enum how how,
                    int *rc)
{
    struct digest d = {0xcbf29ce484222325ULL};
    struct ing_sink sink = {on_record, on_problem, on_count, &d};
    struct chop c = {data, size, 0, (uint32_t)size};
    struct ing_reader r;
    if (how == FAST_CHOPPED)
        ing_reader_init(&r, chop_read, &c, FUZZ_CHOP_BUFSIZE);
    else
        ing_reader_init_mem(&r, data, size);
    if (how == REFERENCE)
        *rc = ing_jsonl_read_reference(&r, o, &sink);
    else
        *rc = ing_jsonl_read(&r, o, &sink);
    mix_u64(&d, r.line);
    ing_reader_release(&r);
    return d.h;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct ing_jsonl_opts opts[] = {
        {"text", "domain", "lang", FUZZ_MAX_LINE},
        {"text", "text", NULL, FUZZ_MAX_LINE},
    };
    tm_log_set_level(TM_LOG_ERROR);
    for (size_t k = 0; k < sizeof(opts) / sizeof(*opts); k++) {
        int rc1, rc2, rc3;
        uint64_t a = run(data, size, &opts[k], FAST_MEM, &rc1);
        uint64_t b = run(data, size, &opts[k], FAST_CHOPPED, &rc2);
        uint64_t c = run(data, size, &opts[k], REFERENCE, &rc3);
        if (a != b || rc1 != rc2 || a != c || rc1 != rc3)
            abort();
    }
    return 0;
}
