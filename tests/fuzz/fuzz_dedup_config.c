/* fuzz_dedup_config.c: libFuzzer target for the dedup settings parser (ddp_config_parse).
 *
 * Any input either parses or fails with TM_ERR_USAGE; an accepted configuration that passes
 * ddp_config_check prints to an INI text that parses back to the same hash, and its MinHash
 * parameters initialize for every domain and sign a short text. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "ddp_internal.h"
#include "tm_err.h"
#include "tm_log.h"
#include "fuzz_quiet.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_quiet_logs();
    struct ddp_config c;
    ddp_config_defaults(&c);
    int rc = ddp_config_parse(&c, (const char *)data, size, "fuzz");
    if (rc != TM_OK && rc != TM_ERR_USAGE)
        abort();
    if (rc != TM_OK || ddp_config_check(&c) != TM_OK)
        return 0;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        abort();
    ddp_config_print(&c, f);
    fclose(f);
    struct ddp_config back;
    ddp_config_defaults(&back);
    if (ddp_config_parse(&back, buf, len, "printed") != TM_OK ||
        ddp_config_hash(&back) != ddp_config_hash(&c))
        abort();
    free(buf);
    struct ddp_work *w = ddp_work_new();
    static const char text[] = "One two three four five six seven, eight!";
    uint32_t sig[DDP_MAX_PERM];
    for (int d = 0; d < TM_DOMAIN_COUNT; d++) {
        struct ddp_params p;
        if (ddp_config_params(&c, d, &p) != TM_OK)
            abort();
        ddp_signature(w, &p, text, sizeof text - 1, sig);
    }
    ddp_work_free(w);
    return 0;
}
