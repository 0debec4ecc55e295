/* tr_ckpt.c: checkpoints. model.safetensors so other tools (PyTorch's safetensors, Hugging
 * Face) can read the weights; state.bin, a versioned record of our own, for what only the
 * trainer needs to resume bit for bit; config.json for people. A checkpoint directory appears
 * by rename, complete or not at all. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <xxhash.h>

#include "tm_err.h"
#include "tm_fs.h"
#include "tm_log.h"
#include "tm_mem.h"
#include "tr_train.h"

/* The safetensors header is capped at 100 MB by its reference reader; the same cap here keeps
 * a corrupt length from asking for gigabytes. */
#define TR_ST_HEADER_MAX (100u * 1000u * 1000u)
/* The largest file tr_safetensors_read() and tr_ckpt_load() read whole. */
#define TR_CKPT_FILE_MAX  ((size_t)1 << 40)
#define TR_CKPT_PREFIX    "ckpt-"
#define TR_PARTIAL_SUFFIX ".partial"

static int host_little_endian(void)
{
    const uint16_t one = 1;
    return *(const unsigned char *)&one == 1;
}

/* ---- Files ------------------------------------------------------------------------------- */

static int write_all_fd(int fd, const void *p, size_t n, const char *path)
{
    const char *c = p;
    while (n) {
        ssize_t w = write(fd, c, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            tm_log_error("%s: write: %s", path, strerror(errno));
            return TM_ERR_IO;
        }
        c += w;
        n -= (size_t)w;
    }
    return TM_OK;
}

/* A file written by parts then fsynced; the caller makes it visible atomically. */
struct wfile {
    int fd;
    const char *path;
    XXH3_state_t *h; /* NULL: not hashed */
};

static int wf_open(struct wfile *f, const char *path, int hashed)
{
    f->path = path;
    f->h = NULL;
    f->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (f->fd < 0) {
        tm_log_error("%s: open: %s", path, strerror(errno));
        return TM_ERR_IO;
    }
    if (hashed) {
        f->h = XXH3_createState();
        if (!f->h || XXH3_64bits_reset(f->h) != XXH_OK) {
            close(f->fd);
            XXH3_freeState(f->h);
            return TM_ERR_NOMEM;
        }
    }
    return TM_OK;
}

static int wf_put(struct wfile *f, const void *p, size_t n)
{
    if (f->h)
        XXH3_64bits_update(f->h, p, n);
    return write_all_fd(f->fd, p, n, f->path);
}

static int wf_close(struct wfile *f, int rc)
{
    if (rc == TM_OK && fsync(f->fd) != 0) {
        tm_log_error("%s: fsync: %s", f->path, strerror(errno));
        rc = TM_ERR_IO;
    }
    if (close(f->fd) != 0 && rc == TM_OK) {
        tm_log_error("%s: close: %s", f->path, strerror(errno));
        rc = TM_ERR_IO;
    }
    XXH3_freeState(f->h);
    return rc;
}

static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) != 0) {
        tm_log_error("%s: fsync: %s", dir, strerror(errno));
        if (fd >= 0)
            close(fd);
        return TM_ERR_IO;
    }
    close(fd);
    return TM_OK;
}

/* Removes a checkpoint directory: its files, then itself (they hold no subdirectories). */
static int remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return errno == ENOENT ? TM_OK : TM_ERR_IO;
    struct dirent *e;
    int rc = TM_OK;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char *p = tm_path_join(dir, e->d_name);
        if (unlink(p) != 0) {
            tm_log_error("%s: unlink: %s", p, strerror(errno));
            rc = TM_ERR_IO;
        }
        free(p);
    }
    closedir(d);
    if (rc == TM_OK && rmdir(dir) != 0) {
        tm_log_error("%s: rmdir: %s", dir, strerror(errno));
        rc = TM_ERR_IO;
    }
    return rc;
}

/* ---- safetensors --------------------------------------------------------------------------- */

