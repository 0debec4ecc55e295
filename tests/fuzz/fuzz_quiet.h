/* fuzz_quiet.h: for targets whose inputs are refused with a logged message most of the time;
 * the messages are expected, not news, and would flood the fuzzer's output. */
#ifndef FUZZ_QUIET_H
#define FUZZ_QUIET_H

#include <stdio.h>

#include "tm_log.h"

/* Sends log output to /dev/null, once. */
static inline void fuzz_quiet_logs(void)
{
    static FILE *quiet;
    if (!quiet) {
        quiet = fopen("/dev/null", "w");
        if (quiet)
            tm_log_set_stream(quiet, 0);
    }
}

#endif
