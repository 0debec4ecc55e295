/* fuzz_warc.c: libFuzzer target for the WARC record reader (ing_warc_read).
 *
 * Each input is read twice: from memory in one piece, and through a source that hands out 1 to
 * 7 bytes per call into a 64-byte buffer, so header lines and blocks span refills and pass through
 * the reader's scratch buffer. The sink hashes every byte it is given (so ASan sees any bad read)
 * and the two runs must agree exactly; a difference aborts. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_sink.h"
#include "ing_internal.h"
#include "tm_log.h"

/* Small enough that declared lengths often exceed it, so the too-large path is fuzzed. */
#define FUZZ_MAX_RECORD   4096
#define FUZZ_CHOP_BUFSIZE 64

static uint64_t run(const uint8_t *data, size_t size, int chopped, int *rc)
{
    struct fuzz_digest d;
    struct ing_sink sink = fuzz_sink_init(&d);
    struct ing_warc_opts o = {FUZZ_MAX_RECORD};
    struct chop c;
    chop_init(&c, data, size, (uint32_t)size);
    struct ing_reader r;
    if (chopped)
        ing_reader_init(&r, chop_read, &c, FUZZ_CHOP_BUFSIZE);
    else
        ing_reader_init_mem(&r, data, size);
    *rc = ing_warc_read(&r, &o, &sink);
    fuzz_mix_u64(&d, r.line);
    ing_reader_release(&r);
    return d.h;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int rc1, rc2;
    tm_log_set_level(TM_LOG_ERROR);
    uint64_t a = run(data, size, 0, &rc1);
    uint64_t b = run(data, size, 1, &rc2);
    if (a != b || rc1 != rc2)
        abort();
    return 0;
}
