/* tokenize: token shards written with the writer and read back through the corpus reader,
 * against streams kept in memory: every read at random positions (across chunk and shard
 * boundaries), zero-copy spans, document records, uint16 and uint32 shards, deterministic
 * training windows and their per-domain weights, and the refusals (another tokenizer, a
 * shard of a newer format, shards that disagree). */
#include "test_util.h"

#include <inttypes.h>
#include <math.h>

#include "tm_db.h"
#include "tm_rand.h"
#include "tokenize.h"

#define NS (TOK_SPLIT_COUNT * TM_DOMAIN_COUNT)

/* The expected content: each stream's ids, each document's (id, start, length). */
struct expect {
    uint32_t *ids[TOK_SPLIT_COUNT][TM_DOMAIN_COUNT];
    uint64_t n[TOK_SPLIT_COUNT][TM_DOMAIN_COUNT];
    uint64_t *doc_id[TOK_SPLIT_COUNT][TM_DOMAIN_COUNT];
    uint64_t *doc_pos[TOK_SPLIT_COUNT][TM_DOMAIN_COUNT];
    uint64_t ndocs[TOK_SPLIT_COUNT][TM_DOMAIN_COUNT];
    uint32_t eot, id_end;
    uint64_t hash;
    unsigned dtype;
};

static void expect_free(struct expect *e)
{
    for (int s = 0; s < TOK_SPLIT_COUNT; s++)
        for (int d = 0; d < TM_DOMAIN_COUNT; d++) {
            free(e->ids[s][d]);
            free(e->doc_id[s][d]);
            free(e->doc_pos[s][d]);
        }
}

static void push(uint32_t **v, uint64_t *n, uint32_t x)
{
    *v = realloc(*v, (*n + 1) * sizeof(**v));
    (*v)[(*n)++] = x;
}

/* Writes `nshards` shards of random documents under dir/tokens (shard numbers 1..), with
 * domain sizes skewed 1:2:4 so the weights matter. */
static void write_shards(const char *dir, int nshards, uint32_t id_end, uint32_t chunk,
                         uint64_t seed, struct expect *e)
{
    memset(e, 0, sizeof(*e));
    e->id_end = id_end;
    e->eot = id_end - 1;
    e->hash = 0x1234567890abcdefull;
    e->dtype = id_end <= 65536 ? 2 : 4;
    char tokens[4096];
    snprintf(tokens, sizeof tokens, "%s/tokens", dir);
    assert_int_equal(tm_mkdirs(tokens), TM_OK);
    uint64_t st = seed, doc = 1;
    for (int k = 1; k <= nshards; k++) {
        char path[4200];
        snprintf(path, sizeof path, "%s/shard-%06d", tokens, k);
        struct tok_shard_meta init = {0};
        init.dtype = e->dtype;
        init.chunk_tokens = chunk;
        init.tokenizer_hash = e->hash;
        init.eot = e->eot;
        init.id_end = id_end;
        init.val_ppm = 100000;
        struct tok_shard_writer *w;
        assert_int_equal(tok_shard_writer_new(path, &init, &w), TM_OK);
        uint64_t first = doc;
        int ndocs = 20 + (int)(tm_splitmix64(&st) % 30);
        for (int i = 0; i < ndocs; i++, doc += 1 + tm_splitmix64(&st) % 3) {
            int s = tm_splitmix64(&st) % 10 == 0 ? TOK_SPLIT_VAL : TOK_SPLIT_TRAIN;
            uint64_t r = tm_splitmix64(&st) % 7;
            int d = r < 1 ? 0 : r < 3 ? 1 : 2;
            size_t n = tm_splitmix64(&st) % 40; /* some documents span several chunks */
            uint32_t ids[64];
            for (size_t j = 0; j < n; j++)
                ids[j] = (uint32_t)(tm_splitmix64(&st) % (id_end - 1));
            e->doc_id[s][d] = realloc(e->doc_id[s][d], (e->ndocs[s][d] + 1) * 8);
            e->doc_pos[s][d] = realloc(e->doc_pos[s][d], (e->ndocs[s][d] + 1) * 8);
            e->doc_id[s][d][e->ndocs[s][d]] = doc;
            e->doc_pos[s][d][e->ndocs[s][d]++] = e->n[s][d];
            for (size_t j = 0; j < n; j++)
                push(&e->ids[s][d], &e->n[s][d], ids[j]);
            push(&e->ids[s][d], &e->n[s][d], e->eot);
            assert_int_equal(tok_shard_writer_add(w, s, d, doc, ids, n), TM_OK);
        }
        assert_int_equal(tok_shard_writer_finish(w, 1, 1, first, doc), TM_OK);
    }
}

