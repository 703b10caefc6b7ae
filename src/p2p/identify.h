/* SPDX-License-Identifier: Apache-2.0 */
/* identify /ipfs/id/1.0.0 and ping /ipfs/ping/1.0.0 (libp2p/specs identify,
 * ping): message codecs and the small state of a ping, without I/O. The
 * connection core (conn.c) answers both automatically and requests
 * identify on every new connection. Also the length-prefixed message
 * framing (uvarint(len) | message) both use. Private to the library. */
#ifndef PL_P2P_IDENTIFY_H
#define PL_P2P_IDENTIFY_H

#include "core/internal.h"
#include "p2p/multiaddr.h"
#include "pairlink/p2p.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PL__ID_PROTOCOL "/ipfs/id/1.0.0"
#define PL__ID_PROTOCOL_VERSION "ipfs/0.1.0"
/* Bounds on a received Identify (js-libp2p sends at most 8 KiB). */
#define PL__ID_MAX_MESSAGE (64u * 1024u)
#define PL__ID_MAX_PROTOCOLS 256
#define PL__ID_MAX_ADDRS 64
#define PL__ID_MAX_STRING 1024 /* agentVersion, protocolVersion */

#define PL__PING_PROTOCOL "/ipfs/ping/1.0.0"
#define PL__PING_SIZE 32

/* ---- length-prefixed messages ----------------------------------------------- */

/* Find one uvarint(len) | message at the start of buf. PL_OK with *msg,
 * *msg_len and *used (prefix + message) when complete; PL_ERR_TRUNCATED
 * when more bytes are needed (outputs NULL / 0); PL_ERR_TOO_LARGE when the
 * announced length exceeds max; PL_ERR_BAD_VARINT. */
pl_err pl__lp_parse(const uint8_t *buf, size_t len, size_t max, const uint8_t **msg,
                    size_t *msg_len, size_t *used);

/* ---- identify ------------------------------------------------------------------ */

/* What we tell a peer. */
typedef struct pl__identify_local {
    const uint8_t *public_key; /* marshalled PublicKey */
    size_t public_key_len;
    const pl__ma *listen_addrs;
    size_t nlisten_addrs;
    const char *const *protocols;
    size_t nprotocols;
    const pl__ma *observed_addr; /* the peer's address as we see it; NULL: none */
    const char *agent_version;
} pl__identify_local;

/* The length-prefixed Identify (protocolVersion "ipfs/0.1.0"); *out:
 * caller frees. PL_ERR_NOMEM. */
pl_err pl__identify_encode(const pl__identify_local *l, uint8_t **out, size_t *len);

/* A received Identify (the message, without its length prefix), as one
 * allocation whose public view is `info`; freed with pl__identify_free.
 * Protocol ids that could not be negotiated (not UTF-8, a newline, too
 * long) and addresses we cannot parse are left out rather than failing the
 * connection. When `peer` is given and the message carries a public key,
 * the key must be that peer's. Errors: PL_ERR_TOO_LARGE (the bounds
 * above), PL_ERR_P2P_PROTOBUF (malformed, or a string that is not UTF-8),
 * PL_ERR_P2P_PEER_MISMATCH, PL_ERR_NOMEM. */
typedef struct pl__identify_info {
    pl_p2p_identify info;
} pl__identify_info;

pl_err pl__identify_decode(pl__identify_info **out, const uint8_t *msg, size_t len,
                           const pl_p2p_peer_id *peer);
void pl__identify_free(pl__identify_info *i);

/* ---- ping ------------------------------------------------------------------------ */

/* One round: the 32 random bytes sent and what came back so far. */
typedef struct pl__ping {
    uint8_t sent[PL__PING_SIZE];
    uint8_t got[PL__PING_SIZE];
    size_t got_len;
} pl__ping;

void pl__ping_start(pl__ping *p, const uint8_t random[PL__PING_SIZE]);
/* Bytes of the answer; *done once all 32 are in. *used gets how many were
 * taken (the rest would be a next round's). PL_ERR_P2P_FRAME when the echo
 * differs from what was sent. */
pl_err pl__ping_recv(pl__ping *p, const uint8_t *data, size_t len, size_t *used, bool *done);

#endif
