/* flt_tox.c: building a struct flt_tox (load, compile, hash) and scanning text with it. The
 * design is described in flt_tox_int.h; why the prefilter never misses a match, in
 * flt_tox_pat.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "flt_tox_int.h"
#include "tm_err.h"
#include "tm_fs.h"
#include "tm_log.h"
#include "tm_mem.h"

/* Built-in lexicon and allow list (lexicon/en.txt, lexicon/allow_en.txt, embedded by
 * embed.cmake). */
extern const unsigned char flt_builtin_en[];
extern const unsigned long flt_builtin_en_size;
extern const unsigned char flt_builtin_allow_en[];
extern const unsigned long flt_builtin_allow_en_size;

/* Bumped whenever the generated patterns change meaning, so flt_tox_hash changes with them. */
#define FLT_TOX_PATTERN_VERSION "flt_tox patterns v2 (letters-only disguises, name flag)"
/* A pattern's text; a lexicon at the term cap stays far below it. */
#define FLT_TOX_MAX_PATTERN (256u << 20)
/* The JIT stack: callouts make PCRE2 backtrack through every alternative, which needs little
 * stack, but a long subject under the reference scan should not run out. */
#define FLT_TOX_JIT_STACK_START (32u << 10)
#define FLT_TOX_JIT_STACK_MAX   (1u << 20)

#define FLT_OPT_BYTE (PCRE2_CASELESS)
#define FLT_OPT_UTF  (PCRE2_UTF | PCRE2_UCP | PCRE2_CASELESS | PCRE2_MATCH_INVALID_UTF)

struct flt_tox {
    struct flt_tables tb;
    struct flt_trie trie;
    struct flt_lexset ls;
    pcre2_code *disp[FLT_TOK_NCLASS + 1];     /* fast terms by first token, anchored */
    pcre2_code *disp_ref[FLT_TOK_NCLASS + 1]; /* the same patterns unanchored (reference) */
    pcre2_code *group[FLT_G_COUNT];           /* unanchored groups; [FLT_G_FAST] unused */
    uint32_t *info; /* per trie node: nflags | minrun << 8 | endneed << 16, one load per step */
    pcre2_code *allow;
    size_t allow_window; /* FLT_TOX_ALLOW_WINDOW, or the longest allow phrase when shorter */
    uint64_t hash;
};

/* A way a pattern matches: bytes [start, end) of the region, mark id = term * NVARIANTS +
 * variant. */
struct flt_cand {
    uint32_t start, end, id;
};

struct flt_tox_scratch {
    pcre2_match_data *md;
    pcre2_match_context *mc;
    pcre2_jit_stack *stack;
    struct flt_cand *cand;
    size_t ncand, capcand;
};

/* ---- Loading and compiling ------------------------------------------------------------------ */

/* A lexicon's language from its file name: the name up to its first '.', when that is two or
 * three lower-case letters (LDNOOBW names its files "en", "ja", ...); else "en". */
static void lang_from_path(const char *path, char out[4])
{
    strcpy(out, "en");
    if (!path)
        return;
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    size_t n = strcspn(b, ".");
    if (n < 2 || n > 3)
        return;
    for (size_t i = 0; i < n; i++)
        if (b[i] < 'a' || b[i] > 'z')
            return;
    memcpy(out, b, n);
    out[n] = '\0';
}

/* The content of one source: given in memory, read from `path`, or built in. *owned is the
 * buffer to free. */
static int load_source(const struct flt_tox_text *mem, const char *path, const unsigned char *dflt,
                       unsigned long dflt_size, const char *dflt_name, const char **name,
                       const char **data, size_t *len, char **owned)
{
    *owned = NULL;
    if (mem && mem->data) {
        *name = mem->name ? mem->name : (path ? path : "memory");
        *data = mem->data;
        *len = mem->len;
        return TM_OK;
    }
    if (path) {
        *name = path;
        int rc = tm_read_file(path, FLT_TOX_MAX_FILE, owned, len);
        if (rc != TM_OK) {
            tm_log_error("%s: cannot read the lexicon (%s)", path, tm_strerror(rc));
            return rc == TM_ERR_TOOBIG ? TM_ERR_TOOBIG : TM_ERR_IO;
        }
        *data = *owned;
        return TM_OK;
    }
    *name = dflt_name;
    *data = (const char *)dflt;
    *len = dflt_size;
    return TM_OK;
}

static int add_mark(struct tm_buf *b, size_t term, enum flt_variant v)
{
    return tm_buf_printf(b, "(*MARK:%zu)", term * FLT_TOX_NVARIANTS + (size_t)v);
}

/* Compiles `pat` with `opts`, JIT included; TM_ERR_USAGE when PCRE2 refuses it (logged with
 * `what`), TM_ERR_INTERNAL when the JIT fails. */
