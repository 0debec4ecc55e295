/* flt_internal.h: the filter stage's internal interfaces, shared by its files and its tests.
 *
 *   flt_rules.c    the rule table (names, thresholds per domain, sources), the configuration
 *                  (INI file and --set), and the evaluation of one document into a decision
 *   flt_metrics.c  the measurements the quality rules compare against thresholds, in one pass
 *   flt_code.c     comment and string regions of source code (toxicity scans only those)
 *   flt_spans.c    sentence and line spans, merging, and applying them to a text
 *   flt_record.c   the stored decision record and the stage's per-generation state
 *   flt_run.c      the command: generations, threads, batches, statistics, export, explain
 *   flt_tox*.c     toxicity lexicons and their scanner (flt_tox.h) */
#ifndef FLT_INTERNAL_H
#define FLT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "flt_tox.h"
#include "../core/tm_buf.h"
#include "../core/tm_doc.h"
#include "../core/tm_opt.h"

/* ---- Rules ------------------------------------------------------------------------------- */

/* Rule ids are stored in decision records: they are stable, never reused, and below 64 (the
 * `fired` mask is a uint64). The table in flt_rules.c lists them in evaluation order; the first
 * rule in that order that fails decides a removal. */
enum flt_rule_id {
    FLT_R_TOXICITY = 0,
    FLT_R_C4_LOREM = 1,
    FLT_R_C4_CURLY = 2,
    FLT_R_C4_JAVASCRIPT = 3,
    FLT_R_C4_POLICY = 4,
    FLT_R_C4_PUNCT_LINES = 5,
    FLT_R_GOPHER_MIN_WORDS = 6,
    FLT_R_GOPHER_MAX_WORDS = 7,
    FLT_R_GOPHER_MIN_MEAN_WORD = 8,
    FLT_R_GOPHER_MAX_MEAN_WORD = 9,
    FLT_R_GOPHER_HASH = 10,
    FLT_R_GOPHER_ELLIPSIS = 11,
    FLT_R_GOPHER_BULLET_LINES = 12,
    FLT_R_GOPHER_ELLIPSIS_LINES = 13,
    FLT_R_GOPHER_ALPHA_WORDS = 14,
    FLT_R_GOPHER_STOP_WORDS = 15,
    FLT_R_GOPHER_DUP_LINES = 16,
    FLT_R_GOPHER_DUP_PARAS = 17,
    FLT_R_GOPHER_DUP_LINE_CHARS = 18,
    FLT_R_GOPHER_DUP_PARA_CHARS = 19,
    FLT_R_GOPHER_TOP_2GRAM = 20,
    FLT_R_GOPHER_TOP_3GRAM = 21,
    FLT_R_GOPHER_TOP_4GRAM = 22,
    FLT_R_GOPHER_DUP_5GRAM = 23, /* ... through 10-grams: 23..28 */
    FLT_R_GOPHER_DUP_10GRAM = 28,
    FLT_R_FINEWEB_PUNCT_LINES = 29,
    FLT_R_FINEWEB_SHORT_LINES = 30,
    FLT_R_FINEWEB_DUP_LINE_CHARS = 31,
    FLT_R_FINEWEB_NEWLINES = 32,
    FLT_R_CODE_MAX_LINE = 33,
    FLT_R_CODE_MEAN_LINE = 34,
    FLT_R_CODE_ALNUM = 35,
    FLT_R_CODE_AUTOGEN = 36,
    FLT_R_CODE_MINIFIED = 37,
    FLT_R_CODE_DATA = 38,
    FLT_R_CODE_LICENSE_ONLY = 39,
    FLT_R_MATH_DENSITY = 40,
    FLT_R_MATH_DOLLARS = 41,
    FLT_R_MATH_BRACES = 42,
    FLT_R_EMPTY_AFTER_SPANS = 43,
    FLT_R_COUNT
};
#define FLT_RULE_NONE 0xffffu
/* Bumped whenever a rule's measurement changes meaning, so configurations hash differently and
 * generations decided by an older tokenmill are reported as made with another configuration. */
#define FLT_RULES_VERSION 1

