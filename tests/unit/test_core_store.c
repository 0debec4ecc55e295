/* tm_store: creation, the format check, and the fixed-size records. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "tm_err.h"
#include "tm_fs.h"
#include "tm_log.h"
#include "tm_opt.h"
#include "tm_store.h"
#include "test_util.h"

static void test_create_and_reopen(void **state)
{
    (void)state;
    char *dir = tu_new_tmpdir("store");
    struct tm_store s;
    assert_int_equal(tm_store_open(&s, dir, TM_DB_RDONLY), TM_ERR_NOTFOUND);
    assert_int_equal(tm_store_open(&s, dir, 0), TM_OK);
    tm_store_close(&s);
    assert_int_equal(tm_store_open(&s, dir, TM_DB_RDONLY), TM_OK);
    tm_store_close(&s);
    free(dir);
}

static int put_format(MDB_txn *txn, struct tm_db *db, void *ctx)
{
    unsigned char rec[TM_REC_HDR];
    tm_rec_header(rec, "TMST", *(unsigned *)ctx);
    return tm_db_put(db, txn, TM_STORE_META, "format", 6, rec, sizeof(rec), 0);
}

static void test_newer_format_refused(void **state)
{
    (void)state;
    char *dir = tu_new_tmpdir("store");
    struct tm_store s;
    unsigned newer = TM_STORE_FORMAT + 1;
    assert_int_equal(tm_store_open(&s, dir, 0), TM_OK);
    assert_int_equal(tm_db_write(&s.db, put_format, &newer), TM_OK);
    tm_store_close(&s);
    assert_int_equal(tm_store_open(&s, dir, 0), TM_ERR_VERSION);
    assert_int_equal(tm_store_open(&s, dir, TM_DB_RDONLY), TM_ERR_VERSION);
    free(dir);
}

static void test_input_record(void **state)
{
    (void)state;
    struct tm_input in = {.size = 123456789012ull,
                          .mtime_ns = -5,
                          .generation = 7,
                          .state = TM_INPUT_PARTIAL,
                          .units = 99,
                          .docs = 98,
                          .bytes = 1ull << 40,
                          .errors = 1};
    for (int i = 0; i < 16; i++)
        in.hash[i] = (unsigned char)(i * 17);
    unsigned char rec[TM_INPUT_REC_SIZE];
    tm_input_encode(&in, rec);
    struct tm_input out;
    assert_int_equal(tm_input_decode(rec, sizeof(rec), &out, "t"), TM_OK);
    assert_memory_equal(&in, &out, sizeof(in));
    assert_int_equal(tm_input_decode(rec, sizeof(rec) - 1, &out, "t"), TM_ERR_FORMAT);
    rec[TM_REC_HDR + 36] = 9; /* unknown state */
    assert_int_equal(tm_input_decode(rec, sizeof(rec), &out, "t"), TM_ERR_FORMAT);
}

static void test_gen_record(void **state)
{
    (void)state;
    struct tm_gen g = {.state = TM_GEN_OPEN, .inputs = 3, .started = 1700000000, .next_seq = 42};
    for (int d = 0; d < TM_DOMAIN_COUNT; d++) {
        g.docs[d] = (uint64_t)d + 10;
        g.bytes[d] = (uint64_t)d * 1000 + 1;
    }
    unsigned char rec[TM_GEN_REC_SIZE];
    tm_gen_encode(&g, rec);
    struct tm_gen out;
    assert_int_equal(tm_gen_decode(rec, sizeof(rec), &out, "g"), TM_OK);
    assert_memory_equal(&g, &out, sizeof(g));
    memcpy(rec, "XXXX", 4);
    assert_int_equal(tm_gen_decode(rec, sizeof(rec), &out, "g"), TM_ERR_FORMAT);
}

/* Stores one document the way ingest does. */
static int put_doc(struct tm_db *db, MDB_txn *txn, const struct tm_doc *d)
{
    unsigned char key[8];
    void *dst;
    tm_be64_put(key, d->id);
    int rc = tm_db_reserve(db, txn, TM_STORE_DOCS, key, 8, tm_doc_encoded_size(d), &dst);
    if (rc)
        return rc;
    tm_doc_encode(d, dst);
    return TM_OK;
}

