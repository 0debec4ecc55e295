/* ev_sandbox: see ev_sandbox.h for what a run gets. This file's structure follows the three
 * processes of a run:
 *
 *   harness --fork--> keeper (new session; unshares the namespaces; forks; waits)
 *                       --fork--> init (pid 1 of the new pid namespace, root: builds the
 *                                  private root, joins the cgroups, forks, waits)
 *                                    --fork--> program (drops to nobody, rlimits, seccomp, exec)
 *
 * The init process stays root and only waits, so the program (another uid) cannot signal it;
 * when init exits the kernel kills everything left in the namespace. Children report to the
 * harness through one pipe of fixed-size records; between fork and exec they make only system
 * calls (no malloc, no stdio), as required in a multithreaded process. */
#include "ev_sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tm_err.h"
#include "tm_log.h"
#include "tm_mem.h"

#define NOBODY 65534

void ev_limits_run(struct ev_limits *l)
{
    *l = (struct ev_limits){.wall_s = 10,
                            .cpu_s = 5,
                            .mem_bytes = (size_t)512 << 20,
                            .file_bytes = (size_t)16 << 20,
                            .nofile = 64,
                            .nproc = 32,
                            .out_cap = 64 << 10};
}

void ev_limits_compile(struct ev_limits *l)
{
    *l = (struct ev_limits){.wall_s = 60,
                            .cpu_s = 60,
                            .mem_bytes = (size_t)2 << 30,
                            .file_bytes = (size_t)64 << 20,
                            .nofile = 256,
                            .nproc = 64,
                            .out_cap = 64 << 10};
}

void ev_result_release(struct ev_result *r)
{
    free(r->out);
    free(r->err);
    r->out = r->err = NULL;
}

/* ---- once per process: the seccomp program and the cgroup roots ------------------------------ */

static struct sock_fprog filter;
static int filter_ok;
static char cg_pids_root[64], cg_mem_root[64]; /* "" when the controller is not usable */
static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int init_rc;

/* System calls a test program or a compiler has no business making; each kills the process
 * (SIGSYS), so the harness can tell the attempt from an ordinary failure. setsid and setpgid
 * are here so that a program cannot leave the process group the harness kills. */
static const char *const denied[] = {
    "socket",
    "socketpair",
    "connect",
    "bind",
    "listen",
    "accept",
    "accept4",
    "sendto",
    "recvfrom",
    "sendmsg",
    "recvmsg",
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "unshare",
    "setns",
    "setsid",
    "setpgid",
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "reboot",
    "swapon",
    "swapoff",
    "bpf",
    "perf_event_open",
    "keyctl",
    "add_key",
    "request_key",
    "userfaultfd",
    "iopl",
    "ioperm",
    "open_by_handle_at",
    "name_to_handle_at",
    "acct",
    "settimeofday",
    "clock_settime",
    "sethostname",
    "setdomainname",
    "fanotify_init",
    "quotactl",
    "lookup_dcookie",
    "vhangup",
};

/* Builds the filter with libseccomp and keeps its BPF program: libseccomp allocates while it
 * loads a filter, which a forked child of a multithreaded process must not do, so the child
 * installs the prepared program with prctl() instead. */
static int build_filter(void)
{
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    if (!ctx)
        return TM_ERR_INTERNAL;
    int rc = 0;
    for (size_t i = 0; i < sizeof(denied) / sizeof(denied[0]) && rc == 0; i++) {
        int nr = seccomp_syscall_resolve_name(denied[i]);
        if (nr != __NR_SCMP_ERROR)
            rc = seccomp_rule_add(ctx, SCMP_ACT_KILL_PROCESS, nr, 0);
    }
    int fd = rc == 0 ? memfd_create("tm-seccomp", MFD_CLOEXEC) : -1;
    if (fd >= 0 && seccomp_export_bpf(ctx, fd) == 0) {
        off_t len = lseek(fd, 0, SEEK_END);
        if (len > 0 && len % (off_t)sizeof(struct sock_filter) == 0) {
            struct sock_filter *prog = tm_xmalloc((size_t)len);
            if (pread(fd, prog, (size_t)len, 0) == len) {
                filter.filter = prog;
                filter.len = (unsigned short)(len / (off_t)sizeof(struct sock_filter));
                filter_ok = 1;
            } else {
                free(prog);
            }
        }
    }
    if (fd >= 0)
        close(fd);
    seccomp_release(ctx);
    return filter_ok ? TM_OK : TM_ERR_INTERNAL;
}