struct doc_check {
    const struct expect *e;
    int s, d;
    uint64_t *k, base;
};

/* tok_shard_foreach_doc's callback for test_read_back: positions are shard-local. */
static int check(void *vc, uint64_t id, uint64_t pos, uint32_t nt)
{
    struct doc_check *ctx = vc;
    const struct expect *e = ctx->e;
    uint64_t k = (*ctx->k)++;
    assert_true(k < e->ndocs[ctx->s][ctx->d]);
    assert_int_equal(id, e->doc_id[ctx->s][ctx->d][k]);
    assert_int_equal(ctx->base + pos, e->doc_pos[ctx->s][ctx->d][k]);
    uint64_t end =
        k + 1 < e->ndocs[ctx->s][ctx->d] ? e->doc_pos[ctx->s][ctx->d][k + 1] : e->n[ctx->s][ctx->d];
    assert_int_equal(ctx->base + pos + nt, end);
    assert_int_equal(e->ids[ctx->s][ctx->d][end - 1], e->eot);
    return 0;
}

static void test_read_back(uint32_t id_end)
{
    char *dir = tu_new_tmpdir("tok_shard");
    struct expect e;
    write_shards(dir, 4, id_end, 7, 42 + id_end, &e);
    struct tok_corpus *c;
    assert_int_equal(tok_corpus_open(dir, e.hash, &c), TM_OK);
    assert_int_equal(tok_corpus_shards(c), 4);
    assert_int_equal(tok_corpus_meta(c)->dtype, e.dtype);
    uint64_t st = 7;
    uint32_t got[256];
    for (int s = 0; s < TOK_SPLIT_COUNT; s++)
        for (int d = 0; d < TM_DOMAIN_COUNT; d++) {
            assert_int_equal(tok_corpus_tokens(c, s, d), e.n[s][d]);
            assert_int_equal(tok_corpus_docs(c, s, d), e.ndocs[s][d]);
            uint64_t n = e.n[s][d];
            if (n == 0)
                continue;
            /* the whole stream at once, then random ranges */
            uint32_t *all = malloc(n * sizeof(uint32_t));
            assert_int_equal(tok_corpus_read(c, s, d, 0, n, all), TM_OK);
            assert_memory_equal(all, e.ids[s][d], n * sizeof(uint32_t));
            free(all);
            for (int t = 0; t < 300; t++) {
                uint64_t pos = tm_splitmix64(&st) % n;
                size_t len = 1 + tm_splitmix64(&st) % 100;
                if (len > n - pos)
                    len = n - pos;
                assert_int_equal(tok_corpus_read(c, s, d, pos, len, got), TM_OK);
                assert_memory_equal(got, e.ids[s][d] + pos, len * sizeof(uint32_t));
                const void *sp;
                int rc = tok_corpus_span(c, s, d, pos, len, &sp);
                if (rc == TM_OK) {
                    for (size_t j = 0; j < len; j++) {
                        uint32_t v =
                            e.dtype == 2 ? ((const uint16_t *)sp)[j] : ((const uint32_t *)sp)[j];
                        assert_int_equal(v, e.ids[s][d][pos + j]);
                    }
                } else
                    assert_int_equal(rc, TM_ERR_NOTFOUND);
                /* one id crosses nothing; uint16 chunks are always 2-aligned */
                if (len == 1 && e.dtype == 2)
                    assert_int_equal(rc, TM_OK);
            }
            assert_int_equal(tok_corpus_read(c, s, d, n, 1, got), TM_ERR_USAGE);
            assert_int_equal(tok_corpus_read(c, s, d, n - 1, 2, got), TM_ERR_USAGE);
        }
    /* document records, shard by shard, in stream order */
    for (int s = 0; s < TOK_SPLIT_COUNT; s++)
        for (int d = 0; d < TM_DOMAIN_COUNT; d++) {
            uint64_t k = 0, base = 0;
            for (size_t i = 0; i < tok_corpus_shards(c); i++) {
                const struct tok_shard *sh = tok_corpus_shard(c, i);
                struct doc_check ctx = {&e, s, d, &k, base};
                assert_int_equal(tok_shard_foreach_doc(sh, s, d, check, &ctx), TM_OK);
                base += tok_shard_get_meta(sh)->tokens[s][d];
            }
            assert_int_equal(k, e.ndocs[s][d]);
        }
    tok_corpus_free(c);
    expect_free(&e);
    tu_remove_tmpdir(dir);
}

