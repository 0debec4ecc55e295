/* flt_rules.c: the rule table, the configuration, and deciding one document.
 *
 * Every rule is a row of flt_rules[]: its threshold per domain (NAN: off in that domain), what
 * its value measures, and the source of the rule and its threshold. Defaults follow the
 * papers for English prose (text) and are off where prose rules would remove good code or
 * mathematics (a 30-word GSM8K problem has fewer than Gopher's 50 words; code has braces). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "flt_internal.h"
#include "../core/tm_err.h"
#include "../core/tm_ini.h"
#include "../core/tm_log.h"
#include "../core/tm_mem.h"

#define OFF NAN

/* Toxicity defaults: remove a document above this many weighted hits per 1,000 words; below
 * it, remove the sentences (lines) holding hits. Dolma (Soldaini et al. 2024) and C4 use these
 * two actions; the threshold is tokenmill's, set on bench/toxicity/labeled.jsonl (README). */
#define TOX_THRESHOLD 10.0
/* A term in quotation marks ("the word 'X'") is usually mentioned, not used: moderation policies
 * (and this project's labeled set, bench/toxicity) separate the two. Such a hit counts a quarter
 * of its weight; tokenmill's choice, configurable as toxicity_quoted_weight. */
#define TOX_QUOTED_WEIGHT 0.25

