/* fuzz_filter_config.c: libFuzzer target for the filter's INI configuration parser
 * (flt_config_parse).
 *
 * Every input is parsed on top of the defaults. Whatever it says, the result must be a usable
 * configuration: parsing either succeeds or fails with TM_ERR_USAGE (never a crash or leak);
 * after a success, printing the configuration and parsing the print must give the same hash
 * (the printed form is the documented round trip); and the decision engine must run on a small
 * document under it. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flt_internal.h"
#include "tm_err.h"
#include "tm_log.h"
#include "fuzz_quiet.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_quiet_logs();
    struct flt_config c;
    flt_config_defaults(&c);
    int rc = flt_config_parse(&c, (const char *)data, size, "fuzz");
    if (rc != TM_OK && rc != TM_ERR_USAGE)
        abort();
    if (rc == TM_OK) {
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        if (!f)
            abort();
        flt_config_print(&c, f);
        fclose(f);
        struct flt_config back;
        flt_config_defaults(&back);
        if (flt_config_parse(&back, buf, len, "printed") != TM_OK ||
            flt_config_hash(&back, 0) != flt_config_hash(&c, 0))
            abort();
        flt_config_release(&back);
        free(buf);
        /* the engine runs under any accepted configuration (toxicity without lexicons) */
        struct flt_engine e;
        flt_engine_init(&e, &c, NULL);
        static const char text[] = "A line of text.\nAnother { line } with $x$ and 3 words...";
        for (int dom = 0; dom < TM_DOMAIN_COUNT; dom++) {
            struct tm_doc doc = {
                .domain = dom, .lang = "c", .text = text, .text_len = sizeof text - 1};
            struct flt_decision d;
            flt_decision_init(&d);
            if (flt_decide(&e, &doc, &d) != TM_OK)
                abort();
            flt_decision_release(&d);
        }
        flt_engine_release(&e);
    }
    flt_config_release(&c);
    return 0;
}
