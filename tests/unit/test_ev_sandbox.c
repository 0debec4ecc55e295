/* eval: the sandbox (eval/ev_sandbox.h). Each case compiles a small C program with gcc inside
 * the sandbox, runs it inside the sandbox, and checks how the run is classified and that the
 * harness (this process) is unharmed and nothing of the run is left:
 * - an ordinary program: exit 0 and its stdout; exit 3; a crash (SIGSEGV);
 * - an infinite loop: ended by the CPU limit or the wall clock (EV_END_TIMEOUT), promptly;
 *   sleep(100): ended by the wall clock;
 * - a fork bomb: contained (the pids cgroup / RLIMIT_NPROC), ended by the timeout, and after the
 *   run no process of uid 65534 exists;
 * - a memory bomb: does not succeed (malloc fails or the process is killed), the harness lives;
 * - a huge file write: stopped at the file size limit (SIGXFSZ), the file no bigger than it;
 * - 1 MiB of output: capped at out_cap, marked cut;
 * - reading files outside its directory: a file this test creates in /tmp, /etc/passwd and the
 *   source tree are not visible (private root);
 * - opening a socket: killed by the seccomp filter (EV_END_BLOCKED);
 * - killing its parent, pid 1 and every process it may signal: the harness survives;
 * - a child that outlives the test (sleeps, then writes a file): the run ends when the program
 *   does, and the child never writes its file (the pid namespace dies with the run).
 * Protections that this machine cannot give (not root, no cgroup controllers) are reported by
 * the run; the cases that depend on them check them only when the run had them and print what
 * they skipped. The protections granted are printed once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ev_sandbox.h"
#include "tm_err.h"

static char job[64];

/* A fresh run directory holding prog.c = src, compiled there in the sandbox. */
static void compile(const char *src)
{
    snprintf(job, sizeof(job), "/tmp/tm-sbx-test-XXXXXX");
    assert_non_null(mkdtemp(job));
    char path[96];
    snprintf(path, sizeof(path), "%s/prog.c", job);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(src, f);
    fclose(f);
    struct ev_limits l;
    ev_limits_compile(&l);
    char *argv[] = {"/usr/bin/gcc", "-O1", "-std=gnu11", "prog.c", "-o", "prog", NULL};
    struct ev_result r;
    assert_int_equal(ev_sandbox_run(job, argv, NULL, &l, &r), TM_OK);
    if (r.end != EV_END_EXIT || r.exit_code != 0)
        fail_msg("compile: end %d code %d: %s", r.end, r.exit_code, r.err);
    ev_result_release(&r);
}

static void run(struct ev_result *r, double wall)
{
    struct ev_limits l;
    ev_limits_run(&l);
    l.wall_s = wall;
    l.cpu_s = 2;
    char *argv[] = {"./prog", NULL};
    assert_int_equal(ev_sandbox_run(job, argv, NULL, &l, r), TM_OK);
}

static void cleanup(void)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", job);
    assert_int_equal(system(cmd), 0);
}

/* Processes of uid 65534 on the machine (the runs' uid). */
static int nobody_processes(void)
{
    DIR *d = opendir("/proc");
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        struct stat st;
        char p[300];
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        snprintf(p, sizeof(p), "/proc/%s", e->d_name);
        if (stat(p, &st) == 0 && st.st_uid == 65534)
            n++;
    }
    closedir(d);
    return n;
}

static void test_ordinary(void **state)
{
    (void)state;
    struct ev_result r;
    compile("#include <stdio.h>\nint main(void) { puts(\"hello\"); return 0; }\n");
    run(&r, 5);
    char desc[256];
    ev_sandbox_describe(r.protect, desc, sizeof(desc));
    fprintf(stderr, "sandbox protections: %s\n", desc);
    assert_int_equal(r.end, EV_END_EXIT);
    assert_int_equal(r.exit_code, 0);
    assert_string_equal(r.out, "hello\n");
    assert_true(r.protect & EV_P_SECCOMP);
    assert_true(r.protect & EV_P_RLIMITS);
    ev_result_release(&r);
    cleanup();
    compile("int main(void) { return 3; }\n");
    run(&r, 5);
    assert_true(r.end == EV_END_EXIT && r.exit_code == 3);
    ev_result_release(&r);
    cleanup();
    compile("int main(void) { volatile int *p = 0; return *p; }\n");
    run(&r, 5);
    assert_true(r.end == EV_END_SIGNAL && r.signal == SIGSEGV);
    ev_result_release(&r);
    cleanup();
}

static void test_timeouts(void **state)
{
    (void)state;
    struct ev_result r;
    compile("int main(void) { for (volatile unsigned long i = 0;; i++) ; }\n");
    run(&r, 4);
    assert_int_equal(r.end, EV_END_TIMEOUT);
    assert_true(r.wall_s < 6);
    ev_result_release(&r);
    cleanup();
    compile("#include <unistd.h>\nint main(void) { sleep(100); return 0; }\n");
    run(&r, 1);
    assert_int_equal(r.end, EV_END_TIMEOUT);
    assert_true(r.wall_s >= 1 && r.wall_s < 4);
    ev_result_release(&r);
    cleanup();
}

static void test_fork_bomb(void **state)
{
    (void)state;
    struct ev_result r;
    compile("#include <unistd.h>\nint main(void) { for (;;) fork(); }\n");
    run(&r, 2);
    assert_true(r.end == EV_END_TIMEOUT || r.end == EV_END_SIGNAL);
    if (r.protect & EV_P_UID) {
        usleep(200000);
        assert_int_equal(nobody_processes(), 0);
    } else {
        fprintf(stderr, "fork bomb: no uid change on this machine; leftover check skipped\n");
    }
    ev_result_release(&r);
    cleanup();
}