static void add_tensor(cJSON *root, const char *name, const int *shape, int ndim, size_t begin,
                       size_t end)
{
    cJSON *t = cJSON_AddObjectToObject(root, name);
    cJSON_AddStringToObject(t, "dtype", "F32");
    cJSON *sh = cJSON_AddArrayToObject(t, "shape");
    for (int i = 0; i < ndim; i++)
        cJSON_AddItemToArray(sh, cJSON_CreateNumber(shape[i]));
    cJSON *off = cJSON_AddArrayToObject(t, "data_offsets");
    cJSON_AddItemToArray(off, cJSON_CreateNumber((double)begin));
    cJSON_AddItemToArray(off, cJSON_CreateNumber((double)end));
}

static void bias_name(const struct tr_model *m, int moe_index, char *buf, size_t n)
{
    int layer = -1;
    for (int l = 0; l < m->cfg.layers; l++)
        if (m->blocks[l].moe_index == moe_index)
            layer = l;
    snprintf(buf, n, "layers.%d.moe.router_bias", layer);
}

int tr_safetensors_write(const struct tr_model *m, const char *path, const char *const *meta,
                         int n_meta)
{
    if (!host_little_endian()) {
        tm_log_error("%s: safetensors needs little-endian data; this host is big-endian", path);
        return TM_ERR_UNSUPPORTED;
    }
    int E = m->cfg.n_routed_experts;
    cJSON *root = cJSON_CreateObject();
    /* __metadata__ first: the format allows any position, and a reader skimming the head of
     * the file sees it at once. */
    cJSON *md = cJSON_AddObjectToObject(root, "__metadata__");
    for (int i = 0; i < n_meta; i++)
        cJSON_AddStringToObject(md, meta[2 * i], meta[2 * i + 1]);
    for (int i = 0; i < m->n_tensors; i++) {
        const struct tr_tensor *t = &m->tensors[i];
        add_tensor(root, t->name, t->shape, t->ndim, t->offset * sizeof(float),
                   (t->offset + t->numel) * sizeof(float));
    }
    size_t base = m->n_params * sizeof(float);
    for (int l = 0; l < m->n_moe_layers; l++) {
        char name[TR_NAME_MAX];
        bias_name(m, l, name, sizeof(name));
        size_t b = base + (size_t)l * (size_t)E * sizeof(float);
        add_tensor(root, name, &E, 1, b, b + (size_t)E * sizeof(float));
    }
    char *json = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!json)
        return TM_ERR_NOMEM;
    size_t jlen = strlen(json);
    size_t padded = (jlen + 7) / 8 * 8; /* the data section starts 8-aligned */
    unsigned char len8[8];
    for (int i = 0; i < 8; i++)
        len8[i] = (unsigned char)((uint64_t)padded >> (8 * i));
    struct wfile f;
    int rc = wf_open(&f, path, 0);
    if (rc == TM_OK) {
        rc = wf_put(&f, len8, 8);
        if (rc == TM_OK)
            rc = wf_put(&f, json, jlen);
        for (size_t i = jlen; rc == TM_OK && i < padded; i++)
            rc = wf_put(&f, " ", 1);
        if (rc == TM_OK)
            rc = wf_put(&f, m->params, m->n_params * sizeof(float));
        if (rc == TM_OK && m->n_moe_layers)
            rc = wf_put(&f, m->router_bias, (size_t)m->n_moe_layers * (size_t)E * sizeof(float));
        rc = wf_close(&f, rc);
    }
    free(json);
    return rc;
}