static int compile(const struct tm_buf *pat, uint32_t opts, const char *what, pcre2_code **out)
{
    int err;
    PCRE2_SIZE off;
    *out = pcre2_compile((PCRE2_SPTR)pat->data, pat->len, opts, &err, &off, NULL);
    if (!*out) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(err, msg, sizeof(msg));
        tm_log_error("%s: PCRE2 refuses the pattern at offset %zu: %s", what, (size_t)off,
                     (const char *)msg);
        return TM_ERR_USAGE;
    }
    err = pcre2_jit_compile(*out, PCRE2_JIT_COMPLETE);
    if (err != 0) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(err, msg, sizeof(msg));
        tm_log_error("%s: PCRE2 JIT compilation failed: %s", what, (const char *)msg);
        pcre2_code_free(*out);
        *out = NULL;
        return TM_ERR_INTERNAL;
    }
    return TM_OK;
}

/* Appends the alternatives of one term (all its variants, each with its mark). */
static int put_term(struct tm_buf *b, const struct flt_tox *t, size_t k, int *first)
{
    static const enum flt_variant all[] = {FLT_V_PLAIN, FLT_V_OBF, FLT_V_SPACED};
    const struct flt_term *term = &t->ls.terms[k];
    int rc = TM_OK;
    for (size_t v = 0; v < sizeof(all) / sizeof(*all) && rc == TM_OK; v++) {
        if (all[v] != FLT_V_PLAIN && !term->obf)
            continue;
        if (!*first)
            rc = tm_buf_putc(b, '|');
        *first = 0;
        if (rc == TM_OK)
            rc = flt_pat_variant(b, term, all[v], &t->tb);
        if (rc == TM_OK)
            rc = add_mark(b, k, all[v]);
    }
    return rc;
}

/* Builds the pattern of the terms of `group` (and, for FLT_G_FAST, first token `disp`). */
static int build_pattern(const struct flt_tox *t, int group, unsigned disp, struct tm_buf *b,
                         size_t *nterms)
{
    int rc = TM_OK, first = 1;
    *nterms = 0;
    if (group == FLT_G_FAST || group == FLT_G_BYTE)
        rc = flt_pat_lb(b, &t->tb);
    else if (group == FLT_G_UTF)
        rc = tm_buf_puts(b, "(?<!\\w)");
    if (rc == TM_OK)
        rc = tm_buf_puts(b, "(?:");
    for (size_t k = 0; k < t->ls.nterms && rc == TM_OK; k++) {
        const struct flt_term *term = &t->ls.terms[k];
        if (term->group != group ||
            (group == FLT_G_FAST && t->tb.tok[(unsigned char)term->text[0]] != disp))
            continue;
        rc = put_term(b, t, k, &first);
        ++*nterms;
    }
    if (rc == TM_OK)
        rc = tm_buf_puts(b, ")");
    if (rc == TM_OK && (group == FLT_G_FAST || group == FLT_G_BYTE))
        rc = flt_pat_rb(b, &t->tb);
    else if (rc == TM_OK && group == FLT_G_UTF)
        rc = tm_buf_puts(b, "(?!\\w)");
    if (rc == TM_OK)
        rc = tm_buf_puts(b, "(?C1)");
    return rc;
}

/* After a pattern failed to compile: finds and logs the term PCRE2 refuses on its own. */
static void blame_term(const struct flt_tox *t, int group, unsigned disp)
{
    for (size_t k = 0; k < t->ls.nterms; k++) {
        const struct flt_term *term = &t->ls.terms[k];
        if (term->group != group ||
            (group == FLT_G_FAST && t->tb.tok[(unsigned char)term->text[0]] != disp))
            continue;
        struct tm_buf b;
        tm_buf_init(&b, FLT_TOX_MAX_PATTERN);
        int first = 1;
        int rc = put_term(&b, t, k, &first);
        pcre2_code *code = NULL;
        char what[600];
        snprintf(what, sizeof(what), "%s: term '%s'", term->origin, term->text);
        if (rc == TM_OK)
            rc =
                compile(&b, group == FLT_G_FAST || group == FLT_G_BYTE ? FLT_OPT_BYTE : FLT_OPT_UTF,
                        what, &code);
        pcre2_code_free(code);
        tm_buf_release(&b);
        if (rc != TM_OK)
            return;
    }
}