static void test_memory_bomb(void **state)
{
    (void)state;
    struct ev_result r;
    compile("#include <stdlib.h>\n#include <string.h>\n"
            "int main(void) { for (;;) { char *p = malloc(1 << 24); if (!p) return 7;"
            " memset(p, 1, 1 << 24); } }\n");
    run(&r, 10);
    /* RLIMIT_AS makes malloc fail (exit 7); the memory cgroup may kill it first. */
    assert_true((r.end == EV_END_EXIT && r.exit_code == 7) || r.end == EV_END_SIGNAL);
    ev_result_release(&r);
    cleanup();
}

static void test_file_and_output_limits(void **state)
{
    (void)state;
    struct ev_result r;
    compile("#include <stdio.h>\nint main(void) { FILE *f = fopen(\"big\", \"w\");"
            " static char b[1 << 20]; for (int i = 0; i < 100; i++) fwrite(b, 1, sizeof b, f);"
            " fclose(f); return 0; }\n");
    run(&r, 10);
    assert_true(r.end == EV_END_SIGNAL && r.signal == SIGXFSZ);
    char path[96];
    snprintf(path, sizeof(path), "%s/big", job);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    struct ev_limits l;
    ev_limits_run(&l);
    assert_true((size_t)st.st_size <= l.file_bytes);
    ev_result_release(&r);
    cleanup();
    compile("#include <stdio.h>\nint main(void) { for (int i = 0; i < 1 << 20; i++)"
            " putchar('x'); return 0; }\n");
    run(&r, 10);
    assert_true(r.end == EV_END_EXIT && r.exit_code == 0);
    assert_true(r.out_cut && r.out_len == l.out_cap);
    ev_result_release(&r);
    cleanup();
}

static void test_files_outside(void **state)
{
    (void)state;
    char secret[] = "/tmp/tm-sbx-secret-XXXXXX";
    int fd = mkstemp(secret);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "s3cret", 6), 6);
    fchmod(fd, 0644);
    close(fd);
    char src[1024];
    snprintf(src, sizeof(src),
             "#include <stdio.h>\nint main(void) { const char *p[] = {\"%s\", \"/etc/passwd\","
             " \"%s\"}; int seen = 0; for (int i = 0; i < 3; i++) { FILE *f = fopen(p[i], \"r\");"
             " if (f) { seen++; fclose(f); } } return seen ? 10 + seen : 3; }\n",
             secret, __FILE__);
    compile(src);
    struct ev_result r;
    run(&r, 5);
    if (r.protect & EV_P_MNTNS) {
        assert_true(r.end == EV_END_EXIT && r.exit_code == 3);
    } else {
        fprintf(stderr, "files outside: no private root on this machine (exit %d); skipped\n",
                r.exit_code);
    }
    ev_result_release(&r);
    cleanup();
    unlink(secret);
}

static void test_socket_blocked(void **state)
{
    (void)state;
    compile("#include <sys/socket.h>\nint main(void) { return socket(AF_INET, SOCK_STREAM, 0)"
            " >= 0 ? 0 : 5; }\n");
    struct ev_result r;
    run(&r, 5);
    assert_true(r.end == EV_END_BLOCKED && r.signal == SIGSYS);
    ev_result_release(&r);
    cleanup();
}

static void test_kill_parent(void **state)
{
    (void)state;
    compile("#include <signal.h>\n#include <unistd.h>\nint main(void) { kill(getppid(), SIGKILL);"
            " kill(1, SIGKILL); kill(-1, SIGKILL); return 4; }\n");
    struct ev_result r;
    run(&r, 5);
    /* kill(-1) may take the program itself down; the harness (this test) goes on either way. */
    assert_true((r.end == EV_END_EXIT && r.exit_code == 4) || r.end == EV_END_SIGNAL);
    ev_result_release(&r);
    cleanup();
}

static void test_child_outlives(void **state)
{
    (void)state;
    compile("#include <stdio.h>\n#include <unistd.h>\nint main(void) { if (fork() == 0) {"
            " sleep(2); FILE *f = fopen(\"late\", \"w\"); if (f) fclose(f); return 0; }"
            " return 0; }\n");
    struct ev_result r;
    run(&r, 5);
    assert_true(r.end == EV_END_EXIT && r.exit_code == 0);
    if (r.protect & EV_P_PIDNS) {
        assert_true(r.wall_s < 1.5); /* not held up by the child */
        sleep(3);
        char path[96];
        snprintf(path, sizeof(path), "%s/late", job);
        assert_int_not_equal(access(path, F_OK), 0); /* the child died with the namespace */
    } else {
        fprintf(stderr, "child outlives: no pid namespace on this machine; skipped\n");
    }
    ev_result_release(&r);
    cleanup();
}

int main(void)
{
    if (access("/usr/bin/gcc", X_OK) != 0) {
        fprintf(stderr, "no /usr/bin/gcc: skipped\n");
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ordinary),
        cmocka_unit_test(test_timeouts),
        cmocka_unit_test(test_fork_bomb),
        cmocka_unit_test(test_memory_bomb),
        cmocka_unit_test(test_file_and_output_limits),
        cmocka_unit_test(test_files_outside),
        cmocka_unit_test(test_socket_blocked),
        cmocka_unit_test(test_kill_parent),
        cmocka_unit_test(test_child_outlives),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
