/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target: PayloadV2 parsing. Whatever parses must serialize back
 * to the same bytes (the encoding is unique), and nothing may crash. */
#include "pairlink/noise.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    pl_noise_payload p;
    if (pl_noise_payload_parse(&p, data, size) != PL_OK) return 0;
    if (p.nkeys > PL_NOISE_MAX_HS_KEYS || p.transport_len > size) abort();
    uint8_t *wire = NULL;
    size_t len = 0;
    if (pl_noise_payload_serialize(&wire, &len, &p) != PL_OK) abort();
    if (len != size || memcmp(wire, data, size) != 0) abort();
    free(wire);
    return 0;
}
