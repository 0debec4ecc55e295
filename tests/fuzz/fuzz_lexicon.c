/* fuzz_lexicon.c: libFuzzer target for the toxicity lexicon parser and scanner (flt_tox).
 *
 * Input layout: byte 0 holds options (bit 0: obfuscation; bits 1-2: language en, ja, de, en),
 * then up to three sections separated by a form feed (\f): a lexicon file, an allow list, a
 * text. The lexicon and allow list are loaded with flt_tox_new_mem (errors are fine; a crash,
 * leak or sanitizer report is not); when they load, the text is scanned by the prefiltered
 * scanner and by the reference scanner, over the whole text and over a region that starts and
 * ends inside it (with a base offset), and the hits must be identical; a difference aborts.
 * Lexicons over FUZZ_MAX_LEXICON bytes are skipped: compiling them costs time, not coverage. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "flt_tox.h"
#include "tm_err.h"
#include "tm_log.h"

#define FUZZ_MAX_LEXICON 4096

static void same_hits(const struct flt_tox *t, struct flt_tox_scratch *s, const char *text,
                      size_t n, size_t base)
{
    struct flt_tox_hits a, b;
    flt_tox_hits_init(&a, 8);
    flt_tox_hits_init(&b, 8);
    int ra = flt_tox_scan(t, s, text, n, base, &a);
    int rb = flt_tox_scan_reference(t, s, text, n, base, &b);
    if (ra != rb || a.n != b.n || a.dropped != b.dropped || a.dropped_weight != b.dropped_weight ||
        (a.n && memcmp(a.v, b.v, a.n * sizeof(*a.v)) != 0))
        abort();
    for (size_t i = 0; i < a.n; i++)
        if (a.v[i].start < base || a.v[i].end > base + n || a.v[i].start >= a.v[i].end ||
            (i && a.v[i].start < a.v[i - 1].end) || !flt_tox_term(t, a.v[i].term))
            abort();
    flt_tox_hits_release(&a);
    flt_tox_hits_release(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const langs[] = {"en", "ja", "de", "en"};
    tm_log_set_level(TM_LOG_ERROR);
    tm_log_set_stream(NULL, 0);
    if (size == 0)
        return 0;
    int opts = data[0];
    const char *p = (const char *)data + 1, *end = (const char *)data + size;
    const char *part[3] = {p, p, p};
    size_t len[3] = {0, 0, 0};
    for (int k = 0; k < 3; k++) {
        const char *ff = k < 2 ? memchr(p, '\f', (size_t)(end - p)) : NULL;
        part[k] = p;
        len[k] = (size_t)((ff ? ff : end) - p);
        p = ff ? ff + 1 : end;
    }
    if (len[0] > FUZZ_MAX_LEXICON || len[1] > FUZZ_MAX_LEXICON)
        return 0;
    /* Exact-size copies, so ASan sees any read past a section. */
    char *sec[3];
    for (int k = 0; k < 3; k++) {
        sec[k] = malloc(len[k] ? len[k] : 1);
        memcpy(sec[k], part[k], len[k]);
    }
    struct flt_lexicon_spec ls = {NULL, langs[(opts >> 1) & 3], 0, NULL};
    struct flt_tox_text lt = {"fuzz", sec[0], len[0]};
    struct flt_tox_text at = {"fuzz-allow", sec[1], len[1]};
    struct flt_tox_spec spec = {&ls, 1, NULL, 1, 0, opts & 1};
    struct flt_tox *t = NULL;
    if (flt_tox_new_mem(&spec, &lt, &at, &t) == TM_OK) {
        struct flt_tox_scratch *s = flt_tox_scratch_new(t);
        if (!s)
            abort();
        same_hits(t, s, sec[2], len[2], 0);
        if (len[2] > 2)
            same_hits(t, s, sec[2] + 1, len[2] - 2, 1000);
        flt_tox_scratch_free(s);
        flt_tox_free(t);
    } else if (t) {
        abort();
    }
    for (int k = 0; k < 3; k++)
        free(sec[k]);
    return 0;
}