/* A cgroup v1 controller the harness can create children in: "<root>/tokenmill". */
static void find_cgroup(const char *controller, char *out, size_t n)
{
    char path[64];
    snprintf(path, sizeof(path), "/sys/fs/cgroup/%s/tokenmill", controller);
    if (mkdir(path, 0700) != 0 && errno != EEXIST)
        return;
    snprintf(out, n, "%s", path);
}

static void sandbox_init(void)
{
    init_rc = build_filter();
    if (init_rc)
        tm_log_error("sandbox: libseccomp could not build the filter");
    if (geteuid() == 0) {
        find_cgroup("pids", cg_pids_root, sizeof(cg_pids_root));
        find_cgroup("memory", cg_mem_root, sizeof(cg_mem_root));
    }
}

int ev_sandbox_init(void)
{
    pthread_once(&init_once, sandbox_init);
    return init_rc;
}

/* ---- reports from the children -----------------------------------------------------------------
 */

enum rec_type {
    REC_INIT_PID = 1, /* keeper: a = init's pid (harness's namespace) */
    REC_INIT_PROT,    /* init: a = protections it set up */
    REC_FAIL,         /* any child: a = step, b = errno; the run could not start */
    REC_STATUS,       /* init: a = the program's wait status */
    REC_PROG_PROT,    /* program: a = protections it set up, just before exec */
};

struct rec {
    int type, a, b;
};

/* Steps a REC_FAIL names. */
static const char *const step_names[] = {
    "unshare",
    "fork",
    "mount private",
    "bind /usr",
    "remount /usr read-only",
    "bind /dev",
    "mount /tmp",
    "bind the run directory",
    "chroot",
    "chdir",
    "stdio",
    "setgid",
    "setuid",
    "seccomp",
    "exec",
    "cgroup",
    "no_new_privs",
};
enum step {
    S_UNSHARE,
    S_FORK,
    S_MNT_PRIVATE,
    S_BIND_USR,
    S_RO_USR,
    S_BIND_DEV,
    S_TMP,
    S_BIND_WORK,
    S_CHROOT,
    S_CHDIR,
    S_STDIO,
    S_SETGID,
    S_SETUID,
    S_SECCOMP,
    S_EXEC,
    S_CGROUP,
    S_NNP,
};

static void report(int fd, int type, int a, int b)
{
    struct rec r = {type, a, b};
    ssize_t w = write(fd, &r, sizeof(r)); /* atomic: below PIPE_BUF */
    (void)w;
}

static void fail(int fd, enum step s)
{
    report(fd, REC_FAIL, (int)s, errno);
    _exit(127);
}

/* ---- what the children need, prepared before fork ------------------------------------------- */

struct plan {
    const char *dir; /* the run's directory (host path) */
    char root[64];   /* the private root (host path), "" when not used */
    char usr[96], work[96], tmp[96], dev[3][96];
    char cg_pids[96], cg_mem[96]; /* cgroup.procs of the run's cgroups, "" when not used */
    char *const *argv, *const *env;
    const struct ev_limits *l;
    int out_w, err_w, rec_w, null_fd;
    int as_root;
};

static const char *const dev_names[3] = {"null", "zero", "urandom"};