const struct flt_rule flt_rules[FLT_R_COUNT] = {
    {FLT_R_GOPHER_MIN_WORDS,
     "gopher_min_words",
     FLT_DOC_MIN,
     {50, OFF, OFF},
     "words",
     "Gopher quality filter (Rae et al. 2021, A.1.1): 50 to 100,000 words"},
    {FLT_R_GOPHER_MAX_WORDS,
     "gopher_max_words",
     FLT_DOC_MAX,
     {100000, 100000, OFF},
     "words",
     "Gopher quality filter (Rae et al. 2021, A.1.1): 50 to 100,000 words"},
    {FLT_R_C4_LOREM,
     "c4_lorem_ipsum",
     FLT_DOC_MAX,
     {0, 0, OFF},
     "1 when \"lorem ipsum\" appears",
     "C4 (Raffel et al. 2020, sec. 2.2): pages with placeholder text removed"},
    {FLT_R_C4_CURLY,
     "c4_curly_braces",
     FLT_DOC_MAX,
     {0, OFF, OFF},
     "curly braces in the text",
     "C4 (Raffel et al. 2020, sec. 2.2): pages with a curly bracket removed (code, not prose)"},
    {FLT_R_C4_JAVASCRIPT,
     "c4_javascript_lines",
     FLT_SPAN,
     {1, OFF, OFF},
     "lines containing \"javascript\"",
     "C4 (Raffel et al. 2020, sec. 2.2): lines with the word Javascript removed"},
    {FLT_R_C4_POLICY,
     "c4_policy_lines",
     FLT_SPAN,
     {1, OFF, OFF},
     "lines with \"terms of use\", \"privacy policy\", \"cookie policy\", \"uses cookies\", "
     "\"use of cookies\", \"use cookies\"",
     "C4 (Raffel et al. 2020, sec. 2.2; the phrase list of its released filter)"},
    {FLT_R_C4_PUNCT_LINES,
     "c4_no_terminal_punct_lines",
     FLT_SPAN,
     {OFF, OFF, OFF},
     "lines not ending in . ! ? or \"",
     "C4 (Raffel et al. 2020, sec. 2.2) kept only such lines; off by default because FineWeb "
     "(Penedo et al. 2024) found it removes too much and uses fineweb_punct_lines instead"},
    {FLT_R_GOPHER_MIN_MEAN_WORD,
     "gopher_min_mean_word_length",
     FLT_DOC_MIN,
     {3, OFF, OFF},
     "mean word length in characters",
     "Gopher quality filter (Rae et al. 2021, A.1.1): mean word length 3 to 10"},
    {FLT_R_GOPHER_MAX_MEAN_WORD,
     "gopher_max_mean_word_length",
     FLT_DOC_MAX,
     {10, OFF, OFF},
     "mean word length in characters",
     "Gopher quality filter (Rae et al. 2021, A.1.1): mean word length 3 to 10"},
    {FLT_R_GOPHER_HASH,
     "gopher_hash_ratio",
     FLT_DOC_MAX,
     {0.1, OFF, OFF},
     "'#' per word",
     "Gopher quality filter (Rae et al. 2021, A.1.1): symbol-to-word ratio at most 0.1"},
    {FLT_R_GOPHER_ELLIPSIS,
     "gopher_ellipsis_ratio",
     FLT_DOC_MAX,
     {0.1, OFF, OFF},
     "ellipses (\"...\" or U+2026) per word",
     "Gopher quality filter (Rae et al. 2021, A.1.1): symbol-to-word ratio at most 0.1"},
    {FLT_R_GOPHER_BULLET_LINES,
     "gopher_bullet_lines",
     FLT_DOC_MAX,
     {0.9, OFF, OFF},
     "fraction of lines starting with a bullet",
     "Gopher quality filter (Rae et al. 2021, A.1.1): at most 90%"},
    {FLT_R_GOPHER_ELLIPSIS_LINES,
     "gopher_ellipsis_lines",
     FLT_DOC_MAX,
     {0.3, OFF, OFF},
     "fraction of lines ending with an ellipsis",
     "Gopher quality filter (Rae et al. 2021, A.1.1): at most 30%"},
    {FLT_R_GOPHER_ALPHA_WORDS,
     "gopher_alpha_words",
     FLT_DOC_MIN,
     {0.8, OFF, OFF},
     "fraction of words with a letter",
     "Gopher quality filter (Rae et al. 2021, A.1.1): at least 80%"},
    {FLT_R_GOPHER_STOP_WORDS,
     "gopher_stop_words",
     FLT_DOC_MIN,
     {2, OFF, OFF},
     "occurrences of the, be, to, of, and, that, have, with",
     "Gopher quality filter (Rae et al. 2021, A.1.1): at least 2"},
    {FLT_R_GOPHER_DUP_LINES,
     "gopher_dup_lines",
     FLT_DOC_MAX,
     {0.3, 0.3, OFF},
     "fraction of lines that repeat an earlier line",
     "Gopher repetition filter (Rae et al. 2021, table A1): 0.3"},
    {FLT_R_GOPHER_DUP_PARAS,
     "gopher_dup_paragraphs",
     FLT_DOC_MAX,
     {0.3, 0.3, OFF},
     "fraction of paragraphs that repeat an earlier one",
     "Gopher repetition filter (Rae et al. 2021, table A1): 0.3"},
    {FLT_R_GOPHER_DUP_LINE_CHARS,
     "gopher_dup_line_chars",
     FLT_DOC_MAX,
     {0.2, 0.2, OFF},
     "fraction of line bytes in repeated lines",
     "Gopher repetition filter (Rae et al. 2021, table A1): 0.2"},
    {FLT_R_GOPHER_DUP_PARA_CHARS,
     "gopher_dup_paragraph_chars",
     FLT_DOC_MAX,
     {0.2, 0.2, OFF},
     "fraction of line bytes in repeated paragraphs",
     "Gopher repetition filter (Rae et al. 2021, table A1): 0.2"},
    {FLT_R_FINEWEB_PUNCT_LINES,
     "fineweb_punct_lines",
     FLT_DOC_MIN,
     {0.12, OFF, OFF},
     "fraction of lines ending in . ' \" ! or ?",
     "FineWeb (Penedo et al. 2024, sec. 3.3): at least 0.12"},
    {FLT_R_FINEWEB_SHORT_LINES,
     "fineweb_short_lines",
     FLT_DOC_MAX,
     {0.67, OFF, OFF},
     "fraction of lines of at most 30 characters",
     "FineWeb (Penedo et al. 2024, sec. 3.3): at most 0.67"},
    {FLT_R_FINEWEB_DUP_LINE_CHARS,
     "fineweb_dup_line_chars",
     FLT_DOC_MAX,
     {0.1, OFF, OFF},
     "fraction of line bytes in repeated lines",
     "FineWeb (Penedo et al. 2024, sec. 3.3): at most 0.1"},
    {FLT_R_FINEWEB_NEWLINES,
     "fineweb_newline_ratio",
     FLT_DOC_MAX,
     {0.3, OFF, OFF},
     "newlines per word",
     "FineWeb (datatrove FineWebQualityFilter new_line_ratio): 0.3"},
    {FLT_R_CODE_MAX_LINE,
     "code_max_line_length",
     FLT_DOC_MAX,
     {OFF, OFF, 1000},
     "longest line in bytes",
     "The Stack / Codex (Chen et al. 2021): longest line over 1000"},
    {FLT_R_CODE_MEAN_LINE,
     "code_mean_line_length",
     FLT_DOC_MAX,
     {OFF, OFF, 100},
     "mean line length in bytes",
     "The Stack / Codex (Chen et al. 2021): mean over 100"},
    {FLT_R_CODE_ALNUM,
     "code_alnum_fraction",
     FLT_DOC_MIN,
     {OFF, OFF, 0.25},
     "fraction of ASCII letters and digits",
     "The Stack / Codex (Chen et al. 2021): under 25% alphanumeric"},
    {FLT_R_CODE_AUTOGEN,
     "code_autogenerated",
     FLT_DOC_MAX,
     {OFF, OFF, 0},
     "1 when the head says the file is generated",
     "StarCoder (Li et al. 2023): auto-generated files removed"},
    {FLT_R_CODE_MINIFIED,
     "code_minified",
     FLT_DOC_MAX,
     {OFF, OFF, 0},
     "1 when most bytes are on lines over 300 bytes and under 10% is whitespace",
     "tokenmill; StarCoder also drops minified files"},
    {FLT_R_CODE_DATA,
     "code_data_fraction",
     FLT_DOC_MAX,
     {OFF, OFF, 0.5},
     "fraction of bytes on numeric-array or base64 lines",
     "tokenmill; StarCoder drops data-like files"},
    {FLT_R_CODE_LICENSE_ONLY,
     "code_license_only",
     FLT_DOC_MIN,
     {OFF, OFF, 0.05},
     "with a license's wording: fraction of non-space bytes outside comments (else 1)",
     "tokenmill; near-empty files holding only a license header"},
    {FLT_R_MATH_DENSITY,
     "math_formula_density",
     FLT_DOC_MIN,
     {OFF, 0.02, OFF},
     "bytes of formulas, digits, operators and math symbols per non-space byte",
     "tokenmill; math documents with no mathematics were mislabelled or empty"},
    {FLT_R_MATH_DOLLARS,
     "math_unbalanced_dollars",
     FLT_DOC_MAX,
     {OFF, 0, OFF},
     "$$ left open, plus $ opening TeX that no $ closes in its paragraph",
     "tokenmill; broken TeX extraction"},
    {FLT_R_MATH_BRACES,
     "math_brace_imbalance",
     FLT_DOC_MAX,
     {OFF, 0, OFF},
     "|unescaped { minus unescaped }|",
     "tokenmill; broken TeX extraction"},
    {FLT_R_TOXICITY,
     "toxicity",
     FLT_TOXICITY,
     {TOX_THRESHOLD, TOX_THRESHOLD, TOX_THRESHOLD},
     "weighted lexicon hits per 1,000 words (code: of comments and strings)",
     "Dolma and C4: remove above a threshold, else remove the spans with hits"},
    {FLT_R_GOPHER_TOP_2GRAM,
     "gopher_top_2gram",
     FLT_DOC_MAX,
     {0.20, OFF, OFF},
     "fraction of word bytes in the most frequent 2-gram",
     "Gopher repetition filter (Rae et al. 2021, table A1): 0.20"},
    {FLT_R_GOPHER_TOP_2GRAM + 1,
     "gopher_top_3gram",
     FLT_DOC_MAX,
     {0.18, OFF, OFF},
     "fraction of word bytes in the most frequent 3-gram",
     "Gopher repetition filter (Rae et al. 2021, table A1): 0.18"},
    {FLT_R_GOPHER_TOP_4GRAM,
     "gopher_top_4gram",
     FLT_DOC_MAX,
     {0.16, OFF, OFF},
     "fraction of word bytes in the most frequent 4-gram",
     "Gopher repetition filter (Rae et al. 2021, table A1): 0.16"},
    {FLT_R_GOPHER_DUP_5GRAM,
     "gopher_dup_5gram",
     FLT_DOC_MAX,
     {0.15, OFF, OFF},
     "fraction of word bytes in repeated 5-grams",
     "Gopher repetition filter (Rae et al. 2021, table A1): 0.15"},
    {FLT_R_GOPHER_DUP_5GRAM + 1,
     "gopher_dup_6gram",
     FLT_DOC_MAX,
     {0.14, OFF, OFF},
     "fraction of word bytes in repeated 6-grams",
     "Gopher repetition filter (Rae et al. 2021, table A1): 0.14"},
    {FLT_R_GOPHER_DUP_5GRAM + 2,
     "gopher_dup_7gram",
     FLT_DOC_MAX,
     {0.13, OFF, OFF},
     "fraction of word bytes in repeated 7-grams",
     "Gopher repetition filter (Rae et al. 2021, table A1): 0.13"},
    {FLT_R_GOPHER_DUP_5GRAM + 3,
     "gopher_dup_8gram",
     FLT_DOC_MAX,
     {0.12, OFF, OFF},
     "fraction of word bytes in repeated 8-grams",
     "Gopher repetition filter (Rae et al. 2021, table A1): 0.12"},
    {FLT_R_GOPHER_DUP_5GRAM + 4,
     "gopher_dup_9gram",
     FLT_DOC_MAX,
     {0.11, OFF, OFF},
     "fraction of word bytes in repeated 9-grams",
     "Gopher repetition filter (Rae et al. 2021, table A1): 0.11"},
    {FLT_R_GOPHER_DUP_10GRAM,
     "gopher_dup_10gram",
     FLT_DOC_MAX,
     {0.10, OFF, OFF},
     "fraction of word bytes in repeated 10-grams",
     "Gopher repetition filter (Rae et al. 2021, table A1): 0.10"},
    {FLT_R_EMPTY_AFTER_SPANS,
     "empty_after_spans",
     FLT_INTERNAL,
     {0, 0, 0},
     "nothing but whitespace is left once the spans are removed",
     "tokenmill"},
};

