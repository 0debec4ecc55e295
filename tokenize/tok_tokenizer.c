/* tok_tokenizer.c: a vocabulary with its pattern and special tokens, and the hash that names
 * the combination in token shards. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <xxhash.h>

#include <cjson/cJSON.h>

#include "tok_internal.h"
#include "tm_err.h"
#include "tm_fs.h"
#include "tm_log.h"
#include "tm_mem.h"

#define SIDECAR_MAX (1u << 20)

void tok_tokenizer_release(struct tok_tokenizer *t)
{
    tok_vocab_free(t->vocab);
    for (size_t i = 0; i < t->nspecial; i++)
        free(t->special_text[i]);
    memset(t, 0, sizeof(*t));
}

static void add_special(struct tok_tokenizer *t, const char *text, uint32_t id)
{
    t->special_text[t->nspecial] = tm_xstrdup(text);
    t->special_id[t->nspecial++] = id;
}

static int pattern_by_name(const char *name)
{
    for (int i = 0; tok_pattern_names[i]; i++)
        if (strcmp(tok_pattern_names[i], name) == 0)
            return i;
    return -1;
}

/* Reads PATH.json when it exists: *found 0 when it does not. */
static int load_sidecar(const char *path, struct tok_tokenizer *t, int *pat, int *found)
{
    char side[4096];
    snprintf(side, sizeof side, "%s.json", path);
    struct stat sb;
    *found = 0;
    if (stat(side, &sb) != 0)
        return TM_OK;
    *found = 1;
    char *data;
    size_t len;
    int rc = tm_read_file(side, SIDECAR_MAX, &data, &len);
    if (rc)
        return rc;
    cJSON *j = cJSON_ParseWithLength(data, len);
    free(data);
    rc = TM_ERR_FORMAT;
    if (!j) {
        tm_log_error("%s: not valid JSON", side);
        return rc;
    }
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(j, "pattern");
    const cJSON *sp = cJSON_GetObjectItemCaseSensitive(j, "special_tokens");
    if (!cJSON_IsString(p) || pattern_by_name(p->valuestring) < 0) {
        tm_log_error("%s: \"pattern\" must be one of r50k, cl100k, o200k", side);
        goto out;
    }
    if (*pat < 0)
        *pat = pattern_by_name(p->valuestring);
    if (!cJSON_IsObject(sp)) {
        tm_log_error("%s: \"special_tokens\" must be an object of text: id", side);
        goto out;
    }
    const cJSON *e;
    cJSON_ArrayForEach(e, sp)
    {
        if (!cJSON_IsNumber(e) || e->valuedouble < 0 || e->valuedouble >= TOK_VOCAB_MAX_TOKENS ||
            !*e->string || t->nspecial == TOK_MAX_SPECIAL_TOKENS) {
            tm_log_error("%s: special token \"%s\": bad id or too many", side, e->string);
            goto out;
        }
        add_special(t, e->string, (uint32_t)e->valuedouble);
    }
    rc = TM_OK;
out:
    cJSON_Delete(j);
    return rc;
}

/* XXH3 of every (rank, token bytes), the pattern's name and every special (text, id). */
static uint64_t tokenizer_hash(const struct tok_tokenizer *t)
{
    XXH3_state_t *st = XXH3_createState();
    XXH3_64bits_reset(st);
    uint32_t end = tok_vocab_end(t->vocab);
    for (uint32_t r = 0; r < end; r++) {
        size_t len;
        const unsigned char *b = tok_vocab_bytes(t->vocab, r, &len);
        if (!b)
            continue;
        uint32_t hdr[2] = {r, (uint32_t)len};
        XXH3_64bits_update(st, hdr, sizeof hdr);
        XXH3_64bits_update(st, b, len);
    }
    const char *name = tok_pattern_names[t->pat];
    XXH3_64bits_update(st, name, strlen(name) + 1);
    for (size_t i = 0; i < t->nspecial; i++) {
        XXH3_64bits_update(st, t->special_text[i], strlen(t->special_text[i]) + 1);
        XXH3_64bits_update(st, &t->special_id[i], sizeof t->special_id[i]);
    }
    uint64_t h = XXH3_64bits_digest(st);
    XXH3_freeState(st);
    return h ? h : 1; /* 0 means "any" to tok_corpus_open() */
}

int tok_tokenizer_load(const char *path, int pat, struct tok_tokenizer *t)
{
    memset(t, 0, sizeof(*t));
    int rc = tok_vocab_load(path, &t->vocab);
    if (rc)
        return rc;
    int found;
    if ((rc = load_sidecar(path, t, &pat, &found)))
        return rc;
    int guess = tok_pattern_guess(tok_vocab_count(t->vocab));
    if (pat < 0)
        pat = guess;
    if (pat < 0) {
        tm_log_error("%s: %zu tokens match no published encoding and there is no %s.json; give "
                     "--pattern",
                     path, tok_vocab_count(t->vocab), path);
        return TM_ERR_USAGE;
    }
    t->pat = (enum tok_pattern)pat;
    if (!found) {
        if (guess == pat) {
            const char *text;
            uint32_t id;
            for (size_t i = 0; tok_builtin_special((enum tok_pattern)pat, i, &text, &id); i++)
                add_special(t, text, id);
        } else
            add_special(t, "<|endoftext|>", tok_vocab_end(t->vocab));
    }
    t->id_end = tok_vocab_end(t->vocab);
    int have_eot = 0;
    for (size_t i = 0; i < t->nspecial; i++) {
        size_t len;
        if (tok_vocab_bytes(t->vocab, t->special_id[i], &len)) {
            tm_log_error("%s: special token %s has id %u, which is an ordinary token's", path,
                         t->special_text[i], t->special_id[i]);
            return TM_ERR_FORMAT;
        }
        if (t->special_id[i] + 1 > t->id_end)
            t->id_end = t->special_id[i] + 1;
        if (strcmp(t->special_text[i], "<|endoftext|>") == 0) {
            t->eot = t->special_id[i];
            have_eot = 1;
        }
    }
    if (!have_eot) {
        tm_log_error("%s: no <|endoftext|> special token", path);
        return TM_ERR_FORMAT;
    }
    t->hash = tokenizer_hash(t);
    return TM_OK;
}

int tok_tokenizer_encoder(const struct tok_tokenizer *t, struct tok_encoder **out)
{
    int rc = tok_encoder_new(t->vocab, t->pat, out);
    if (rc == TM_OK)
        rc = tok_encoder_set_specials(*out, (const char *const *)t->special_text, t->special_id,
                                      t->nspecial);
    if (rc == TM_OK)
        rc = tok_encoder_set_special(*out, "", "");
    if (rc) {
        tok_encoder_free(*out);
        *out = NULL;
    }
    return rc;
}