static void test_read_back_u16(void **state)
{
    (void)state;
    test_read_back(50258);
}

static void test_read_back_u32(void **state)
{
    (void)state;
    test_read_back(100277);
}

/* Whether `win` occurs in the stream. */
static int occurs(const uint32_t *stream, uint64_t n, const uint32_t *win, size_t len)
{
    for (uint64_t p = 0; p + len <= n; p++)
        if (memcmp(stream + p, win, len * sizeof(uint32_t)) == 0)
            return 1;
    return 0;
}

static void test_windows(void **state)
{
    (void)state;
    char *dir = tu_new_tmpdir("tok_window");
    struct expect e;
    write_shards(dir, 3, 1000, 5, 99, &e);
    struct tok_corpus *c;
    assert_int_equal(tok_corpus_open(dir, 0, &c), TM_OK);
    enum { N = 12, DRAWS = 20000 };
    uint32_t a[N], b[N];
    int da, db;
    /* the same (seed, step, index) gives the same window, whatever came between */
    assert_int_equal(tok_corpus_window(c, TOK_SPLIT_TRAIN, NULL, 5, 17, 3, N, a, &da), TM_OK);
    assert_int_equal(tok_corpus_window(c, TOK_SPLIT_TRAIN, NULL, 5, 18, 3, N, b, &db), TM_OK);
    assert_int_equal(tok_corpus_window(c, TOK_SPLIT_TRAIN, NULL, 5, 17, 3, N, b, &db), TM_OK);
    assert_int_equal(da, db);
    assert_memory_equal(a, b, sizeof a);
    assert_true(occurs(e.ids[0][da], e.n[0][da], a, N));
    /* a reopened corpus agrees */
    tok_corpus_free(c);
    assert_int_equal(tok_corpus_open(dir, 0, &c), TM_OK);
    assert_int_equal(tok_corpus_window(c, TOK_SPLIT_TRAIN, NULL, 5, 17, 3, N, b, &db), TM_OK);
    assert_memory_equal(a, b, sizeof a);

    /* weights: domain frequencies follow them (binomial sd < 0.4% at 20000 draws) */
    const double w[3][TM_DOMAIN_COUNT] = {{1, 0, 0}, {1, 1, 2}, {0, 3, 1}};
    for (int k = 0; k < 3; k++) {
        int count[TM_DOMAIN_COUNT] = {0};
        double sum = w[k][0] + w[k][1] + w[k][2];
        for (int i = 0; i < DRAWS; i++) {
            int d;
            assert_int_equal(
                tok_corpus_window(c, TOK_SPLIT_TRAIN, w[k], 1, (uint64_t)i, 0, N, a, &d), TM_OK);
            count[d]++;
        }
        for (int d = 0; d < TM_DOMAIN_COUNT; d++)
            assert_true(fabs(count[d] / (double)DRAWS - w[k][d] / sum) < 0.02);
    }
    /* no weights: in proportion to the number of window starts of each domain */
    int count[TM_DOMAIN_COUNT] = {0};
    double starts = 0;
    for (int d = 0; d < TM_DOMAIN_COUNT; d++)
        starts += (double)(e.n[0][d] - N + 1);
    for (int i = 0; i < DRAWS; i++) {
        int d;
        assert_int_equal(tok_corpus_window(c, TOK_SPLIT_TRAIN, NULL, 2, 0, (uint64_t)i, N, a, &d),
                         TM_OK);
        count[d]++;
        if (i < 200)
            assert_true(occurs(e.ids[0][d], e.n[0][d], a, N));
    }
    for (int d = 0; d < TM_DOMAIN_COUNT; d++)
        assert_true(fabs(count[d] / (double)DRAWS - (e.n[0][d] - N + 1) / starts) < 0.02);
    /* every start position is reachable: the first and last windows of a small stream occur */
    const double only_text[TM_DOMAIN_COUNT] = {1, 0, 0};
    uint64_t n0 = e.n[0][0];
    int first = 0, last = 0;
    for (int i = 0; i < 200000 && !(first && last); i++) {
        assert_int_equal(tok_corpus_window(c, 0, only_text, 3, 0, (uint64_t)i, N, a, NULL), TM_OK);
        first |= !memcmp(a, e.ids[0][0], sizeof a);
        last |= !memcmp(a, e.ids[0][0] + n0 - N, sizeof a);
    }
    assert_true(first && last);
    /* a window longer than every stream, or only zero weights: nothing to draw */
    const double none[TM_DOMAIN_COUNT] = {0, 0, 0};
    assert_int_equal(tok_corpus_window(c, 0, none, 1, 1, 1, N, a, NULL), TM_ERR_NOTFOUND);
    uint32_t *big = malloc(sizeof(uint32_t) * 100000);
    assert_int_equal(tok_corpus_window(c, 0, NULL, 1, 1, 1, 100000, big, NULL), TM_ERR_NOTFOUND);
    free(big);
    tok_corpus_free(c);
    expect_free(&e);
    tu_remove_tmpdir(dir);
}

