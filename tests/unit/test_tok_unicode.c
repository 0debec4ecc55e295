/* tokenize: the patterns see characters as tiktoken 0.14 does although PCRE2 10.42's Unicode
 * tables are older (14.0 against 16.0; tok_pattern.c, tok_unicode_ranges.h).
 *   - Named cases: letters, digits and marks new in Unicode 15.0-16.0 split as letters, digits
 *     and marks in each pattern; characters that are unassigned for tiktoken (Unicode 17) and
 *     new symbols do not.
 *   - Every code point whose general category changed (tests/fixtures/tok/unicode.changed,
 *     written by bench/tok_golden.py from the Unicode data): in contexts where being a letter,
 *     a number, o200k's upper or lower class, or none of them decides the split.
 *   - When TOKENMILL_VOCAB_DIR names the real .tiktoken files: ids equal to tiktoken's for
 *     tests/fixtures/tok/unicode.txt (every plane, the changed code points, emoji sequences, mark
 *     stacks, long runs, random bytes) under every encoding.
 * None needs a vocabulary file but the last. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <libgen.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tok_internal.h"
#include "tm_err.h"
#include "tm_fs.h"
#include "tok_test_util.h"

/* ---- Splitting text the way tok_encode.c does ----------------------------------------------- */

static pcre2_code *compile(enum tok_pattern pat)
{
    int err;
    PCRE2_SIZE off;
    pcre2_code *code = pcre2_compile((PCRE2_SPTR)tok_pattern_source(pat), PCRE2_ZERO_TERMINATED,
                                     PCRE2_UTF | PCRE2_UCP, &err, &off, NULL);
    if (!code)
        fail_msg("pattern %s does not compile: error %d at %zu", tok_pattern_names[pat], err,
                 (size_t)off);
    pcre2_jit_compile(code, PCRE2_JIT_COMPLETE); /* as the encoder does; falls back if absent */
    return code;
}

/* The pieces of `text` (successive matches, as tiktoken's find_iter), joined by '|' into
 * `out`. Returns the number of pieces. */
static int split(pcre2_code *code, const char *text, char *out, size_t outsz)
{
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(code, NULL);
    size_t len = strlen(text), at = 0, o = 0;
    int n = 0;
    while (at < len) {
        int rc = pcre2_match(code, (PCRE2_SPTR)text, len, at, 0, md, NULL);
        if (rc < 0)
            break;
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        assert_true(ov[1] > ov[0]); /* no pattern matches the empty string */
        size_t plen = ov[1] - ov[0];
        assert_true(o + plen + 2 <= outsz);
        if (n)
            out[o++] = '|';
        memcpy(out + o, text + ov[0], plen);
        o += plen;
        at = ov[1];
        n++;
    }
    out[o] = 0;
    pcre2_match_data_free(md);
    return n;
}

/* ---- Named cases ----------------------------------------------------------------------------- */

struct split_case {
    enum tok_pattern pat;
    const char *text, *want; /* want: the pieces joined by '|' */
    const char *why;
};

