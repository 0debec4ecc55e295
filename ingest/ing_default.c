/* ing_default: the embedded default corpus, real files found on every Debian or Ubuntu system
 * (README "Embedded default corpus"): license texts and package copyright files (text, rich in
 * near-duplicates), /usr/include (C and C++ code), English man pages (roff reduced to text),
 * and the generated math set. */
#include <glob.h>
#include <string.h>
#include <sys/stat.h>

#include "../core/tm_log.h"
#include "../core/tm_mem.h"
#include "ing_run.h"

static const char *const default_patterns[] = {
    "/usr/share/common-licenses",
    "/usr/share/doc/*/copyright",
    "/usr/include",
    "/usr/share/man/man[1-8]",
};

char **ing_default_inputs(int *count)
{
    size_t n = 0, cap = 64;
    char **out = tm_xmalloc(cap * sizeof(*out));
    for (size_t i = 0; i < sizeof(default_patterns) / sizeof(default_patterns[0]); i++) {
        glob_t g;
        int rc = glob(default_patterns[i], 0, NULL, &g);
        if (rc != 0) {
            tm_log_warn("default corpus: %s not found on this system; skipped",
                        default_patterns[i]);
            continue;
        }
        for (size_t j = 0; j < g.gl_pathc; j++) {
            if (n + 2 > cap) {
                cap *= 2;
                out = tm_xreallocarray(out, cap, sizeof(*out));
            }
            out[n++] = tm_xstrdup(g.gl_pathv[j]);
        }
        globfree(&g);
    }
    out[n++] = tm_xstrdup(ING_MATH_INPUT);
    *count = (int)n;
    return out;
}
