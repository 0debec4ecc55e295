/* train: the trainer's settings, optimizer and checkpoints (train/tr_train.h).
 *
 * - AdamW: two steps on four values against the formula worked out by hand (step 1: the bias
 *   correction makes the update g / (|g| + eps), i.e. about sign(g), so 1.0 with g 0.1, lr 0.1,
 *   wd 0.01 becomes 1.0 (1 - 0.001) - 0.1 * 0.1 / (0.1 + 1e-8) = 0.89900001; a zero gradient
 *   only decays), to ADAM_TOL; the moments too.
 * - Decay mask: with zero gradients, one tr_optim_step() scales every matrix by (1 - lr wd) and
 *   leaves the embedding and the RMSNorm scales unchanged.
 * - Schedule: warmup values lr (s + 1) / warmup, the peak, the cosine midpoint
 *   (lr + min_lr) / 2, min_lr at and after the end; warmup 0 starts at the peak.
 * - Settings: defaults, a file with both sections, bad values refused with the key named,
 *   unknown keys, other sections ignored, the relations (seq <= context, min_lr <= lr,
 *   warmup <= steps, weights summing to > 0).
 * - safetensors: the file parses back with a small reader written here (8-byte length,
 *   header a multiple of 8, JSON via cJSON): every tensor's name, dtype, shape, byte range
 *   (in offset order, tiling the data section exactly) and data bytes; the router biases are
 *   there; tr_safetensors_read() restores another model's parameters and biases bit for bit; a
 *   corrupt length is TM_ERR_FORMAT.
 * - state.bin round trip (step, moments, load counters), a flipped byte (TM_ERR_FORMAT) and a
 *   future version (TM_ERR_VERSION).
 * - Checkpoint directories: keep_ckpts honored, the newest found, a .partial directory
 *   removed, a checkpoint with other [model] settings or of another tokenizer refused
 *   (TM_ERR_USAGE). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "test_util.h"
#include "tm_err.h"
#include "tm_fs.h"
#include "tm_log.h"
#include "tm_rand.h"
#include "tr_model.h"
#include "tr_train.h"

#define ADAM_TOL 1e-6
/* The moments in float carry 1 - beta rounded to float (1 - 0.999f is 1.00001e-3, not 1e-3). */
#define MOMENT_RTOL 1e-4

static void tiny_model_config(struct tr_config *c)
{
    tr_config_defaults(c);
    c->vocab_size = 37;
    c->context = 8;
    c->layers = 2;
    c->dense_layers = 1;
    c->d_model = 16;
    c->n_heads = 4;
    c->n_kv_heads = 2;
    c->head_dim = 4;
    c->d_ff = 24;
    c->n_routed_experts = 4;
    c->n_shared_experts = 1;
    c->top_k = 2;
    c->d_expert = 8;
}

