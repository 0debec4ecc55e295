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
 * Each stage is planned just before it runs (struct tm_plan, from the command's own plan
 * function or, for the stages without records of their own, from WORKDIR/pipeline/state.json)
 * and runs only when it has something to do; the plan line says what and why, and --dry-run
 * prints only the plans (as the workdir is now; the generation ingest would add is named for
 * the stages after it).
 *   ingest      inputs new or changed by size and mtime (the content hash decides), or a
 *               generation left open by a killed run
 *   filter,     generations without a record (new) or with a partial one (killed); generations
 *   dedup,      done with other settings (a changed key of the section, rules file, lexicon,
 *   tokenize    vocabulary, validation fraction, or tokenmill's own rules) make the stage redo
 *               every generation (--redo)
 *   train-vocab the vocabulary file is missing, or the section's settings changed since the
 *               pipeline made it (a new vocabulary)
 *   train       its newest checkpoint is before the run's end: [train] steps, or with
 *               continue-steps, that many updates past the checkpoint once the shards differ
 *               from those it was trained towards; a checkpoint of other [model] settings or of
 *               another tokenizer starts over (--fresh)
 *   eval-bpb,   the signature of what they read changed since their last success: their
 *   eval-code   command line and the files it names, the vocabulary, the shards, the checkpoints
 *   report      an earlier stage ran, or its settings changed, or there is no report
 * What a redo changes is redone downstream and nothing else: a filter redo makes dedup and
 * tokenize redo (their inputs are every generation's decisions); a dedup redo makes tokenize
 * redo; a new vocabulary makes tokenize redo (its shards are of another tokenizer) and train
 * start over (its checkpoints are); new shards of the same tokenizer make a continued train
 * train on (not start over); the evaluations follow the model and the shards. The filter's and
 * the dedup's redos are counted in state.json ("epochs"), the count raised before the redo
 * starts; dedup and tokenize get --input-epoch with the counts of the stages before them, which
 * makes every generation they did under an older count stale. A kill between the two stages
 * therefore cannot lose the later redo, and a redo killed half-way goes on from where it was.
 * The run holds WORKDIR/pipeline/lock for its whole length (a second run exits at once with the
 * "locked" exit code), stops at the first failing stage, and ends with a one-line summary. */
#ifndef PIPELINE_H
#define PIPELINE_H

struct tm_command;
extern const struct tm_command pl_run_command;

#endif
