/* tm_stats: small cJSON helpers for command statistics. */
#include "tm_stats.h"

#include <stdlib.h>
#include <string.h>

#include "tm_err.h"
#include "tm_fs.h"
#include "tm_log.h"
#include "tm_mem.h"

static _Noreturn void stats_oom(void)
{
    tm_log_error("out of memory building statistics");
    abort();
}

cJSON *tm_stats_obj(cJSON *obj, const char *name)
{
    cJSON *child = cJSON_GetObjectItemCaseSensitive(obj, name);
    if (cJSON_IsObject(child))
        return child;
    if (child)
        cJSON_DeleteItemFromObjectCaseSensitive(obj, name);
    child = cJSON_AddObjectToObject(obj, name);
    if (!child)
        stats_oom();
    return child;
}

void tm_stats_set_num(cJSON *obj, const char *name, double value)
{
    cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, name);
    if (cJSON_IsNumber(item)) {
        cJSON_SetNumberValue(item, value);
        return;
    }
    if (item)
        cJSON_DeleteItemFromObjectCaseSensitive(obj, name);
    if (!cJSON_AddNumberToObject(obj, name, value))
        stats_oom();
}

void tm_stats_set_str(cJSON *obj, const char *name, const char *value)
{
    cJSON *item = cJSON_CreateString(value);
    if (!item)
        stats_oom();
    if (cJSON_GetObjectItemCaseSensitive(obj, name)) {
        if (!cJSON_ReplaceItemInObjectCaseSensitive(obj, name, item))
            stats_oom();
    } else if (!cJSON_AddItemToObject(obj, name, item)) {
        stats_oom();
    }
}

void tm_stats_add(cJSON *obj, const char *name, int64_t delta)
{
    tm_stats_set_num(obj, name, (double)(tm_stats_get(obj, name) + delta));
}

int64_t tm_stats_get(const cJSON *obj, const char *name)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, name);
    if (!cJSON_IsNumber(item))
        return 0;
    return (int64_t)item->valuedouble;
}

int tm_stats_write(const cJSON *stats, const char *path)
{
    char *text = cJSON_Print(stats);
    if (!text) {
        tm_log_error("cannot format statistics for %s", path);
        return TM_ERR_IO;
    }
    size_t len = strlen(text);
    /* cJSON_Print leaves no trailing newline; a text file should end with one. Copied rather
     * than realloc'd, since cJSON's allocator hooks may differ from ours. */
    char *buf = tm_xmalloc(len + 1);
    memcpy(buf, text, len);
    buf[len] = '\n';
    cJSON_free(text);
    int rc = tm_write_atomic(path, buf, len + 1);
    free(buf);
    return rc == TM_OK ? TM_OK : TM_ERR_IO;
}
