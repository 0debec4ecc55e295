/* tr_gen.c: opening a checkpoint for generation (tr_gen.h). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "tr_gen.h"
#include "tr_train.h"
#include "tm_err.h"
#include "tm_fs.h"
#include "tm_log.h"

#define CONFIG_MAX (1u << 20)

static int is_dir(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
}

static int file_exists(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
}

/* The checkpoint directory `path` names, in out[cap]. */
static int find_ckpt(const char *path, char *out, size_t cap)
{
    char probe[4200];
    snprintf(probe, sizeof probe, "%s/model.safetensors", path);
    if (file_exists(probe) && snprintf(out, cap, "%s", path) < (int)cap)
        return TM_OK;
    /* A train directory, or a workdir holding one. */
    const char *const subs[] = {"", "/train"};
    for (int i = 0; i < 2; i++) {
        char dir[4200];
        snprintf(dir, sizeof dir, "%s%s", path, subs[i]);
        if (!is_dir(dir))
            continue;
        int64_t step = -1;
        if (tr_ckpt_latest(dir, &step) == TM_OK && step >= 0) {
            if (snprintf(out, cap, "%s/ckpt-%" PRId64, dir, step) < (int)cap)
                return TM_OK;
        }
    }
    tm_log_error("%s: no checkpoint (expected a ckpt-N directory, or a workdir or train "
                 "directory holding one)",
                 path);
    return TM_ERR_NOTFOUND;
}

/* Applies config.json's "model" object to c through the INI setter, so the same checks run. */
static int read_config(const char *file, struct tr_config *c, uint64_t *hash)
{
    char *data;
    size_t len;
    int rc = tm_read_file(file, CONFIG_MAX, &data, &len);
    if (rc)
        return rc;
    cJSON *j = cJSON_ParseWithLength(data, len);
    free(data);
    if (!j) {
        tm_log_error("%s: not valid JSON", file);
        return TM_ERR_FORMAT;
    }
    rc = TM_OK;
    tr_config_defaults(c);
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(j, "model");
    if (!cJSON_IsObject(model)) {
        tm_log_error("%s: no \"model\" object", file);
        rc = TM_ERR_FORMAT;
    }
    const cJSON *e;
    cJSON_ArrayForEach(e, model)
    {
        char val[64], err[256];
        if (cJSON_IsString(e))
            snprintf(val, sizeof val, "%s", e->valuestring);
        else if (cJSON_IsNumber(e))
            snprintf(val, sizeof val, "%.17g", e->valuedouble);
        else {
            tm_log_error("%s: model.%s is neither a number nor a string", file, e->string);
            rc = TM_ERR_FORMAT;
            break;
        }
        if (tr_config_set(c, "model", e->string, val, err, sizeof err) != TM_OK) {
            tm_log_error("%s: model.%s: %s", file, e->string, err);
            rc = TM_ERR_FORMAT;
            break;
        }
    }
    if (rc == TM_OK && tr_config_check(c) != TM_OK)
        rc = TM_ERR_FORMAT;
    *hash = 0;
    const cJSON *h = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "data"),
                                                      "tokenizer_hash");
    if (cJSON_IsString(h))
        *hash = strtoull(h->valuestring, NULL, 16);
    cJSON_Delete(j);
    return rc;
}

int tr_ckpt_open(const char *path, struct tr_model *m, uint64_t *tokenizer_hash)
{
    char dir[4200], file[4300];
    int rc = find_ckpt(path, dir, sizeof dir);
    if (rc)
        return rc;
    struct tr_config c;
    snprintf(file, sizeof file, "%s/config.json", dir);
    if ((rc = read_config(file, &c, tokenizer_hash)))
        return rc;
    if ((rc = tr_model_init(m, &c)))
        return rc;
    snprintf(file, sizeof file, "%s/model.safetensors", dir);
    if ((rc = tr_safetensors_read(m, file))) {
        tr_model_release(m);
        return rc;
    }
    tm_log_info("checkpoint %s: %zu parameters", dir, m->n_params);
    return TM_OK;
}

/* ---- completion: generate, decode, stop texts ------------------------------------------------ */

struct complete_ctx {
    struct tok_decoder dec;
    struct tm_buf *text; /* the continuation goes after text->len at the start (base) */
    size_t base;
    const struct tr_complete_opts *o;
    size_t checked; /* bytes of the continuation already searched for stop texts */
    int stopped;
    int err;
};

static int complete_emit(void *vctx, const unsigned char *bytes, size_t len)
{
    struct complete_ctx *g = vctx;
    return tm_buf_append(g->text, bytes, len);
}

/* Decodes the token and ends generation when the continuation now contains a stop text: it is
 * cut where the text starts. */
static int complete_token(void *vctx, int32_t id)
{
    struct complete_ctx *g = vctx;
    int rc = tok_decoder_push(&g->dec, (uint32_t)id);
    if (rc) {
        g->err = rc;
        return 1;
    }
    const char *cont = g->text->data + g->base;
    size_t len = g->text->len - g->base;
    for (size_t i = 0; i < g->o->n_stops; i++) {
        const char *s = g->o->stops[i];
        size_t sl = strlen(s);
        if (!sl || len < sl)
            continue;
        /* Only where the new bytes can complete it. */
        size_t from = g->checked >= sl ? g->checked - sl + 1 : 0;
        const char *hit = memmem(cont + from, len - from, s, sl);
        if (hit) {
            g->text->len = g->base + (size_t)(hit - cont);
            g->stopped = 1;
            return 1;
        }
    }
    g->checked = len;
    return 0;
}

int tr_complete(const struct tr_model *m, struct tok_encoder *enc, uint32_t eot, const char *prompt,
                const struct tr_complete_opts *o, struct tm_buf *out,
                struct tr_complete_result *res)
{
    memset(res, 0, sizeof(*res));
    struct tok_ids ids;
    tok_ids_init(&ids, 0);
    int rc = tok_encode_ordinary(enc, prompt, strlen(prompt), &ids);
    if (rc == TM_OK && ids.n == 0) {
        tm_log_error("complete: the prompt is empty");
        rc = TM_ERR_USAGE;
    }
    struct tr_kv_cache kv;
    if (rc == TM_OK && (rc = tr_kv_cache_init(&kv, m, m->cfg.context)) == TM_OK) {
        struct tr_sampler s;
        tr_sampler_init(&s, o->temperature, o->top_p, o->seed);
        s.n_valid = (int)o->id_end;
        struct complete_ctx g = {.text = out, .base = out->len, .o = o};
        tok_decoder_init(&g.dec, enc, complete_emit, &g);
        rc = tr_generate(m, &kv, (const int32_t *)ids.v, (int)ids.n, o->max_tokens, &s,
                         (int32_t)eot, complete_token, &g, &res->new_tokens, &res->why);
        if (rc == TM_ERR_TOOBIG)
            tm_log_error("complete: the prompt's %zu tokens exceed the model's context of %d",
                         ids.n, m->cfg.context);
        if (rc == TM_OK && g.err)
            rc = g.err;
        if (rc == TM_OK && !g.stopped)
            tok_decoder_finish(&g.dec);
        res->by_stop_text = g.stopped;
        tr_kv_cache_release(&kv);
    }
    res->prompt_tokens = (int)ids.n;
    tok_ids_release(&ids);
    return rc;
}
