/* ddp_runs: band keys held in memory, spilled as sorted runs past the budget, merged back into
 * groups; compared with a plain sort of the same pairs, for budgets from "everything in memory"
 * to "a run every few pairs". */
#include <stdlib.h>
#include <string.h>

#include "test_util.h"
#include "ddp_internal.h"
#include "tm_rand.h"

struct collect {
    struct ddp_pair *v;
    size_t n, cap, groups;
    uint64_t last_key;
};

static int collect_fn(void *ctx, const struct ddp_pair *g, size_t n)
{
    struct collect *c = ctx;
    if (c->groups)
        assert_true(g[0].key > c->last_key); /* groups come in key order */
    c->last_key = g[0].key;
    c->groups++;
    for (size_t i = 0; i < n; i++) {
        assert_true(g[i].key == g[0].key);
        if (i)
            assert_true(g[i].k >= g[i - 1].k); /* members in document order */
        if (c->n == c->cap) {
            c->cap = c->cap ? c->cap * 2 : 256;
            c->v = realloc(c->v, c->cap * sizeof(*c->v));
        }
        c->v[c->n++] = g[i];
    }
    return 0;
}

static int ref_cmp(const void *pa, const void *pb)
{
    const struct ddp_pair *a = pa, *b = pb;
    if (a->key != b->key)
        return a->key < b->key ? -1 : 1;
    return a->k < b->k ? -1 : a->k > b->k;
}

static void test_runs_match_a_plain_sort(void **state)
{
    (void)state;
    char *dir = tu_new_tmpdir("runs");
    uint64_t rng = 42;
    static const size_t budgets[] = {1u << 30, 1u << 16, 4096, 1024};
    for (size_t b = 0; b < sizeof budgets / sizeof budgets[0]; b++) {
        for (int round = 0; round < 5; round++) {
            size_t n = 1 + tm_splitmix64(&rng) % 20000;
            /* few distinct keys (so groups are large) or many (so most are single), some keys
             * differing only in their high bits */
            uint64_t distinct = round % 2 ? 50 : 100000;
            struct ddp_pair *all = malloc(n * sizeof(*all));
            for (size_t i = 0; i < n; i++) {
                uint64_t x = tm_splitmix64(&rng) % distinct;
                all[i].key = x * 0x9e3779b97f4a7c15ull ^ (x << 60);
                all[i].k = (uint32_t)(i / 14); /* 14 band keys per document, in order */
            }
            char sub[64];
            snprintf(sub, sizeof sub, "%s/r%zu-%d", dir, b, round);
            struct ddp_runs r;
            ddp_runs_init(&r, sub, budgets[b]);
            for (size_t i = 0; i < n; i += 14)
                assert_int_equal(ddp_runs_add(&r, all + i, n - i < 14 ? n - i : 14), TM_OK);
            if (budgets[b] < 8192)
                assert_true(r.nruns > 1); /* the small budgets did spill */
            qsort(all, n, sizeof(*all), ref_cmp);
            for (size_t min = 1; min <= 2; min++) {
                struct collect c = {0};
                assert_int_equal(ddp_runs_groups(&r, min, collect_fn, &c), TM_OK);
                /* expected: every pair (min 1), or the pairs whose key repeats (min 2) */
                size_t want = 0;
                for (size_t i = 0; i < n;) {
                    size_t j = i;
                    while (j < n && all[j].key == all[i].key)
                        j++;
                    if (j - i >= min) {
                        assert_true(want + (j - i) <= c.n);
                        assert_memory_equal(c.v + want, all + i, (j - i) * sizeof(*all));
                        want += j - i;
                    }
                    i = j;
                }
                assert_int_equal(c.n, want);
                free(c.v);
            }
            ddp_runs_release(&r);
            free(all);
        }
    }
    tu_remove_tmpdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_runs_match_a_plain_sort),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
