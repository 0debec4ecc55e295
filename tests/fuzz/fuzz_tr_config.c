/* fuzz_tr_config.c: libFuzzer target for the model configuration parser (tr_config_parse).
 *
 * Any input either parses or fails with TM_ERR_USAGE; an accepted configuration passes
 * tr_config_check() again unchanged (the check is idempotent), and its derived shapes are
 * consistent: head_dim even and nonzero, n_heads a multiple of n_kv_heads, top_k within the
 * routed experts, dense_layers within the layers. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tm_err.h"
#include "tr_model.h"
#include "fuzz_quiet.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_quiet_logs();
    struct tr_config c;
    int rc = tr_config_parse(&c, (const char *)data, size, "fuzz");
    if (rc != TM_OK && rc != TM_ERR_USAGE)
        abort();
    if (rc != TM_OK)
        return 0;
    struct tr_config again = c;
    if (tr_config_check(&again) != TM_OK || memcmp(&again, &c, sizeof c) != 0)
        abort();
    if (c.head_dim <= 0 || c.head_dim % 2 || c.n_heads % c.n_kv_heads ||
        c.top_k > c.n_routed_experts || c.dense_layers > c.layers)
        abort();
    return 0;
}