static void test_adamw_by_hand(void **state)
{
    (void)state;
    float p[4] = {1.0f, -2.0f, 0.5f, 3.0f};
    float m[4] = {0}, v[4] = {0};
    const float g1[4] = {0.1f, -0.2f, 0.0f, 1e-3f};
    const float g2[4] = {0.05f, 0.3f, 0.0f, -2e-3f};
    tr_adamw_update(p, g1, m, v, 4, 0.1f, 0.01f, 0.9f, 0.999f, 1e-8f, 1.0f, 1);
    /* Step 1: p (1 - lr wd) - lr g / (|g| + eps). */
    const double want1[4] = {0.899000010, -1.898000005, 0.499500000, 2.897001000};
    for (int i = 0; i < 4; i++)
        assert_true(fabs(p[i] - want1[i]) < ADAM_TOL);
    assert_true(fabs(m[0] - 0.01) < MOMENT_RTOL * 0.01 && fabs(v[1] - 4e-5) < MOMENT_RTOL * 4e-5);
    assert_true(m[2] == 0 && v[2] == 0);
    tr_adamw_update(p, g2, m, v, 4, 0.1f, 0.01f, 0.9f, 0.999f, 1e-8f, 1.0f, 2);
    /* Step 2: m = 0.9 m + 0.1 g, v = 0.999 v + 0.001 g^2, corrections 1 / 0.19 and
     * 1 / 0.001999 (worked in double). */
    const double want2[4] = {0.804883058, -1.920872186, 0.499000500, 2.930714120};
    for (int i = 0; i < 4; i++)
        assert_true(fabs(p[i] - want2[i]) < ADAM_TOL);
    assert_true(fabs(m[0] - 0.014) < MOMENT_RTOL * 0.014);
    assert_true(fabs(v[0] - 1.249e-5) < MOMENT_RTOL * 1.249e-5);

    /* gscale (the clipping factor applied inside the update) gives the same bits as a gradient
     * scaled beforehand, as tr_grad_clip() stores it. */
    float pa[4] = {1.0f, -2.0f, 0.5f, 3.0f}, pb[4], ma[4] = {0}, mb[4] = {0}, va[4] = {0},
          vb[4] = {0}, gs[4];
    memcpy(pb, pa, sizeof(pa));
    for (int i = 0; i < 4; i++)
        gs[i] = g2[i] * 0.37f;
    tr_adamw_update(pa, g2, ma, va, 4, 0.1f, 0.01f, 0.9f, 0.999f, 1e-8f, 0.37f, 1);
    tr_adamw_update(pb, gs, mb, vb, 4, 0.1f, 0.01f, 0.9f, 0.999f, 1e-8f, 1.0f, 1);
    assert_memory_equal(pa, pb, sizeof(pa));
    assert_memory_equal(ma, mb, sizeof(ma));
    assert_memory_equal(va, vb, sizeof(va));
}

static void test_decay_mask(void **state)
{
    (void)state;
    struct tr_config c;
    tiny_model_config(&c);
    struct tr_model m;
    assert_int_equal(tr_model_init(&m, &c), TM_OK);
    struct tr_train_cfg t;
    tr_train_defaults(&t);
    t.weight_decay = 0.5;
    size_t n = m.n_params;
    float *before = malloc(n * sizeof(float));
    float *zero = calloc(n, sizeof(float)), *mo = calloc(n, sizeof(float)),
          *ve = calloc(n, sizeof(float));
    memcpy(before, m.params, n * sizeof(float));
    tr_optim_step(&m, zero, mo, ve, &t, 0.1f, 1.0f, 1);
    int matrices = 0, kept = 0;
    for (int i = 0; i < m.n_tensors; i++) {
        const struct tr_tensor *tt = &m.tensors[i];
        int decays = tr_tensor_decays(tt);
        assert_int_equal(decays, tt->ndim >= 2 && strcmp(tt->name, "embed") != 0);
        for (size_t j = tt->offset; j < tt->offset + tt->numel; j++) {
            float want = decays ? before[j] * (1.0f - 0.1f * 0.5f) : before[j];
            assert_true(m.params[j] == want);
        }
        matrices += decays;
        kept += !decays;
    }
    assert_true(matrices > 10 && kept > 3);
    assert_false(tr_tensor_decays(tr_model_tensor(&m, "embed")));
    assert_false(tr_tensor_decays(tr_model_tensor(&m, "norm")));
    assert_true(tr_tensor_decays(tr_model_tensor(&m, "head")));
    free(ve);
    free(mo);
    free(zero);
    free(before);
    tr_model_release(&m);
}