static const struct split_case cases[] = {
    /* r50k: ` ?\p{L}++`, ` ?\p{N}++`, ` ?[^\s\p{L}\p{N}]++`. */
    {TOK_PAT_R50K, "a\U00011F04b 1", "a\U00011F04b| 1", "Kawi letter (15.0) inside a word"},
    {TOK_PAT_R50K, " \U00011F50\U00011F51x", " \U00011F50\U00011F51|x", "Kawi digits (15.0)"},
    {TOK_PAT_R50K, "x\U00031350\U0002EBF0y", "x\U00031350\U0002EBF0y", "CJK Ext H and I"},
    {TOK_PAT_R50K, "!!\U00011F04", "!!|\U00011F04", "a new letter is not punctuation"},
    {TOK_PAT_R50K, "!!\U0001E4F0", "!!|\U0001E4F0", "a new digit is not punctuation"},
    {TOK_PAT_R50K, "a\U0001E6C0b", "a|\U0001E6C0|b", "Tai Yo (17.0): unassigned for tiktoken"},
    {TOK_PAT_R50K, "a\U0001CC00b", "a|\U0001CC00|b", "a symbol new in 16.0 is no letter"},
    {TOK_PAT_R50K, "\u00e9\u4e2d\u0663", "\u00e9\u4e2d|\u0663", "old letters and digits as before"},
    /* cl100k: `[^\r\n\p{L}\p{N}]?+\p{L}++`, `\p{N}{1,3}+`. */
    {TOK_PAT_CL100K, "!\U00010D50\U00010D70z", "!\U00010D50\U00010D70z", "Garay (16.0) word"},
    {TOK_PAT_CL100K, "\U00010D50!\U00010D70", "\U00010D50|!\U00010D70",
     "punctuation then a new letter is one piece"},
    {TOK_PAT_CL100K, "\U0001E4F0\U0001E4F1\U0001E4F2\U0001E4F3",
     "\U0001E4F0\U0001E4F1\U0001E4F2|\U0001E4F3", "Nag Mundari digits (15.0) in threes"},
    {TOK_PAT_CL100K, "1\U00016130\U0001E5F1\U000116D0", "1\U00016130\U0001E5F1|\U000116D0",
     "Gurung Khema, Ol Onal, Myanmar Pao digits (16.0)"},
    {TOK_PAT_CL100K, "x\U00016D40y", "x\U00016D40y", "Kirat Rai sign (Lm, 16.0)"},
    {TOK_PAT_CL100K, "x\U0001E6C0y", "x|\U0001E6C0y", "Tai Yo (17.0): punctuation to tiktoken"},
    /* o200k: [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+ and the reverse. */
    {TOK_PAT_O200K, "x\u1C89y", "x|\u1C89y", "Cyrillic capital TJE (Lu, 16.0) starts a word"},
    {TOK_PAT_O200K, "\u1C8AB", "\u1C8A|B", "Cyrillic small tje (Ll, 16.0) ends one"},
    {TOK_PAT_O200K, "\uA7CBa\uA7CD", "\uA7CBa\uA7CD", "Latin Lu and Ll new in 16.0"},
    {TOK_PAT_O200K, "ab\U00011F00c", "ab\U00011F00c", "Kawi mark (Mn, 15.0) inside a word"},
    {TOK_PAT_O200K, "a\u0897b's", "a\u0897b's", "Arabic Pepet (Mn, 16.0) and a contraction"},
    {TOK_PAT_O200K, "a\U0001E030's", "a\U0001E030's", "Cyrillic modifier letter (Lm, 15.0)"},
    {TOK_PAT_O200K, "\U00011F04\U00011F50\U00011F51\U00011F52\U00011F53",
     "\U00011F04|\U00011F50\U00011F51\U00011F52|\U00011F53", "Kawi letter, then digits in threes"},
    {TOK_PAT_O200K, "a\U0001E6C0b", "a|\U0001E6C0b", "Tai Yo (17.0): punctuation to tiktoken"},
};

static void test_named_cases(void **state)
{
    (void)state;
    pcre2_code *code[TOK_PAT_COUNT];
    for (int p = 0; p < TOK_PAT_COUNT; p++)
        code[p] = compile((enum tok_pattern)p);
    char got[256];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        split(code[cases[i].pat], cases[i].text, got, sizeof(got));
        if (strcmp(got, cases[i].want) != 0)
            fail_msg("%s, %s: split as \"%s\", tiktoken splits \"%s\"",
                     tok_pattern_names[cases[i].pat], cases[i].why, got, cases[i].want);
    }
    for (int p = 0; p < TOK_PAT_COUNT; p++)
        pcre2_code_free(code[p]);
}

/* ---- Every changed code point ---------------------------------------------------------------- */

static size_t put_utf8(char *s, uint32_t c)
{
    if (c < 0x80) {
        s[0] = (char)c;
        return 1;
    }
    if (c < 0x800) {
        s[0] = (char)(0xC0 | c >> 6);
        s[1] = (char)(0x80 | (c & 0x3F));
        return 2;
    }
    if (c < 0x10000) {
        s[0] = (char)(0xE0 | c >> 12);
        s[1] = (char)(0x80 | ((c >> 6) & 0x3F));
        s[2] = (char)(0x80 | (c & 0x3F));
        return 3;
    }
    s[0] = (char)(0xF0 | c >> 18);
    s[1] = (char)(0x80 | ((c >> 12) & 0x3F));
    s[2] = (char)(0x80 | ((c >> 6) & 0x3F));
    s[3] = (char)(0x80 | (c & 0x3F));
    return 4;
}

/* One check: `before` c `after` is a single piece exactly when `one_piece`. */
struct probe {
    enum tok_pattern pat;
    const char *before, *after;
    int (*one_piece)(const char *cat);
};