/* Writes the decimal value of v (>= 0) to fd: "a pid into cgroup.procs", without stdio. */
static int write_int(int fd, long v)
{
    char buf[24];
    int i = (int)sizeof(buf);
    do {
        buf[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v && i > 0);
    return write(fd, buf + i, sizeof(buf) - (size_t)i) == (ssize_t)(sizeof(buf) - (size_t)i) ? 0
                                                                                             : -1;
}

static int join_cgroup(const char *procs)
{
    int fd = open(procs, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = write_int(fd, (long)getpid());
    close(fd);
    return rc;
}

/* The program: drops privileges, sets the limits and the filter, execs. Never returns. */
static void run_program(const struct plan *p, unsigned prot)
{
    if (dup2(p->null_fd, 0) < 0 || dup2(p->out_w, 1) < 0 || dup2(p->err_w, 2) < 0)
        fail(p->rec_w, S_STDIO);
    if (p->as_root) {
        if (setgroups(0, NULL) != 0 || setgid(NOBODY) != 0)
            fail(p->rec_w, S_SETGID);
        if (setuid(NOBODY) != 0)
            fail(p->rec_w, S_SETUID);
        prot |= EV_P_UID;
    }
    const struct ev_limits *l = p->l;
    struct rlimit cpu = {(rlim_t)l->cpu_s, (rlim_t)l->cpu_s + 1};
    struct rlimit as = {(rlim_t)l->mem_bytes, (rlim_t)l->mem_bytes};
    struct rlimit fsz = {(rlim_t)l->file_bytes, (rlim_t)l->file_bytes};
    struct rlimit nofile = {(rlim_t)l->nofile, (rlim_t)l->nofile};
    struct rlimit nproc = {(rlim_t)l->nproc, (rlim_t)l->nproc};
    struct rlimit core = {0, 0};
    if (setrlimit(RLIMIT_CPU, &cpu) == 0 && setrlimit(RLIMIT_AS, &as) == 0 &&
        setrlimit(RLIMIT_FSIZE, &fsz) == 0 && setrlimit(RLIMIT_NOFILE, &nofile) == 0 &&
        setrlimit(RLIMIT_CORE, &core) == 0 &&
        /* RLIMIT_NPROC counts every process of the uid, so only when it is nobody's alone */
        (!p->as_root || setrlimit(RLIMIT_NPROC, &nproc) == 0))
        prot |= EV_P_RLIMITS;
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        fail(p->rec_w, S_NNP);
    if (filter_ok) {
        if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &filter, 0, 0) != 0)
            fail(p->rec_w, S_SECCOMP);
        prot |= EV_P_SECCOMP;
    }
    report(p->rec_w, REC_PROG_PROT, (int)prot, 0);
    execve(p->argv[0], p->argv, p->env);
    fail(p->rec_w, S_EXEC);
}

/* The private root inside the mount namespace: /usr read-only, the devices, a tmpfs /tmp, the
 * run's directory at /work; then chroot. */
static void enter_root(const struct plan *p)
{
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
        fail(p->rec_w, S_MNT_PRIVATE);
    if (mount("/usr", p->usr, NULL, MS_BIND | MS_REC, NULL) != 0)
        fail(p->rec_w, S_BIND_USR);
    if (mount(NULL, p->usr, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL))
        fail(p->rec_w, S_RO_USR);
    for (int i = 0; i < 3; i++) {
        char src[24] = "/dev/";
        memcpy(src + 5, dev_names[i], strlen(dev_names[i]) + 1);
        if (mount(src, p->dev[i], NULL, MS_BIND, NULL) != 0)
            fail(p->rec_w, S_BIND_DEV);
    }
    if (mount("tmpfs", p->tmp, "tmpfs", MS_NOSUID | MS_NODEV, "size=64m,mode=1777") != 0)
        fail(p->rec_w, S_TMP);
    if (mount(p->dir, p->work, NULL, MS_BIND, NULL) != 0)
        fail(p->rec_w, S_BIND_WORK);
    if (chroot(p->root) != 0)
        fail(p->rec_w, S_CHROOT);
    if (chdir("/work") != 0)
        fail(p->rec_w, S_CHDIR);
}

/* Init: pid 1 of the namespace (when there is one). Never returns. */
static void run_init(const struct plan *p, unsigned prot)
{
    if (p->cg_pids[0] && join_cgroup(p->cg_pids) == 0)
        prot |= EV_P_CG_PIDS;
    if (p->cg_mem[0] && join_cgroup(p->cg_mem) == 0)
        prot |= EV_P_CG_MEM;
    if (prot & EV_P_MNTNS)
        enter_root(p);
    else if (chdir(p->dir) != 0)
        fail(p->rec_w, S_CHDIR);
    report(p->rec_w, REC_INIT_PROT, (int)prot, 0);
    pid_t c = fork();
    if (c < 0)
        fail(p->rec_w, S_FORK);
    if (c == 0)
        run_program(p, prot);
    int st = 0;
    while (waitpid(c, &st, 0) < 0 && errno == EINTR)
        ;
    report(p->rec_w, REC_STATUS, st, 0);
    _exit(0);
}