static void test_schedule(void **state)
{
    (void)state;
    struct tr_train_cfg t;
    tr_train_defaults(&t);
    t.steps = 110;
    t.warmup = 10;
    t.lr = 1e-3;
    t.min_lr = 1e-4;
    assert_true(fabs(tr_lr_at(&t, 0) - 1e-4) < 1e-12);
    assert_true(fabs(tr_lr_at(&t, 4) - 5e-4) < 1e-12);
    assert_true(fabs(tr_lr_at(&t, 9) - 1e-3) < 1e-12);
    assert_true(fabs(tr_lr_at(&t, 10) - 1e-3) < 1e-12);   /* the cosine starts at the peak */
    assert_true(fabs(tr_lr_at(&t, 60) - 5.5e-4) < 1e-12); /* halfway: (lr + min_lr) / 2 */
    assert_true(fabs(tr_lr_at(&t, 35) - (1e-4 + 9e-4 * (1 + cos(M_PI / 4)) / 2)) < 1e-12);
    assert_true(fabs(tr_lr_at(&t, 110) - 1e-4) < 1e-12);
    assert_true(fabs(tr_lr_at(&t, 5000) - 1e-4) < 1e-12);
    for (int s = 11; s < 110; s++)
        assert_true(tr_lr_at(&t, s) < tr_lr_at(&t, s - 1));
    t.warmup = 0;
    assert_true(fabs(tr_lr_at(&t, 0) - 1e-3) < 1e-12);
}

static int parse_both(const char *text, struct tr_config *mc, struct tr_train_cfg *t)
{
    char *dir = tu_make_tmpdir("tr_train_cfg");
    char *path = tm_path_join(dir, "c.ini");
    assert_int_equal(tm_write_atomic(path, text, strlen(text)), TM_OK);
    int rc = tr_train_load(path, mc, t);
    free(path);
    tu_remove_tmpdir(dir);
    return rc;
}

static void test_settings(void **state)
{
    (void)state;
    struct tr_config mc;
    struct tr_train_cfg t;
    tr_train_defaults(&t);
    assert_int_equal(t.steps, 1000);
    assert_true(t.weights[0] < 0 && t.weights[1] < 0 && t.weights[2] < 0);
    assert_int_equal(parse_both("[model]\ncontext = 64\n[train]\nsteps = 7\nbatch = 3\nseq = 64\n"
                                "lr = 0.01\nmin_lr = 0\nwarmup = 2\nweight_math = 2\n"
                                "seed = 18446744073709551615\nprecision = fp8\nfp8_format = e5m2\n"
                                "fp8_promote = 64\nmoments = fp32\nthreads = 2\n"
                                "[other]\nanything = goes\n",
                                &mc, &t),
                     TM_OK);
    assert_int_equal(mc.context, 64);
    assert_int_equal(t.steps, 7);
    assert_int_equal(t.batch, 3);
    assert_int_equal(t.seq, 64);
    assert_true(t.lr == 0.01 && t.min_lr == 0 && t.weights[1] == 2 && t.weights[0] < 0);
    assert_true(t.seed == UINT64_MAX && t.precision == TR_PREC_FP8 && t.threads == 2);
    assert_true(t.fp8_format == TR_FP8_E5M2 && t.moments == TR_MOMENTS_FP32);
    assert_true(!tr_train_moments_bf16(&t));
    struct tr_gemm_cfg g;
    tr_train_gemm_cfg(&t, &g);
    assert_true(g.mode == TR_GEMM_FP8 && g.fp8_acc.promote == 64 && g.fp8_acc.bits == 14);

    char err[512];
    struct {
        const char *key, *value;
    } bad[] = {{"steps", "0"},         {"batch", "-1"},          {"lr", "0"},
               {"lr", "abc"},          {"beta2", "1"},           {"eps", "0"},
               {"clip", "-1"},         {"precision", "fp16"},    {"threads", "0"},
               {"keep_ckpts", "0"},    {"seed", "-3"},           {"weight_code", "-1"},
               {"seq", "1.5"},         {"eval_batches", ""},     {"min_lr", "1e400"},
               {"fp8_promote", "100"}, {"fp8_accum_bits", "25"}, {"moments", "fp8"}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = 0;
        assert_int_equal(tr_train_set(&t, "train", bad[i].key, bad[i].value, err, sizeof(err)),
                         TM_ERR_USAGE);
        assert_true(strncmp(err, bad[i].key, strlen(bad[i].key)) == 0);
    }
    assert_int_equal(tr_train_set(&t, "train", "stepz", "1", err, sizeof(err)), TM_ERR_USAGE);
    assert_non_null(strstr(err, "unknown key 'stepz'"));
    assert_int_equal(tr_train_set(&t, "train", "precision", "fp16", err, sizeof(err)),
                     TM_ERR_USAGE);
    assert_non_null(strstr(err, "one of fp32, bf16, fp8")); /* the accepted words, named */
    assert_int_equal(tr_train_set(&t, "model", "stepz", "1", err, sizeof(err)), TM_OK);

    FILE *q = tu_log_quiet();
    assert_int_equal(parse_both("[model]\ncontext = 16\n[train]\nseq = 32\n", &mc, &t),
                     TM_ERR_USAGE);
    assert_int_equal(parse_both("[train]\nlr = 0.001\nmin_lr = 0.01\n", &mc, &t), TM_ERR_USAGE);
    assert_int_equal(parse_both("[train]\nsteps = 5\nwarmup = 6\n", &mc, &t), TM_ERR_USAGE);
    assert_int_equal(parse_both("[train]\nweight_text = 0\nweight_code = 0\n", &mc, &t),
                     TM_ERR_USAGE);
    assert_int_equal(parse_both("[train]\nbatch = x\n", &mc, &t), TM_ERR_USAGE);
    tu_log_restore(q);
}