/* Finds `name` in the header, checks dtype, shape and range, and copies its data to dst. */
static int read_tensor(const cJSON *hdr, const char *path, const char *name, const int *shape,
                       int ndim, const unsigned char *data, size_t data_len, float *dst)
{
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(hdr, name);
    if (!cJSON_IsObject(t)) {
        tm_log_error("%s: tensor '%s' missing", path, name);
        return TM_ERR_NOTFOUND;
    }
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(t, "dtype");
    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(t, "shape");
    const cJSON *off = cJSON_GetObjectItemCaseSensitive(t, "data_offsets");
    if (!cJSON_IsString(dt) || strcmp(dt->valuestring, "F32") != 0 || !cJSON_IsArray(sh) ||
        cJSON_GetArraySize(sh) != ndim || !cJSON_IsArray(off) || cJSON_GetArraySize(off) != 2) {
        tm_log_error("%s: tensor '%s': want dtype F32 with %d dimensions", path, name, ndim);
        return TM_ERR_FORMAT;
    }
    size_t numel = 1;
    for (int i = 0; i < ndim; i++) {
        const cJSON *d = cJSON_GetArrayItem(sh, i);
        if (!cJSON_IsNumber(d) || d->valuedouble != shape[i]) {
            tm_log_error("%s: tensor '%s': dimension %d is not %d", path, name, i, shape[i]);
            return TM_ERR_FORMAT;
        }
        numel *= (size_t)shape[i];
    }
    double b = cJSON_GetArrayItem(off, 0)->valuedouble;
    double e = cJSON_GetArrayItem(off, 1)->valuedouble;
    if (!(b >= 0 && e >= b && e <= (double)data_len) || (size_t)e - (size_t)b != numel * 4) {
        tm_log_error("%s: tensor '%s': byte range [%.0f, %.0f) does not fit %zu values in %zu "
                     "data bytes",
                     path, name, b, e, numel, data_len);
        return TM_ERR_FORMAT;
    }
    memcpy(dst, data + (size_t)b, numel * sizeof(float));
    return TM_OK;
}

int tr_safetensors_read(struct tr_model *m, const char *path)
{
    if (!host_little_endian())
        return TM_ERR_UNSUPPORTED;
    char *buf = NULL;
    size_t len = 0;
    int rc = tm_read_file(path, TR_CKPT_FILE_MAX, &buf, &len);
    if (rc)
        return rc;
    cJSON *hdr = NULL;
    uint64_t n = 0;
    for (int i = 0; len >= 8 && i < 8; i++)
        n |= (uint64_t)(unsigned char)buf[i] << (8 * i);
    if (len < 8 || n > TR_ST_HEADER_MAX || n > len - 8) {
        tm_log_error("%s: not a safetensors file (header length %" PRIu64 ", file %zu bytes)", path,
                     n, len);
        rc = TM_ERR_FORMAT;
        goto out;
    }
    hdr = cJSON_ParseWithLength(buf + 8, (size_t)n);
    if (!cJSON_IsObject(hdr)) {
        tm_log_error("%s: the safetensors header is not a JSON object", path);
        rc = TM_ERR_FORMAT;
        goto out;
    }
    const unsigned char *data = (const unsigned char *)buf + 8 + n;
    size_t data_len = len - 8 - (size_t)n;
    for (int i = 0; rc == TM_OK && i < m->n_tensors; i++) {
        const struct tr_tensor *t = &m->tensors[i];
        rc = read_tensor(hdr, path, t->name, t->shape, t->ndim, data, data_len,
                         m->params + t->offset);
    }
    int E = m->cfg.n_routed_experts;
    for (int l = 0; rc == TM_OK && l < m->n_moe_layers; l++) {
        char name[TR_NAME_MAX];
        bias_name(m, l, name, sizeof(name));
        rc = read_tensor(hdr, path, name, &E, 1, data, data_len,
                         m->router_bias + (size_t)l * (size_t)E);
    }
out:
    cJSON_Delete(hdr);
    free(buf);
    return rc;
}

/* ---- state.bin ------------------------------------------------------------------------------ */

/* The fixed part: magic[8], u32 version, u32 0, i64 step, u64 n_params, u64 n_load. */
#define TR_STATE_HEAD 40

static void put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_u64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static size_t n_load(const struct tr_model *m)
{
    return (size_t)m->n_moe_layers * (size_t)m->cfg.n_routed_experts;
}

