/* tm_err: error codes shared by every module.
 *
 * Library code returns one of these codes and logs the detail (file, offset, key) at the point
 * of failure; only main.c maps them to process exit codes. TM_OK is zero, every error is
 * negative, so `if (rc < 0)` and `if (rc)` both read naturally. */
#ifndef TM_ERR_H
#define TM_ERR_H

enum tm_err {
    TM_OK = 0,
    TM_ERR_USAGE = -1,        /* bad command line, bad option value, bad configuration */
    TM_ERR_NOMEM = -2,        /* allocation failed */
    TM_ERR_IO = -3,           /* a read, write, open or stat failed; errno was logged */
    TM_ERR_FORMAT = -4,       /* input or stored data is malformed */
    TM_ERR_VERSION = -5,      /* stored data carries a format version this build cannot read */
    TM_ERR_DB = -6,           /* LMDB reported an error other than a full map */
    TM_ERR_MAPFULL = -7,      /* LMDB map full; tm_db_write() grows the map and retries */
    TM_ERR_TOOBIG = -8,       /* an input-driven size passed its configured cap */
    TM_ERR_NOTFOUND = -9,     /* a key, document or file does not exist */
    TM_ERR_LOCKED = -10,      /* another process holds the workdir lock */
    TM_ERR_PARTIAL = -11,     /* the command finished, but some inputs failed and were skipped */
    TM_ERR_UNSUPPORTED = -12, /* a feature or format this build does not handle */
    TM_ERR_INTERNAL = -13,    /* a broken invariant: a bug in tokenmill */
};

/* Returns a static, human-readable description of `err` ("ok" for TM_OK). Never NULL; unknown
 * values give "unknown error". */
const char *tm_strerror(int err);

/* Returns the stable lower-case name of `err` ("ok", "usage", "nomem", ...), as written into
 * statistics JSON. Never NULL. */
const char *tm_errname(int err);

#endif