static int compile_group(struct flt_tox *t, XXH3_state_t *h, int group, unsigned disp)
{
    struct tm_buf b;
    tm_buf_init(&b, FLT_TOX_MAX_PATTERN);
    size_t nterms;
    int rc = build_pattern(t, group, disp, &b, &nterms);
    if (rc != TM_OK) {
        tm_log_error("lexicon patterns exceed %u bytes", FLT_TOX_MAX_PATTERN);
        tm_buf_release(&b);
        return TM_ERR_TOOBIG;
    }
    if (nterms == 0) {
        tm_buf_release(&b);
        return TM_OK;
    }
    XXH3_64bits_update(h, &group, sizeof(group));
    XXH3_64bits_update(h, &disp, sizeof(disp));
    XXH3_64bits_update(h, b.data, b.len + 1);
    char what[64];
    snprintf(what, sizeof(what), "lexicon pattern (group %d, class %u)", group, disp);
    if (group == FLT_G_FAST) {
        rc = compile(&b, FLT_OPT_BYTE | PCRE2_ANCHORED, what, &t->disp[disp]);
        if (rc == TM_OK)
            rc = compile(&b, FLT_OPT_BYTE, what, &t->disp_ref[disp]);
    } else {
        rc = compile(&b, group == FLT_G_BYTE ? FLT_OPT_BYTE : FLT_OPT_UTF, what, &t->group[group]);
    }
    if (rc == TM_ERR_USAGE)
        blame_term(t, group, disp);
    tm_buf_release(&b);
    return rc;
}

static int compile_allow(struct flt_tox *t, XXH3_state_t *h)
{
    if (t->ls.nallow == 0)
        return TM_OK;
    struct tm_buf b;
    tm_buf_init(&b, FLT_TOX_MAX_PATTERN);
    int rc = flt_pat_lb(&b, &t->tb);
    if (rc == TM_OK)
        rc = tm_buf_puts(&b, "(?:");
    for (size_t k = 0; k < t->ls.nallow && rc == TM_OK; k++) {
        if (k)
            rc = tm_buf_putc(&b, '|');
        if (rc == TM_OK)
            rc = flt_pat_allow(&b, t->ls.allow[k], &t->tb);
    }
    if (rc == TM_OK)
        rc = tm_buf_puts(&b, ")");
    if (rc == TM_OK)
        rc = flt_pat_rb(&b, &t->tb);
    if (rc == TM_OK)
        rc = tm_buf_puts(&b, "(?C1)");
    if (rc != TM_OK) {
        tm_log_error("allow-list pattern exceeds %u bytes", FLT_TOX_MAX_PATTERN);
        tm_buf_release(&b);
        return TM_ERR_TOOBIG;
    }
    XXH3_64bits_update(h, b.data, b.len + 1);
    rc = compile(&b, FLT_OPT_BYTE | PCRE2_USE_OFFSET_LIMIT, "allow-list pattern", &t->allow);
    if (rc == TM_ERR_USAGE) {
        for (size_t k = 0; k < t->ls.nallow; k++) {
            tm_buf_reset(&b);
            pcre2_code *code = NULL;
            char what[600];
            snprintf(what, sizeof(what), "allow phrase '%s'", t->ls.allow[k]);
            if (flt_pat_allow(&b, t->ls.allow[k], &t->tb) == TM_OK &&
                compile(&b, FLT_OPT_BYTE, what, &code) != TM_OK)
                break;
            pcre2_code_free(code);
        }
    }
    tm_buf_release(&b);
    return rc;
}

static int mark_allowable(struct flt_tox *t);

static int build(struct flt_tox *t)
{
    if (t->ls.nterms == 0) {
        tm_log_error("the lexicons hold no term");
        return TM_ERR_USAGE;
    }
    flt_trie_init(&t->trie);
    for (size_t k = 0; k < t->ls.nterms; k++) {
        const struct flt_term *term = &t->ls.terms[k];
        if (term->group != FLT_G_FAST)
            continue;
        flt_trie_add_plain(&t->trie, &t->tb, term->text, term->stem_len, term->prefix);
        if (term->obf)
            flt_trie_add_spaced(&t->trie, &t->tb, term->text, term->stem_len);
    }
    t->info = tm_xcalloc(t->trie.n, sizeof(*t->info));
    for (uint32_t k = 0; k < t->trie.n; k++)
        t->info[k] = (uint32_t)t->trie.nflags[k] | (uint32_t)t->trie.minrun[k] << 8 |
                     (uint32_t)t->trie.endneed[k] << 16;
    for (int b = 0; b < 256; b++) {
        unsigned tk = t->tb.tok[b];
        if (tk < 1 || tk > FLT_TOK_NCLASS)
            continue;
        if (t->trie.next[FLT_TRIE_PLAIN][tk])
            t->tb.flags[b] |= FLT_B_PLAIN;
        if (t->trie.next[FLT_TRIE_SPACED][tk])
            t->tb.flags[b] |= FLT_B_SPACED;
    }

    XXH3_state_t *h = XXH3_createState();
    if (!h)
        return TM_ERR_NOMEM;
    XXH3_64bits_reset(h);
    XXH3_64bits_update(h, FLT_TOX_PATTERN_VERSION, sizeof(FLT_TOX_PATTERN_VERSION));
    int rc = TM_OK;
    for (unsigned d = 1; d <= FLT_TOK_NCLASS && rc == TM_OK; d++)
        rc = compile_group(t, h, FLT_G_FAST, d);
    for (int g = FLT_G_BYTE; g < FLT_G_COUNT && rc == TM_OK; g++)
        rc = compile_group(t, h, g, 0);
    if (rc == TM_OK)
        rc = compile_allow(t, h);
    if (rc == TM_OK)
        rc = mark_allowable(t);
    for (size_t k = 0; k < t->ls.nterms; k++) {
        const struct flt_term *term = &t->ls.terms[k];
        const char *cat = t->ls.cats[term->category];
        XXH3_64bits_update(h, &term->weight, sizeof(term->weight));
        XXH3_64bits_update(h, &term->flags, sizeof(term->flags));
        XXH3_64bits_update(h, cat, strlen(cat) + 1);
    }
    t->hash = XXH3_64bits_digest(h);
    XXH3_freeState(h);
    return rc;
}