int tr_state_write(const struct tr_model *m, const struct tr_state *st, const char *path)
{
    if (!host_little_endian())
        return TM_ERR_UNSUPPORTED;
    unsigned char head[TR_STATE_HEAD];
    memcpy(head, TR_STATE_MAGIC, 8);
    put_u64(head + 8, TR_STATE_VERSION); /* u32 version, then u32 0 */
    put_u64(head + 16, (uint64_t)st->step);
    put_u64(head + 24, st->n_params);
    put_u64(head + 32, n_load(m));
    struct wfile f;
    int rc = wf_open(&f, path, 1);
    if (rc)
        return rc;
    rc = wf_put(&f, head, sizeof(head));
    if (rc == TM_OK)
        rc = wf_put(&f, st->mom, st->n_params * sizeof(float));
    if (rc == TM_OK)
        rc = wf_put(&f, st->vel, st->n_params * sizeof(float));
    if (rc == TM_OK && n_load(m))
        rc = wf_put(&f, m->load, n_load(m) * sizeof(int64_t));
    if (rc == TM_OK) {
        unsigned char sum[8];
        put_u64(sum, XXH3_64bits_digest(f.h));
        XXH3_freeState(f.h);
        f.h = NULL;
        rc = wf_put(&f, sum, 8);
    }
    return wf_close(&f, rc);
}

int tr_state_read(struct tr_model *m, struct tr_state *st, const char *path)
{
    if (!host_little_endian())
        return TM_ERR_UNSUPPORTED;
    char *buf = NULL;
    size_t len = 0;
    int rc = tm_read_file(path, TR_CKPT_FILE_MAX, &buf, &len);
    if (rc)
        return rc;
    const unsigned char *p = (const unsigned char *)buf;
    size_t want =
        TR_STATE_HEAD + 2 * st->n_params * sizeof(float) + n_load(m) * sizeof(int64_t) + 8;
    if (len < TR_STATE_HEAD || memcmp(p, TR_STATE_MAGIC, 8) != 0) {
        tm_log_error("%s: not a trainer state file", path);
        rc = TM_ERR_FORMAT;
    } else if (get_u64(p + 8) != TR_STATE_VERSION) {
        tm_log_error("%s: state version %" PRIu64 ", this build reads %d", path,
                     get_u64(p + 8) & 0xffffffffu, TR_STATE_VERSION);
        rc = TM_ERR_VERSION;
    } else if (get_u64(p + 24) != st->n_params || get_u64(p + 32) != n_load(m) || len != want) {
        tm_log_error("%s: holds %" PRIu64 " parameters and %" PRIu64 " load counters in %zu "
                     "bytes; the model has %zu and %zu (%zu bytes)",
                     path, get_u64(p + 24), get_u64(p + 32), len, st->n_params, n_load(m), want);
        rc = TM_ERR_FORMAT;
    } else if (XXH3_64bits(p, len - 8) != get_u64(p + len - 8)) {
        tm_log_error("%s: checksum mismatch (a damaged file)", path);
        rc = TM_ERR_FORMAT;
    } else {
        st->step = (int64_t)get_u64(p + 16);
        const unsigned char *q = p + TR_STATE_HEAD;
        memcpy(st->mom, q, st->n_params * sizeof(float));
        q += st->n_params * sizeof(float);
        memcpy(st->vel, q, st->n_params * sizeof(float));
        q += st->n_params * sizeof(float);
        if (n_load(m))
            memcpy(m->load, q, n_load(m) * sizeof(int64_t));
    }
    free(buf);
    return rc;
}

/* ---- config.json ----------------------------------------------------------------------------- */

