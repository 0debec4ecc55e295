/* pipelines: `tokenmill run PIPELINE.ini`, every stage from one settings file.
 *
 * The file: a [pipeline] section (workdir, the stages to run, and variables for ${name}
 * interpolation in any later value; ${workdir} and ${pipeline_dir}, the file's directory, are
 * always defined) and one section per stage whose keys are that stage's
 * command-line options, validated against the same option tables (tm_opt) the command line
 * uses, so the two cannot drift. Stages, in graph order:
 *   ingest      `tokenmill ingest` (key `inputs`: the input paths, space-separated)
 *   filter      `tokenmill filter`
 *   dedup       `tokenmill dedup`
 *   train-vocab `tokenmill tokenize train-vocab`, run only when the vocabulary file
 *               ([pipeline] vocab, default WORKDIR/vocab.tiktoken) does not exist yet
 *   tokenize    `tokenmill tokenize` (--vocab from [pipeline] vocab)
 *   train       `tokenmill train`
 *   eval-bpb    `tokenmill eval bpb`
 *   eval-code   `tokenmill eval code` (--workdir set, so the report finds its results; without
 *               samples, canonical or ckpt of its own, the workdir's model completes the tasks)
 *   report      `tokenmill report`
 * Every stage is incremental on its own (ingest skips unchanged inputs, filter and dedup decide
 * new generations, tokenize writes shards for new documents, train resumes from its newest
 * checkpoint), so a rerun does only what is new. The run holds WORKDIR/pipeline/lock for its
 * whole length (a second run exits at once with the "locked" exit code), stops at the first
 * failing stage, and ends with a one-line summary. */
#ifndef PIPELINE_H
#define PIPELINE_H

struct tm_command;
extern const struct tm_command pl_run_command;

#endif