int flt_tox_new_mem(const struct flt_tox_spec *spec, const struct flt_tox_text *lex,
                    const struct flt_tox_text *allow, struct flt_tox **out)
{
    *out = NULL;
    struct flt_tox *t = tm_xcalloc(1, sizeof(*t));
    flt_tables_init(&t->tb);
    t->ls.obfuscation = spec->obfuscation != 0;
    int rc = TM_OK;
    for (size_t i = 0; i < spec->nlexicons && rc == TM_OK; i++) {
        const struct flt_lexicon_spec *ls = &spec->lexicons[i];
        const char *name, *data;
        size_t len;
        char *owned;
        rc = load_source(lex ? &lex[i] : NULL, ls->path, flt_builtin_en, flt_builtin_en_size,
                         "builtin", &name, &data, &len, &owned);
        if (rc != TM_OK)
            break;
        char lang[4];
        lang_from_path(ls->path ? ls->path : (lex && lex[i].data ? lex[i].name : NULL), lang);
        rc = flt_lex_parse(&t->ls, &t->tb, name, data, len, ls->lang ? ls->lang : lang, ls->weight,
                           ls->category);
        free(owned);
    }
    for (size_t i = 0; i < spec->nallow && rc == TM_OK; i++) {
        const char *name, *data;
        size_t len;
        char *owned;
        const char *path = spec->allow_paths ? spec->allow_paths[i] : NULL;
        rc = load_source(allow ? &allow[i] : NULL, path, flt_builtin_allow_en,
                         flt_builtin_allow_en_size, "builtin-allow", &name, &data, &len, &owned);
        if (rc == TM_OK)
            rc = flt_lex_parse_allow(&t->ls, name, data, len);
        free(owned);
    }
    if (rc == TM_OK && spec->builtin_allow)
        rc = flt_lex_parse_allow(&t->ls, "builtin-allow", (const char *)flt_builtin_allow_en,
                                 flt_builtin_allow_en_size);
    if (rc == TM_OK)
        rc = build(t);
    if (rc != TM_OK) {
        flt_tox_free(t);
        return rc;
    }
    *out = t;
    return TM_OK;
}

int flt_tox_new(const struct flt_tox_spec *spec, struct flt_tox **out)
{
    return flt_tox_new_mem(spec, NULL, NULL, out);
}

void flt_tox_free(struct flt_tox *t)
{
    if (!t)
        return;
    for (unsigned d = 0; d <= FLT_TOK_NCLASS; d++) {
        pcre2_code_free(t->disp[d]);
        pcre2_code_free(t->disp_ref[d]);
    }
    for (int g = 0; g < FLT_G_COUNT; g++)
        pcre2_code_free(t->group[g]);
    pcre2_code_free(t->allow);
    if (t->trie.next)
        flt_trie_release(&t->trie);
    free(t->info);
    flt_lex_release(&t->ls);
    free(t);
}

uint64_t flt_tox_hash(const struct flt_tox *t)
{
    return t->hash;
}

size_t flt_tox_nterms(const struct flt_tox *t)
{
    return t->ls.nterms;
}

const char *flt_tox_term(const struct flt_tox *t, uint32_t term)
{
    return term < t->ls.nterms ? t->ls.terms[term].text : NULL;
}

const char *flt_tox_term_origin(const struct flt_tox *t, uint32_t term)
{
    return term < t->ls.nterms ? t->ls.terms[term].origin : NULL;
}

unsigned flt_tox_ncategories(const struct flt_tox *t)
{
    return t->ls.ncats;
}

const char *flt_tox_category(const struct flt_tox *t, unsigned category)
{
    return category < t->ls.ncats ? t->ls.cats[category] : NULL;
}

/* ---- Hits and scratch ----------------------------------------------------------------------- */

/* The default cap on stored hits per array. */
#define FLT_TOX_DEFAULT_MAX_HITS 65536

void flt_tox_hits_init(struct flt_tox_hits *h, size_t max)
{
    memset(h, 0, sizeof(*h));
    h->max = max ? max : FLT_TOX_DEFAULT_MAX_HITS;
}