/* The keeper: a new session, the namespaces, init. Never returns. */
static void run_keeper(const struct plan *p)
{
    setsid();
    unsigned prot = 0;
    if (p->as_root) {
        int flags = CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS;
        if (unshare(flags) == 0)
            prot |= EV_P_PIDNS | EV_P_NETNS | (p->root[0] ? EV_P_MNTNS : 0);
    }
    pid_t i = fork();
    if (i < 0)
        fail(p->rec_w, S_FORK);
    if (i == 0)
        run_init(p, prot);
    report(p->rec_w, REC_INIT_PID, (int)i, 0);
    int st;
    while (waitpid(i, &st, 0) < 0 && errno == EINTR)
        ;
    _exit(0);
}

/* ---- the harness side -------------------------------------------------------------------------
 */

static int make_file(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    close(fd);
    return 0;
}

/* The private root's skeleton: usr, dev/{null,zero,urandom}, tmp, work, and the merged-/usr
 * symlinks bin, sbin, lib, lib64 (Debian 12 puts every binary and library under /usr). */
static int build_root(struct plan *p)
{
    snprintf(p->root, sizeof(p->root), "/tmp/tm-sandbox-XXXXXX");
    if (!mkdtemp(p->root)) {
        p->root[0] = 0;
        return -1;
    }
    if (chmod(p->root, 0755) != 0) /* mkdtemp's 0700 would keep uid nobody out of its own / */
        return -1;
    snprintf(p->usr, sizeof(p->usr), "%s/usr", p->root);
    snprintf(p->work, sizeof(p->work), "%s/work", p->root);
    snprintf(p->tmp, sizeof(p->tmp), "%s/tmp", p->root);
    char d[72];
    snprintf(d, sizeof(d), "%s/dev", p->root);
    int rc = mkdir(p->usr, 0755) | mkdir(p->work, 0755) | mkdir(p->tmp, 01777) | mkdir(d, 0755);
    for (int i = 0; i < 3; i++) {
        snprintf(p->dev[i], sizeof(p->dev[i]), "%s/%s", d, dev_names[i]);
        rc |= make_file(p->dev[i]);
    }
    static const char *const links[][2] = {
        {"usr/bin", "bin"}, {"usr/sbin", "sbin"}, {"usr/lib", "lib"}, {"usr/lib64", "lib64"}};
    for (size_t i = 0; i < sizeof(links) / sizeof(links[0]); i++) {
        char l[96];
        snprintf(l, sizeof(l), "%s/%s", p->root, links[i][1]);
        rc |= symlink(links[i][0], l);
    }
    return rc ? -1 : 0;
}

static void remove_root(const struct plan *p)
{
    if (!p->root[0])
        return;
    static const char *const entries[] = {"bin",      "sbin",     "lib",        "lib64",
                                          "dev/null", "dev/zero", "dev/urandom"};
    static const char *const dirs[] = {"dev", "usr", "work", "tmp"};
    char path[128];
    for (size_t i = 0; i < sizeof(entries) / sizeof(entries[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", p->root, entries[i]);
        unlink(path);
    }
    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", p->root, dirs[i]);
        rmdir(path);
    }
    if (rmdir(p->root) != 0)
        tm_log_warn("sandbox: %s not removed: %s", p->root, strerror(errno));
}

static int write_text(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = write(fd, text, strlen(text));
    close(fd);
    return n == (ssize_t)strlen(text) ? 0 : -1;
}

/* The run's cgroups: tokenmill/run-<pid>-<n> under each usable controller, with its limit. */
static void make_cgroups(struct plan *p, char *pids_dir, char *mem_dir, size_t n)
{
    static long counter;
    long k = __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED);
    pids_dir[0] = mem_dir[0] = 0;
    char v[32];
    if (cg_pids_root[0]) {
        snprintf(pids_dir, n, "%s/run-%ld-%ld", cg_pids_root, (long)getpid(), k);
        snprintf(v, sizeof(v), "%ld", p->l->nproc);
        char f[160];
        snprintf(f, sizeof(f), "%s/pids.max", pids_dir);
        if (mkdir(pids_dir, 0700) == 0 && write_text(f, v) == 0)
            snprintf(p->cg_pids, sizeof(p->cg_pids), "%s/cgroup.procs", pids_dir);
    }
    if (cg_mem_root[0]) {
        snprintf(mem_dir, n, "%s/run-%ld-%ld", cg_mem_root, (long)getpid(), k);
        snprintf(v, sizeof(v), "%zu", p->l->mem_bytes);
        char f[160];
        snprintf(f, sizeof(f), "%s/memory.limit_in_bytes", mem_dir);
        if (mkdir(mem_dir, 0700) == 0 && write_text(f, v) == 0)
            snprintf(p->cg_mem, sizeof(p->cg_mem), "%s/cgroup.procs", mem_dir);
    }
}