cJSON *tr_config_json(const struct tr_config *c, const struct tr_train_cfg *t)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *mo = cJSON_AddObjectToObject(root, "model");
#define NUM(obj, s, f) cJSON_AddNumberToObject(obj, #f, (double)(s)->f)
    NUM(mo, c, vocab_size);
    NUM(mo, c, context);
    NUM(mo, c, layers);
    NUM(mo, c, dense_layers);
    NUM(mo, c, d_model);
    NUM(mo, c, n_heads);
    NUM(mo, c, n_kv_heads);
    NUM(mo, c, head_dim);
    NUM(mo, c, d_ff);
    NUM(mo, c, rope_theta);
    NUM(mo, c, norm_eps);
    NUM(mo, c, n_routed_experts);
    NUM(mo, c, n_shared_experts);
    NUM(mo, c, top_k);
    NUM(mo, c, d_expert);
    NUM(mo, c, route_scale);
    NUM(mo, c, bias_gamma);
    NUM(mo, c, balance_alpha);
    NUM(mo, c, mtp_depth);
    NUM(mo, c, mtp_lambda);
    char seed[32];
    snprintf(seed, sizeof(seed), "%" PRIu64, c->seed); /* a string: doubles lose 64-bit seeds */
    cJSON_AddStringToObject(mo, "seed", seed);
    NUM(mo, c, init_std);
    if (t) {
        cJSON *tr = cJSON_AddObjectToObject(root, "train");
        NUM(tr, t, steps);
        NUM(tr, t, batch);
        NUM(tr, t, seq);
        NUM(tr, t, lr);
        NUM(tr, t, min_lr);
        NUM(tr, t, warmup);
        NUM(tr, t, weight_decay);
        NUM(tr, t, beta1);
        NUM(tr, t, beta2);
        NUM(tr, t, eps);
        NUM(tr, t, clip);
        snprintf(seed, sizeof(seed), "%" PRIu64, t->seed);
        cJSON_AddStringToObject(tr, "seed", seed);
        NUM(tr, t, eval_every);
        NUM(tr, t, eval_batches);
        NUM(tr, t, ckpt_every);
        NUM(tr, t, keep_ckpts);
        cJSON_AddNumberToObject(tr, "weight_text", t->weights[0]);
        cJSON_AddNumberToObject(tr, "weight_math", t->weights[1]);
        cJSON_AddNumberToObject(tr, "weight_code", t->weights[2]);
        cJSON_AddStringToObject(tr, "precision", tr_precision_names[t->precision]);
        cJSON_AddStringToObject(tr, "fp8_format", tr_fp8_format_names[t->fp8_format]);
        NUM(tr, t, fp8_pow2);
        NUM(tr, t, fp8_accum_bits);
        cJSON_AddStringToObject(tr, "fp8_promote", tr_fp8_promote_names[t->fp8_promote]);
        cJSON_AddStringToObject(tr, "moments", tr_moments_names[t->moments]);
        NUM(tr, t, fp8_probe_every);
        NUM(tr, t, threads);
    }
#undef NUM
    return root;
}

/* ---- Checkpoint directories --------------------------------------------------------------------
 */

/* The step of a directory entry "ckpt-N" (digits only), or -1. */
static int64_t ckpt_step(const char *name)
{
    size_t pl = strlen(TR_CKPT_PREFIX);
    if (strncmp(name, TR_CKPT_PREFIX, pl) != 0 || !name[pl])
        return -1;
    int64_t v = 0;
    for (const char *p = name + pl; *p; p++) {
        if (*p < '0' || *p > '9' || v > INT64_MAX / 10 - 10)
            return -1;
        v = v * 10 + (*p - '0');
    }
    return v;
}

/* The complete checkpoints' steps, ascending, in *steps (caller frees); removes *.partial. */
/* The complete checkpoints' steps, ascending; clean: remove unfinished ones met. */
static int list_ckpts(const char *dir, int64_t **steps, size_t *n, int clean)
{
    *steps = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d)
        return errno == ENOENT ? TM_OK : TM_ERR_IO;
    size_t cap = 0;
    struct dirent *e;
    int rc = TM_OK;
    while ((e = readdir(d))) {
        size_t nl = strlen(e->d_name), sl = strlen(TR_PARTIAL_SUFFIX);
        if (clean && !strncmp(e->d_name, TR_CKPT_PREFIX, strlen(TR_CKPT_PREFIX)) && nl > sl &&
            !strcmp(e->d_name + nl - sl, TR_PARTIAL_SUFFIX)) {
            char *p = tm_path_join(dir, e->d_name);
            tm_log_info("%s: removing an unfinished checkpoint", p);
            if (remove_dir(p))
                rc = TM_ERR_IO;
            free(p);
            continue;
        }
        int64_t s = ckpt_step(e->d_name);
        if (s < 0)
            continue;
        if (*n == cap) {
            cap = cap ? 2 * cap : 8;
            *steps = tm_xreallocarray(*steps, cap, sizeof(**steps));
        }
        (*steps)[(*n)++] = s;
    }
    closedir(d);
    for (size_t i = 1; i < *n; i++) /* insertion sort: a handful of entries */
        for (size_t j = i; j > 0 && (*steps)[j - 1] > (*steps)[j]; j--) {
            int64_t t = (*steps)[j];
            (*steps)[j] = (*steps)[j - 1];
            (*steps)[j - 1] = t;
        }
    return rc;
}

