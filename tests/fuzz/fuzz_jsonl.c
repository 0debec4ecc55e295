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

#include "fuzz_sink.h"
#include "ing_internal.h"
#include "tm_log.h"

/* Small enough that lines often exceed it, so the too-long path is fuzzed too. */
#define FUZZ_MAX_LINE     1024
#define FUZZ_CHOP_BUFSIZE 64

enum how { FAST_MEM, FAST_CHOPPED, REFERENCE };

static uint64_t run(const uint8_t *data, size_t size, const struct ing_jsonl_opts *o, enum how how,
                    int *rc)
{
    struct fuzz_digest d;
    struct ing_sink sink = fuzz_sink_init(&d);
    struct chop c;
    chop_init(&c, data, size, (uint32_t)size);
    struct ing_reader r;
    if (how == FAST_CHOPPED)
        ing_reader_init(&r, chop_read, &c, FUZZ_CHOP_BUFSIZE);
    else
        ing_reader_init_mem(&r, data, size);
    if (how == REFERENCE)
        *rc = ing_jsonl_read_reference(&r, o, &sink);
    else
        *rc = ing_jsonl_read(&r, o, &sink);
    fuzz_mix_u64(&d, r.line);
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