const struct flt_rule *flt_rule_by_id(unsigned id)
{
    for (int r = 0; r < FLT_R_COUNT; r++)
        if (flt_rules[r].id == id)
            return &flt_rules[r];
    return NULL;
}

const struct flt_rule *flt_rule_by_name(const char *name)
{
    for (int r = 0; r < FLT_R_COUNT; r++)
        if (strcmp(flt_rules[r].name, name) == 0)
            return &flt_rules[r];
    return NULL;
}

unsigned flt_rule_group(unsigned id)
{
    if (id == FLT_R_C4_LOREM || id == FLT_R_C4_CURLY ||
        (id >= FLT_R_GOPHER_MIN_WORDS && id <= FLT_R_GOPHER_DUP_PARA_CHARS) ||
        (id >= FLT_R_FINEWEB_PUNCT_LINES && id <= FLT_R_FINEWEB_NEWLINES))
        return FLT_G_WORDS;
    if (id >= FLT_R_GOPHER_TOP_2GRAM && id <= FLT_R_GOPHER_DUP_10GRAM)
        return FLT_G_NGRAMS;
    if (id >= FLT_R_CODE_MAX_LINE && id <= FLT_R_CODE_LICENSE_ONLY)
        return FLT_G_CODE;
    if (id >= FLT_R_MATH_DENSITY && id <= FLT_R_MATH_BRACES)
        return FLT_G_MATH;
    return 0;
}