static int is_letter(const char *cat)
{
    return cat[0] == 'L';
}
static int is_number(const char *cat)
{
    return cat[0] == 'N';
}
static int is_neither(const char *cat)
{
    return !is_letter(cat) && !is_number(cat);
}
static int is_upper(const char *cat) /* o200k's [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}] */
{
    return cat[0] == 'M' || (cat[0] == 'L' && cat[1] != 'l');
}
static int is_lower(const char *cat) /* o200k's [\p{Ll}\p{Lm}\p{Lo}\p{M}] */
{
    return cat[0] == 'M' || (cat[0] == 'L' && cat[1] != 'u' && cat[1] != 't');
}

static const struct probe probes[] = {
    {TOK_PAT_R50K, "a", "", is_letter},   {TOK_PAT_R50K, "1", "", is_number},
    {TOK_PAT_R50K, "!!", "", is_neither}, {TOK_PAT_CL100K, "a", "", is_letter},
    {TOK_PAT_CL100K, "1", "", is_number}, {TOK_PAT_CL100K, "!!", "", is_neither},
    {TOK_PAT_O200K, "a", "", is_lower},   {TOK_PAT_O200K, "!", "Ab", is_upper},
    {TOK_PAT_O200K, "1", "", is_number},  {TOK_PAT_O200K, "!!", "", is_neither},
};

/* Unicode 15.0, 15.1 and 16.0 assigned 10302 code points; the fixture must hold them all. */
#define TOK_CHANGED_MIN 10302

static void test_every_changed_code_point(void **state)
{
    (void)state;
    pcre2_code *code[TOK_PAT_COUNT];
    for (int p = 0; p < TOK_PAT_COUNT; p++)
        code[p] = compile((enum tok_pattern)p);
    char *path = tok_tu_fixture_path("unicode.changed");
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[256], got[64];
    size_t ncp = 0;
    while (fgets(line, sizeof(line), f)) {
        if (line[0] == '#')
            continue;
        unsigned first, last;
        char was[8], now[8];
        assert_int_equal(sscanf(line, "%x %x %7s %7s", &first, &last, was, now), 4);
        assert_true(first <= last && last < 0x110000);
        for (uint32_t c = first; c <= last; c++, ncp++)
            for (size_t i = 0; i < sizeof(probes) / sizeof(probes[0]); i++) {
                const struct probe *pr = &probes[i];
                char text[32];
                size_t n = strlen(pr->before);
                memcpy(text, pr->before, n);
                n += put_utf8(text + n, c);
                strcpy(text + n, pr->after);
                int pieces = split(code[pr->pat], text, got, sizeof(got));
                if ((pieces == 1) != (pr->one_piece(now) != 0))
                    fail_msg("U+%04X (%s, was %s), %s: \"%s\" split as \"%s\"", c, now, was,
                             tok_pattern_names[pr->pat], text, got);
            }
    }
    fclose(f);
    free(path);
    assert_true(ncp >= TOK_CHANGED_MIN);
    for (int p = 0; p < TOK_PAT_COUNT; p++)
        pcre2_code_free(code[p]);
}

/* ---- Golden ids (skipped without TOKENMILL_VOCAB_DIR) ---------------------------------------- */

static void test_golden_unicode_ids(void **state)
{
    (void)state;
    const char *dir = getenv("TOKENMILL_VOCAB_DIR");
    if (!dir || !*dir)
        skip();
    char *tpath = tok_tu_fixture_path("unicode.txt");
    char *text = NULL;
    size_t len = 0;
    assert_int_equal(tm_read_file(tpath, 1 << 20, &text, &len), TM_OK);
    for (int pat = 0; pat < TOK_PAT_COUNT; pat++) {
        struct tok_vocab *v = tok_tu_real_vocab(dir, (enum tok_pattern)pat);
        struct tok_encoder *e = NULL;
        assert_int_equal(tok_encoder_new(v, (enum tok_pattern)pat, &e), TM_OK);
        char name[64];
        snprintf(name, sizeof(name), "%s.unicode.ids", tok_pattern_names[pat]);
        struct tok_ids got;
        tok_ids_init(&got, 0);
        assert_int_equal(tok_encode_ordinary(e, text, len, &got), TM_OK);
        tok_tu_expect_golden(&got, name);
        tok_ids_release(&got);
        tok_encoder_free(e);
        tok_vocab_free(v);
    }
    free(text);
    free(tpath);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_named_cases),
        cmocka_unit_test(test_every_changed_code_point),
        cmocka_unit_test(test_golden_unicode_ids),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