void flt_tox_hits_reset(struct flt_tox_hits *h)
{
    h->n = 0;
    h->dropped = 0;
    h->dropped_weight = 0;
}

void flt_tox_hits_release(struct flt_tox_hits *h)
{
    free(h->v);
    h->v = NULL;
    h->n = h->cap = 0;
    h->dropped = 0;
    h->dropped_weight = 0;
}

struct flt_tox_scratch *flt_tox_scratch_new(const struct flt_tox *t)
{
    (void)t;
    struct flt_tox_scratch *s = tm_xcalloc(1, sizeof(*s));
    s->md = pcre2_match_data_create(1, NULL);
    s->mc = pcre2_match_context_create(NULL);
    s->stack = pcre2_jit_stack_create(FLT_TOX_JIT_STACK_START, FLT_TOX_JIT_STACK_MAX, NULL);
    if (!s->md || !s->mc || !s->stack) {
        tm_log_error("flt_tox: PCRE2 could not allocate match data");
        flt_tox_scratch_free(s);
        return NULL;
    }
    pcre2_jit_stack_assign(s->mc, NULL, s->stack);
    return s;
}

void flt_tox_scratch_free(struct flt_tox_scratch *s)
{
    if (!s)
        return;
    pcre2_match_data_free(s->md);
    pcre2_match_context_free(s->mc);
    pcre2_jit_stack_free(s->stack);
    free(s->cand);
    free(s);
}

/* ---- Matching ------------------------------------------------------------------------------- */

enum cb_mode { CB_BEST, CB_ALL, CB_ALLOW };

struct cb_state {
    enum cb_mode mode;
    const struct flt_tox *t;
    struct flt_tox_scratch *s;
    struct flt_cand best;
    int have;
    int raw;                     /* CB_ALL: record matches that accepted() refuses too */
    uint32_t hit_start, hit_end; /* CB_ALLOW: the hit an allow match must cover */
};

/* a comes before b: earlier start, then longer, then lower id (earlier term, plainer variant). */
static int cand_before(const struct flt_cand *a, const struct flt_cand *b)
{
    if (a->start != b->start)
        return a->start < b->start;
    if (a->end != b->end)
        return a->end > b->end;
    return a->id < b->id;
}

static int cand_cmp(const void *va, const void *vb)
{
    const struct flt_cand *a = va, *b = vb;
    return cand_before(a, b) ? -1 : cand_before(b, a) ? 1 : 0;
}

/* The rules of the matcher that no regex states (flt_tox.h, "Obfuscations" and "Flags"): 0 when
 * match k of `subj` is no hit. Applied in the callout, which the prefiltered and the reference
 * scans share, so both apply them identically; refusing only removes matches, so the prefilter
 * stays a superset. */
static int accepted(const struct flt_tox *t, const unsigned char *subj, const struct flt_cand *k)
{
    const struct flt_term *term = &t->ls.terms[k->id / FLT_TOX_NVARIANTS];
    unsigned v = k->id % FLT_TOX_NVARIANTS;
    const unsigned char *p = subj + k->start, *e = subj + k->end;
    if (v == FLT_V_OBF) {
        /* Letters only: a hit when some letter runs FLT_TOX_OBF_LETTER_RUN times (any case).
         * With digits or symbols: a hit when letters are left and outnumber the digits ("a$$",
         * "sh1t", "5h1t"): "45$" is a price and "a55" a processor, not "ass". */
        unsigned run = 0, prev = 0, letters = 0, digits = 0;
        int long_run = 0, other = 0;
        for (; p < e; p++) {
            unsigned c = *p | 0x20u; /* ASCII letters to lower case; no other byte lands in a-z */
            if (c < 'a' || c > 'z') {
                other = 1;
                digits += *p >= '0' && *p <= '9';
                continue;
            }
            letters++;
            run = c == prev ? run + 1 : 1;
            prev = c;
            long_run |= run >= FLT_TOX_OBF_LETTER_RUN;
        }
        return other ? letters > 0 && letters >= digits : long_run;
    }
    if (v == FLT_V_PLAIN && (term->flags & FLT_F_NAME) && p < e && *p >= 'A' && *p <= 'Z') {
        /* Capitalized ("Dick", not "DICK"): a name. */
        for (p++; p < e; p++)
            if (*p >= 'A' && *p <= 'Z')
                return 1;
        return 0;
    }
    return 1;
}

/* Called by PCRE2 at the end of every pattern, i.e. once per way the pattern matches; it records
 * the match and fails, so PCRE2 goes on to the next way. */
