/* ev_sandbox: running untrusted programs (the compiler on generated code, and the compiled
 * tests) so that nothing they do reaches the harness, the machine or other runs.
 *
 * Each run: the harness forks a keeper, which starts a new session and, where the kernel
 * allows, new pid, network, mount, IPC and UTS namespaces, then forks the program's process
 * (pid 1 of its namespace, so when it ends every process it left behind is killed). That
 * process builds a private root (read-only bind mounts of /usr and the merged-/usr symlinks,
 * /dev/null, /dev/zero and /dev/urandom, a tmpfs /tmp, the run's directory at /work, writable)
 * and chroots into it, so files outside the run's directory are not there; joins a pids and a
 * memory cgroup when the machine has cgroup v1 controllers the harness may write; drops to an
 * unprivileged uid and gid (nobody, 65534); sets rlimits (CPU seconds, address space, file
 * size, open files, processes); sets no_new_privs and a seccomp filter that kills the process
 * on networking, tracing, mounting, namespace, module, keyring, BPF and reboot system calls;
 * and execs. The harness reads its stdout and stderr through pipes, keeping at most a cap of
 * each, and kills the namespace (or the process group) at the wall-clock timeout.
 *
 * Every protection that could not be set up is recorded in the result (and skipped), never
 * silently: ev_sandbox_describe() names what a run had. Running as root is what makes the
 * namespaces, the chroot and the uid change possible; without root the run still gets rlimits,
 * seccomp and the timeout, and says so. */
#ifndef EV_SANDBOX_H
#define EV_SANDBOX_H

#include <stddef.h>

/* What a run may use. */
struct ev_limits {
    double wall_s;     /* wall-clock timeout, seconds */
    long cpu_s;        /* RLIMIT_CPU, seconds */
    size_t mem_bytes;  /* RLIMIT_AS, and the memory cgroup's limit */
    size_t file_bytes; /* RLIMIT_FSIZE: the largest file it may write */
    long nofile;       /* RLIMIT_NOFILE */
    long nproc;        /* processes: the pids cgroup's limit, and RLIMIT_NPROC */
    size_t out_cap;    /* bytes of stdout and of stderr kept */
};

/* The limits for running a compiled test: 10 s wall, 5 s CPU, 512 MiB, 16 MiB files, 64 open
 * files, 32 processes, 64 KiB of each output. */
void ev_limits_run(struct ev_limits *l);

/* The limits for a compiler: 60 s wall, 60 s CPU, 2 GiB, 64 MiB files, 256 open files, 64
 * processes, 64 KiB of each output. */
void ev_limits_compile(struct ev_limits *l);

/* The protections a run had (each 1 when set up). */
enum ev_protect {
    EV_P_PIDNS = 1 << 0,   /* own pid namespace: nothing outlives the run */
    EV_P_NETNS = 1 << 1,   /* own network namespace: no interfaces */
    EV_P_MNTNS = 1 << 2,   /* own mount namespace and the private root (chroot) */
    EV_P_UID = 1 << 3,     /* runs as an unprivileged uid */
    EV_P_CG_PIDS = 1 << 4, /* pids cgroup limit */
    EV_P_CG_MEM = 1 << 5,  /* memory cgroup limit */
    EV_P_SECCOMP = 1 << 6, /* seccomp filter */
    EV_P_RLIMITS = 1 << 7, /* rlimits */
};
#define EV_P_ALL 0xff

/* How a run ended. */
enum ev_end {
    EV_END_EXIT = 0,    /* exited; exit_code holds the status (0 is success) */
    EV_END_SIGNAL = 1,  /* killed by a signal (signal), other than the two below */
    EV_END_TIMEOUT = 2, /* past the wall-clock limit, or SIGXCPU (the CPU limit) */
    EV_END_BLOCKED = 3, /* killed by the seccomp filter (SIGSYS): a forbidden system call */
    EV_END_ERROR = 4,   /* the sandbox itself failed (see the log) */
};

struct ev_result {
    int end;          /* enum ev_end */
    int exit_code;    /* EV_END_EXIT */
    int signal;       /* EV_END_SIGNAL, EV_END_BLOCKED, EV_END_TIMEOUT by SIGXCPU */
    double wall_s;    /* how long it ran */
    unsigned protect; /* enum ev_protect bits the run had */
    char *out, *err;  /* captured stdout and stderr, NUL-terminated, owned (ev_result_release) */
    size_t out_len, err_len;
    int out_cut, err_cut; /* 1 when more was written than the cap */
};

void ev_result_release(struct ev_result *r);

/* Prepares the sandbox once per process: builds the seccomp program, checks which cgroup
 * controllers can be used. Thread-safe to call again (later calls return at once). TM_OK or
 * TM_ERR_INTERNAL (libseccomp failed; logged). */
int ev_sandbox_init(void);

/* Runs argv in directory `dir` (handed to the unprivileged uid; it is /work inside the private
 * root, and the working directory either way), so argv[0] and file arguments are absolute paths
 * under /usr (the same inside and out) or relative to the run's directory (./prog), with
 * limits `l` and stdin from /dev/null. `env` is the environment (NULL-terminated; NULL: PATH,
 * HOME=/work, TMPDIR=/tmp, LANG=C). Fills r (release it with ev_result_release() in every
 * case). Returns TM_OK when the run happened, whatever its end; TM_ERR_IO / TM_ERR_INTERNAL when
 * the sandbox could not start it (r->end EV_END_ERROR; logged). Safe from several threads at
 * once (each run forks its own processes; the child does only system calls until exec). */
int ev_sandbox_run(const char *dir, char *const argv[], char *const env[],
                   const struct ev_limits *l, struct ev_result *r);

/* The protections named in words, e.g. "pid+net+mount namespaces, uid 65534, cgroup pids and
 * memory, seccomp, rlimits", and what is missing ("missing: cgroup memory"), into buf[n]. */
void ev_sandbox_describe(unsigned protect, char *buf, size_t n);

#endif
