/* ingest: reads raw inputs into the workdir's document store (tm_store.h).
 *
 * Inputs are directories (walked recursively in sorted order, symbolic links skipped), plain
 * files, single compressed files (.gz .zst .xz .bz2 ...), archives (tar in any compression,
 * zip, 7z, cpio), JSONL (also compressed), WARC and WARC.gz; everything is read through
 * libarchive as a stream, never a whole archive in memory.
 *
 * Each input's fingerprint (path, size, mtime, xxh3-128 of its content) is recorded, so a rerun
 * over the same inputs adds nothing and a changed file is read again into a new generation.
 * Documents are committed in batches together with the inputs' progress, so kill -9 at any
 * moment leaves the store consistent and a rerun resumes where the last commit left off, giving
 * the same documents (same ids, same order) as an uninterrupted run.
 *
 * The commands themselves (`tokenmill ingest`, `tokenmill inspect`) are ing_ingest_command and
 * ing_inspect_command; main.c lists them. */
#ifndef INGEST_H
#define INGEST_H

#include <stddef.h>
#include <stdint.h>

#include "../core/tm_opt.h"

/* Configuration of one ingest run; filled from the option table of `tokenmill ingest` (or a
 * pipeline file). Strings are owned by the struct (tm_opt_free). */
struct ing_config {
    char *workdir;
    char *domain;        /* forced domain for every document, or NULL to detect */
    char *text_field;    /* JSONL text field */
    char *domain_field;  /* JSONL field naming the domain, or NULL */
    char *lang_field;    /* JSONL field naming the code language, or NULL */
    size_t max_doc_size; /* larger documents are skipped and counted */
    size_t batch_bytes;  /* commit after this many bytes of documents */
    long batch_docs;     /* ... or after this many documents */
    int default_corpus;  /* add the embedded default corpus to the inputs */
    long math_problems;  /* generated math problems in the default corpus */
    int rehash;          /* hash inputs even when size and mtime are unchanged */
};

extern const struct tm_command ing_ingest_command;
extern const struct tm_command ing_inspect_command;

#endif