static int on_callout(pcre2_callout_block *cb, void *data)
{
    struct cb_state *c = data;
    if (c->mode == CB_ALLOW)
        return cb->start_match <= c->hit_start && cb->current_position >= c->hit_end
                   ? PCRE2_ERROR_CALLOUT
                   : 1;
    struct flt_cand k = {(uint32_t)cb->start_match, (uint32_t)cb->current_position, 0};
    for (const unsigned char *m = cb->mark; m && *m; m++)
        k.id = k.id * 10 + (uint32_t)(*m - '0');
    if (!c->raw && !accepted(c->t, cb->subject, &k))
        return 1;
    if (c->mode == CB_BEST) {
        if (!c->have || cand_before(&k, &c->best))
            c->best = k;
        c->have = 1;
        return 1;
    }
    struct flt_tox_scratch *s = c->s;
    if (s->ncand == s->capcand) {
        if (s->capcand >= FLT_TOX_MAX_CANDIDATES)
            return PCRE2_ERROR_CALLOUT;
        s->capcand = s->capcand ? s->capcand * 2 : 256;
        s->cand = tm_xreallocarray(s->cand, s->capcand, sizeof(*s->cand));
    }
    s->cand[s->ncand++] = k;
    return 1;
}

/* Runs `code` from `start` with the callout; PCRE2_ERROR_NOMATCH is the normal outcome. */
static int run(pcre2_code *code, struct flt_tox_scratch *s, struct cb_state *c, const char *text,
               size_t n, size_t start)
{
    pcre2_set_callout(s->mc, on_callout, c);
    int rc = pcre2_jit_match(code, (PCRE2_SPTR)text, n, start, 0, s->md, s->mc);
    if (rc == PCRE2_ERROR_NOMATCH)
        return TM_OK;
    if (rc == PCRE2_ERROR_CALLOUT && c->mode == CB_ALL) {
        tm_log_error("flt_tox: more than %u candidate matches in one text", FLT_TOX_MAX_CANDIDATES);
        return TM_ERR_TOOBIG;
    }
    if (rc == PCRE2_ERROR_CALLOUT && c->mode == CB_ALLOW)
        return 1;
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(rc, msg, sizeof(msg));
    tm_log_error("flt_tox: PCRE2 match failed at offset %zu: %s", start, (const char *)msg);
    return TM_ERR_INTERNAL;
}

/* Hit selection: candidates arrive in cand_before order; a candidate overlapping the previous
 * selected one is dropped, then allow-list matches cancel what they cover. */
struct selector {
    const struct flt_tox *t;
    struct flt_tox_scratch *s;
    const char *text;
    size_t n, base;
    struct flt_tox_hits *hits;
    uint32_t last_end;
};

static int allowed(struct selector *sel, const struct flt_cand *c)
{
    if (!sel->t->allow || !sel->t->ls.terms[c->id / FLT_TOX_NVARIANTS].allowable)
        return 0;
    size_t w = sel->t->allow_window;
    size_t ws = c->start > w ? c->start - w : 0;
    struct cb_state cs = {
        .mode = CB_ALLOW, .t = sel->t, .s = sel->s, .hit_start = c->start, .hit_end = c->end};
    pcre2_set_offset_limit(sel->s->mc, c->start);
    int rc = run(sel->t->allow, sel->s, &cs, sel->text, sel->n, ws);
    pcre2_set_offset_limit(sel->s->mc, PCRE2_UNSET);
    return rc;
}

static int collect_unanchored(const struct flt_tox *t, struct flt_tox_scratch *s, const char *text,
                              size_t n, int reference, int raw);

/* Marks the terms that match anywhere inside some allow phrase as written, before accepted()
 * and hit selection (which depend on case and on overlapping terms: "Moby Dick" in a text may
 * differ from "moby dick" in the list); only their hits are worth an allow check. */
static int mark_allowable(struct flt_tox *t)
{
    struct flt_tox_scratch *s = flt_tox_scratch_new(t);
    int rc = s ? TM_OK : TM_ERR_NOMEM;
    t->allow_window = 0;
    for (size_t k = 0; k < t->ls.nallow && rc == TM_OK; k++) {
        size_t len = strlen(t->ls.allow[k]);
        if (len > t->allow_window)
            t->allow_window = len;
        rc = collect_unanchored(t, s, t->ls.allow[k], len, 1, 1);
        for (size_t i = 0; i < s->ncand && rc == TM_OK; i++)
            t->ls.terms[s->cand[i].id / FLT_TOX_NVARIANTS].allowable = 1;
    }
    if (t->allow_window > FLT_TOX_ALLOW_WINDOW)
        t->allow_window = FLT_TOX_ALLOW_WINDOW;
    flt_tox_scratch_free(s);
    return rc;
}