static void fill_random(struct tr_model *m, uint64_t seed)
{
    uint64_t r = seed;
    for (size_t i = 0; i < m->n_params; i++)
        m->params[i] = (float)((double)(tm_splitmix64(&r) >> 11) / 9007199254740992.0 - 0.5);
    size_t nb = (size_t)m->n_moe_layers * (size_t)m->cfg.n_routed_experts;
    for (size_t i = 0; i < nb; i++) {
        m->router_bias[i] = (float)i * 0.25f - 0.5f;
        m->load[i] = (int64_t)(tm_splitmix64(&r) % 1000);
    }
}

static uint64_t le64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static void test_safetensors(void **state)
{
    (void)state;
    char *dir = tu_make_tmpdir("tr_safetensors");
    char *path = tm_path_join(dir, "model.safetensors");
    struct tr_config c;
    tiny_model_config(&c);
    struct tr_model m, m2;
    assert_int_equal(tr_model_init(&m, &c), TM_OK);
    fill_random(&m, 5);
    const char *meta[] = {"format", "pt", "step", "12"};
    assert_int_equal(tr_safetensors_write(&m, path, meta, 2), TM_OK);

    /* A reader written from the format's description. */
    char *buf;
    size_t len;
    assert_int_equal(tm_read_file(path, 1 << 26, &buf, &len), TM_OK);
    uint64_t n = le64((unsigned char *)buf);
    assert_true(n % 8 == 0 && 8 + n <= len);
    cJSON *hdr = cJSON_ParseWithLength(buf + 8, n);
    assert_non_null(hdr);
    for (uint64_t i = 0; i < n; i++) /* the padding is spaces after the JSON */
        assert_true(buf[8 + i] != 0);
    const unsigned char *data = (unsigned char *)buf + 8 + n;
    size_t data_len = len - 8 - n;
    cJSON *md = cJSON_GetObjectItemCaseSensitive(hdr, "__metadata__");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(md, "step")->valuestring, "12");
    size_t pos = 0;
    int count = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, hdr)
    {
        if (!strcmp(it->string, "__metadata__"))
            continue;
        assert_string_equal(cJSON_GetObjectItemCaseSensitive(it, "dtype")->valuestring, "F32");
        const cJSON *sh = cJSON_GetObjectItemCaseSensitive(it, "shape");
        const cJSON *off = cJSON_GetObjectItemCaseSensitive(it, "data_offsets");
        size_t b = (size_t)cJSON_GetArrayItem(off, 0)->valuedouble;
        size_t e = (size_t)cJSON_GetArrayItem(off, 1)->valuedouble;
        assert_int_equal(b, pos); /* in offset order, no gaps */
        pos = e;
        size_t numel = 1;
        const cJSON *d;
        cJSON_ArrayForEach(d, sh) numel *= (size_t)d->valuedouble;
        assert_int_equal(e - b, numel * 4);
        if (count < m.n_tensors) {
            const struct tr_tensor *t = &m.tensors[count];
            assert_string_equal(it->string, t->name);
            assert_int_equal(cJSON_GetArraySize(sh), t->ndim);
            for (int k = 0; k < t->ndim; k++)
                assert_int_equal((int)cJSON_GetArrayItem(sh, k)->valuedouble, t->shape[k]);
            assert_int_equal(b, t->offset * 4);
            assert_memory_equal(data + b, m.params + t->offset, t->numel * 4);
        } else {
            assert_string_equal(it->string, "layers.1.moe.router_bias");
            assert_int_equal((int)cJSON_GetArrayItem(sh, 0)->valuedouble, 4);
            assert_memory_equal(data + b, m.router_bias, 16);
        }
        count++;
    }
    assert_int_equal(count, m.n_tensors + 1);
    assert_int_equal(pos, data_len); /* the ranges tile the data section */
    cJSON_Delete(hdr);

    /* Back into a model initialized otherwise. */
    c.seed = 99;
    assert_int_equal(tr_model_init(&m2, &c), TM_OK);
    assert_int_equal(tr_safetensors_read(&m2, path), TM_OK);
    assert_memory_equal(m2.params, m.params, m.n_params * 4);
    assert_memory_equal(m2.router_bias, m.router_bias, 16);

    /* A length past the end of the file. */
    buf[5] = 1;
    assert_int_equal(tm_write_atomic(path, buf, len), TM_OK);
    FILE *q = tu_log_quiet();
    assert_int_equal(tr_safetensors_read(&m2, path), TM_ERR_FORMAT);
    tu_log_restore(q);
    free(buf);
    tr_model_release(&m2);
    tr_model_release(&m);
    free(path);
    tu_remove_tmpdir(dir);
}

