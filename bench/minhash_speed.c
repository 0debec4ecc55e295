/* minhash_speed.c: how fast ddp_signature turns documents into MinHash signatures (normalize,
 * shingle, hash, permute), with the AVX2 and the portable permutation loop, and whether both
 * agree with ddp_signature_reference. Not part of ctest; bench/minhash_bench.py builds and runs
 * it, and compares with datasketch and rensa.
 *
 * Build by hand against a build directory that has built tm_dedup (paths from the repo root):
 *   cc -O2 -std=c11 -D_GNU_SOURCE -Idedup -Icore bench/minhash_speed.c \
 *      build/dedup/libtm_dedup.a build/filter/libtm_filter.a build/core/libtm_core.a \
 *      $(pkg-config --libs libpcre2-8 libxxhash inih lmdb libcjson) -lm -lpthread \
 *      -o /tmp/minhash_speed
 * Run:
 *   /tmp/minhash_speed DOCS [--nperm N] [--n N] [--chars] [--runs R] [--check D]
 *                      [--fast-only] [--dump-norm FILE]
 * DOCS holds documents as records of a little-endian uint32 length and that many bytes.
 * Signatures use the defaults of ddp_params_default (112 permutations, word 5-grams) unless
 * told otherwise. Each timing is the best of R runs (default 3) over all documents with one
 * ddp_work, on the calling thread (pin it with taskset). --check compares the first D documents
 * (default 500) with the reference; --fast-only skips timing the portable loop. --dump-norm writes
 * every document's normalized text in the same record format, for the Python side to build the same
 * shingles. Prints one JSON object. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ddp_minhash.h"
#include "ddp_minhash_int.h"
#include "tm_err.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

struct docs {
    const char **text;
    size_t *len;
    size_t n, bytes;
};

static int load_docs(const char *path, char **data, struct docs *d)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return -1;
    }
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    *data = malloc((size_t)size + 1);
    if (fread(*data, 1, (size_t)size, f) != (size_t)size) {
        fclose(f);
        fprintf(stderr, "%s: short read\n", path);
        return -1;
    }
    fclose(f);
    size_t cap = 1024;
    d->text = malloc(cap * sizeof(char *));
    d->len = malloc(cap * sizeof(size_t));
    d->n = d->bytes = 0;
    for (size_t off = 0; off + 4 <= (size_t)size;) {
        const unsigned char *p = (const unsigned char *)*data + off;
        size_t len = p[0] | (size_t)p[1] << 8 | (size_t)p[2] << 16 | (size_t)p[3] << 24;
        if (off + 4 + len > (size_t)size) {
            fprintf(stderr, "%s: truncated record at offset %zu\n", path, off);
            return -1;
        }
        if (d->n == cap) {
            cap *= 2;
            d->text = realloc(d->text, cap * sizeof(char *));
            d->len = realloc(d->len, cap * sizeof(size_t));
        }
        d->text[d->n] = *data + off + 4;
        d->len[d->n++] = len;
        d->bytes += len;
        off += 4 + len;
    }
    return 0;
}

static void put_record(FILE *f, const char *p, size_t len)
{
    unsigned char h[4] = {(unsigned char)len, (unsigned char)(len >> 8), (unsigned char)(len >> 16),
                          (unsigned char)(len >> 24)};
    fwrite(h, 1, 4, f);
    fwrite(p, 1, len, f);
}

/* Best of `runs` passes of ddp_signature over all documents; *shingles gets the total. */
static double time_signatures(struct ddp_work *w, const struct ddp_params *p, const struct docs *d,
                              int runs, size_t *shingles, uint32_t *sink)
{
    double best = 1e30;
    for (int r = 0; r < runs; r++) {
        uint32_t sig[DDP_MAX_PERM];
        size_t total = 0;
        double t0 = now();
        for (size_t i = 0; i < d->n; i++) {
            total += ddp_signature(w, p, d->text[i], d->len[i], sig);
            *sink ^= sig[0];
        }
        double t = now() - t0;
        best = t < best ? t : best;
        *shingles = total;
    }
    return best;
}

