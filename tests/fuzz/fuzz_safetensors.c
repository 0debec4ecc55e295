/* fuzz_safetensors.c: libFuzzer target for the checkpoint reader (tr_safetensors_read).
 *
 * The input is written to a temporary file and read into a tiny model (the configuration
 * below; tests/fuzz/corpus/safetensors/valid.safetensors is that model as the writer writes
 * it). Any input either loads or fails with TM_ERR_FORMAT / TM_ERR_NOTFOUND; one that loads
 * writes back out and loads again to the same parameters. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tm_err.h"
#include "tr_model.h"
#include "tr_train.h"
#include "fuzz_quiet.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char cfg_text[] = "[model]\nvocab_size = 6\ncontext = 4\nlayers = 2\n"
                               "dense_layers = 1\nd_model = 4\nn_heads = 2\nn_kv_heads = 1\n"
                               "d_ff = 4\nn_routed_experts = 2\nn_shared_experts = 1\n"
                               "top_k = 1\nd_expert = 2\nmtp_depth = 1\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_quiet_logs();
    struct tr_config c;
    struct tr_model m;
    if (tr_config_parse(&c, cfg_text, sizeof cfg_text - 1, "fuzz") != TM_OK ||
        tr_model_init(&m, &c) != TM_OK)
        abort();
    char path[] = "/tmp/fuzz_safetensors.XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0)
        abort();
    if (size && write(fd, data, size) != (ssize_t)size)
        abort();
    close(fd);
    int rc = tr_safetensors_read(&m, path);
    if (rc != TM_OK && rc != TM_ERR_FORMAT && rc != TM_ERR_NOTFOUND)
        abort();
    if (rc == TM_OK) {
        float *copy = malloc(m.n_params * sizeof(float));
        memcpy(copy, m.params, m.n_params * sizeof(float));
        if (tr_safetensors_write(&m, path, NULL, 0) != TM_OK ||
            tr_safetensors_read(&m, path) != TM_OK ||
            memcmp(copy, m.params, m.n_params * sizeof(float)) != 0)
            abort();
        free(copy);
    }
    unlink(path);
    tr_model_release(&m);
    return 0;
}