enum flt_rule_kind {
    FLT_DOC_MIN,  /* removes the document when its value is below the threshold */
    FLT_DOC_MAX,  /* removes the document when its value is above the threshold */
    FLT_SPAN,     /* removes the lines it flags; its threshold is on (1) or off */
    FLT_TOXICITY, /* its own settings (struct flt_tox_domain) */
    FLT_INTERNAL, /* decided by the engine, not configurable */
};

struct flt_rule {
    uint16_t id;             /* enum flt_rule_id */
    const char *name;        /* config key and statistics name */
    enum flt_rule_kind kind; /* how the threshold reads */
    double def[3];           /* default threshold per domain (text, math, code); NAN: off */
    const char *what;        /* what the value measures, for --explain and --print-config */
    const char *source;      /* where the rule and its threshold come from */
};

/* The rule table, in evaluation order (cheap rules first: the toxicity scan and the n-gram
 * statistics cost the most, and a document is decided by the first rule it fails, so unless
 * --all-rules is given the rules after that are not evaluated); FLT_R_COUNT entries. */
extern const struct flt_rule flt_rules[];
/* The entry for `id`, or NULL. */
const struct flt_rule *flt_rule_by_id(unsigned id);
/* The entry named `name`, or NULL. */
const struct flt_rule *flt_rule_by_name(const char *name);

/* ---- Configuration ----------------------------------------------------------------------- */

enum flt_span_unit { FLT_SPAN_OFF = 0, FLT_SPAN_SENTENCE, FLT_SPAN_LINE };

struct flt_tox_domain {
    int enabled;
    double threshold; /* remove the document when its score (weighted hits per 1,000 words)
                         is at least this; below it, spans */
    enum flt_span_unit spans;
    double quoted_weight; /* factor on the weight of a hit written in quotation marks */
    int obfuscated;       /* count disguised forms ("sh1t", "f u c k") in this domain */
};

struct flt_domain_cfg {
    double thr[FLT_R_COUNT]; /* NAN: the rule is off in this domain */
    struct flt_tox_domain tox;
};

/* A lexicon named in the configuration (owned strings). */
struct flt_lexicon_cfg {
    char *path; /* NULL: built-in */
    char *lang, *category;
    double weight;
};

struct flt_config {
    struct flt_domain_cfg dom[TM_DOMAIN_COUNT];
    struct flt_lexicon_cfg *lexicons;
    size_t nlexicons;
    char **allow; /* allow-list files */
    size_t nallow;
    int builtin_allow;
    int obfuscation;
    int all_rules;    /* evaluate every rule even after one removed the document */
    int lexicons_set; /* the configuration named lexicons: the built-in one is not implied */
};

/* Fills `cfg` with the defaults (the rule table's, the built-in lexicon and allow list). */
void flt_config_defaults(struct flt_config *cfg);
void flt_config_release(struct flt_config *cfg);
/* Applies one setting: section "text", "math", "code", "all" (every domain) or "lexicons";
 * key a rule name (value a number, or "off"), or toxicity, toxicity_threshold, toxicity_spans;
 * in "lexicons": lexicon, allow, builtin_allow, obfuscation. TM_OK or TM_ERR_USAGE with the
 * reason in err[errlen]. */
int flt_config_set(struct flt_config *cfg, const char *section, const char *key, const char *value,
                   char *err, size_t errlen);
/* flt_config_set with a void context: the tm_ini_set_fn for files and --set. */
int flt_config_set_fn(void *ctx, const char *section, const char *key, const char *value, char *err,
                      size_t errlen);
/* Reads an INI file into `cfg` (on top of what it holds). Errors are logged as "path:line:
 * reason" and return TM_ERR_USAGE; TM_ERR_IO when the file cannot be read. */
int flt_config_load(struct flt_config *cfg, const char *path);
/* Parses INI text from memory (`name` for messages); for the fuzz target and tests. */
int flt_config_parse(struct flt_config *cfg, const char *text, size_t len, const char *name);
/* Writes the configuration as an INI file with every rule, its threshold per domain, what it
 * measures and its source as comments. */