/* ---- Configuration ------------------------------------------------------------------------ */

static const char *const domain_sections[TM_DOMAIN_COUNT] = {"text", "math", "code"};
static const char *const span_units[] = {"off", "sentence", "line"};

void flt_config_defaults(struct flt_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    for (int d = 0; d < TM_DOMAIN_COUNT; d++) {
        for (int r = 0; r < FLT_R_COUNT; r++)
            cfg->dom[d].thr[flt_rules[r].id] = flt_rules[r].def[d];
        cfg->dom[d].tox.enabled = 1;
        cfg->dom[d].tox.threshold = flt_rule_by_id(FLT_R_TOXICITY)->def[d];
        cfg->dom[d].tox.spans = d == TM_DOMAIN_CODE ? FLT_SPAN_OFF : FLT_SPAN_SENTENCE;
        cfg->dom[d].tox.quoted_weight = TOX_QUOTED_WEIGHT;
        /* Disguises only in prose: in code and mathematics, spaced capitals ("A S S E S" in a
         * table), truth tables ("T | T") and names with digits look like them. */
        cfg->dom[d].tox.obfuscated = d == TM_DOMAIN_TEXT;
    }
    cfg->lexicons = tm_xcalloc(1, sizeof(*cfg->lexicons));
    cfg->nlexicons = 1; /* the built-in English lexicon */
    cfg->builtin_allow = 1;
    cfg->obfuscation = 1;
}

static void lexicons_clear(struct flt_config *cfg)
{
    for (size_t k = 0; k < cfg->nlexicons; k++) {
        free(cfg->lexicons[k].path);
        free(cfg->lexicons[k].lang);
        free(cfg->lexicons[k].category);
    }
    free(cfg->lexicons);
    cfg->lexicons = NULL;
    cfg->nlexicons = 0;
}

void flt_config_release(struct flt_config *cfg)
{
    lexicons_clear(cfg);
    for (size_t k = 0; k < cfg->nallow; k++)
        free(cfg->allow[k]);
    free(cfg->allow);
    memset(cfg, 0, sizeof(*cfg));
}

static int parse_number(const char *v, double *out)
{
    char *end;
    double x = strtod(v, &end);
    while (*end == ' ' || *end == '\t')
        end++;
    if (end == v || *end || !isfinite(x))
        return -1;
    *out = x;
    return 0;
}

