/* flt_tox: toxicity lexicons compiled into PCRE2 (JIT) patterns, and the scanner that finds
 * their hits in a text.
 *
 * Lexicon files (the public LDNOOBW lists load as they are):
 *   - one term or phrase per line; blank lines and lines whose first byte is '#' are skipped;
 *   - optional fields after the term, separated by TAB: weight (a decimal > 0), category (a
 *     name of [a-z0-9_-]), then flags (comma-separated names, below); missing or empty fields
 *     take the lexicon's defaults (no flags); an unknown flag is an error naming file:line;
 *   - a term ending in '*' matches any word that starts with the rest ("fuck*" matches
 *     "fuckers"); words of a phrase are separated by one or more spaces in the file and match
 *     any run of whitespace in the text;
 *   - terms are UTF-8 (invalid UTF-8 is an error naming file:line), matched case-insensitively.
 * Allow lists (whitelists) have the same syntax without the fields: each line a phrase whose
 * matches cancel the hits they contain ("breast cancer" cancels the hit on "breast"). Allow
 * phrases match whole words like terms, case-insensitively for ASCII letters only; only the
 * terms that match somewhere inside some allow phrase as written (whatever the case, flag and
 * letters-only rules below say) are checked against the allow list.
 *
 * Word boundaries: a term matches only as whole words, so a bad word inside an innocent one
 * (class, assessment, Scunthorpe, cockpit) is not a hit, except for lexicons of languages written
 * without spaces (ja, zh, th), whose terms match anywhere.
 *
 * Obfuscations: when enabled, single-word terms of the lexicon also match common disguises:
 * repeated letters ("fuuuck"), digit and symbol swaps ("sh1t", "a$$", "f*ck"), and letters
 * spaced by one repeated separator ("f u c k", "s.h.i.t"). These hits carry `obfuscated`.
 * Precisely: terms of 3 or more ASCII letters (in ASCII lexicons of spaced languages); each run
 * of one letter matches that many to 32 bytes of its class (a doubled letter stays doubled: "as"
 * is no "ass"); classes are the letter plus a4@ e3 i1!| l1| o0 s5$ t7, and '*' for a vowel that
 * is not the first letter; spaced forms put exactly one of " ._-" (the same one throughout)
 * between single letters ("Tom's hit" is no "shit"). A repeated-letter match whose bytes are all
 * ASCII letters counts only when some letter runs 3 or more times in a row, in any case
 * ("fuuuck", "shiiit"): real words repeat letters at most twice, and "assess", "Pratt", "Scott",
 * "bitt" are no disguises of "asses", "prat", "scot", "bit". A match with a digit, symbol or
 * separator (sh1t, a$$, f*ck, f u c k) counts when letters are left and are at least as many as
 * the digits: "45$" is a price and "a55" a processor, not "ass".
 *
 * Flags (4th field): `name`, for a term that is also a common given name, surname or proper noun
 * (dick, prat, Lesbos): a plain match written Capitalized (first byte an ASCII capital, no other
 * ASCII capital in the match: "Dick", "Moby-Dick") is no hit; "dick", "DICK", "dIck" and
 * disguises ("D1ck") still are. A sentence starting with the word is missed too; that is the
 * price.
 *
 * Both rules are part of what a match is: flt_tox_scan and flt_tox_scan_reference apply them the
 * same way, and a refused match is no candidate at all (a shorter term at the same place may hit
 * instead).
 *
 * Words: a word byte is [A-Za-z0-9_] or any byte >= 0x80, except that common Unicode spaces,
 * dashes, quotes and punctuation (U+00A0, U+2019, U+2014, ...; the table is in flt_tox_pat.c)
 * end a word, so "ass’s" hits while "anal" is no word of "analógico".
 *
 * Threading: a struct flt_tox is immutable after flt_tox_new() and may be shared by any number of
 * threads; each thread scans with its own struct flt_tox_scratch. */
#ifndef FLT_TOX_H
#define FLT_TOX_H

#include <stddef.h>
#include <stdint.h>

/* One lexicon to load. */
struct flt_lexicon_spec {
    const char *path;     /* a file, or NULL for the built-in English lexicon */
    const char *lang;     /* "en", "ja", ...; NULL: the file's name when that is a two- or
                             three-letter language code (LDNOOBW's "ja", "zh"), else "en" */
    double weight;        /* weight of lines without one; <= 0 means 1.0 */
    const char *category; /* category of lines without one; NULL means "general" */
};

struct flt_tox_spec {
    const struct flt_lexicon_spec *lexicons; /* borrowed during flt_tox_new() */
    size_t nlexicons;
    const char *const *allow_paths; /* allow-list files */
    size_t nallow;
    int builtin_allow; /* also load the built-in medical and anatomical allow list */
    int obfuscation;   /* compile the obfuscation variants */
};

struct flt_tox;

/* Loads and compiles the lexicons. TM_OK; TM_ERR_IO (a file cannot be read, logged with the
 * path); TM_ERR_FORMAT (a line that does not parse, or invalid UTF-8, logged as "path:line:
 * reason"); TM_ERR_USAGE (no term at all, or a pattern PCRE2 refuses, logged with the term and
 * path:line). On success *out is owned by the caller (flt_tox_free). */
int flt_tox_new(const struct flt_tox_spec *spec, struct flt_tox **out);

/* The content of one lexicon or allow list held in memory: `len` bytes at `data` (borrowed
 * during the call; need not be NUL-terminated), called `name` in messages and term origins
 * ("name:line"). */