static void test_state(void **state)
{
    (void)state;
    char *dir = tu_make_tmpdir("tr_state");
    char *path = tm_path_join(dir, "state.bin");
    struct tr_config c;
    tiny_model_config(&c);
    struct tr_model m;
    assert_int_equal(tr_model_init(&m, &c), TM_OK);
    fill_random(&m, 3);
    size_t n = m.n_params, nl = 4;
    float *mo = malloc(n * 4), *ve = malloc(n * 4), *mo2 = calloc(n, 4), *ve2 = calloc(n, 4);
    for (size_t i = 0; i < n; i++) {
        mo[i] = (float)i * 1e-3f;
        ve[i] = (float)i * 1e-6f;
    }
    int64_t load[4];
    memcpy(load, m.load, sizeof(load));
    struct tr_state st = {1234, mo, ve, n, 0};
    assert_int_equal(tr_state_write(&m, &st, path), TM_OK);
    memset(m.load, 0, nl * sizeof(int64_t));
    struct tr_state back = {0, mo2, ve2, n, 0};
    assert_int_equal(tr_state_read(&m, &back, path), TM_OK);
    assert_int_equal(back.step, 1234);
    assert_memory_equal(mo2, mo, n * 4);
    assert_memory_equal(ve2, ve, n * 4);
    assert_memory_equal(m.load, load, sizeof(load));

    char *buf;
    size_t len;
    assert_int_equal(tm_read_file(path, 1 << 26, &buf, &len), TM_OK);
    FILE *q = tu_log_quiet();
    buf[100] ^= 1;
    assert_int_equal(tm_write_atomic(path, buf, len), TM_OK);
    assert_int_equal(tr_state_read(&m, &back, path), TM_ERR_FORMAT);
    buf[100] ^= 1;
    buf[8] = TR_STATE_VERSION + 1;
    assert_int_equal(tm_write_atomic(path, buf, len), TM_OK);
    assert_int_equal(tr_state_read(&m, &back, path), TM_ERR_VERSION);
    struct tr_state wrong = {0, mo2, ve2, n - 1, 0};
    buf[8] = TR_STATE_VERSION;
    assert_int_equal(tm_write_atomic(path, buf, len), TM_OK);
    assert_int_equal(tr_state_read(&m, &wrong, path), TM_ERR_FORMAT);
    tu_log_restore(q);
    free(buf);
    free(ve2);
    free(mo2);
    free(ve);
    free(mo);
    tr_model_release(&m);
    free(path);
    tu_remove_tmpdir(dir);
}