/* "PATH [lang=xx] [weight=w] [category=c]" or "builtin". */
static int add_lexicon(struct flt_config *cfg, const char *value, char *err, size_t errlen)
{
    if (!cfg->lexicons_set) {
        lexicons_clear(cfg);
        cfg->lexicons_set = 1;
    }
    char *copy = tm_xstrdup(value);
    struct flt_lexicon_cfg lx = {0};
    int rc = TM_OK;
    char *save = NULL;
    for (char *tok = strtok_r(copy, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
        if (!lx.path && !lx.lang && !lx.category && lx.weight == 0 && !strchr(tok, '=')) {
            lx.path = strcmp(tok, "builtin") == 0 ? NULL : tm_xstrdup(tok);
            if (!lx.path)
                lx.weight = -1; /* marks "builtin seen" until the end */
            continue;
        }
        if (!strncmp(tok, "lang=", 5) && tok[5]) {
            free(lx.lang);
            lx.lang = tm_xstrdup(tok + 5);
        } else if (!strncmp(tok, "category=", 9) && tok[9]) {
            free(lx.category);
            lx.category = tm_xstrdup(tok + 9);
        } else if (!strncmp(tok, "weight=", 7) && parse_number(tok + 7, &lx.weight) == 0 &&
                   lx.weight > 0) {
        } else {
            snprintf(err, errlen,
                     "lexicon: cannot read '%s' (want PATH [lang=xx] [weight=w] "
                     "[category=c], or builtin)",
                     tok);
            rc = TM_ERR_USAGE;
            break;
        }
    }
    free(copy);
    if (rc == TM_OK && !lx.path && lx.weight == 0) {
        snprintf(err, errlen, "lexicon: no path given");
        rc = TM_ERR_USAGE;
    }
    if (rc) {
        free(lx.path);
        free(lx.lang);
        free(lx.category);
        return rc;
    }
    if (lx.weight < 0)
        lx.weight = 0;
    cfg->lexicons = tm_xreallocarray(cfg->lexicons, cfg->nlexicons + 1, sizeof(*cfg->lexicons));
    cfg->lexicons[cfg->nlexicons++] = lx;
    return TM_OK;
}

static int set_domain(struct flt_domain_cfg *dc, const char *key, const char *value, char *err,
                      size_t errlen)
{
    if (!strcmp(key, "toxicity")) {
        if (tm_parse_bool(value, &dc->tox.enabled) == 0)
            return TM_OK;
        snprintf(err, errlen, "toxicity: want on or off, not '%s'", value);
        return TM_ERR_USAGE;
    }
    if (!strcmp(key, "toxicity_threshold")) {
        double x;
        if (parse_number(value, &x) == 0 && x >= 0) {
            dc->tox.threshold = x;
            return TM_OK;
        }
        snprintf(err, errlen, "toxicity_threshold: want a number >= 0, not '%s'", value);
        return TM_ERR_USAGE;
    }
    if (!strcmp(key, "toxicity_quoted_weight")) {
        double x;
        if (parse_number(value, &x) == 0 && x >= 0 && x <= 1) {
            dc->tox.quoted_weight = x;
            return TM_OK;
        }
        snprintf(err, errlen, "toxicity_quoted_weight: want a number from 0 to 1, not '%s'", value);
        return TM_ERR_USAGE;
    }
    if (!strcmp(key, "toxicity_obfuscated")) {
        if (tm_parse_bool(value, &dc->tox.obfuscated) == 0)
            return TM_OK;
        snprintf(err, errlen, "toxicity_obfuscated: want on or off, not '%s'", value);
        return TM_ERR_USAGE;
    }
    if (!strcmp(key, "toxicity_spans")) {
        for (int u = 0; u < 3; u++)
            if (!strcmp(value, span_units[u])) {
                dc->tox.spans = (enum flt_span_unit)u;
                return TM_OK;
            }
        snprintf(err, errlen, "toxicity_spans: want sentence, line or off, not '%s'", value);
        return TM_ERR_USAGE;
    }
    const struct flt_rule *r = flt_rule_by_name(key);
    if (!r || r->kind == FLT_TOXICITY || r->kind == FLT_INTERNAL) {
        snprintf(err, errlen, "unknown rule '%s' (tokenmill filter --print-config lists them)",
                 key);
        return TM_ERR_USAGE;
    }
    if (!strcmp(value, "off")) {
        dc->thr[r->id] = NAN;
        return TM_OK;
    }
    if (r->kind == FLT_SPAN) {
        int on;
        if (tm_parse_bool(value, &on) == 0) {
            dc->thr[r->id] = on ? 1 : NAN;
            return TM_OK;
        }
        snprintf(err, errlen, "%s: want on or off, not '%s'", key, value);
        return TM_ERR_USAGE;
    }
    double x;
    if (parse_number(value, &x) != 0) {
        snprintf(err, errlen, "%s: want a number or off, not '%s'", key, value);
        return TM_ERR_USAGE;
    }
    dc->thr[r->id] = x;
    return TM_OK;
}

int flt_config_set(struct flt_config *cfg, const char *section, const char *key, const char *value,
                   char *err, size_t errlen)
{
    if (!strcmp(section, "lexicons")) {
        if (!strcmp(key, "lexicon"))
            return add_lexicon(cfg, value, err, errlen);
        if (!strcmp(key, "allow")) {
            if (!strcmp(value, "builtin")) {
                cfg->builtin_allow = 1;
                return TM_OK;
            }
            cfg->allow = tm_xreallocarray(cfg->allow, cfg->nallow + 1, sizeof(*cfg->allow));
            cfg->allow[cfg->nallow++] = tm_xstrdup(value);
            return TM_OK;
        }
        if (!strcmp(key, "builtin_allow") || !strcmp(key, "obfuscation")) {
            int *field = key[0] == 'b' ? &cfg->builtin_allow : &cfg->obfuscation;
            if (tm_parse_bool(value, field) == 0)
                return TM_OK;
            snprintf(err, errlen, "%s: want on or off, not '%s'", key, value);
            return TM_ERR_USAGE;
        }
        snprintf(err, errlen,
                 "unknown key '%s' in [lexicons] (lexicon, allow, builtin_allow, "
                 "obfuscation)",
                 key);
        return TM_ERR_USAGE;
    }
    if (!strcmp(section, "all")) {
        for (int d = 0; d < TM_DOMAIN_COUNT; d++) {
            int rc = set_domain(&cfg->dom[d], key, value, err, errlen);
            if (rc)
                return rc;
        }
        return TM_OK;
    }
    for (int d = 0; d < TM_DOMAIN_COUNT; d++)
        if (!strcmp(section, domain_sections[d]))
            return set_domain(&cfg->dom[d], key, value, err, errlen);
    snprintf(err, errlen, "unknown section [%s] (text, math, code, all, lexicons)", section);
    return TM_ERR_USAGE;
}

int flt_config_set_fn(void *ctx, const char *section, const char *key, const char *value, char *err,
                      size_t errlen)
{
    return flt_config_set(ctx, section, key, value, err, errlen);
}

int flt_config_parse(struct flt_config *cfg, const char *text, size_t len, const char *name)
{
    return tm_ini_parse(text, len, name, flt_config_set_fn, cfg);
}

int flt_config_load(struct flt_config *cfg, const char *path)
{
    return tm_ini_load(path, flt_config_set_fn, cfg);
}

/* Writes `text` as '#' comment lines of at most ~96 columns (INI readers limit line length;
 * inih's default is 200 bytes). */
static void print_comment(FILE *out, const char *text)
{
    const char *p = text;
    while (*p) {
        size_t len = strlen(p), cut = len;
        if (len > 94) {
            cut = 94;
            while (cut > 0 && p[cut] != ' ')
                cut--;
            if (cut == 0)
                cut = 94;
        }
        fprintf(out, "# %.*s\n", (int)cut, p);
        p += cut;
        while (*p == ' ')
            p++;
    }
}

static void print_value(FILE *out, const struct flt_rule *r, double v)
{
    if (isnan(v))
        fprintf(out, "%s = off\n", r->name);
    else if (r->kind == FLT_SPAN)
        fprintf(out, "%s = on\n", r->name);
    else
        fprintf(out, "%s = %g\n", r->name, v);
}

void flt_config_print(const struct flt_config *cfg, FILE *out)
{
    fprintf(out,
            "# tokenmill filter configuration (tokenmill filter --print-config).\n"
            "# Sections [text], [math] and [code] set each domain's rules ([all]: every\n"
            "# domain); a rule is a threshold or 'off'. Documents failing a rule are removed;\n"
            "# span rules remove lines. Toxicity: remove the document above\n"
            "# toxicity_threshold weighted hits per 1,000 words, else remove the sentences\n"
            "# or lines with hits (toxicity_spans = sentence | line | off).\n\n"
            "[lexicons]\n");
    for (size_t k = 0; k < cfg->nlexicons; k++) {
        const struct flt_lexicon_cfg *lx = &cfg->lexicons[k];
        fprintf(out, "lexicon = %s", lx->path ? lx->path : "builtin");
        if (lx->lang)
            fprintf(out, " lang=%s", lx->lang);
        if (lx->weight > 0)
            fprintf(out, " weight=%g", lx->weight);
        if (lx->category)
            fprintf(out, " category=%s", lx->category);
        fputc('\n', out);
    }
    for (size_t k = 0; k < cfg->nallow; k++)
        fprintf(out, "allow = %s\n", cfg->allow[k]);
    fprintf(out, "builtin_allow = %s\nobfuscation = %s\n", cfg->builtin_allow ? "on" : "off",
            cfg->obfuscation ? "on" : "off");
    for (int d = 0; d < TM_DOMAIN_COUNT; d++) {
        const struct flt_domain_cfg *dc = &cfg->dom[d];
        fprintf(out, "\n[%s]\n", domain_sections[d]);
        const struct flt_rule *tox = flt_rule_by_id(FLT_R_TOXICITY);
        print_comment(out, tox->what);
        char line[512];
        snprintf(line, sizeof line, "source: %s", tox->source);
        print_comment(out, line);
        fprintf(out,
                "toxicity = %s\ntoxicity_threshold = %g\ntoxicity_spans = %s\n"
                "toxicity_quoted_weight = %g\ntoxicity_obfuscated = %s\n",
                dc->tox.enabled ? "on" : "off", dc->tox.threshold, span_units[dc->tox.spans],
                dc->tox.quoted_weight, dc->tox.obfuscated ? "on" : "off");
        for (int r = 0; r < FLT_R_COUNT; r++) {
            const struct flt_rule *rule = &flt_rules[r];
            if (rule->kind == FLT_INTERNAL || rule->kind == FLT_TOXICITY)
                continue;
            char about[1024];
            snprintf(about, sizeof about, "%s %s; source: %s", rule->what,
                     rule->kind == FLT_DOC_MIN   ? "(remove below)"
                     : rule->kind == FLT_DOC_MAX ? "(remove above)"
                                                 : "(lines removed)",
                     rule->source);
            print_comment(out, about);
            print_value(out, rule, dc->thr[rule->id]);
        }
    }
}

uint64_t flt_config_hash(const struct flt_config *cfg, uint64_t tox_hash)
{
    XXH3_state_t *st = XXH3_createState();
    XXH3_64bits_reset(st);
    for (int d = 0; d < TM_DOMAIN_COUNT; d++) {
        const struct flt_domain_cfg *dc = &cfg->dom[d];
        for (int r = 0; r < FLT_R_COUNT; r++) {
            double v = dc->thr[r];
            uint64_t bits = 0;
            if (!isnan(v))
                memcpy(&bits, &v, 8);
            else
                bits = 0x7ff8dead0000beefull;
            XXH3_64bits_update(st, &bits, 8);
        }
        int32_t t[4] = {dc->tox.enabled, (int32_t)dc->tox.spans, cfg->all_rules,
                        dc->tox.obfuscated};
        XXH3_64bits_update(st, t, sizeof t);
        XXH3_64bits_update(st, &dc->tox.threshold, sizeof dc->tox.threshold);
        XXH3_64bits_update(st, &dc->tox.quoted_weight, sizeof dc->tox.quoted_weight);
    }
    XXH3_64bits_update(st, &tox_hash, sizeof tox_hash);
    uint32_t version = FLT_RULES_VERSION;
    XXH3_64bits_update(st, &version, sizeof version);
    uint64_t h = XXH3_64bits_digest(st);
    XXH3_freeState(st);
    return h;
}

/* ---- Deciding a document ---------------------------------------------------------------- */

void flt_engine_init(struct flt_engine *e, const struct flt_config *cfg, const struct flt_tox *tox)
{
    memset(e, 0, sizeof(*e));
    e->cfg = cfg;
    e->tox = tox;
    e->scratch = flt_scratch_new();
    if (tox)
        e->tox_scratch = flt_tox_scratch_new(tox);
    flt_tox_hits_init(&e->hits, 0);
}

void flt_engine_release(struct flt_engine *e)
{
    flt_scratch_free(e->scratch);
    flt_tox_scratch_free(e->tox_scratch);
    flt_tox_hits_release(&e->hits);
    flt_regions_release(&e->regions);
    memset(e, 0, sizeof(*e));
}

static int only_space(const char *t, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!(t[i] == ' ' || t[i] == '\t' || t[i] == '\n' || t[i] == '\r' || t[i] == '\v' ||
              t[i] == '\f'))
            return 0;
    return 1;
}

