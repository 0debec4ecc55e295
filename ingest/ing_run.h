/* ing_run: the ingest driver: walks inputs, reads them through libarchive and the record
 * readers, and commits documents to the store in batches. Internal to ingest/. */
#ifndef ING_RUN_H
#define ING_RUN_H

#include <stdint.h>
#include <cjson/cJSON.h>

#include "ingest.h"

/* Runs one ingest over `inputs[0..ninputs)` (paths; "tokenmill:math" names the generated math
 * set) into cfg->workdir, taking the workdir lock. Fills `stats` (a cJSON object) with the
 * counters described in README "Ingest statistics". Returns TM_OK, TM_ERR_PARTIAL when some
 * inputs or records failed (each logged with file and position), or the error that stopped
 * the run (the store keeps every batch committed before it). `progress` 0 disables the
 * progress display. */
int ing_run(const struct ing_config *cfg, char **inputs, int ninputs, int progress, cJSON *stats);

struct tm_plan;
/* What ing_run() would do with the same inputs, from the files' sizes and mtimes against their
 * fingerprints (the run hashes the content of those that differ); reads only. */
int ing_plan(const struct ing_config *cfg, char **inputs, int ninputs, struct tm_plan *out);

/* The input key of the generated math set. */
#define ING_MATH_INPUT "tokenmill:math"

/* Generates `count` worked arithmetic and algebra problems with LaTeX (deterministic for a
 * given count), calling `emit` once per problem with its text. Stops at and returns the first
 * non-zero value emit returns. */
int ing_mathgen(long count, int (*emit)(void *ctx, const char *text, size_t len), void *ctx);

/* The embedded default corpus: expands its paths and globs (skipping missing ones with a
 * warning) into a malloc'd array of malloc'd strings; caller frees both. Always includes the
 * generated math set last. */
char **ing_default_inputs(int *count);

#endif
