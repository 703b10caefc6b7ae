/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target: the mplex core (src/p2p/mplex.c) fed arbitrary peer
 * bytes in random pieces while a PRNG plays the application. Input layout
 * and checked properties: fuzz/mux_fuzz.h. */
#define FUZZ_KIND PL__MUX_MPLEX
#include "mux_fuzz.h"