void flt_config_print(const struct flt_config *cfg, FILE *out);
/* Hash of every setting that changes decisions, with the lexicons' hash mixed in. */
uint64_t flt_config_hash(const struct flt_config *cfg, uint64_t tox_hash);

/* ---- Metrics ----------------------------------------------------------------------------- */

/* Measurements of one document. Each group is computed only when an enabled rule needs it;
 * values of groups not computed are NAN. */
enum flt_metric_group {
    FLT_G_WORDS = 1u << 0,  /* words, stop words, symbols, lines, paragraphs, markers */
    FLT_G_NGRAMS = 1u << 1, /* top and duplicated word n-grams */
    FLT_G_CODE = 1u << 2,
    FLT_G_MATH = 1u << 3,
};

/* Per-thread working memory for the metrics (hash tables, word arrays). */
struct flt_scratch;
struct flt_scratch *flt_scratch_new(void);
void flt_scratch_free(struct flt_scratch *s);

struct flt_regions;
struct flt_spans;
/* Computes the values of every rule of kind DOC_MIN / DOC_MAX whose group is in `groups` into
 * values[FLT_R_COUNT] (NAN for the others), and the lines the C4 span rules whose bits are set
 * in `span_rules` flag into `c4_lines` (as empty spans at line starts, rule ids
 * FLT_R_C4_JAVASCRIPT / FLT_R_C4_POLICY / FLT_R_C4_PUNCT_LINES). `regions` are the comments and
 * strings of a code document (NULL otherwise). Documents over FLT_MAX_NGRAM_WORDS words leave the
 * n-gram values NAN. */
void flt_metrics(struct flt_scratch *s, const char *text, size_t n,
                 const struct flt_regions *regions, unsigned groups, double values[FLT_R_COUNT],
                 uint64_t span_rules, struct flt_spans *c4_lines);
/* The n-gram values (group FLT_G_NGRAMS) of the document of the last flt_metrics() call on `s`
 * (which must have had that group in `groups`), into values[]. Separate because they cost the
 * most: a document already removed by a cheaper rule skips them. */
void flt_metrics_ngrams(struct flt_scratch *s, double values[FLT_R_COUNT]);
/* Documents with more words than this skip the n-gram repetition rules (their values stay NAN);
 * far above gopher_max_words, so with defaults such a document is removed anyway. */
#define FLT_MAX_NGRAM_WORDS 2000000u
/* The group a rule's value comes from (0 for span, toxicity and internal rules). */
unsigned flt_rule_group(unsigned id);
/* Words as the rules count them: maximal runs of bytes that are not ASCII whitespace. */
size_t flt_count_words(const char *text, size_t n);

/* ---- Code regions ------------------------------------------------------------------------- */

enum flt_region_kind { FLT_REGION_COMMENT = 1, FLT_REGION_STRING = 2 };
struct flt_region {
    size_t start, end;
    int kind;
};
struct flt_regions {
    struct flt_region *v;
    size_t n, cap;
};
void flt_regions_release(struct flt_regions *r);
/* Finds the comments and string literals of source text in language `lang` (ingest's names:
 * "c", "python", ...; unknown languages get a generic C-and-shell lexer). Replaces r's contents.
 * Returns 1 when the language is prose-like (markdown, tex, html, text: the whole text should be
 * scanned, r is left empty), else 0. */
int flt_code_regions(const char *lang, const char *text, size_t n, struct flt_regions *r);

/* ---- Spans ------------------------------------------------------------------------------ */

struct flt_span {
    uint64_t start, end; /* bytes [start, end) of the document */
    uint16_t rule;       /* enum flt_rule_id */
};
struct flt_spans {
    struct flt_span *v;
    size_t n, cap;
};
void flt_spans_release(struct flt_spans *s);
void flt_spans_add(struct flt_spans *s, uint64_t start, uint64_t end, unsigned rule);
/* The line holding byte `pos`, with its newline: [start, end). */
void flt_line_around(const char *text, size_t n, size_t pos, size_t *start, size_t *end);
/* The sentence holding byte `pos`, with the whitespace after it. A sentence ends after '.', '!'
 * or '?' (with closing quotes and brackets) followed by whitespace, or at a newline. */
