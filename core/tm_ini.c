/* tm_ini: INI settings files and --set overrides (see tm_ini.h). */
#include "tm_ini.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ini.h>

#include "tm_err.h"
#include "tm_fs.h"
#include "tm_log.h"
#include "tm_mem.h"
#include "tm_opt.h"

/* Settings files are small; a bigger one is a mistake (a corpus named by accident). */
#define INI_MAX (1u << 20)

struct parse_ctx {
    tm_ini_set_fn fn;
    void *ctx;
    char err[256];
    int failed;
};

static int handler(void *user, const char *section, const char *name, const char *value)
{
    struct parse_ctx *c = user;
    char err[256];
    if (!section[0])
        snprintf(err, sizeof err, "'%s' is outside a section", name);
    else if (!value)
        snprintf(err, sizeof err, "'%s' has no value", name);
    else if (c->fn(c->ctx, section, name, value, err, sizeof err) == TM_OK)
        return 1;
    if (!c->failed)
        snprintf(c->err, sizeof c->err, "%s", err);
    c->failed = 1;
    return 0;
}

int tm_ini_parse(const char *text, size_t len, const char *name, tm_ini_set_fn fn, void *ctx)
{
    if (memchr(text, '\0', len)) {
        tm_log_error("%s: settings hold a NUL byte", name);
        return TM_ERR_USAGE;
    }
    char *copy = tm_xstrndup(text, len);
    struct parse_ctx c = {.fn = fn, .ctx = ctx};
    int line = ini_parse_string(copy, handler, &c);
    free(copy);
    if (line == 0 && !c.failed)
        return TM_OK;
    if (line > 0)
        tm_log_error("%s:%d: %s", name, line,
                     c.failed ? c.err : "not an INI line (want [section] or key = value)");
    else
        tm_log_error("%s: %s", name, c.failed ? c.err : "cannot parse");
    return TM_ERR_USAGE;
}

int tm_ini_load(const char *path, tm_ini_set_fn fn, void *ctx)
{
    char *data;
    size_t len;
    int rc = tm_read_file(path, INI_MAX, &data, &len);
    if (rc)
        return rc;
    rc = tm_ini_parse(data, len, path, fn, ctx);
    free(data);
    return rc;
}

int tm_ini_apply_sets(const struct tm_strlist *sets, const char *what, tm_ini_set_fn fn, void *ctx)
{
    for (size_t i = 0; i < sets->count; i++) {
        const char *s = sets->items[i];
        const char *dot = strchr(s, '.'), *eq = strchr(s, '=');
        if (!dot || !eq || dot > eq) {
            tm_log_error("%s '%s': want SECTION.KEY=VALUE", what, s);
            return TM_ERR_USAGE;
        }
        char *section = tm_xstrndup(s, (size_t)(dot - s));
        char *key = tm_xstrndup(dot + 1, (size_t)(eq - dot - 1));
        char err[256];
        int rc = fn(ctx, section, key, eq + 1, err, sizeof err);
        free(section);
        free(key);
        if (rc) {
            tm_log_error("%s '%s': %s", what, s, err);
            return TM_ERR_USAGE;
        }
    }
    return TM_OK;
}

int tm_parse_bool(const char *v, int *out)
{
    if (!strcmp(v, "on") || !strcmp(v, "true") || !strcmp(v, "yes") || !strcmp(v, "1"))
        *out = 1;
    else if (!strcmp(v, "off") || !strcmp(v, "false") || !strcmp(v, "no") || !strcmp(v, "0"))
        *out = 0;
    else
        return -1;
    return 0;
}
