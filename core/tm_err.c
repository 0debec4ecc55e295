/* tm_err: names and descriptions of the error codes, one table indexed by -err. */
#include "tm_err.h"

#include <stddef.h>

struct err_info {
    const char *name;
    const char *text;
};

/* Indexed by -code; the order must follow enum tm_err. */
static const struct err_info err_table[] = {
    {"ok", "ok"},
    {"usage", "usage error"},
    {"nomem", "out of memory"},
    {"io", "input/output error"},
    {"format", "malformed data"},
    {"version", "unsupported format version"},
    {"db", "database error"},
    {"mapfull", "database map full"},
    {"toobig", "size limit exceeded"},
    {"notfound", "not found"},
    {"locked", "workdir locked by another process"},
    {"partial", "finished with errors in some inputs"},
    {"unsupported", "unsupported feature or format"},
    {"internal", "internal error"},
};

#define ERR_COUNT (sizeof(err_table) / sizeof(err_table[0]))

static const struct err_info *err_lookup(int err)
{
    /* Compared before negating: -INT_MIN would overflow. */
    if (err > 0 || err <= -(int)ERR_COUNT)
        return NULL;
    return &err_table[-err];
}

const char *tm_strerror(int err)
{
    const struct err_info *e = err_lookup(err);
    return e ? e->text : "unknown error";
}

const char *tm_errname(int err)
{
    const struct err_info *e = err_lookup(err);
    return e ? e->name : "unknown";
}