/* Scans for toxicity; returns the number of words the score is per. */
static int scan_toxicity(struct flt_engine *e, const struct tm_doc *doc, int prose, size_t *words)
{
    flt_tox_hits_reset(&e->hits);
    if (doc->domain == TM_DOMAIN_CODE && !prose) {
        *words = 0;
        for (size_t k = 0; k < e->regions.n; k++) {
            const struct flt_region *r = &e->regions.v[k];
            *words += flt_count_words(doc->text + r->start, r->end - r->start);
            int rc = flt_tox_scan(e->tox, e->tox_scratch, doc->text + r->start, r->end - r->start,
                                  r->start, &e->hits);
            if (rc)
                return rc;
        }
        return TM_OK;
    }
    return flt_tox_scan(e->tox, e->tox_scratch, doc->text, doc->text_len, 0, &e->hits);
}

/* Whether the hit text[a..b) is written in quotation marks: an opening quote right before it
 * and a closing one right after it (one punctuation mark may sit inside: "fuck," or 'X.'). */
static int quoted(const char *text, size_t n, size_t a, size_t b)
{
    const unsigned char *u = (const unsigned char *)text;
    int open = 0;
    if (a >= 1 && (u[a - 1] == '"' || u[a - 1] == '\''))
        open = 1;
    else if (a >= 3 && u[a - 3] == 0xe2 && u[a - 2] == 0x80 &&
             (u[a - 1] == 0x9c || u[a - 1] == 0x98))
        open = 1; /* U+201C, U+2018 */
    else if (a >= 2 && u[a - 2] == 0xc2 && u[a - 1] == 0xab)
        open = 1; /* U+00AB */
    if (!open)
        return 0;
    if (b < n && (u[b] == '.' || u[b] == ',' || u[b] == '!' || u[b] == '?' || u[b] == ';'))
        b++;
    if (b < n && (u[b] == '"' || u[b] == '\''))
        return 1;
    if (b + 2 < n && u[b] == 0xe2 && u[b + 1] == 0x80 && (u[b + 2] == 0x9d || u[b + 2] == 0x99))
        return 1;                                         /* U+201D, U+2019 */
    return b + 1 < n && u[b] == 0xc2 && u[b + 1] == 0xbb; /* U+00BB */
}