struct flt_tox_text {
    const char *name;
    const char *data;
    size_t len;
};

/* flt_tox_new, with contents given in memory instead of files (tests, fuzzing, callers that keep
 * their lists elsewhere). `lex`, when not NULL, has spec->nlexicons entries: an entry with a
 * non-NULL `data` replaces the file of spec->lexicons[i] (whose path may then be NULL; the
 * language is still taken from spec->lexicons[i].lang, else from the path or, without one, the
 * entry's name, as for a file); an entry with NULL `data` reads the path or the built-in list as
 * flt_tox_new does. `allow` likewise has spec->nallow entries replacing spec->allow_paths[i]
 * (allow_paths may be NULL when every entry has data). Errors and ownership as flt_tox_new;
 * TM_ERR_TOOBIG also when a file passes 64 MiB or the terms pass 2^20. */
int flt_tox_new_mem(const struct flt_tox_spec *spec, const struct flt_tox_text *lex,
                    const struct flt_tox_text *allow, struct flt_tox **out);

void flt_tox_free(struct flt_tox *t);

/* A 64-bit hash of everything that decides matching (terms, weights, categories, flags,
 * languages, allow lists, obfuscation, the version of the matching rules): equal hashes, equal
 * hits. */
uint64_t flt_tox_hash(const struct flt_tox *t);
/* Number of terms loaded, over all lexicons. */
size_t flt_tox_nterms(const struct flt_tox *t);
/* The term `term` as written in its file, and where it came from ("path:line", or
 * "builtin:line"). Borrowed until flt_tox_free. */
const char *flt_tox_term(const struct flt_tox *t, uint32_t term);
const char *flt_tox_term_origin(const struct flt_tox *t, uint32_t term);
/* Categories, numbered from 0 in order of first appearance. */
unsigned flt_tox_ncategories(const struct flt_tox *t);
const char *flt_tox_category(const struct flt_tox *t, unsigned category);

struct flt_tox_hit {
    uint32_t start, end; /* byte offsets in the text given to flt_tox_scan, plus `base` */
    uint32_t term;       /* index for flt_tox_term() */
    uint16_t category;
    uint8_t obfuscated; /* found by an obfuscation variant, not the plain term */
    uint8_t reserved;
    float weight;
};

/* A growable array of hits, owned by the caller: flt_tox_hits_init / flt_tox_hits_release. At
 * most `max` hits are stored (0: 65536); more are counted in `dropped` (their weight still
 * counts in `dropped_weight`), never an error. */
struct flt_tox_hits {
    struct flt_tox_hit *v;
    size_t n, cap, max;
    size_t dropped;
    double dropped_weight;
};
void flt_tox_hits_init(struct flt_tox_hits *h, size_t max);
void flt_tox_hits_reset(struct flt_tox_hits *h);
void flt_tox_hits_release(struct flt_tox_hits *h);

/* Per-thread working memory (PCRE2 match data, JIT stack, buffers). flt_tox_scratch_new returns
 * NULL (logged) when PCRE2 cannot allocate; the caller frees with flt_tox_scratch_free, which is
 * NULL-safe. A scratch may be used with any struct flt_tox. */
struct flt_tox_scratch;
struct flt_tox_scratch *flt_tox_scratch_new(const struct flt_tox *t);
void flt_tox_scratch_free(struct flt_tox_scratch *s);

/* Appends the hits found in text[0..n) to *hits, with offsets plus `base` (so a caller scanning
 * the comments of a source file one region at a time gets offsets in the whole file). The
 * region's ends count as word boundaries. Within one call, hits are in increasing `start` and do
 * not overlap (at a position the longest term wins; ties go to the earlier term, then to the
 * plain form over a disguise); hits covered by an allow-list match are left out. `text` need not be
 * NUL-terminated; invalid UTF-8 is tolerated (never read past n). TM_OK; TM_ERR_TOOBIG (logged)
 * when n + base passes 4 GiB (hit offsets are 32-bit) or the non-prefiltered groups record more
 * than 2^22 candidate matches in one text; TM_ERR_INTERNAL when PCRE2 fails (logged). On an error,
 * hits already appended stay.
 *
 * How it runs: terms of ASCII lexicons of spaced languages (the built-in English one) are tried
 * only where a prefilter says one could match, and there with an anchored pattern; the
 * prefilter is a proven superset (filter/flt_tox_pat.c), so this finds exactly what
 * flt_tox_scan_reference finds. Terms with non-ASCII bytes (UTF-8, Unicode word boundaries) and
 * terms of ja/zh/th lexicons are scanned by one unanchored pattern over the whole text: correct,
 * but several times slower, so load such lexicons only when needed. An allow-list match cancels
 * a selected hit when it starts at most 100 bytes before the hit and covers it; a cancelled hit
 * still takes its place (an overlapping shorter candidate does not come back). */
int flt_tox_scan(const struct flt_tox *t, struct flt_tox_scratch *s, const char *text, size_t n,
                 size_t base, struct flt_tox_hits *hits);

/* The reference scanner: the same contract and the same patterns as flt_tox_scan, but every
 * pattern runs unanchored over the whole text, with no prefilter. Slow (a few MB/s); for tests
 * that prove the prefilter misses nothing, and for the benchmark. */
int flt_tox_scan_reference(const struct flt_tox *t, struct flt_tox_scratch *s, const char *text,
                           size_t n, size_t base, struct flt_tox_hits *hits);

#endif
