/* flt_tox_int.h: what the flt_tox*.c files share; not part of the public contract (flt_tox.h).
 *
 * The design in one paragraph. Every term compiles into PCRE2 alternatives; those patterns are
 * the matcher of record. Terms of ASCII, space-separated lexicons are "fast" terms: they go into
 * one anchored pattern per first character class (the "dispatch" patterns), and a C prefilter
 * picks the few positions where the anchored pattern is tried. The prefilter walks a trie of
 * token keys: a token is a class of bytes (letters with their look-alike digits and symbols,
 * whitespace, apostrophe, "anything else"), and consecutive equal tokens collapse, so every text
 * a pattern can match yields the same key as the term itself (flt_tox_pat.c argues this variant
 * by variant). Other terms (non-ASCII ones, lexicons of languages written without spaces, terms
 * that do not start with a letter) are scanned unanchored; the same code does a whole scan with
 * no prefilter (the reference scanner). At a position the longest match wins, found by a callout
 * at the end of each pattern that records every way the pattern can match and then fails, so
 * PCRE2 backtracks through all of them. The callout also applies the rules no regex states (a
 * letters-only disguise needs a tripled letter; `name` terms spare Capitalized matches), so both
 * scanners, which share it, refuse exactly the same matches. */
#ifndef FLT_TOX_INT_H
#define FLT_TOX_INT_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stddef.h>
#include <stdint.h>

#include "flt_tox.h"
#include "tm_buf.h"

/* ---- Limits (STYLE.md rules 6 and 10) ---------------------------------------------------- */

/* A lexicon or allow-list file; the largest public lists are a few KiB. */
#define FLT_TOX_MAX_FILE (64u << 20)
/* One term or phrase; the longest LDNOOBW phrase is 27 bytes. */
#define FLT_TOX_MAX_TERM_BYTES 256
/* Terms over all lexicons: marks are term * FLT_TOX_NVARIANTS + variant in 32 bits, and every
 * term costs pattern space; a million is far beyond any real list. */
#define FLT_TOX_MAX_TERMS (1u << 20)
/* Category names and their number (hits store the index in 16 bits). */
#define FLT_TOX_MAX_CATEGORY_BYTES 32
#define FLT_TOX_MAX_CATEGORIES     1024
/* A weight above this is a typo, not a policy. */
#define FLT_TOX_MAX_WEIGHT 1000.0
/* Repeated letters in an obfuscation: more than this many of one letter is decoration, and the
 * bound keeps every attempt of a pattern linear in this constant. */
#define FLT_TOX_MAX_REPEAT 32
/* An obfuscated match made of ASCII letters only counts when some letter runs this many times
 * ("fuuuck"): at most doubled letters are how real words are spelled ("assess" is no "asses",
 * "Pratt" no "prat"), found false positives on WikiText-2. */
#define FLT_TOX_OBF_LETTER_RUN 3
/* Obfuscation variants only for terms of at least this many letters: shorter ones ("ho", "tw")
 * would match too much once spaced or leet forms are allowed. */
#define FLT_TOX_OBF_MIN_LETTERS 3
/* Tokens in a prefilter key: deep enough that common phrase openings are told apart ("you are an
 * idiot" -> y o u _ a r e _ a n _ I, against "you are a ..."). */
#define FLT_TOX_KEY_DEPTH 12
/* A run of one token longer than this makes the walker give up and report a candidate (sound:
 * PCRE2 decides); it bounds the walk from each position. */
#define FLT_TOX_RUN_BUDGET 64
/* Prefilter trie nodes (indices are 16-bit). Past it, nodes are marked accepting (sound). */
#define FLT_TOX_MAX_TRIE_NODES 65535
/* Allow-list matches that cancel a hit start at most this many bytes before it (and never more
 * than the longest allow phrase). */
#define FLT_TOX_ALLOW_WINDOW 100
/* Callout records kept per scan (unanchored groups and the reference scanner): 16 bytes each. */
#define FLT_TOX_MAX_CANDIDATES (1u << 22)

