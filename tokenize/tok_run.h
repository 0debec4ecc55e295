/* tok_run.h: the corpus commands of tokenize (`tokenize`, `export megatron`): their options and
 * entry points, called by the option tables in tok_corpus_cmd.c. Internal to tokenize. */
#ifndef TOK_RUN_H
#define TOK_RUN_H

#include <stddef.h>

struct cJSON;

struct tok_run_options {
    char *workdir;
    char *vocab;
    int pattern; /* 0: from the sidecar or the vocabulary's size, else tok_pattern + 1 */
    double val_fraction;
    size_t shard_tokens;
    size_t chunk_tokens;
    long threads;
    size_t batch_bytes;
    int require; /* enum tok_require */
    int redo;
    char *input_epoch; /* the filter and dedup decisions' label (tm_stage_hash_epoch), or NULL */
};

/* Tokenizes the kept documents of the generations not tokenized yet into new shards. TM_OK,
 * TM_ERR_PARTIAL (some documents could not be read or encoded: counted, logged, skipped),
 * TM_ERR_LOCKED, TM_ERR_USAGE (shards made with another tokenizer), store and I/O errors. */
int tok_tokenize_run(const struct tok_run_options *opt, int progress, struct cJSON *stats);

struct tm_plan;
/* What tok_tokenize_run() would do now (see tm_command.plan); reads only. Shards of another
 * tokenizer or validation fraction make the plan stale (a run refuses them without redo). */
int tok_tokenize_plan(const struct tok_run_options *opt, struct tm_plan *out);

struct tok_export_options {
    char *workdir;
    char *out; /* prefix */
    int split; /* enum tok_split, or TOK_SPLIT_COUNT for both */
    int by_domain;
};

/* Writes Megatron-LM indexed datasets (PREFIX[_split][_domain].bin / .idx) from the shards.
 * Each file appears whole or not at all. TM_OK, TM_ERR_NOTFOUND (no shards), TM_ERR_IO. */
int tok_export_megatron(const struct tok_export_options *opt, int progress, struct cJSON *stats);

#endif
