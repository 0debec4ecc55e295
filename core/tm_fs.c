/* tm_fs: directories, atomic writes, the workdir lock and content hashes. */
#include "tm_fs.h"

#include <errno.h>
#include <stdint.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "tm_err.h"
#include "tm_log.h"
#include "tm_mem.h"

#define HASH_READ_SIZE (1u << 20)
#define LOCK_NAME      "lock"

int tm_mkdirs(const char *path)
{
    if (!*path) {
        tm_log_error("cannot create a directory with an empty name");
        return TM_ERR_IO;
    }
    char *p = tm_xstrdup(path);
    int rc = TM_OK;
    /* Create each prefix in turn; EEXIST is fine as long as it is a directory in the end. */
    for (char *s = p + 1;; s++) {
        if (*s != '/' && *s != '\0')
            continue;
        char saved = *s;
        *s = '\0';
        if (mkdir(p, 0755) != 0 && errno != EEXIST) {
            tm_log_error("cannot create directory %s: %s", p, strerror(errno));
            rc = TM_ERR_IO;
            break;
        }
        *s = saved;
        if (saved == '\0')
            break;
    }
    if (rc == TM_OK) {
        struct stat st;
        if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
            tm_log_error("cannot create directory %s: %s", path,
                         errno ? strerror(errno) : "not a directory");
            rc = TM_ERR_IO;
        }
    }
    free(p);
    return rc;
}

/* The directory part of `path` ("." when there is none); caller frees. */
static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return tm_xstrdup(".");
    if (slash == path)
        return tm_xstrdup("/");
    return tm_xstrndup(path, (size_t)(slash - path));
}

static int write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int tm_write_atomic(const char *path, const void *data, size_t len)
{
    int rc = TM_ERR_IO;
    size_t tlen = strlen(path) + 32;
    char *tmp = tm_xmalloc(tlen);
    /* The pid keeps two processes writing the same file from sharing a temporary. */
    snprintf(tmp, tlen, "%s.tmp.%ld", path, (long)getpid());
    char *dir = dir_of(path);

    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        tm_log_error("cannot create %s: %s", tmp, strerror(errno));
        goto out;
    }
    if (write_all(fd, data, len) != 0) {
        tm_log_error("cannot write %s: %s", tmp, strerror(errno));
        goto out_unlink;
    }
    if (fsync(fd) != 0) {
        tm_log_error("cannot fsync %s: %s", tmp, strerror(errno));
        goto out_unlink;
    }
    if (close(fd) != 0) {
        fd = -1;
        tm_log_error("cannot close %s: %s", tmp, strerror(errno));
        goto out_unlink;
    }
    fd = -1;
    if (rename(tmp, path) != 0) {
        tm_log_error("cannot rename %s to %s: %s", tmp, path, strerror(errno));
        goto out_unlink;
    }
    /* The rename is durable only once the directory entry is on disk. */
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || fsync(dfd) != 0) {
        tm_log_error("cannot fsync directory %s: %s", dir, strerror(errno));
        if (dfd >= 0)
            close(dfd);
        goto out;
    }
    close(dfd);
    rc = TM_OK;
    goto out;

out_unlink:
    if (fd >= 0)
        close(fd);
    unlink(tmp);
out:
    free(dir);
    free(tmp);
    return rc;
}

int tm_read_file(const char *path, size_t max, char **data, size_t *len)
{
    *data = NULL;
    *len = 0;
    /* Keeps max + 1 and the doubling below from overflowing. */
    if (max > SIZE_MAX / 4)
        max = SIZE_MAX / 4;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        tm_log_error("cannot open %s: %s", path, strerror(errno));
        return TM_ERR_IO;
    }
    int rc = TM_OK;
    size_t cap = 0, n = 0;
    char *buf = NULL;
    struct stat st;
    /* The size from fstat is only a first guess (the file may change, or be a pipe); the reads
     * decide. */
    cap = 4096;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
        if ((uint64_t)st.st_size > max) {
            tm_log_error("%s: file is %lld bytes, over the limit of %zu", path,
                         (long long)st.st_size, max);
            rc = TM_ERR_TOOBIG;
            goto out;
        }
        cap = (size_t)st.st_size + 1;
    }
    if (cap > max + 1)
        cap = max + 1;
    buf = tm_xmalloc(cap + 1);
    for (;;) {
        if (n == cap) {
            if (cap > max) {
                tm_log_error("%s: file is over the limit of %zu bytes", path, max);
                rc = TM_ERR_TOOBIG;
                goto out;
            }
            cap = cap * 2 > max + 1 ? max + 1 : cap * 2;
            buf = tm_xreallocarray(buf, cap + 1, 1);
        }
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            tm_log_error("cannot read %s: %s", path, strerror(errno));
            rc = TM_ERR_IO;
            goto out;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    if (n > max) {
        tm_log_error("%s: file is over the limit of %zu bytes", path, max);
        rc = TM_ERR_TOOBIG;
        goto out;
    }
    buf[n] = '\0';
    *data = buf;
    *len = n;
    buf = NULL;
out:
    free(buf);
    close(fd);
    return rc;
}

