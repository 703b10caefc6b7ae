/* SPDX-License-Identifier: Apache-2.0 */
/* PayloadV2 (RFC 35 "public keys serialization"), laid out as js-noise:
 * nametag[16] | protocol_id | hs_len | keys | LE64 transport_len | transport. */
#include "noise/noise_internal.h"

#include <stdlib.h>
#include <string.h>

#define HEADER_BYTES (PL_NOISE_NAMETAG_BYTES + 1 + 1)
#define KEY_CLEAR_BYTES (1 + PL_NOISE_KEY_BYTES)
#define KEY_ENC_BYTES (1 + PL_NOISE_KEY_BYTES + PL_NOISE_TAG_BYTES)

static bool known_protocol(uint8_t id) {
    return id == PL_NOISE_PROTOCOL_TRANSPORT || id == PL_NOISE_PROTOCOL_CHACHAPOLY ||
           pl__noise_pattern_lookup((pl_noise_pattern)id) != NULL;
}

static bool is_handshake(uint8_t id) {
    return pl__noise_pattern_lookup((pl_noise_pattern)id) != NULL;
}

size_t pl__noise_payload_size(size_t hs_bytes, size_t transport_len) {
    return HEADER_BYTES + hs_bytes + 8 + transport_len;
}

pl_err pl_noise_payload_parse(pl_noise_payload *out, const uint8_t *wire, size_t len) {
    PL_REQUIRE(out && (wire || len == 0));
    memset(out, 0, sizeof *out);
    if (len > PL_NOISE_MAX_WIRE) return PL_ERR_TOO_LARGE;
    if (len < HEADER_BYTES + 8) return PL_ERR_NOISE_PAYLOAD;

    pl_noise_payload p;
    memset(&p, 0, sizeof p);
    size_t i = 0;
    memcpy(p.nametag, wire, PL_NOISE_NAMETAG_BYTES);
    i += PL_NOISE_NAMETAG_BYTES;
    p.protocol_id = wire[i++];
    if (!known_protocol(p.protocol_id)) return PL_ERR_NOISE_PROTOCOL_ID;
    size_t hs_len = wire[i++];
    if (hs_len > len - i - 8) return PL_ERR_NOISE_PAYLOAD;
    if (hs_len && !is_handshake(p.protocol_id)) return PL_ERR_NOISE_PAYLOAD;

    size_t end = i + hs_len;
    while (i < end) {
        uint8_t flag = wire[i];
        size_t klen = flag == 0 ? KEY_CLEAR_BYTES : flag == 1 ? KEY_ENC_BYTES : 0;
        if (klen == 0 || klen > end - i || p.nkeys == PL_NOISE_MAX_HS_KEYS)
            return PL_ERR_NOISE_PAYLOAD;
        p.keys[p.nkeys].flag = flag;
        memcpy(p.keys[p.nkeys].data, wire + i + 1, klen - 1);
        p.nkeys++;
        i += klen;
    }

    uint64_t tlen = 0;
    for (int b = 0; b < 8; b++) tlen |= (uint64_t)wire[i + b] << (8 * b);
    i += 8;
    /* Exactly the remaining bytes: js-noise ignores trailing bytes, but
     * nothing it writes has any, and a unique encoding is easier to trust. */
    if (tlen != (uint64_t)(len - i)) return PL_ERR_NOISE_PAYLOAD;
    p.transport = wire + i;
    p.transport_len = (size_t)tlen;
    *out = p;
    return PL_OK;
}

pl_err pl_noise_payload_serialize(uint8_t **wire, size_t *len, const pl_noise_payload *p) {
    PL_REQUIRE(wire && len && p && (p->transport || p->transport_len == 0));
    *wire = NULL;
    *len = 0;
    if (!known_protocol(p->protocol_id)) return PL_ERR_NOISE_PROTOCOL_ID;
    if (p->nkeys > PL_NOISE_MAX_HS_KEYS) return PL_ERR_NOISE_PAYLOAD;
    if (p->nkeys && !is_handshake(p->protocol_id)) return PL_ERR_NOISE_PAYLOAD;
    size_t hs_len = 0;
    for (size_t k = 0; k < p->nkeys; k++) {
        if (p->keys[k].flag > 1) return PL_ERR_NOISE_PAYLOAD;
        hs_len += p->keys[k].flag ? KEY_ENC_BYTES : KEY_CLEAR_BYTES;
    }
    if (hs_len > 255) return PL_ERR_NOISE_PAYLOAD;
    if (p->transport_len > PL_NOISE_MAX_WIRE) return PL_ERR_TOO_LARGE;
    size_t total = pl__noise_payload_size(hs_len, p->transport_len);
    if (total > PL_NOISE_MAX_WIRE) return PL_ERR_TOO_LARGE;

    uint8_t *buf = malloc(total);
    if (!buf) return PL_ERR_NOMEM;
    size_t i = 0;
    memcpy(buf, p->nametag, PL_NOISE_NAMETAG_BYTES);
    i += PL_NOISE_NAMETAG_BYTES;
    buf[i++] = p->protocol_id;
    buf[i++] = (uint8_t)hs_len;
    for (size_t k = 0; k < p->nkeys; k++) {
        size_t klen = p->keys[k].flag ? KEY_ENC_BYTES : KEY_CLEAR_BYTES;
        buf[i] = p->keys[k].flag;
        memcpy(buf + i + 1, p->keys[k].data, klen - 1);
        i += klen;
    }
    uint64_t tlen = p->transport_len;
    for (int b = 0; b < 8; b++) buf[i++] = (uint8_t)(tlen >> (8 * b));
    if (p->transport_len) memcpy(buf + i, p->transport, p->transport_len);
    *wire = buf;
    *len = total;
    return PL_OK;
}