/* The toxicity row: scans, scores, and adds spans for hits below the threshold. Returns 1 when
 * the document is removed by it. */
static int decide_toxicity(struct flt_engine *e, const struct tm_doc *doc, int prose,
                           const double *values, const struct flt_domain_cfg *dc,
                           struct flt_decision *d, int *rc)
{
    size_t words = 0;
    *rc = scan_toxicity(e, doc, prose, &words);
    if (*rc)
        return 0;
    if (!dc->tox.obfuscated) { /* drop the disguised forms this domain does not count */
        size_t w = 0;
        for (size_t k = 0; k < e->hits.n; k++)
            if (!e->hits.v[k].obfuscated)
                e->hits.v[w++] = e->hits.v[k];
        e->hits.n = w;
    }
    if (!(doc->domain == TM_DOMAIN_CODE && !prose))
        words = isnan(values[FLT_R_GOPHER_MIN_WORDS]) ? flt_count_words(doc->text, doc->text_len)
                                                      : (size_t)values[FLT_R_GOPHER_MIN_WORDS];
    double weight = e->hits.dropped_weight;
    for (size_t k = 0; k < e->hits.n; k++) {
        const struct flt_tox_hit *h = &e->hits.v[k];
        weight += h->weight *
                  (quoted(doc->text, doc->text_len, h->start, h->end) ? dc->tox.quoted_weight : 1);
    }
    /* No words but a hit (a region of symbols, a bare term): the score is unbounded. */
    double score = words ? weight * 1000.0 / (double)words : (weight > 0 ? 1e9 : 0);
    d->tox_score = (float)score;
    d->tox_hits = (uint32_t)(e->hits.n + e->hits.dropped);
    d->values[FLT_R_TOXICITY] = (float)score;
    if (weight > 0 && score > dc->tox.threshold) {
        d->fired |= 1ull << FLT_R_TOXICITY;
        return 1;
    }
    if (e->hits.n == 0)
        return 0;
    d->fired |= 1ull << FLT_R_TOXICITY;
    if (dc->tox.spans == FLT_SPAN_OFF)
        return 0;
    for (size_t k = 0; k < e->hits.n; k++) {
        size_t a, b, unused;
        if (dc->tox.spans == FLT_SPAN_LINE)
            flt_line_around(doc->text, doc->text_len, e->hits.v[k].start, &a, &b);
        else
            flt_sentence_around(doc->text, doc->text_len, e->hits.v[k].start, &a, &b);
        if (b < e->hits.v[k].end) /* a phrase across a sentence end: take its lines */
            flt_line_around(doc->text, doc->text_len, e->hits.v[k].end - 1, &unused, &b);
        flt_spans_add(&d->spans, a, b, FLT_R_TOXICITY);
    }
    return 0;
}