int tm_lock_workdir(const char *dir)
{
    char *path = tm_path_join(dir, LOCK_NAME);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        tm_log_error("cannot open lock file %s: %s", path, strerror(errno));
        free(path);
        return TM_ERR_IO;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int err = errno;
        if (err == EWOULDBLOCK) {
            char text[32];
            ssize_t n = pread(fd, text, sizeof(text) - 1, 0);
            long pid = 0;
            if (n > 0) {
                text[n] = '\0';
                pid = strtol(text, NULL, 10);
            }
            if (pid > 0)
                tm_log_error("workdir %s is locked by another tokenmill process (pid %ld)", dir,
                             pid);
            else
                tm_log_error("workdir %s is locked by another tokenmill process", dir);
            close(fd);
            free(path);
            return TM_ERR_LOCKED;
        }
        tm_log_error("cannot lock %s: %s", path, strerror(err));
        close(fd);
        free(path);
        return TM_ERR_IO;
    }
    /* The pid is only informative (for the message above); the flock is the lock. */
    char text[32];
    int n = snprintf(text, sizeof(text), "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, text, (size_t)n, 0) != n)
        tm_log_warn("cannot write pid into %s: %s", path, strerror(errno));
    free(path);
    return fd;
}

void tm_unlock(int fd)
{
    if (fd < 0)
        return;
    flock(fd, LOCK_UN);
    close(fd);
}

int tm_hash_file_digest(const char *path, unsigned char digest[16])
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        tm_log_error("cannot open %s: %s", path, strerror(errno));
        return TM_ERR_IO;
    }
    int rc = TM_OK;
    char *buf = tm_xmalloc(HASH_READ_SIZE);
    XXH3_state_t *st = XXH3_createState();
    if (!st) {
        tm_log_error("out of memory hashing %s", path);
        rc = TM_ERR_NOMEM;
        goto out;
    }
    XXH3_128bits_reset(st);
    for (;;) {
        ssize_t n = read(fd, buf, HASH_READ_SIZE);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            tm_log_error("cannot read %s: %s", path, strerror(errno));
            rc = TM_ERR_IO;
            goto out;
        }
        if (n == 0)
            break;
        XXH3_128bits_update(st, buf, (size_t)n);
    }
    XXH128_hash_t h = XXH3_128bits_digest(st);
    /* Canonical (big-endian) order, the form xxhsum prints. */
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, h);
    memcpy(digest, c.digest, 16);
out:
    XXH3_freeState(st);
    free(buf);
    close(fd);
    return rc;
}

int tm_hash_file(const char *path, char hex[33])
{
    unsigned char digest[16];
    hex[0] = '\0';
    int rc = tm_hash_file_digest(path, digest);
    if (rc)
        return rc;
    for (int i = 0; i < 16; i++)
        snprintf(hex + 2 * i, 3, "%02x", digest[i]);
    return TM_OK;
}

char *tm_path_join(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    while (la > 1 && a[la - 1] == '/')
        la--;
    while (lb > 0 && b[0] == '/') {
        b++;
        lb--;
    }
    int sep = !(la > 0 && a[la - 1] == '/');
    if (la == 0)
        sep = 0;
    char *p = tm_xmalloc(la + (size_t)sep + lb + 1);
    memcpy(p, a, la);
    if (sep)
        p[la] = '/';
    memcpy(p + la + sep, b, lb);
    p[la + (size_t)sep + lb] = '\0';
    return p;
}