/* Full chunks of at least half a page are stored aligned, so spans inside them are zero-copy
 * for both widths. */
static void test_span_aligned(void **state)
{
    (void)state;
    for (int k = 0; k < 2; k++) {
        char *dir = tu_new_tmpdir("tok_span");
        char path[4200];
        snprintf(path, sizeof path, "%s/tokens", dir);
        assert_int_equal(tm_mkdirs(path), TM_OK);
        snprintf(path, sizeof path, "%s/tokens/shard-000001", dir);
        struct tok_shard_meta init = {0};
        init.dtype = k ? 4 : 2;
        init.chunk_tokens = 2048;
        init.tokenizer_hash = 1;
        init.id_end = k ? 70000 : 60000;
        init.eot = init.id_end - 1;
        struct tok_shard_writer *w;
        assert_int_equal(tok_shard_writer_new(path, &init, &w), TM_OK);
        uint32_t ids[1000];
        for (int d = 0; d < 10; d++) {
            for (int i = 0; i < 1000; i++)
                ids[i] = (uint32_t)(d * 1000 + i);
            assert_int_equal(tok_shard_writer_add(w, 0, 2, (uint64_t)d + 1, ids, 1000), TM_OK);
        }
        assert_int_equal(tok_shard_writer_finish(w, 1, 1, 1, 11), TM_OK);
        struct tok_corpus *c;
        assert_int_equal(tok_corpus_open(dir, 1, &c), TM_OK);
        assert_int_equal(tok_corpus_tokens(c, 0, 2), 10010);
        /* position 1001 * d + i holds d * 1000 + i (i < 1000); 1000 is the end-of-text id */
        for (uint64_t pos = 0; pos + 100 <= 8192; pos += 97) {
            const void *sp;
            int rc = tok_corpus_span(c, 0, 2, pos, 100, &sp);
            if (pos / 2048 != (pos + 99) / 2048) {
                assert_int_equal(rc, TM_ERR_NOTFOUND);
                continue;
            }
            assert_int_equal(rc, TM_OK);
            for (uint64_t j = pos; j < pos + 100; j++) {
                uint32_t v = k ? ((const uint32_t *)sp)[j - pos] : ((const uint16_t *)sp)[j - pos];
                uint32_t want =
                    j % 1001 == 1000 ? init.eot : (uint32_t)(j / 1001 * 1000 + j % 1001);
                assert_int_equal(v, want);
            }
        }
        tok_corpus_free(c);
        tu_remove_tmpdir(dir);
    }
}