/* Variants of a term; a mark is term * FLT_TOX_NVARIANTS + variant, so at equal length the
 * plain form of a term beats its disguises. */
enum flt_variant { FLT_V_PLAIN = 0, FLT_V_OBF = 1, FLT_V_SPACED = 2, FLT_TOX_NVARIANTS = 4 };

/* How a term is scanned. */
enum flt_group {
    FLT_G_FAST = 0, /* ASCII, word-bounded, byte mode: prefilter + anchored dispatch pattern */
    FLT_G_BYTE,     /* ASCII, word-bounded, byte mode, but its first byte is no letter class */
    FLT_G_UTF,      /* has non-ASCII bytes: UTF + UCP, Unicode \w boundaries, unanchored */
    FLT_G_NOSPACE,  /* language written without spaces: UTF, no boundaries, unanchored */
    FLT_G_COUNT
};

/* ---- Tokens ---------------------------------------------------------------------------------
 * 1..FLT_TOK_NCLASS are letter classes: each letter a-z its own class except that i and l share
 * one (the digit 1 and '|' stand for both), the digits 2 6 8 9 one class each, and each leet
 * symbol the class of its letter (flt_tox_pat.c, flt_leet). */
#define FLT_TOK_END    0  /* any other byte: punctuation, control, every byte >= 0x80 */
#define FLT_TOK_NCLASS 29 /* letter classes are 1..29 */
#define FLT_TOK_WS     30 /* ASCII whitespace, what \s matches in byte mode */
#define FLT_TOK_APOS   31 /* ' */
#define FLT_TOK_EDGES  32 /* trie edges per node: END, classes, WS, APOS */
#define FLT_TOK_WILD   32 /* '*', a vowel in disguise: the walker reports a candidate */

/* Byte flags of struct flt_tables.flags. */
enum {
    FLT_B_WORD = 1,   /* [A-Za-z0-9_] or >= 0x80: a word byte for the boundaries */
    FLT_B_SEQEND = 2, /* last byte of some boundary sequence (flt_boundary_cps) */
    FLT_B_PLAIN = 4,  /* starts a plain-trie walk (the plain root has an edge for its token) */
    FLT_B_SPACED = 8, /* starts a spaced-trie walk */
    FLT_B_SEP = 16,   /* separator of spaced letters ("f.u.c.k") */
    FLT_B_AWORD = 32, /* [A-Za-z0-9_]: a byte after which no match can end */
};

#define FLT_MAX_BSEQ 64
struct flt_tables {
    uint8_t tok[256];
    uint8_t flags[256];
    uint8_t bseq[FLT_MAX_BSEQ][4];   /* UTF-8 of the boundary code points */
    uint8_t bseqlen[FLT_MAX_BSEQ];   /* 2 or 3: every entry is U+0080..U+FFFF */
    uint32_t bseqcode[FLT_MAX_BSEQ]; /* the bytes packed big-endian */
    unsigned nbseq;
};

/* Fills the byte tables and the boundary sequences (the FLT_B_PLAIN/SPACED bits stay 0). */
void flt_tables_init(struct flt_tables *tb);
/* Non-zero when a boundary sequence ends exactly at text[end-1]. */
int flt_bseq_ends_at(const struct flt_tables *tb, const unsigned char *text, size_t end);

/* ---- The prefilter trie --------------------------------------------------------------------- */
enum { FLT_N_ACCEPT = 1, FLT_N_ENDOK = 2 };
struct flt_trie {
    uint16_t (*next)[FLT_TOK_EDGES]; /* next[node][token]; 0: no edge */
    uint8_t *nflags;                 /* FLT_N_ACCEPT: candidate as soon as reached;
                                        FLT_N_ENDOK: candidate when a non-word byte follows */
    uint8_t *minrun;                 /* fewest bytes any key through this node has in the run
                                        of the token that led here ("ass": 2 for the s run) */
    uint16_t *endneed;               /* FLT_N_ENDOK nodes: bit d set when every term ending
                                        here needs 2+ bytes in the run of key token d */
    uint32_t n, cap;
};
#define FLT_TRIE_PLAIN  1 /* root of the plain keys */
#define FLT_TRIE_SPACED 2 /* root of the spaced-letter keys */
void flt_trie_init(struct flt_trie *tr);
void flt_trie_release(struct flt_trie *tr);
/* Adds the plain key of a fast term (stem bytes; prefix: the term ended in '*'). */
void flt_trie_add_plain(struct flt_trie *tr, const struct flt_tables *tb, const char *stem,
                        size_t len, int prefix);
