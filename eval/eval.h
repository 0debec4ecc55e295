/* eval: scoring trained checkpoints. Bits per byte per domain on a token corpus, and
 * compiler-checked code tasks run in a sandbox (ev_sandbox.h); reports come with their part of
 * the eval issue.
 * Every function returns TM_OK or a tm_err and logs the detail; none prints to stdout. */
#ifndef EVAL_H
#define EVAL_H

#include <stdint.h>

#include "tm_doc.h"
#include "tokenize.h"
#include "tr_model.h"

/* ---- Bits per byte ------------------------------------------------------------------------
 *
 * A document of tokens t_0 .. t_{n-1} (its end-of-text token not counted) is scored as the
 * model sees it in training: the sequence <|endoftext|> t_0 .. t_{n-1} (the end-of-text token
 * that precedes every document in a token stream), each t_i predicted from what precedes it.
 * A document longer than the window is scored in windows of `window` tokens that start every
 * `stride` tokens; each token is scored once, in the first window that ends at or after it, so
 * all but the first `window` tokens see at least window - stride tokens of context (the
 * sliding-window evaluation of Hugging Face's perplexity guide). Special tokens inside a
 * document (ids past the vocabulary's ranks) are neither scored nor counted as bytes.
 *
 *   BPB = (sum of the scored tokens' negative log-likelihoods, in nats)
 *         / (ln 2 * the number of UTF-8 bytes those tokens decode to),
 * summed over the whole split (not averaged per document), per domain and overall. The bytes
 * are the decoded text's, so two tokenizers scoring the same text divide by the same count;
 * loss = nats / tokens and perplexity = exp(loss) are per token. */

struct ev_bpb_opts {
    int split;        /* enum tok_split: TOK_SPLIT_VAL normally */
    int window;       /* tokens per window, 2 .. the model's context; 0: the context */
    int stride;       /* 1 .. window; 0: window / 2 */
    int64_t max_docs; /* per domain, 0: all */
};

struct ev_bpb_sum {
    double nats;     /* sum of negative log-likelihoods */
    uint64_t tokens; /* scored tokens */
    uint64_t bytes;  /* UTF-8 bytes they decode to */
    uint64_t docs;
};

struct ev_bpb_result {
    struct ev_bpb_sum domain[TM_DOMAIN_COUNT];
    struct ev_bpb_sum all;
    int window, stride; /* as resolved */
};

/* BPB, loss per token and perplexity of a sum (0 when it holds no bytes or tokens). */
double ev_bpb(const struct ev_bpb_sum *s);
double ev_loss(const struct ev_bpb_sum *s);

/* Scores the documents of split o->split of corpus c (made with tokenizer tk, whose ids must
 * fit the model's vocabulary) with model m, on m->threads / m->gemm.threads workers inside each
 * forward pass. The model's multi-token-prediction module is not run (it is not part of the
 * model's prediction). Returns TM_OK, TM_ERR_USAGE (a window or stride out of range, a
 * tokenizer larger than the model's vocabulary), or the errors of the corpus reader and the
 * model (logged). */
int ev_bpb_score(struct tr_model *m, const struct tok_corpus *c, const struct tok_tokenizer *tk,
                 const struct ev_bpb_opts *o, struct ev_bpb_result *r);

/* ---- Code tasks ---------------------------------------------------------------------------
 *
 * Problems in HumanEval's convention (JSONL: task_id, prompt, test, optional
 * canonical_solution, language "c" or "cpp"); a sample is a completion of a task's prompt. The
 * program prompt + completion + "\n" + test is compiled (gcc or g++, ev_code_opts' flags) and
 * run, each in the sandbox (ev_sandbox.h); a run that exits 0 passes. */

enum ev_outcome {
    EV_PASSED = 0,
    EV_COMPILE_ERROR,     /* the compiler failed (or was stopped by a limit) */
    EV_RUNTIME_ERROR,     /* the program was killed by a signal (a crash, a resource limit) */
    EV_WRONG_ANSWER,      /* the program exited non-zero: a test failed */
    EV_TIMEOUT,           /* the program ran past its wall-clock or CPU limit */
    EV_SANDBOX_VIOLATION, /* the program made a forbidden system call */
    EV_N_OUTCOMES
};

/* "passed", "compile_error", "runtime_error", "wrong_answer", "timeout", "sandbox_violation". */
extern const char *const ev_outcome_names[];

struct ev_problem {
    char *task_id, *language, *prompt, *test, *canonical; /* canonical may be NULL */
};

struct ev_sample {
    int problem;      /* index into the problem list */
    char *completion; /* owned */
    /* the result */
    int outcome; /* enum ev_outcome */
    int exit_code, signal;
    double compile_s, run_s;
    char *compiler_out; /* compiler's stderr (capped), owned, or NULL */
    char *program_out;  /* program's stdout then stderr (capped), owned, or NULL */
    unsigned protect;   /* the sandbox protections of its runs (ev_sandbox.h), ANDed */
};

struct ev_code_opts {
    const char *cc, *cxx;          /* compilers: /usr/bin/gcc and /usr/bin/g++ by default */
    const char *cflags, *cxxflags; /* space-separated; defaults in ev_code.c */
    double run_timeout;            /* seconds per test run (default 10) */
    int threads;                   /* samples evaluated at once */
};

/* Calls fn(ctx, object, line number) for every non-blank line of the JSONL file `path`, in order,
 * and stops at the first non-zero return, which it returns. A line that is not a JSON object is
 * TM_ERR_FORMAT, logged with the file and line; TM_ERR_IO when the file cannot be read. */
struct cJSON;
int ev_jsonl_read(const char *path, int (*fn)(void *ctx, const struct cJSON *o, long lineno),
                  void *ctx);

/* Reads a problems file. Each line must hold the string fields task_id, prompt and test
 * (canonical_solution and language optional; language "c" by default, else "c" or "cpp");
 * task ids must be unique. *out is an array of *n problems (free with ev_problems_free()).
 * TM_OK, TM_ERR_IO, TM_ERR_FORMAT (logged with the file and line). */
int ev_problems_load(const char *path, struct ev_problem **out, size_t *n);
void ev_problems_free(struct ev_problem *p, size_t n);

/* Evaluates samples s[0..n) of problems p: compiles and runs each in its own temporary
 * directory (removed afterwards) on o->threads workers, filling each sample's result; the
 * results do not depend on the number of workers. TM_OK, or TM_ERR_INTERNAL when the sandbox
 * cannot run at all (logged); a failing sample is an outcome, not an error. */
int ev_code_run(const struct ev_problem *p, struct ev_sample *s, size_t n,
                const struct ev_code_opts *o);

/* pass@k of one task with n samples of which c passed: the unbiased estimator of Chen et al.
 * (2021), 1 - C(n - c, k) / C(n, k), computed as a product (no large binomials); 1 when
 * n - c < k; 0 when k > n (undefined: the caller does not report it). */
double ev_pass_at_k(int n, int c, int k);

/* `tokenmill eval bpb` (ev_bpb_cmd.c), `tokenmill eval code` (ev_code_cmd.c). */
struct tm_command;
extern const struct tm_command ev_bpb_command;
extern const struct tm_command ev_code_command;
/* `tokenmill report` (ev_report.c). */
extern const struct tm_command ev_report_command;

#endif