/* A fresh store: `write` in a write transaction, then `check` in a read transaction. */
static void write_then_check(tm_db_fn write, tm_db_fn check)
{
    char *dir = tu_new_tmpdir("store");
    struct tm_store s;
    assert_int_equal(tm_store_open(&s, dir, 0), TM_OK);
    assert_int_equal(tm_db_write(&s.db, write, NULL), TM_OK);
    assert_int_equal(tm_db_read(&s.db, check, &s), TM_OK);
    tm_store_close(&s);
    free(dir);
}

static int write_gens(MDB_txn *txn, struct tm_db *db, void *ctx)
{
    (void)ctx;
    for (uint32_t gen = 1; gen <= 3; gen++) {
        unsigned char key[4], rec[TM_GEN_REC_SIZE];
        struct tm_gen g = {.state = TM_GEN_CLOSED, .next_seq = gen};
        tm_be32_put(key, gen);
        tm_gen_encode(&g, rec);
        int rc = tm_db_put(db, txn, TM_STORE_GENS, key, 4, rec, sizeof(rec), 0);
        if (rc)
            return rc;
    }
    struct tm_doc d = {.id = tm_doc_make_id(2, 5),
                       .generation = 2,
                       .domain = TM_DOMAIN_CODE,
                       .lang = "c",
                       .lang_len = 1,
                       .source = "a.c",
                       .source_len = 3,
                       .meta = "{}",
                       .meta_len = 2,
                       .text = "int x;",
                       .text_len = 6};
    return put_doc(db, txn, &d);
}

static int read_back(MDB_txn *txn, struct tm_db *db, void *ctx)
{
    struct tm_store *s = ctx;
    (void)db;
    uint32_t last;
    struct tm_gen g;
    struct tm_doc d;
    assert_int_equal(tm_store_last_gen(s, txn, &last), TM_OK);
    assert_int_equal(last, 3);
    assert_int_equal(tm_store_get_gen(s, txn, 2, &g), TM_OK);
    assert_int_equal(g.next_seq, 2);
    assert_int_equal(tm_store_get_gen(s, txn, 4, &g), TM_ERR_NOTFOUND);
    assert_int_equal(tm_store_get_doc(s, txn, tm_doc_make_id(2, 5), &d), TM_OK);
    assert_string_equal(d.text, "int x;");
    assert_string_equal(d.lang, "c");
    assert_int_equal(tm_doc_id_generation(d.id), 2);
    assert_int_equal(tm_store_get_doc(s, txn, tm_doc_make_id(2, 6), &d), TM_ERR_NOTFOUND);
    return TM_OK;
}

static void test_generations_and_docs(void **state)
{
    (void)state;
    write_then_check(write_gens, read_back);
}

static int put_docs(MDB_txn *txn, struct tm_db *db, void *ctx)
{
    (void)ctx;
    for (uint32_t gen = 1; gen <= 3; gen++) {
        for (uint64_t seq = 0; seq < 3; seq++) {
            char text[32];
            int n = snprintf(text, sizeof(text), "g%u s%u", (unsigned)gen, (unsigned)seq);
            struct tm_doc d = {.id = tm_doc_make_id(gen, seq),
                               .generation = gen,
                               .domain = TM_DOMAIN_TEXT,
                               .lang = "und",
                               .lang_len = 3,
                               .source = "x",
                               .source_len = 1,
                               .meta = "{}",
                               .meta_len = 2,
                               .text = text,
                               .text_len = (size_t)n};
            int rc = put_doc(db, txn, &d);
            if (rc)
                return rc;
        }
    }
    return TM_OK;
}

struct walk {
    struct tm_store *s;
    char seen[256];
    int count, stop_after;
};

static int walk_fn(void *ctx, const struct tm_doc *doc)
{
    struct walk *w = ctx;
    strncat(w->seen, doc->text, sizeof(w->seen) - strlen(w->seen) - 2);
    strcat(w->seen, ",");
    w->count++;
    return w->count == w->stop_after ? 42 : 0;
}

static int walk_ranges(MDB_txn *txn, struct tm_db *db, void *ctx)
{
    struct tm_store *s = ctx;
    (void)db;
    struct walk w = {.s = s};
    assert_int_equal(tm_store_foreach(s, txn, 2, 2, walk_fn, &w), TM_OK);
    assert_string_equal(w.seen, "g2 s0,g2 s1,g2 s2,");
    memset(&w, 0, sizeof(w));
    assert_int_equal(tm_store_foreach(s, txn, 1, 3, walk_fn, &w), TM_OK);
    assert_int_equal(w.count, 9);
    assert_string_equal(w.seen, "g1 s0,g1 s1,g1 s2,g2 s0,g2 s1,g2 s2,g3 s0,g3 s1,g3 s2,");
    memset(&w, 0, sizeof(w));
    assert_int_equal(tm_store_foreach(s, txn, 4, 9, walk_fn, &w), TM_OK);
    assert_int_equal(w.count, 0);
    memset(&w, 0, sizeof(w));
    w.stop_after = 4;
    assert_int_equal(tm_store_foreach(s, txn, 1, 3, walk_fn, &w), 42);
    assert_int_equal(w.count, 4);
    return TM_OK;
}