static void remove_cgroup(const char *dir)
{
    /* The processes are gone by now, but the kernel may take a moment to notice. */
    for (int i = 0; dir[0] && i < 50 && rmdir(dir) != 0 && errno == EBUSY; i++)
        usleep(2000);
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* Appends what fd has to *buf (up to cap; the rest is read and dropped). 0 at EOF. */
static int drain(int fd, char **buf, size_t *len, size_t cap, int *cut)
{
    char tmp[16384];
    ssize_t n = read(fd, tmp, sizeof(tmp));
    if (n < 0)
        return errno == EINTR || errno == EAGAIN ? 1 : 0;
    if (n == 0)
        return 0;
    size_t keep = *len < cap ? cap - *len : 0;
    if ((size_t)n > keep)
        *cut = 1;
    if (keep > (size_t)n)
        keep = (size_t)n;
    if (keep) {
        *buf = tm_xreallocarray(*buf, *len + keep + 1, 1);
        memcpy(*buf + *len, tmp, keep);
        *len += keep;
        (*buf)[*len] = 0;
    }
    return 1;
}

static char *const default_env[] = {"PATH=/usr/bin:/bin", "HOME=/work", "TMPDIR=/tmp", "LANG=C",
                                    NULL};

int ev_sandbox_run(const char *dir, char *const argv[], char *const env[],
                   const struct ev_limits *l, struct ev_result *r)
{
    memset(r, 0, sizeof(*r));
    r->end = EV_END_ERROR;
    r->out = tm_xcalloc(1, 1);
    r->err = tm_xcalloc(1, 1);
    if (ev_sandbox_init() != TM_OK)
        tm_log_warn("sandbox: running without the seccomp filter");
    struct plan p;
    memset(&p, 0, sizeof(p));
    p.dir = dir;
    p.argv = argv;
    p.env = env ? env : default_env;
    p.l = l;
    p.as_root = geteuid() == 0;
    if (p.as_root) {
        if (chown(dir, NOBODY, NOBODY) != 0 || chmod(dir, 0755) != 0) {
            tm_log_error("sandbox: %s: cannot hand it to uid %d: %s", dir, NOBODY, strerror(errno));
            return TM_ERR_IO;
        }
        if (build_root(&p) != 0) {
            tm_log_warn("sandbox: no private root (%s); running without it", strerror(errno));
            remove_root(&p);
            p.root[0] = 0;
        }
    }
    char cg_pids_dir[128], cg_mem_dir[128];
    make_cgroups(&p, cg_pids_dir, cg_mem_dir, sizeof(cg_pids_dir));
    int out[2], err[2], rec[2];
    if (pipe2(out, O_CLOEXEC) != 0)
        goto fail_pipes;
    if (pipe2(err, O_CLOEXEC) != 0) {
        close(out[0]);
        close(out[1]);
        goto fail_pipes;
    }
    if (pipe2(rec, O_CLOEXEC) != 0) {
        close(out[0]);
        close(out[1]);
        close(err[0]);
        close(err[1]);
        goto fail_pipes;
    }
    p.out_w = out[1];
    p.err_w = err[1];
    p.rec_w = rec[1];
    p.null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    double t0 = now_s();
    pid_t keeper = fork();
    if (keeper == 0)
        run_keeper(&p);
    close(out[1]);
    close(err[1]);
    close(rec[1]);
    if (p.null_fd >= 0)
        close(p.null_fd);
    int rc = TM_OK;
    if (keeper < 0) {
        tm_log_error("sandbox: fork: %s", strerror(errno));
        rc = TM_ERR_INTERNAL;
    }
    /* Read until all three pipes are closed, killing the run at its deadline. */
    pid_t init = -1;
    int have_status = 0, status = 0, failed = 0, fail_step = 0, fail_errno = 0, killed = 0;
    unsigned prot = 0;
    struct pollfd fds[3] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}, {rec[0], POLLIN, 0}};
    int open_fds = keeper > 0 ? 3 : 0;
    double deadline = t0 + l->wall_s;
    while (open_fds > 0) {
        double left = (killed ? t0 + l->wall_s + 5.0 : deadline) - now_s();
        if (left <= 0) {
            if (killed)
                break; /* something keeps a pipe open past the kill: give up on it */
            killed = 1;
            if (init > 0)
                kill(init, SIGKILL); /* pid 1 of the namespace: takes everything with it */
            kill(-keeper, SIGKILL);  /* the session's process group, namespace or not */
            continue;
        }
        int n = poll(fds, 3, (int)(left * 1000) + 1);
        if (n < 0 && errno != EINTR)
            break;
        for (int i = 0; i < 3 && n > 0; i++) {
            if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            int more;
            if (i == 0)
                more = drain(out[0], &r->out, &r->out_len, l->out_cap, &r->out_cut);
            else if (i == 1)
                more = drain(err[0], &r->err, &r->err_len, l->out_cap, &r->err_cut);
            else {
                struct rec m;
                ssize_t got = read(rec[0], &m, sizeof(m));
                more = got > 0;
                if (got == (ssize_t)sizeof(m)) {
                    if (m.type == REC_INIT_PID)
                        init = m.a;
                    else if (m.type == REC_INIT_PROT || m.type == REC_PROG_PROT)
                        prot |= (unsigned)m.a;
                    else if (m.type == REC_STATUS) {
                        have_status = 1;
                        status = m.a;
                    } else if (m.type == REC_FAIL && !failed) {
                        failed = 1;
                        fail_step = m.a;
                        fail_errno = m.b;
                    }
                }
            }
            if (!more) {
                fds[i].fd = -1;
                open_fds--;
            }
        }
    }
    if (keeper > 0) {
        kill(-keeper, SIGKILL); /* anything left outside a namespace */
        while (waitpid(keeper, NULL, 0) < 0 && errno == EINTR)
            ;
    }
    r->wall_s = now_s() - t0;
    close(out[0]);
    close(err[0]);
    close(rec[0]);
    r->protect = prot;
    if (failed) {
        tm_log_error("sandbox: %s: %s failed: %s", argv[0],
                     fail_step >= 0 && fail_step <= S_NNP ? step_names[fail_step] : "setup",
                     strerror(fail_errno));
        rc = fail_step == S_EXEC ? TM_ERR_IO : TM_ERR_INTERNAL;
    } else if (rc == TM_OK && (killed || !have_status)) {
        r->end = killed ? EV_END_TIMEOUT : EV_END_ERROR;
        if (!killed) {
            tm_log_error("sandbox: %s: the run ended without a status", argv[0]);
            rc = TM_ERR_INTERNAL;
        }
    } else if (rc == TM_OK && WIFEXITED(status)) {
        r->end = EV_END_EXIT;
        r->exit_code = WEXITSTATUS(status);
    } else if (rc == TM_OK && WIFSIGNALED(status)) {
        r->signal = WTERMSIG(status);
        r->end = r->signal == SIGSYS    ? EV_END_BLOCKED
                 : r->signal == SIGXCPU ? EV_END_TIMEOUT
                                        : EV_END_SIGNAL;
    }
    remove_cgroup(cg_pids_dir);
    remove_cgroup(cg_mem_dir);
    remove_root(&p);
    return rc;