static int take(struct selector *sel, const struct flt_cand *c)
{
    if (c->start < sel->last_end)
        return TM_OK;
    sel->last_end = c->end;
    int rc = allowed(sel, c);
    if (rc != 0)
        return rc < 0 ? rc : TM_OK;
    const struct flt_term *term = &sel->t->ls.terms[c->id / FLT_TOX_NVARIANTS];
    struct flt_tox_hits *h = sel->hits;
    if (h->n >= h->max) {
        h->dropped++;
        h->dropped_weight += term->weight;
        return TM_OK;
    }
    if (h->n == h->cap) {
        h->cap = h->cap ? h->cap * 2 : 16;
        if (h->cap > h->max)
            h->cap = h->max;
        h->v = tm_xreallocarray(h->v, h->cap, sizeof(*h->v));
    }
    struct flt_tox_hit *o = &h->v[h->n++];
    o->start = (uint32_t)(c->start + sel->base);
    o->end = (uint32_t)(c->end + sel->base);
    o->term = c->id / FLT_TOX_NVARIANTS;
    o->category = term->category;
    o->obfuscated = (uint8_t)(c->id % FLT_TOX_NVARIANTS != FLT_V_PLAIN);
    o->reserved = 0;
    o->weight = term->weight;
    return TM_OK;
}

/* Offsets are 32-bit. */
static int check_size(size_t n, size_t base)
{
    if (n > UINT32_MAX || base > UINT32_MAX - n) {
        tm_log_error("flt_tox: text of %zu bytes at offset %zu is past 4 GiB", n, base);
        return TM_ERR_TOOBIG;
    }
    return TM_OK;
}

/* Collects every match of every unanchored group into s->cand, sorted. With `reference`, the
 * fast terms' patterns are scanned unanchored too; with `raw`, matches accepted() refuses are
 * kept. */
static int collect_unanchored(const struct flt_tox *t, struct flt_tox_scratch *s, const char *text,
                              size_t n, int reference, int raw)
{
    struct cb_state c = {.mode = CB_ALL, .t = t, .s = s, .raw = raw};
    int rc = TM_OK;
    s->ncand = 0;
    for (unsigned d = 1; reference && d <= FLT_TOK_NCLASS && rc == TM_OK; d++)
        if (t->disp_ref[d])
            rc = run(t->disp_ref[d], s, &c, text, n, 0);
    for (int g = FLT_G_BYTE; g < FLT_G_COUNT && rc == TM_OK; g++)
        if (t->group[g])
            rc = run(t->group[g], s, &c, text, n, 0);
    if (rc == TM_OK && s->ncand > 1)
        qsort(s->cand, s->ncand, sizeof(*s->cand), cand_cmp);
    return rc;
}

int flt_tox_scan_reference(const struct flt_tox *t, struct flt_tox_scratch *s, const char *text,
                           size_t n, size_t base, struct flt_tox_hits *hits)
{
    int rc = check_size(n, base);
    if (rc == TM_OK)
        rc = collect_unanchored(t, s, text, n, 1, 0);
    struct selector sel = {t, s, text, n, base, hits, 0};
    for (size_t i = 0; i < s->ncand && rc == TM_OK; i++)
        rc = take(&sel, &s->cand[i]);
    return rc;
}

/* The plain-key walk from a word start p (see flt_tox_pat.c): 1 when p is a candidate.
 * `dbl` has bit d set when the text's run of key token d had two bytes or more. */
static int walk_plain(const struct flt_tox *t, const unsigned char *u, size_t n, size_t p)
{
    const uint16_t(*next)[FLT_TOK_EDGES] = t->trie.next;
    const uint32_t *info = t->info;
    const uint8_t *tok = t->tb.tok, *fl = t->tb.flags;
    unsigned prev = tok[u[p]], run_len = 1, depth = 0, dbl = 0;
    uint32_t node = next[FLT_TRIE_PLAIN][prev];
    uint32_t inf = info[node];
    if (inf & FLT_N_ACCEPT)
        return 1;
    for (size_t q = p + 1;; q++) {
        /* A complete term ends here if the runs were long enough (INFO_* layout in build). */
        int end_ok = (inf & FLT_N_ENDOK) && run_len >= ((inf >> 8) & 0xff) &&
                     !((inf >> 16) & ~(dbl | (run_len >= 2 ? 1u << depth : 0u)));
        if (q == n)
            return end_ok;
        unsigned char b = u[q];
        unsigned tk = tok[b];
        if (end_ok && !(fl[b] & FLT_B_AWORD))
            return 1;
        if (tk == prev) {
            if (++run_len > FLT_TOX_RUN_BUDGET)
                return 1;
            continue;
        }
        if (tk == FLT_TOK_WILD)
            return 1;
        if (run_len < ((inf >> 8) & 0xff))
            return 0;
        node = next[node][tk];
        if (!node)
            return 0;
        inf = info[node];
        if (inf & FLT_N_ACCEPT)
            return 1;
        if (tk == FLT_TOK_END)
            return 0;
        dbl |= run_len >= 2 ? 1u << depth : 0u;
        depth++;
        prev = tk;
        run_len = 1;
    }
}

/* The first p' >= p whose byte is not an ASCII word byte [0-9A-Za-z_] (or n): 16 bytes at a
 * time where SSE2 is there, so the scan runs through words without a branch per byte. */