static double time_normalize(struct ddp_work *w, const struct ddp_params *p, const struct docs *d,
                             int runs, uint32_t *sink)
{
    double best = 1e30;
    for (int r = 0; r < runs; r++) {
        double t0 = now();
        for (size_t i = 0; i < d->n; i++) {
            size_t len;
            const char *s = ddp_normalize(w, &p->norm, d->text[i], d->len[i], &len);
            *sink ^= (uint32_t)len ^ (uint32_t)(len ? (unsigned char)s[0] : 0);
        }
        double t = now() - t0;
        best = t < best ? t : best;
    }
    return best;
}

int main(int argc, char **argv)
{
    const char *path = NULL, *dump = NULL;
    int runs = 3, fast_only = 0;
    size_t check = 500;
    struct ddp_params p;
    ddp_params_default(&p);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--nperm") && i + 1 < argc) {
            p.nperm = (unsigned)atoi(argv[++i]);
            p.bands = 1;
            p.rows = 1;
        } else if (!strcmp(argv[i], "--n") && i + 1 < argc) {
            p.n = (unsigned)atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--chars")) {
            p.kind = DDP_SHINGLE_CHARS;
        } else if (!strcmp(argv[i], "--runs") && i + 1 < argc) {
            runs = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--check") && i + 1 < argc) {
            check = (size_t)atol(argv[++i]);
        } else if (!strcmp(argv[i], "--fast-only")) {
            fast_only = 1;
        } else if (!strcmp(argv[i], "--dump-norm") && i + 1 < argc) {
            dump = argv[++i];
        } else if (argv[i][0] != '-' && !path) {
            path = argv[i];
        } else {
            fprintf(stderr,
                    "usage: %s DOCS [--nperm N] [--n N] [--chars] [--runs R] "
                    "[--check D] [--fast-only] [--dump-norm FILE]\n",
                    argv[0]);
            return 2;
        }
    }
    if (!path || runs < 1 || ddp_params_init(&p) != TM_OK)
        return 2;
    char *data = NULL;
    struct docs d;
    if (load_docs(path, &data, &d) != 0)
        return 1;
    struct ddp_work *w = ddp_work_new();

    if (dump) {
        FILE *f = fopen(dump, "wb");
        if (!f) {
            perror(dump);
            return 1;
        }
        for (size_t i = 0; i < d.n; i++) {
            size_t len;
            const char *s = ddp_normalize(w, &p.norm, d.text[i], d.len[i], &len);
            put_record(f, s, len);
        }
        fclose(f);
    }

    size_t agree = 0, checked = 0;
    for (size_t i = 0; i < d.n && i < check; i++) {
        uint32_t a[DDP_MAX_PERM], b[DDP_MAX_PERM];
        size_t na = ddp_signature(w, &p, d.text[i], d.len[i], a);
        size_t nb = ddp_signature_reference(&p, d.text[i], d.len[i], b);
        agree += na == nb && memcmp(a, b, p.nperm * sizeof(uint32_t)) == 0;
        checked++;
    }

    uint32_t sink = 0;
    size_t shingles = 0, shingles_portable = 0;
    int simd = ddp_have_simd();
    double t_norm = time_normalize(w, &p, &d, runs, &sink);
    double t_sig = time_signatures(w, &p, &d, runs, &shingles, &sink);
    double t_port = 0;
    shingles_portable = shingles;
    if (!fast_only) {
        ddp_minhash_force_portable(1);
        t_port = time_signatures(w, &p, &d, runs, &shingles_portable, &sink);
        ddp_minhash_force_portable(0);
    }

    printf("{\"docs\": %zu, \"bytes\": %zu, \"nperm\": %u, \"n\": %u, \"kind\": \"%s\", "
           "\"shingles\": %zu, \"simd\": %d, \"seconds\": %.6f, \"seconds_portable\": %.6f, "
           "\"seconds_normalize\": %.6f, \"reference_checked\": %zu, \"reference_agree\": %zu, "
           "\"sink\": %u}\n",
           d.n, d.bytes, p.nperm, p.n, p.kind == DDP_SHINGLE_CHARS ? "chars" : "words", shingles,
           simd, t_sig, t_port, t_norm, checked, agree, sink);
    ddp_work_free(w);
    free(d.text);
    free(d.len);
    free(data);
    return agree == checked && shingles == shingles_portable ? 0 : 1;
}
