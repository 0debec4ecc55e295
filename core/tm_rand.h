/* tm_rand: a small deterministic pseudo-random generator for reproducible choices (generated
 * data sets, samples). Not for anything that must be unpredictable. */
#ifndef TM_RAND_H
#define TM_RAND_H

#include <stdint.h>

/* SplitMix64 (Steele, Lea and Flood, "Fast splittable pseudorandom number generators", OOPSLA
 * 2014; the reference code is Vigna's splitmix64.c): advances *state by the golden-ratio
 * increment 0x9e3779b97f4a7c15 and returns the state run through the finalizer (xor-shift 30,
 * multiply by 0xbf58476d1ce4e5b9, xor-shift 27, multiply by 0x94d049bb133111eb, xor-shift 31).
 * Only fixed-width unsigned arithmetic, so the sequence for a given seed is the same on every
 * platform and compiler, and never depends on libc's rand(). Any seed is valid, 0 included.
 * `state` is the caller's; it is read and updated, nothing else is kept, so separate states
 * may be used from separate threads. */
uint64_t tm_splitmix64(uint64_t *state);

#endif