void flt_sentence_around(const char *text, size_t n, size_t pos, size_t *start, size_t *end);
/* Sorts spans by start and merges overlapping or touching ones (the merged span keeps the rule
 * of its earliest part). */
void flt_spans_normalize(struct flt_spans *s);
/* Appends text minus the spans (normalized) to `out`. TM_OK or TM_ERR_TOOBIG. */
int flt_apply_spans(const char *text, size_t n, const struct flt_span *spans, size_t nspans,
                    struct tm_buf *out);

/* ---- Decisions --------------------------------------------------------------------------- */

enum flt_action { FLT_KEPT = 0, FLT_REMOVED = 1, FLT_KEPT_SPANS = 2 };
/* "kept", "removed", "spans". */
const char *flt_action_name(int action);

struct flt_decision {
    int action;             /* enum flt_action */
    int domain;             /* the document's */
    unsigned rule;          /* the deciding rule: for REMOVED the first failing rule, for KEPT_SPANS
                               the rule of the first span; FLT_RULE_NONE when kept */
    uint64_t fired;         /* bit per rule id that failed or flagged a span */
    uint64_t text_len;      /* the document's bytes */
    uint64_t removed_bytes; /* all of them when removed, else the spans' */
    float tox_score;
    uint32_t tox_hits;
    float values[FLT_R_COUNT]; /* NAN where not evaluated */
    struct flt_spans spans;    /* owned */
};
void flt_decision_init(struct flt_decision *d);
void flt_decision_release(struct flt_decision *d);

/* The record "TMFD" version 1 stored under the document id in the `filter` database:
 *   header, u8 action, u8 domain, u16 rule, u32 tox_hits, u64 fired, u64 config hash,
 *   u64 text_len, u64 removed_bytes, f32 tox_score, u16 nvalues, u32 nspans,
 *   nvalues x (u8 rule id, f32 value), nspans x (u64 start, u64 end, u16 rule)   little-endian */
size_t flt_decision_encoded_size(const struct flt_decision *d);
void flt_decision_encode(const struct flt_decision *d, uint64_t config_hash, void *out);
/* Decodes a stored record into *d (its spans replaced). TM_OK, TM_ERR_FORMAT or TM_ERR_VERSION,
 * logged with `what`. *config_hash gets the hash it was made with (may be NULL). */
int flt_decision_decode(const void *val, size_t len, struct flt_decision *d, uint64_t *config_hash,
                        const char *what);

/* ---- Evaluation ------------------------------------------------------------------------- */

/* Everything a worker thread needs to decide documents; one per thread. */
struct flt_engine {
    const struct flt_config *cfg;
    const struct flt_tox *tox; /* shared */
    struct flt_tox_scratch *tox_scratch;
    struct flt_scratch *scratch;
    struct flt_tox_hits hits;
    struct flt_regions regions;
};
void flt_engine_init(struct flt_engine *e, const struct flt_config *cfg, const struct flt_tox *tox);
void flt_engine_release(struct flt_engine *e);
/* Decides one document into *d (reset first). The decision depends only on the document and
 * the configuration. After the call e->hits holds the toxicity hits (for --explain). TM_OK or
 * TM_ERR_INTERNAL. */
int flt_decide(struct flt_engine *e, const struct tm_doc *doc, struct flt_decision *d);

/* ---- The command (flt_run.c, flt_explain.c) ------------------------------------------------- */

struct flt_options;
struct tm_store;
struct cJSON;
/* Builds the configuration from the options (defaults, --config, --lexicon, --allow, --set),
 * compiles the lexicons (when toxicity is on anywhere) and hashes both. */
int flt_setup(const struct flt_options *opt, struct flt_config *cfg, struct flt_tox **tox,
              uint64_t *hash);
/* Runs the command; statistics go into `stats`. */
int flt_filter_run(const struct flt_options *opt, int progress, struct cJSON *stats);
/* Prints to stdout why document `idtext` ("ID" or "GEN:SEQ") is decided as it is: every rule's
 * value against its threshold, the toxicity hits, the spans, and the stored decision. */
int flt_explain(struct tm_store *st, const struct flt_config *cfg, const struct flt_tox *tox,
                uint64_t hash, const char *idtext);

#endif