static int put_meta_version(MDB_txn *txn, struct tm_db *db, void *ctx)
{
    const void *val;
    size_t len;
    int rc = tm_db_get(db, txn, 0, "shard", 5, &val, &len);
    if (rc)
        return rc;
    unsigned char *copy = malloc(len);
    memcpy(copy, val, len);
    copy[4] = (unsigned char)*(int *)ctx; /* the version's low byte */
    rc = tm_db_put(db, txn, 0, "shard", 5, copy, len, 0);
    free(copy);
    return rc;
}

static void test_refusals(void **state)
{
    (void)state;
    char *dir = tu_new_tmpdir("tok_refuse");
    struct tok_corpus *c;
    FILE *quiet = tu_log_quiet();
    assert_int_equal(tok_corpus_open(dir, 0, &c), TM_ERR_NOTFOUND);
    struct expect e;
    write_shards(dir, 2, 300, 16, 5, &e);
    /* another tokenizer */
    assert_int_equal(tok_corpus_open(dir, e.hash + 1, &c), TM_ERR_USAGE);
    /* an unfinished shard is not part of the corpus */
    char path[4200];
    snprintf(path, sizeof path, "%s/tokens/shard-000003.partial", dir);
    assert_int_equal(tm_mkdirs(path), TM_OK);
    assert_int_equal(tok_corpus_open(dir, e.hash, &c), TM_OK);
    assert_int_equal(tok_corpus_shards(c), 2);
    tok_corpus_free(c);
    /* a shard of a newer format version */
    snprintf(path, sizeof path, "%s/tokens/shard-000002", dir);
    static const char *const names[] = {"meta", "tokens", "docs"};
    struct tm_db db;
    assert_int_equal(tm_db_open(&db, path, names, 3, 0, 0, 0), TM_OK);
    int v = TOK_SHARD_FORMAT + 1;
    assert_int_equal(tm_db_write(&db, put_meta_version, &v), TM_OK);
    tm_db_close(&db);
    assert_int_equal(tok_corpus_open(dir, 0, &c), TM_ERR_VERSION);
    v = TOK_SHARD_FORMAT;
    assert_int_equal(tm_db_open(&db, path, names, 3, 0, 0, 0), TM_OK);
    assert_int_equal(tm_db_write(&db, put_meta_version, &v), TM_OK);
    tm_db_close(&db);
    assert_int_equal(tok_corpus_open(dir, 0, &c), TM_OK);
    tok_corpus_free(c);
    /* a shard whose tokenizer differs from the others' */
    struct expect e2;
    char other[4000];
    snprintf(other, sizeof other, "%s/o", dir);
    write_shards(other, 1, 300, 16, 6, &e2);
    snprintf(path, sizeof path, "%s/tokens/shard-000001", other);
    char dest[4200];
    snprintf(dest, sizeof dest, "%s/tokens/shard-000009", dir);
    assert_int_equal(rename(path, dest), 0);
    struct tok_shard *sh;
    assert_int_equal(tok_shard_open(dest, &sh), TM_OK);
    tok_shard_free(sh);
    /* same hash (write_shards always uses one) but a different chunk size is refused too */
    expect_free(&e2);
    write_shards(other, 1, 300, 8, 6, &e2);
    snprintf(dest, sizeof dest, "%s/tokens/shard-000010", dir);
    assert_int_equal(rename(path, dest), 0);
    assert_int_equal(tok_corpus_open(dir, 0, &c), TM_ERR_FORMAT);
    tu_log_restore(quiet);
    expect_free(&e);
    expect_free(&e2);
    tu_remove_tmpdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_back_u16), cmocka_unit_test(test_read_back_u32),
        cmocka_unit_test(test_span_aligned),  cmocka_unit_test(test_windows),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