static char *ckpt_dir(const char *train_dir, int64_t step, const char *suffix)
{
    char name[64];
    snprintf(name, sizeof(name), TR_CKPT_PREFIX "%" PRId64 "%s", step, suffix);
    return tm_path_join(train_dir, name);
}

int tr_ckpt_latest(const char *train_dir, int64_t *step)
{
    int64_t *steps;
    size_t n;
    int rc = list_ckpts(train_dir, &steps, &n, 1);
    *step = n ? steps[n - 1] : -1;
    free(steps);
    return rc;
}

int tr_ckpt_newest(const char *train_dir, int64_t *step)
{
    int64_t *steps;
    size_t n;
    int rc = list_ckpts(train_dir, &steps, &n, 0);
    *step = n ? steps[n - 1] : -1;
    free(steps);
    return rc;
}

int tr_ckpt_save(const char *train_dir, const struct tr_model *m, const struct tr_state *st,
                 const struct tr_config *mc, const struct tr_train_cfg *t, int keep)
{
    char *tmp = ckpt_dir(train_dir, st->step, TR_PARTIAL_SUFFIX);
    char *fin = ckpt_dir(train_dir, st->step, "");
    char *f_model = tm_path_join(tmp, "model.safetensors");
    char *f_state = tm_path_join(tmp, "state.bin");
    char *f_conf = tm_path_join(tmp, "config.json");
    char *conf = NULL;
    int rc = remove_dir(tmp);
    if (rc == TM_OK && mkdir(tmp, 0755) != 0) {
        tm_log_error("%s: mkdir: %s", tmp, strerror(errno));
        rc = TM_ERR_IO;
    }
    char step_s[32];
    snprintf(step_s, sizeof(step_s), "%" PRId64, st->step);
    char tok_s[32];
    snprintf(tok_s, sizeof(tok_s), "%016" PRIx64, st->tokenizer_hash);
    const char *meta[] = {"format", "pt",   "producer",       "tokenmill train",
                          "step",   step_s, "tokenizer_hash", tok_s};
    if (rc == TM_OK)
        rc = tr_safetensors_write(m, f_model, meta, 4);
    if (rc == TM_OK)
        rc = tr_state_write(m, st, f_state);
    if (rc == TM_OK) {
        cJSON *j = tr_config_json(mc, t);
        cJSON *data = cJSON_AddObjectToObject(j, "data");
        cJSON_AddStringToObject(data, "tokenizer_hash", tok_s);
        cJSON_AddStringToObject(data, "corpus", st->corpus);
        cJSON_AddNumberToObject(data, "target_step", (double)st->target);
        conf = cJSON_Print(j);
        cJSON_Delete(j);
        struct wfile f;
        rc = conf ? wf_open(&f, f_conf, 0) : TM_ERR_NOMEM;
        if (rc == TM_OK) {
            rc = wf_put(&f, conf, strlen(conf));
            if (rc == TM_OK)
                rc = wf_put(&f, "\n", 1);
            rc = wf_close(&f, rc);
        }
    }
    if (rc == TM_OK)
        rc = fsync_dir(tmp);
    if (rc == TM_OK)
        rc = remove_dir(fin); /* a checkpoint of the same step from an earlier run */
    if (rc == TM_OK && rename(tmp, fin) != 0) {
        tm_log_error("%s: rename to %s: %s", tmp, fin, strerror(errno));
        rc = TM_ERR_IO;
    }
    if (rc == TM_OK)
        rc = fsync_dir(train_dir);
    if (rc == TM_OK) {
        int64_t *steps;
        size_t n;
        rc = list_ckpts(train_dir, &steps, &n, 1);
        for (size_t i = 0; rc == TM_OK && n > (size_t)keep && i < n - (size_t)keep; i++) {
            char *old = ckpt_dir(train_dir, steps[i], "");
            rc = remove_dir(old);
            free(old);
        }
        free(steps);
    }
    cJSON_free(conf);
    free(f_conf);
    free(f_state);
    free(f_model);
    free(fin);
    free(tmp);
    return rc;
}

