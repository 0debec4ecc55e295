/* tm_ini: settings files (INI, read with inih) and --set overrides, for the stages whose
 * settings have sections (filter: per domain and lexicons; dedup: global and per domain).
 *
 * A stage gives one function that applies a key: the same function serves the file and
 * `--set SECTION.KEY=VALUE`, so both accept exactly the same settings. */
#ifndef TM_INI_H
#define TM_INI_H

#include <stddef.h>

struct tm_strlist;

/* Applies `value` to `key` in `section`; TM_OK, or TM_ERR_USAGE with the reason in err[errlen]
 * (without file or line, which the caller adds). */
typedef int (*tm_ini_set_fn)(void *ctx, const char *section, const char *key, const char *value,
                             char *err, size_t errlen);

/* Parses INI text (`name` for messages) and applies every key. The first problem is logged as
 * "name:line: reason" (a key outside a section, a line that is no INI, or what fn refused) and
 * gives TM_ERR_USAGE; NUL bytes are refused. */
int tm_ini_parse(const char *text, size_t len, const char *name, tm_ini_set_fn fn, void *ctx);
/* tm_ini_parse on a file of at most 1 MiB: TM_OK, TM_ERR_USAGE, TM_ERR_IO, TM_ERR_TOOBIG. */
int tm_ini_load(const char *path, tm_ini_set_fn fn, void *ctx);
/* Applies "SECTION.KEY=VALUE" overrides in order (`what` names the option in messages, e.g.
 * "--set"). TM_OK or TM_ERR_USAGE (logged). */
int tm_ini_apply_sets(const struct tm_strlist *sets, const char *what, tm_ini_set_fn fn, void *ctx);
/* on/true/yes/1 and off/false/no/0: 0 with *out set, or -1. */
int tm_parse_bool(const char *v, int *out);

#endif