fail_pipes:
    tm_log_error("sandbox: pipe: %s", strerror(errno));
    remove_cgroup(cg_pids_dir);
    remove_cgroup(cg_mem_dir);
    remove_root(&p);
    return TM_ERR_INTERNAL;
}

void ev_sandbox_describe(unsigned protect, char *buf, size_t n)
{
    static const struct {
        unsigned bit;
        const char *name;
    } names[] = {
        {EV_P_PIDNS, "pid namespace"}, {EV_P_NETNS, "network namespace"},
        {EV_P_MNTNS, "private root"},  {EV_P_UID, "uid 65534"},
        {EV_P_CG_PIDS, "cgroup pids"}, {EV_P_CG_MEM, "cgroup memory"},
        {EV_P_SECCOMP, "seccomp"},     {EV_P_RLIMITS, "rlimits"},
    };
    size_t used = 0;
    buf[0] = 0;
    /* First what the run had, then "missing: " and what it lacked. */
    for (int pass = 0; pass < 2; pass++) {
        int count = 0;
        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]) && used < n; i++) {
            if (((protect & names[i].bit) != 0) != (pass == 0))
                continue;
            const char *sep = count ? ", " : pass == 0 ? "" : used ? "; missing: " : "missing: ";
            used += (size_t)snprintf(buf + used, n - used, "%s%s", sep, names[i].name);
            count++;
        }
    }
}
