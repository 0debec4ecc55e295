/* tm_utf8: repair of ill-formed UTF-8 (see tm_utf8.h). */
#include "tm_utf8.h"

#include "tm_err.h"

int tm_utf8_repair(const char *in, size_t n, struct tm_buf *out, uint64_t *repairs)
{
    static const char fffd[3] = {(char)0xef, (char)0xbf, (char)0xbd};
    const unsigned char *p = (const unsigned char *)in;
    size_t i = 0, run = 0; /* in[run..i) is well formed and not yet copied */
    int rc = TM_OK;
    while (i < n && rc == TM_OK) {
        if (p[i] < 0x80) {
            i++;
            continue;
        }
        size_t bad = 0, len = tm_utf8_seq(p + i, n - i, &bad);
        if (len) {
            i += len;
            continue;
        }
        rc = tm_buf_append(out, in + run, i - run);
        if (rc == TM_OK)
            rc = tm_buf_append(out, fffd, sizeof(fffd));
        if (repairs)
            (*repairs)++;
        i += bad;
        run = i;
    }
    if (rc == TM_OK)
        rc = tm_buf_append(out, in + run, n - run);
    return rc;
}