int flt_decide(struct flt_engine *e, const struct tm_doc *doc, struct flt_decision *d)
{
    struct flt_spans spans = d->spans;
    flt_decision_init(d);
    d->spans = spans;
    d->spans.n = 0;
    d->domain = doc->domain;
    d->text_len = doc->text_len;
    int dom = doc->domain >= 0 && doc->domain < TM_DOMAIN_COUNT ? doc->domain : TM_DOMAIN_TEXT;
    const struct flt_domain_cfg *dc = &e->cfg->dom[dom];
    int all = e->cfg->all_rules;

    unsigned groups = 0;
    uint64_t span_rules = 0;
    for (int r = 0; r < FLT_R_COUNT; r++) {
        if (isnan(dc->thr[flt_rules[r].id]))
            continue;
        groups |= flt_rule_group(flt_rules[r].id);
        if (flt_rules[r].kind == FLT_SPAN)
            span_rules |= 1ull << flt_rules[r].id;
    }
    int prose = 1;
    e->regions.n = 0;
    if (dom == TM_DOMAIN_CODE)
        prose = flt_code_regions(doc->lang, doc->text, doc->text_len, &e->regions);

    /* The word count first, alone: it is cheap, and a document outside Gopher's range (a
     * 10 MB dump has far more than 100,000 words) skips every other measurement. */
    double thr_min = dc->thr[FLT_R_GOPHER_MIN_WORDS], thr_max = dc->thr[FLT_R_GOPHER_MAX_WORDS];
    if (!all && (!isnan(thr_min) || !isnan(thr_max))) {
        double words = (double)flt_count_words(doc->text, doc->text_len);
        unsigned fail = !isnan(thr_min) && words < thr_min   ? FLT_R_GOPHER_MIN_WORDS
                        : !isnan(thr_max) && words > thr_max ? FLT_R_GOPHER_MAX_WORDS
                                                             : FLT_RULE_NONE;
        if (fail != FLT_RULE_NONE) {
            d->values[fail] = (float)words;
            d->fired |= 1ull << fail;
            d->action = FLT_REMOVED;
            d->rule = fail;
            d->removed_bytes = doc->text_len;
            return TM_OK;
        }
    }

    double values[FLT_R_COUNT];
    flt_metrics(e->scratch, doc->text, doc->text_len, prose ? NULL : &e->regions, groups, values,
                span_rules, &d->spans);
    /* C4's line rules gave line starts (start == end); widen them to their lines. */
    for (size_t k = 0; k < d->spans.n; k++) {
        size_t a, b;
        flt_line_around(doc->text, doc->text_len, d->spans.v[k].start, &a, &b);
        d->spans.v[k].start = a;
        d->spans.v[k].end = b;
        d->fired |= 1ull << d->spans.v[k].rule;
    }

    /* The rules in table order; the first failure decides. */
    unsigned decided = FLT_RULE_NONE;
    int ngrams_done = 0;
    int rc = TM_OK;
    for (int r = 0; r < FLT_R_COUNT && (decided == FLT_RULE_NONE || all); r++) {
        const struct flt_rule *rule = &flt_rules[r];
        if (rule->kind == FLT_TOXICITY) {
            if (dc->tox.enabled && e->tox && decide_toxicity(e, doc, prose, values, dc, d, &rc) &&
                decided == FLT_RULE_NONE)
                decided = FLT_R_TOXICITY;
            if (rc)
                return rc;
            continue;
        }
        if (rule->kind != FLT_DOC_MIN && rule->kind != FLT_DOC_MAX)
            continue;
        double thr = dc->thr[rule->id];
        if (isnan(thr))
            continue;
        if (flt_rule_group(rule->id) == FLT_G_NGRAMS && !ngrams_done) {
            /* Not for a document over gopher_max_words (removed by that rule whatever its
             * repetition): its n-gram tables would be the biggest of all, for nothing. */
            if (isnan(thr_max) || !(values[FLT_R_GOPHER_MAX_WORDS] > thr_max))
                flt_metrics_ngrams(e->scratch, values);
            ngrams_done = 1;
        }
        double v = values[rule->id];
        if (isnan(v))
            continue;
        d->values[rule->id] = (float)v;
        int fail = rule->kind == FLT_DOC_MIN ? v < thr : v > thr;
        if (fail) {
            d->fired |= 1ull << rule->id;
            if (decided == FLT_RULE_NONE)
                decided = rule->id;
        }
    }
    if (decided != FLT_RULE_NONE) {
        d->action = FLT_REMOVED;
        d->rule = decided;
        d->removed_bytes = doc->text_len;
        d->spans.n = 0;
        return TM_OK;
    }
    if (d->spans.n == 0) {
        d->action = FLT_KEPT;
        return TM_OK;
    }
    flt_spans_normalize(&d->spans);
    uint64_t removed = 0, at = 0;
    int kept_nonspace = 0;
    for (size_t k = 0; k < d->spans.n; k++) {
        const struct flt_span *s = &d->spans.v[k];
        if (!only_space(doc->text + at, s->start - at))
            kept_nonspace = 1;
        removed += s->end - s->start;
        at = s->end;
    }
    if (!only_space(doc->text + at, doc->text_len - at))
        kept_nonspace = 1;
    if (!kept_nonspace) {
        d->action = FLT_REMOVED;
        d->rule = FLT_R_EMPTY_AFTER_SPANS;
        d->fired |= 1ull << FLT_R_EMPTY_AFTER_SPANS;
        d->removed_bytes = doc->text_len;
        d->spans.n = 0;
        return TM_OK;
    }
    d->action = FLT_KEPT_SPANS;
    d->rule = d->spans.v[0].rule;
    d->removed_bytes = removed;
    return TM_OK;
}