static void test_foreach(void **state)
{
    (void)state;
    write_then_check(put_docs, walk_ranges);
}

/* Generations 1-9: 1-3 and 5 done with settings 7, 4 done with settings 8, 6 partial, 7 and 8
 * without a record, 9 still open. */
static int write_stage_states(MDB_txn *txn, struct tm_db *db, void *ctx)
{
    struct tm_store *s = ctx;
    for (uint32_t gen = 1; gen <= 9; gen++) {
        unsigned char key[4], rec[TM_GEN_REC_SIZE];
        struct tm_gen g = {.state = gen == 9 ? TM_GEN_OPEN : TM_GEN_CLOSED};
        tm_be32_put(key, gen);
        tm_gen_encode(&g, rec);
        int rc = tm_db_put(db, txn, TM_STORE_GENS, key, 4, rec, sizeof(rec), 0);
        struct tm_stage st = {TM_STAGE_DONE, gen == 4 ? 8 : 7, 0, 0};
        if (gen == 6)
            st.state = TM_STAGE_PARTIAL;
        if (rc == TM_OK && gen <= 6)
            rc = tm_stage_put(s, txn, "filter", gen, &st);
        if (rc)
            return rc;
    }
    return TM_OK;
}

static void test_stage_plan(void **state)
{
    (void)state;
    char *dir = tu_new_tmpdir("plan");
    struct tm_plan p;
    memset(&p, 0, sizeof(p));
    assert_int_equal(tm_stage_plan(dir, "filter", 7, TM_REDO_NONE, &p), TM_OK);
    assert_string_equal(p.what, "no documents yet");
    assert_false(p.work);
    struct tm_store s;
    assert_int_equal(tm_store_open(&s, dir, 0), TM_OK);
    assert_int_equal(tm_db_write(&s.db, write_stage_states, &s), TM_OK);
    tm_store_close(&s);
    memset(&p, 0, sizeof(p));
    assert_int_equal(tm_stage_plan(dir, "filter", 7, TM_REDO_NONE, &p), TM_OK);
    assert_string_equal(p.what, "generations 7-8 new; generation 6 to finish (an interrupted run); "
                                "generations 1-3, 5 done; generation 4 done with other settings; "
                                "generation 9 still open (its ingest did not finish)");
    assert_true(p.work);
    assert_true(p.stale);
    memset(&p, 0, sizeof(p));
    assert_int_equal(tm_stage_plan(dir, "filter", 7, TM_REDO_ALL, &p), TM_OK);
    assert_string_equal(p.what, "generations 1-8 again, from scratch; generation 9 still open (its "
                                "ingest did not finish)");
    assert_true(p.work);
    assert_false(p.stale);
    memset(&p, 0, sizeof(p));
    assert_int_equal(tm_stage_plan(dir, "filter", 7, TM_REDO_STALE, &p), TM_OK);
    assert_string_equal(p.what, "generations 7-8 new; generation 6 to finish (an interrupted run); "
                                "generations 1-3, 5 done; generation 4 again (done with other "
                                "settings); generation 9 still open (its ingest did not finish)");
    assert_true(p.work);
    assert_false(p.stale);
    memset(&p, 0, sizeof(p));
    assert_int_equal(tm_stage_plan(dir, "dedup", 7, TM_REDO_NONE, &p),
                     TM_OK); /* no records of its own */
    assert_string_equal(p.what, "generations 1-8 new; generation 9 still open (its ingest did not "
                                "finish)");
    free(dir);
}

int main(void)
{
    tm_log_set_level(TM_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_and_reopen),    cmocka_unit_test(test_newer_format_refused),
        cmocka_unit_test(test_input_record),         cmocka_unit_test(test_gen_record),
        cmocka_unit_test(test_generations_and_docs), cmocka_unit_test(test_foreach),
        cmocka_unit_test(test_stage_plan),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
