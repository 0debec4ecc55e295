/* sandbox_overhead.c: what the sandbox costs per run (eval/ev_sandbox.h) against a plain fork,
 * execve and waitpid of the same binary, and the harness's throughput on the problem set. Not
 * part of ctest; bench/eval_bench.sh builds and runs it.
 *
 * Build by hand against a build directory (paths from the repo root):
 *   cc -O2 -std=c11 -D_GNU_SOURCE -Ieval -Icore bench/sandbox_overhead.c build/eval/libtm_eval.a \
 *      build/core/libtm_core.a -lseccomp -lpthread -o /tmp/sandbox_overhead
 * Run: /tmp/sandbox_overhead [RUNS]   (default 200 of each, interleaved in rounds of 10)
 *
 * A hello-world C program is compiled once (outside the sandbox) in a temporary directory; then
 * RUNS plain runs (fork, execve ./prog, waitpid, its stdout to /dev/null) and RUNS sandboxed
 * runs (ev_sandbox_run with the test-run limits) alternate. Prints one JSON object: the median
 * and mean milliseconds per run of each, and their ratio, plus the protections the runs had. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>

#include "ev_sandbox.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), cmp);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static double mean(const double *v, int n)
{
    double s = 0;
    for (int i = 0; i < n; i++)
        s += v[i];
    return s / n;
}

int main(int argc, char **argv)
{
    int runs = argc > 1 ? atoi(argv[1]) : 200;
    if (runs < 10)
        runs = 10;
    char dir[] = "/tmp/tm-sbx-bench-XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    char cmd[256];
    snprintf(cmd, sizeof(cmd),
             "printf '#include <stdio.h>\\nint main(void){puts(\"hello\");return 0;}\\n' > %s/p.c"
             " && gcc -O1 %s/p.c -o %s/prog",
             dir, dir, dir);
    if (system(cmd) != 0)
        return 1;
    double *plain = malloc((size_t)runs * sizeof(double)),
           *sbx = malloc((size_t)runs * sizeof(double));
    struct ev_limits l;
    ev_limits_run(&l);
    char prog[64];
    snprintf(prog, sizeof(prog), "%s/prog", dir);
    unsigned prot = 0;
    int bad = 0;
    for (int r0 = 0; r0 < runs; r0 += 10)
        for (int pass = 0; pass < 2; pass++)
            for (int i = r0; i < r0 + 10 && i < runs; i++) {
                double t0 = now();
                if (pass == 0) {
                    pid_t p = fork();
                    if (p == 0) {
                        int fd = open("/dev/null", O_WRONLY);
                        dup2(fd, 1);
                        char *a[] = {prog, NULL};
                        execv(prog, a);
                        _exit(127);
                    }
                    int st;
                    waitpid(p, &st, 0);
                    bad |= !WIFEXITED(st) || WEXITSTATUS(st) != 0;
                    plain[i] = now() - t0;
                } else {
                    struct ev_result res;
                    char *a[] = {"./prog", NULL};
                    bad |= ev_sandbox_run(dir, a, NULL, &l, &res) != 0 || res.end != EV_END_EXIT ||
                           res.exit_code != 0 || strcmp(res.out, "hello\n") != 0;
                    prot = res.protect;
                    ev_result_release(&res);
                    sbx[i] = now() - t0;
                }
            }
    char desc[256];
    ev_sandbox_describe(prot, desc, sizeof(desc));
    double mp = median(plain, runs) * 1e3, ms = median(sbx, runs) * 1e3;
    printf("{\"runs\": %d, \"plain_ms_median\": %.3f, \"plain_ms_mean\": %.3f, "
           "\"sandbox_ms_median\": %.3f, \"sandbox_ms_mean\": %.3f, \"ratio_median\": %.1f, "
           "\"overhead_ms_median\": %.3f, \"protections\": \"%s\", \"all_runs_ok\": %s}\n",
           runs, mp, mean(plain, runs) * 1e3, ms, mean(sbx, runs) * 1e3, ms / mp, ms - mp, desc,
           bad ? "false" : "true");
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0)
        return 1;
    free(plain);
    free(sbx);
    return bad;
}
