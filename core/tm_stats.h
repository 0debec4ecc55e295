/* tm_stats: statistics as JSON (cJSON), written by --stats-json FILE.
 *
 * Commands build a cJSON object with these helpers; tm_stats_write() writes it atomically
 * (temporary file, fsync, rename), so a reader never sees half a file. */
#ifndef TM_STATS_H
#define TM_STATS_H

#include <stdint.h>
#include <cjson/cJSON.h>

/* Returns the child object `name` of `obj`, creating it when missing. Never NULL (aborts on
 * allocation failure, like tm_xmalloc). */
cJSON *tm_stats_obj(cJSON *obj, const char *name);
/* Adds `delta` to the integer counter `name` (created at 0). Counters are stored as doubles by
 * cJSON and stay exact up to 2^53. */
void tm_stats_add(cJSON *obj, const char *name, int64_t delta);
/* Sets number / string field `name`, replacing an old value. */
void tm_stats_set_num(cJSON *obj, const char *name, double value);
void tm_stats_set_str(cJSON *obj, const char *name, const char *value);
/* Reads counter `name` (0 when missing). */
int64_t tm_stats_get(const cJSON *obj, const char *name);

/* Writes `stats` as pretty JSON to `path` atomically. TM_OK or TM_ERR_IO (logged). */
int tm_stats_write(const cJSON *stats, const char *path);

#endif