/* Adds the spaced key of an obfuscation-eligible term (letters only). */
void flt_trie_add_spaced(struct flt_trie *tr, const struct flt_tables *tb, const char *stem,
                         size_t len);

/* ---- Terms ---------------------------------------------------------------------------------- */
/* Flags of a term (the 4th field of a lexicon line; names in flt_tox_lex.c). */
enum {
    FLT_F_NAME = 1, /* also a common name: a plain match written Capitalized is no hit */
};
struct flt_term {
    char *text;   /* as written, '*' included */
    char *origin; /* "name:line" */
    size_t stem_len;
    float weight;
    uint16_t category;
    uint8_t group;  /* enum flt_group */
    uint8_t prefix; /* ended in '*' */
    uint8_t obf;    /* obfuscation variants compiled */
    uint8_t nospace;
    uint8_t allowable; /* may match inside some allow phrase: worth an allow check */
    uint8_t flags;     /* FLT_F_* */
};

/* What the parser collects from all lexicons and allow lists. */
struct flt_lexset {
    struct flt_term *terms;
    size_t nterms, cap;
    char **cats;
    unsigned ncats;
    char **allow; /* allow phrases as written */
    size_t nallow, allowcap;
    int obfuscation;
};

/* Parses one lexicon (data[0..len), named `name` in messages and origins) and appends its
 * terms (fields and flags as in flt_tox.h). `lang` decides the group; weight/category are the
 * defaults. TM_OK, TM_ERR_FORMAT
 * ("name:line: reason" logged), TM_ERR_TOOBIG (too many terms or categories). */
int flt_lex_parse(struct flt_lexset *ls, const struct flt_tables *tb, const char *name,
                  const char *data, size_t len, const char *lang, double weight,
                  const char *category);
/* Parses an allow list and appends its phrases. TM_OK or TM_ERR_FORMAT. */
int flt_lex_parse_allow(struct flt_lexset *ls, const char *name, const char *data, size_t len);
void flt_lex_release(struct flt_lexset *ls);
/* Non-zero when s[0..n) is valid UTF-8 (no overlongs, surrogates or code points > U+10FFFF). */
int flt_utf8_valid(const unsigned char *s, size_t n);

/* ---- Pattern text ----------------------------------------------------------------------------*/
/* Appends the regex of one variant of a term (no boundaries, no mark). Byte mode for the
 * FLT_G_FAST / FLT_G_BYTE groups, UTF for the others. TM_OK or TM_ERR_TOOBIG (buffer cap). */
int flt_pat_variant(struct tm_buf *out, const struct flt_term *t, enum flt_variant v,
                    const struct flt_tables *tb);
/* Appends an allow phrase for byte mode (ASCII letters caseless, other bytes as written), without
 * the boundaries, which go around the whole alternation (flt_pat_lb, flt_pat_rb). */
int flt_pat_allow(struct tm_buf *out, const char *phrase, const struct flt_tables *tb);
/* Appends the byte-mode left and right word boundaries, generated from the boundary table. */
int flt_pat_lb(struct tm_buf *out, const struct flt_tables *tb);
int flt_pat_rb(struct tm_buf *out, const struct flt_tables *tb);
/* Non-zero when the term (stem) is eligible for obfuscation variants: one word of ASCII letters,
 * at least FLT_TOX_OBF_MIN_LETTERS of them. */
int flt_pat_obf_eligible(const char *stem, size_t len);

#endif