static int is_dir(const char *dir, const char *name)
{
    char *p = tm_path_join(dir, name);
    struct stat sb;
    int r = stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
    free(p);
    return r;
}

static void test_ckpt_dirs(void **state)
{
    (void)state;
    char *dir = tu_make_tmpdir("tr_ckpt");
    struct tr_config c;
    tiny_model_config(&c);
    struct tr_train_cfg t;
    tr_train_defaults(&t);
    struct tr_model m;
    assert_int_equal(tr_model_init(&m, &c), TM_OK);
    size_t n = m.n_params;
    float *mo = calloc(n, 4), *ve = calloc(n, 4);
    struct tr_state st = {0, mo, ve, n, 0};
    int64_t latest = 0;
    assert_int_equal(tr_ckpt_latest(dir, &latest), TM_OK);
    assert_int_equal(latest, -1);
    for (int s = 1; s <= 3; s++) {
        fill_random(&m, (uint64_t)s);
        st.step = s * 10;
        mo[0] = (float)s;
        assert_int_equal(tr_ckpt_save(dir, &m, &st, &c, &t, 2), TM_OK);
    }
    assert_false(is_dir(dir, "ckpt-10"));
    assert_true(is_dir(dir, "ckpt-20") && is_dir(dir, "ckpt-30"));
    char *partial = tm_path_join(dir, "ckpt-40.partial");
    assert_int_equal(tm_mkdirs(partial), TM_OK);
    FILE *q = tu_log_quiet();
    assert_int_equal(tr_ckpt_latest(dir, &latest), TM_OK);
    tu_log_restore(q);
    assert_int_equal(latest, 30);
    assert_false(is_dir(dir, "ckpt-40.partial"));

    struct tr_model m2;
    assert_int_equal(tr_model_init(&m2, &c), TM_OK);
    float *mo2 = calloc(n, 4), *ve2 = calloc(n, 4);
    struct tr_state st2 = {0, mo2, ve2, n, 0};
    assert_int_equal(tr_ckpt_load(dir, 30, &m2, &st2, &c), TM_OK);
    assert_int_equal(st2.step, 30);
    assert_true(mo2[0] == 3.0f);
    assert_memory_equal(m2.params, m.params, n * 4);
    assert_memory_equal(m2.router_bias, m.router_bias, 16);

    /* Checkpoints were written with tokenizer hash 0 (unknown): a known one does not match. */
    st2.tokenizer_hash = 0x1234;
    FILE *q2 = tu_log_quiet();
    assert_int_equal(tr_ckpt_load(dir, 30, &m2, &st2, &c), TM_ERR_USAGE);
    tu_log_restore(q2);
    st2.tokenizer_hash = 0;
    struct tr_config other = c;
    other.init_std = 0.5f; /* same shapes, other settings */
    q = tu_log_quiet();
    assert_int_equal(tr_ckpt_load(dir, 30, &m2, &st2, &other), TM_ERR_USAGE);
    tu_log_restore(q);
    assert_int_equal(tr_ckpt_remove_all(dir), TM_OK);
    assert_int_equal(tr_ckpt_latest(dir, &latest), TM_OK);
    assert_int_equal(latest, -1);

    free(ve2);
    free(mo2);
    tr_model_release(&m2);
    free(partial);
    free(ve);
    free(mo);
    tr_model_release(&m);
    tu_remove_tmpdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_adamw_by_hand), cmocka_unit_test(test_decay_mask),
        cmocka_unit_test(test_schedule),      cmocka_unit_test(test_settings),
        cmocka_unit_test(test_safetensors),   cmocka_unit_test(test_state),
        cmocka_unit_test(test_ckpt_dirs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
