/* SPDX-License-Identifier: Apache-2.0 */
/* Multiaddrs (multiformats/multiaddr): binary and text forms of the
 * protocols pairlink knows: ip4, ip6, tcp, udp, dns, dns4, dns6, dnsaddr,
 * p2p (alias ipfs), ws, wss, tls, quic, quic-v1, p2p-circuit. Any other
 * protocol code is PL_ERR_P2P_MULTIADDR: its value's length could not be
 * known. No I/O. Private to the library. */
#ifndef PL_P2P_MULTIADDR_H
#define PL_P2P_MULTIADDR_H

#include "core/internal.h"
#include "pairlink/p2p.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PL__MA_MAX_BYTES 512 /* binary form */
#define PL__MA_TEXT_MAX 1024 /* text form, NUL excluded */
#define PL__MA_DNS_MAX 253   /* a DNS name in dns/dns4/dns6/dnsaddr */

enum {
    PL__MA_IP4 = 4,
    PL__MA_TCP = 6,
    PL__MA_IP6 = 41,
    PL__MA_DNS = 53,
    PL__MA_DNS4 = 54,
    PL__MA_DNS6 = 55,
    PL__MA_DNSADDR = 56,
    PL__MA_UDP = 273,
    PL__MA_P2P_CIRCUIT = 290,
    PL__MA_P2P = 421,
    PL__MA_TLS = 448,
    PL__MA_QUIC = 460,
    PL__MA_QUIC_V1 = 461,
    PL__MA_WS = 477,
    PL__MA_WSS = 478,
};

typedef struct pl__ma {
    size_t len;
    uint8_t b[PL__MA_MAX_BYTES];
} pl__ma;

/* One component of a binary multiaddr. */
typedef struct pl__ma_comp {
    uint32_t code;
    const uint8_t *value;
    size_t len;
} pl__ma_comp;

/* Text -> binary. Errors: PL_ERR_P2P_MULTIADDR (unknown protocol, bad
 * value, empty component, too long), PL_ERR_P2P_PEER_ID (a /p2p/ value). */
pl_err pl__ma_parse(pl__ma *ma, const char *text, size_t len);

/* Validate a binary multiaddr component by component. */
pl_err pl__ma_check(const uint8_t *b, size_t len);

/* Binary -> text in out (NUL-terminated). PL_ERR_P2P_MULTIADDR for an
 * invalid input, PL_ERR_BUFFER_TOO_SMALL. */
pl_err pl__ma_format(char *out, size_t cap, const uint8_t *b, size_t len);

/* Iterate: *off starts at 0; returns false at the end or on malformed
 * bytes (check first). */
bool pl__ma_next(const uint8_t *b, size_t len, size_t *off, pl__ma_comp *c);

/* Append a component to ma (value bytes as on the wire, without the length
 * prefix of variable-size values). PL_ERR_P2P_MULTIADDR when it does not
 * fit or the value has the wrong size. */
pl_err pl__ma_append(pl__ma *ma, uint32_t code, const uint8_t *value, size_t len);

/* What a TCP dialer needs from a multiaddr. */
typedef enum pl__ma_host_kind {
    PL__MA_HOST_IP4 = 1,
    PL__MA_HOST_IP6,
    PL__MA_HOST_DNS,  /* any family */
    PL__MA_HOST_DNS4, /* IPv4 only */
    PL__MA_HOST_DNS6, /* IPv6 only */
} pl__ma_host_kind;

typedef struct pl__ma_dial {
    pl__ma_host_kind kind;
    char host[PL__MA_DNS_MAX + 1]; /* dotted / colon text, or the DNS name */
    uint16_t port;
    pl_p2p_peer_id peer; /* len 0 when the address has no /p2p/ */
} pl__ma_dial;

/* Accepts exactly <ip4|ip6|dns|dns4|dns6>/tcp/<port>[/p2p/<id>]. Errors:
 * PL_ERR_P2P_TRANSPORT (ws, wss, tls, quic, udp, circuit: valid but not a
 * plain TCP address), PL_ERR_P2P_MULTIADDR (anything else). */
pl_err pl__ma_dial_target(pl__ma_dial *d, const uint8_t *b, size_t len);

/* /ip4|ip6/<addr>/tcp/<port> from raw address bytes (4 or 16) and a port. */
void pl__ma_from_ip_port(pl__ma *ma, const uint8_t *ip, size_t ip_len, uint16_t port);

#endif
