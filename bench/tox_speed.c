/* tox_speed.c: how fast flt_tox scans text, prefiltered (flt_tox_scan) and by the reference
 * scanner (flt_tox_scan_reference), and whether the two agree. Not part of ctest.
 *
 * Build by hand against a build directory that has built tm_filter (paths from the repo root):
 *   cc -O2 -std=c11 -D_GNU_SOURCE -Ifilter -Icore bench/tox_speed.c \
 *      build-tox/filter/libtm_filter.a build-tox/core/libtm_core.a \
 *      $(pkg-config --libs libpcre2-8 libxxhash inih lmdb libcjson) -lm -lpthread -o /tmp/tox_speed
 * Run:
 *   /tmp/tox_speed FILE [--lexicon PATH]... [--no-obf] [--no-allow] [--chunk BYTES]
 *                  [--ref-max BYTES] [--list]
 * FILE is scanned in chunks of --chunk bytes (default 8192, cut after a newline; a chunk stands
 * for a document), with the built-in English lexicon and allow list unless --lexicon is given.
 * The reference scanner sees the first --ref-max bytes (default 8 MiB; it is slow). Prints MB/s
 * (10^6 bytes per second of wall time, best of 3 runs) and hit counts. --list also prints every
 * hit of the prefiltered scan, one a line: offset, term, "obf" for a disguise, the matched text
 * (a way to review false positives on real text). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "flt_tox.h"
#include "tm_err.h"
#include "tm_fs.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

typedef int (*scan_fn)(const struct flt_tox *, struct flt_tox_scratch *, const char *, size_t,
                       size_t, struct flt_tox_hits *);

/* Prints the hits of one chunk (--list); data is the whole file, hit offsets are in it. */
static void list_hits(const struct flt_tox *t, const char *data, const struct flt_tox_hits *h)
{
    for (size_t i = 0; i < h->n; i++) {
        const struct flt_tox_hit *x = &h->v[i];
        printf("%u\t%s\t%s\t%.*s\n", x->start, flt_tox_term(t, x->term),
               x->obfuscated ? "obf" : "-", (int)(x->end - x->start), data + x->start);
    }
}

/* Scans data[0..n) chunk by chunk; returns seconds, sets *nhits. With `list`, prints the hits. */
static double pass(scan_fn fn, const struct flt_tox *t, struct flt_tox_scratch *s, const char *data,
                   size_t n, size_t chunk, size_t *nhits, double *weight, int list)
{
    struct flt_tox_hits h;
    flt_tox_hits_init(&h, 0);
    double t0 = now();
    *nhits = 0;
    *weight = 0;
    for (size_t off = 0; off < n;) {
        size_t len = n - off < chunk ? n - off : chunk;
        if (off + len < n) {
            const char *nl = memchr(data + off + len, '\n', n - off - len);
            len = nl ? (size_t)(nl + 1 - (data + off)) : n - off;
        }
        flt_tox_hits_reset(&h);
        if (fn(t, s, data + off, len, off, &h) != TM_OK) {
            fprintf(stderr, "scan failed at %zu\n", off);
            exit(1);
        }
        if (list)
            list_hits(t, data, &h);
        *nhits += h.n + h.dropped;
        for (size_t i = 0; i < h.n; i++)
            *weight += h.v[i].weight;
        off += len;
    }
    double dt = now() - t0;
    flt_tox_hits_release(&h);
    return dt;
}

int main(int argc, char **argv)
{
    const char *file = NULL;
    struct flt_lexicon_spec lex[16];
    size_t nlex = 0, chunk = 8192, ref_max = 8u << 20;
    int obf = 1, allow = 1, list = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--lexicon") && i + 1 < argc && nlex < 16)
            lex[nlex++] = (struct flt_lexicon_spec){argv[++i], NULL, 0, NULL};
        else if (!strcmp(argv[i], "--no-obf"))
            obf = 0;
        else if (!strcmp(argv[i], "--list"))
            list = 1;
        else if (!strcmp(argv[i], "--no-allow"))
            allow = 0;
        else if (!strcmp(argv[i], "--chunk") && i + 1 < argc)
            chunk = strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--ref-max") && i + 1 < argc)
            ref_max = strtoul(argv[++i], NULL, 10);
        else
            file = argv[i];
    }
    if (!file || !chunk) {
        fprintf(stderr,
                "usage: tox_speed FILE [--lexicon PATH]... [--no-obf] [--no-allow] [--chunk N] "
                "[--ref-max N] [--list]\n");
        return 2;
    }
    if (nlex == 0)
        lex[nlex++] = (struct flt_lexicon_spec){NULL, NULL, 0, NULL};
    char *data;
    size_t n;
    if (tm_read_file(file, (size_t)4 << 30, &data, &n) != TM_OK)
        return 1;
    struct flt_tox_spec spec = {lex, nlex, NULL, 0, allow, obf};
    struct flt_tox *t;
    double t0 = now();
    if (flt_tox_new(&spec, &t) != TM_OK)
        return 1;
    double build = now() - t0;
    struct flt_tox_scratch *s = flt_tox_scratch_new(t);
    size_t hits = 0, rhits = 0, fhits = 0;
    double w, rw, fw, best = 1e30, rbest = 1e30;
    for (int r = 0; r < (getenv("REPS") ? atoi(getenv("REPS")) : 3); r++) {
        double dt = pass(flt_tox_scan, t, s, data, n, chunk, &hits, &w, 0);
        best = dt < best ? dt : best;
    }
    size_t rn = n < ref_max ? n : ref_max;
    for (int r = 0; r < (rn < n ? 1 : 3); r++) {
        double dt = pass(flt_tox_scan_reference, t, s, data, rn, chunk, &rhits, &rw, 0);
        rbest = dt < rbest ? dt : rbest;
    }
    pass(flt_tox_scan, t, s, data, rn, chunk, &fhits, &fw, 0);
    if (list)
        pass(flt_tox_scan, t, s, data, n, chunk, &hits, &w, 1);
    printf("%s: %zu bytes, %zu terms, build %.0f ms, obfuscation %s\n", file, n, flt_tox_nterms(t),
           build * 1e3, obf ? "on" : "off");
    printf("  prefiltered: %8.1f MB/s  %zu hits (weight %.1f)\n", (double)n / best / 1e6, hits, w);
    printf("  reference:   %8.1f MB/s  on the first %zu bytes: %zu hits, prefiltered %zu: %s\n",
           (double)rn / rbest / 1e6, rn, rhits, fhits,
           rhits == fhits && rw == fw ? "same" : "DIFFERENT");
    flt_tox_scratch_free(s);
    flt_tox_free(t);
    free(data);
    return rhits == fhits ? 0 : 1;
}