int tr_ckpt_info(const char *train_dir, int64_t step, const struct tr_config *mc,
                 struct tr_ckpt_info *out)
{
    memset(out, 0, sizeof(*out));
    char *dir = ckpt_dir(train_dir, step, "");
    char *f_conf = tm_path_join(dir, "config.json");
    char *text = NULL;
    size_t len = 0;
    int rc = tm_read_file(f_conf, 1 << 20, &text, &len);
    cJSON *saved = rc == TM_OK ? cJSON_ParseWithLength(text, len) : NULL;
    if (rc == TM_OK && !saved) {
        tm_log_error("%s: not JSON", f_conf);
        rc = TM_ERR_FORMAT;
    }
    if (rc == TM_OK) {
        cJSON *now = tr_config_json(mc, NULL);
        const cJSON *sm = cJSON_GetObjectItemCaseSensitive(saved, "model");
        out->model_same =
            sm && cJSON_Compare(sm, cJSON_GetObjectItemCaseSensitive(now, "model"), 1);
        cJSON_Delete(now);
        const cJSON *data = cJSON_GetObjectItemCaseSensitive(saved, "data");
        const cJSON *h = cJSON_GetObjectItemCaseSensitive(data, "tokenizer_hash");
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(data, "corpus");
        const cJSON *tg = cJSON_GetObjectItemCaseSensitive(data, "target_step");
        snprintf(out->tokenizer, sizeof(out->tokenizer), "%s",
                 cJSON_IsString(h) ? h->valuestring : "");
        snprintf(out->corpus, sizeof(out->corpus), "%s", cJSON_IsString(c) ? c->valuestring : "");
        out->target = cJSON_IsNumber(tg) ? (int64_t)tg->valuedouble : 0;
    }
    cJSON_Delete(saved);
    free(text);
    free(f_conf);
    free(dir);
    return rc;
}

int tr_ckpt_load(const char *train_dir, int64_t step, struct tr_model *m, struct tr_state *st,
                 const struct tr_config *mc)
{
    char *dir = ckpt_dir(train_dir, step, "");
    char *f_model = tm_path_join(dir, "model.safetensors");
    char *f_state = tm_path_join(dir, "state.bin");
    char *f_conf = tm_path_join(dir, "config.json");
    struct tr_ckpt_info info;
    int rc = tr_ckpt_info(train_dir, step, mc, &info);
    if (rc == TM_OK && !info.model_same) {
        tm_log_error("%s: the [model] settings differ from the checkpoint's; use --fresh to "
                     "start over",
                     f_conf);
        rc = TM_ERR_USAGE;
    }
    if (rc == TM_OK && st->tokenizer_hash) {
        char want[32];
        snprintf(want, sizeof(want), "%016" PRIx64, st->tokenizer_hash);
        if (strcmp(info.tokenizer, want) != 0) {
            tm_log_error("%s: trained on shards of tokenizer %s, the workdir's is %s; use --fresh "
                         "to start over",
                         f_conf, info.tokenizer[0] ? info.tokenizer : "(none)", want);
            rc = TM_ERR_USAGE;
        }
    }
    if (rc == TM_OK) {
        memcpy(st->corpus, info.corpus, sizeof(st->corpus));
        st->target = info.target;
    }
    if (rc == TM_OK)
        rc = tr_safetensors_read(m, f_model);
    if (rc == TM_OK)
        rc = tr_state_read(m, st, f_state);
    if (rc == TM_OK && st->step != step) {
        tm_log_error("%s: holds step %" PRId64 ", the directory says %" PRId64, f_state, st->step,
                     step);
        rc = TM_ERR_FORMAT;
    }
    free(f_conf);
    free(f_state);
    free(f_model);
    free(dir);
    return rc;
}

int tr_ckpt_remove_all(const char *train_dir)
{
    int64_t *steps;
    size_t n;
    int rc = list_ckpts(train_dir, &steps, &n, 1);
    for (size_t i = 0; rc == TM_OK && i < n; i++) {
        char *dir = ckpt_dir(train_dir, steps[i], "");
        rc = remove_dir(dir);
        free(dir);
    }
    free(steps);
    return rc;
}