static size_t skip_ascii_word(const unsigned char *u, size_t n, size_t p)
{
#ifdef __SSE2__
    const __m128i x20 = _mm_set1_epi8(0x20), xa = _mm_set1_epi8('a'), x0 = _mm_set1_epi8('0');
    const __m128i x80 = _mm_set1_epi8((char)0x80), us = _mm_set1_epi8('_');
    const __m128i n26 = _mm_set1_epi8((char)(26 - 128)), n10 = _mm_set1_epi8((char)(10 - 128));
    while (p + 16 <= n) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(u + p));
        __m128i letter =
            _mm_cmplt_epi8(_mm_xor_si128(_mm_sub_epi8(_mm_or_si128(v, x20), xa), x80), n26);
        __m128i digit = _mm_cmplt_epi8(_mm_xor_si128(_mm_sub_epi8(v, x0), x80), n10);
        __m128i word = _mm_or_si128(_mm_or_si128(letter, digit), _mm_cmpeq_epi8(v, us));
        unsigned stop = ~(unsigned)_mm_movemask_epi8(word) & 0xffffu;
        if (stop)
            return p + (size_t)__builtin_ctz(stop);
        p += 16;
    }
#endif
    while (p < n &&
           ((unsigned)((u[p] | 0x20) - 'a') < 26u || (unsigned)(u[p] - '0') < 10u || u[p] == '_'))
        p++;
    return p;
}

/* The spaced-letters walk from p, where u[p + 1] is a separator. */
static int walk_spaced(const struct flt_tox *t, const unsigned char *u, size_t n, size_t p)
{
    const uint16_t(*next)[FLT_TOK_EDGES] = t->trie.next;
    const uint8_t *nf = t->trie.nflags;
    const uint8_t *tok = t->tb.tok, *fl = t->tb.flags;
    unsigned char sep = u[p + 1];
    uint32_t node = FLT_TRIE_SPACED;
    for (size_t q = p;; q += 2) {
        unsigned tk = tok[u[q]];
        if (tk == FLT_TOK_WILD)
            return 1;
        if (tk < 1 || tk > FLT_TOK_NCLASS)
            return 0;
        node = next[node][tk];
        if (!node)
            return 0;
        if (nf[node] & FLT_N_ACCEPT)
            return 1;
        if (q + 1 == n)
            return nf[node] & FLT_N_ENDOK;
        if ((nf[node] & FLT_N_ENDOK) && !(fl[u[q + 1]] & FLT_B_AWORD))
            return 1;
        if (u[q + 1] != sep || q + 2 >= n)
            return 0;
    }
}

int flt_tox_scan(const struct flt_tox *t, struct flt_tox_scratch *s, const char *text, size_t n,
                 size_t base, struct flt_tox_hits *hits)
{
    int rc = check_size(n, base);
    if (rc == TM_OK)
        rc = collect_unanchored(t, s, text, n, 0, 0);
    struct selector sel = {t, s, text, n, base, hits, 0};
    const unsigned char *u = (const unsigned char *)text;
    const uint8_t *fl = t->tb.flags;
    size_t other = 0;
    int at_boundary = 1;
    for (size_t p = 0; p < n && rc == TM_OK;) {
        uint8_t f = fl[u[p]];
        if (at_boundary && (f & (FLT_B_PLAIN | FLT_B_SPACED)) &&
            (((f & FLT_B_PLAIN) && walk_plain(t, u, n, p)) ||
             ((f & FLT_B_SPACED) && p + 2 < n && (fl[u[p + 1]] & FLT_B_SEP) &&
              walk_spaced(t, u, n, p)))) {
            struct cb_state c = {.mode = CB_BEST, .t = t, .s = s};
            rc = run(t->disp[t->tb.tok[u[p]]], s, &c, text, n, p);
            if (rc == TM_OK && c.have) {
                while (other < s->ncand && cand_before(&s->cand[other], &c.best) && rc == TM_OK)
                    rc = take(&sel, &s->cand[other++]);
                if (rc == TM_OK)
                    rc = take(&sel, &c.best);
            }
        }
        if ((f & (FLT_B_WORD | FLT_B_SEQEND)) == FLT_B_WORD) {
            /* Inside a word no match can start: skip to its end. */
            p++;
            for (;;) {
                p = skip_ascii_word(u, n, p);
                if (p == n || (fl[u[p]] & (FLT_B_WORD | FLT_B_SEQEND)) != FLT_B_WORD)
                    break;
                p++; /* a byte >= 0x80 that ends no boundary sequence */
            }
            at_boundary = 0;
            continue;
        }
        at_boundary = !(f & FLT_B_WORD) || flt_bseq_ends_at(&t->tb, u, p + 1);
        p++;
    }
    while (other < s->ncand && rc == TM_OK)
        rc = take(&sel, &s->cand[other++]);
    return rc;
}
