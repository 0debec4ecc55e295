/* tm_fs: file-system helpers: directories, atomic writes, the workdir lock, content hashes. */
#ifndef TM_FS_H
#define TM_FS_H

#include <stddef.h>
#include <stdint.h>

/* mkdir -p with mode 0755. TM_OK or TM_ERR_IO (logged with the path). */
int tm_mkdirs(const char *path);

/* Writes `len` bytes to `path` atomically: a temporary file in the same directory, fsync,
 * rename, fsync of the directory. Readers see the old file or the new one, never a mix. */
int tm_write_atomic(const char *path, const void *data, size_t len);

/* Reads a whole file of at most `max` bytes into a malloc'd buffer (NUL-terminated; caller
 * frees). TM_ERR_IO, TM_ERR_TOOBIG when larger than max. */
int tm_read_file(const char *path, size_t max, char **data, size_t *len);

/* Takes the exclusive lock of workdir `dir` (a flock on dir/lock, created if missing) without
 * waiting. Returns the lock's file descriptor (>= 0), TM_ERR_LOCKED when another process holds
 * it (logged, naming the holder's pid when known), or TM_ERR_IO. The lock is released by
 * tm_unlock() or when the process dies, even by kill -9. */
int tm_lock_workdir(const char *dir);
void tm_unlock(int fd);

/* The xxh3-128 of a file's content, streamed in 1 MiB reads; hex is 32 lowercase digits plus a
 * NUL. TM_OK or TM_ERR_IO. */
int tm_hash_file(const char *path, char hex[33]);
/* The same hash as 16 bytes in canonical (big-endian) order, as stored in input records. */
int tm_hash_file_digest(const char *path, unsigned char digest[16]);

/* Joins two path parts with one '/'; caller frees. */
char *tm_path_join(const char *a, const char *b);

#endif
