/* ddp_minhash_int.h: test hooks of ddp_minhash, not part of the public contract. */
#ifndef DDP_MINHASH_INT_H
#define DDP_MINHASH_INT_H

/* With on != 0, ddp_signature() takes the portable permutation loop even where the CPU has AVX2
 * (and ddp_have_simd() answers 0), so tests can compare both paths on one machine. Process-wide
 * and not synchronized: call it only while no other thread computes signatures. */
void ddp_minhash_force_portable(int on);

#endif
