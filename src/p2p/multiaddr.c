/* SPDX-License-Identifier: Apache-2.0 */
/* Multiaddr codec: see multiaddr.h. */
#include "p2p/multiaddr.h"

#include "p2p/key.h"
#include "pairlink/codec.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

typedef enum val_kind { V_NONE, V_IP4, V_IP6, V_PORT, V_DNS, V_P2P } val_kind;

typedef struct proto_def {
    uint32_t code;
    const char *name;
    val_kind kind;
} proto_def;

static const proto_def protos[] = {
    {PL__MA_IP4, "ip4", V_IP4},
    {PL__MA_TCP, "tcp", V_PORT},
    {PL__MA_IP6, "ip6", V_IP6},
    {PL__MA_DNS, "dns", V_DNS},
    {PL__MA_DNS4, "dns4", V_DNS},
    {PL__MA_DNS6, "dns6", V_DNS},
    {PL__MA_DNSADDR, "dnsaddr", V_DNS},
    {PL__MA_UDP, "udp", V_PORT},
    {PL__MA_P2P_CIRCUIT, "p2p-circuit", V_NONE},
    {PL__MA_P2P, "p2p", V_P2P},
    {PL__MA_TLS, "tls", V_NONE},
    {PL__MA_QUIC, "quic", V_NONE},
    {PL__MA_QUIC_V1, "quic-v1", V_NONE},
    {PL__MA_WS, "ws", V_NONE},
    {PL__MA_WSS, "wss", V_NONE},
};

static const proto_def *by_code(uint64_t code) {
    for (size_t i = 0; i < PL_ARRAY_LEN(protos); i++)
        if (protos[i].code == code) return &protos[i];
    return NULL;
}

static const proto_def *by_name(const char *s, size_t n) {
    /* "ipfs" is the old name of p2p; formatting always writes p2p. */
    if (n == 4 && !memcmp(s, "ipfs", 4)) return by_code(PL__MA_P2P);
    for (size_t i = 0; i < PL_ARRAY_LEN(protos); i++)
        if (strlen(protos[i].name) == n && !memcmp(protos[i].name, s, n)) return &protos[i];
    return NULL;
}

static size_t fixed_size(val_kind k) {
    switch (k) {
    case V_NONE:
        return 0;
    case V_IP4:
        return 4;
    case V_IP6:
        return 16;
    case V_PORT:
        return 2;
    default:
        return SIZE_MAX; /* variable, length-prefixed */
    }
}

static bool dns_ok(const uint8_t *s, size_t n) {
    if (n == 0 || n > PL__MA_DNS_MAX) return false;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '.' || c == '_';
        if (!ok) return false;
    }
    return true;
}

static pl_err value_check(const proto_def *p, const uint8_t *v, size_t len) {
    if (p->kind == V_DNS) return dns_ok(v, len) ? PL_OK : PL_ERR_P2P_MULTIADDR;
    if (p->kind == V_P2P) return pl__p2p_peer_id_check(v, len);
    return len == fixed_size(p->kind) ? PL_OK : PL_ERR_P2P_MULTIADDR;
}

/* One component at b[*off]: code, value. */
static pl_err read_comp(const uint8_t *b, size_t len, size_t *off, const proto_def **pd,
                        pl__ma_comp *c) {
    uint64_t code = 0, vlen = 0;
    size_t used = 0;
    if (pl_uvarint_decode(&code, &used, b + *off, len - *off) != PL_OK) return PL_ERR_P2P_MULTIADDR;
    const proto_def *p = by_code(code);
    if (!p) return PL_ERR_P2P_MULTIADDR;
    size_t o = *off + used;
    size_t fs = fixed_size(p->kind);
    if (fs == SIZE_MAX) {
        if (pl_uvarint_decode(&vlen, &used, b + o, len - o) != PL_OK) return PL_ERR_P2P_MULTIADDR;
        o += used;
    } else {
        vlen = fs;
    }
    if (vlen > len - o) return PL_ERR_P2P_MULTIADDR;
    PL_TRY(value_check(p, b + o, (size_t)vlen));
    c->code = p->code;
    c->value = b + o;
    c->len = (size_t)vlen;
    *pd = p;
    *off = o + (size_t)vlen;
    return PL_OK;
}

pl_err pl__ma_check(const uint8_t *b, size_t len) {
    PL_REQUIRE(b || len == 0);
    if (len == 0 || len > PL__MA_MAX_BYTES) return PL_ERR_P2P_MULTIADDR;
    size_t off = 0;
    while (off < len) {
        const proto_def *p;
        pl__ma_comp c;
        pl_err e = read_comp(b, len, &off, &p, &c);
        if (e != PL_OK) return e == PL_ERR_P2P_PEER_ID ? PL_ERR_P2P_MULTIADDR : e;
    }
    return PL_OK;
}

bool pl__ma_next(const uint8_t *b, size_t len, size_t *off, pl__ma_comp *c) {
    PL_REQUIRE(b && off && c);
    if (*off >= len) return false;
    const proto_def *p;
    return read_comp(b, len, off, &p, c) == PL_OK;
}

pl_err pl__ma_append(pl__ma *ma, uint32_t code, const uint8_t *value, size_t len) {
    PL_REQUIRE(ma && (value || len == 0));
    const proto_def *p = by_code(code);
    if (!p || value_check(p, value, len) != PL_OK) return PL_ERR_P2P_MULTIADDR;
    uint8_t hdr[2 * PL_UVARINT_MAX_BYTES];
    size_t h = pl_uvarint_encode(hdr, code);
    if (fixed_size(p->kind) == SIZE_MAX) h += pl_uvarint_encode(hdr + h, len);
    if (ma->len + h + len > PL__MA_MAX_BYTES) return PL_ERR_P2P_MULTIADDR;
    memcpy(ma->b + ma->len, hdr, h);
    if (len) memcpy(ma->b + ma->len + h, value, len);
    ma->len += h + len;
    return PL_OK;
}

static pl_err parse_value(const proto_def *p, const char *s, size_t n, uint8_t *v, size_t *vlen) {
    char tmp[PL__MA_DNS_MAX + 1];
    switch (p->kind) {
    case V_IP4:
    case V_IP6:
        if (n == 0 || n >= sizeof tmp) return PL_ERR_P2P_MULTIADDR;
        memcpy(tmp, s, n);
        tmp[n] = '\0';
        if (inet_pton(p->kind == V_IP4 ? AF_INET : AF_INET6, tmp, v) != 1)
            return PL_ERR_P2P_MULTIADDR;
        *vlen = p->kind == V_IP4 ? 4 : 16;
        return PL_OK;
    case V_PORT: {
        if (n == 0 || n > 5) return PL_ERR_P2P_MULTIADDR;
        unsigned port = 0;
        for (size_t i = 0; i < n; i++) {
            if (s[i] < '0' || s[i] > '9') return PL_ERR_P2P_MULTIADDR;
            port = port * 10 + (unsigned)(s[i] - '0');
        }
        if (port > 65535 || (n > 1 && s[0] == '0')) return PL_ERR_P2P_MULTIADDR;
        v[0] = (uint8_t)(port >> 8);
        v[1] = (uint8_t)port;
        *vlen = 2;
        return PL_OK;
    }
    case V_DNS:
        if (!dns_ok((const uint8_t *)s, n)) return PL_ERR_P2P_MULTIADDR;
        memcpy(v, s, n);
        *vlen = n;
        return PL_OK;
    case V_P2P: {
        pl_p2p_peer_id id;
        PL_TRY(pl_p2p_peer_id_parse(&id, s, n));
        memcpy(v, id.bytes, id.len);
        *vlen = id.len;
        return PL_OK;
    }
    case V_NONE:
        break;
    }
    return PL_ERR_P2P_MULTIADDR;
}

pl_err pl__ma_parse(pl__ma *ma, const char *text, size_t len) {
    PL_REQUIRE(ma && (text || len == 0));
    ma->len = 0;
    /* A single trailing '/' is tolerated, as go-multiaddr does. */
    if (len > 1 && text[len - 1] == '/') len--;
    if (len < 2 || len > PL__MA_TEXT_MAX || text[0] != '/') return PL_ERR_P2P_MULTIADDR;
    size_t i = 1;
    pl_err e = PL_OK;
    while (i <= len && e == PL_OK) {
        const char *seg = text + i;
        const char *end = memchr(seg, '/', len - i);
        size_t n = end ? (size_t)(end - seg) : len - i;
        const proto_def *p = n ? by_name(seg, n) : NULL;
        if (!p) {
            e = PL_ERR_P2P_MULTIADDR;
            break;
        }
        i += n + 1;
        uint8_t v[PL__MA_DNS_MAX + 1];
        size_t vlen = 0;
        if (p->kind != V_NONE) {
            if (i > len) {
                e = PL_ERR_P2P_MULTIADDR;
                break;
            }
            const char *vs = text + i;
            const char *vend = memchr(vs, '/', len - i);
            size_t vn = vend ? (size_t)(vend - vs) : len - i;
            e = parse_value(p, vs, vn, v, &vlen);
            i += vn + 1;
        }
        if (e == PL_OK) e = pl__ma_append(ma, p->code, v, vlen);
    }
    if (e != PL_OK) ma->len = 0;
    return e;
}

static pl_err put(char *out, size_t cap, size_t *pos, const char *s) {
    size_t n = strlen(s);
    if (*pos + n + 1 > cap) return PL_ERR_BUFFER_TOO_SMALL;
    memcpy(out + *pos, s, n + 1);
    *pos += n;
    return PL_OK;
}

pl_err pl__ma_format(char *out, size_t cap, const uint8_t *b, size_t len) {
    PL_REQUIRE(out && cap > 0 && (b || len == 0));
    out[0] = '\0';
    PL_TRY(pl__ma_check(b, len));
    size_t off = 0, pos = 0;
    pl__ma_comp c;
    pl_err e = PL_OK;
    while (e == PL_OK && pl__ma_next(b, len, &off, &c)) {
        const proto_def *p = by_code(c.code);
        char v[PL__MA_DNS_MAX + 2];
        e = put(out, cap, &pos, "/");
        if (e == PL_OK) e = put(out, cap, &pos, p->name);
        if (e != PL_OK || p->kind == V_NONE) continue;
        switch (p->kind) {
        case V_IP4:
        case V_IP6:
            inet_ntop(p->kind == V_IP4 ? AF_INET : AF_INET6, c.value, v, sizeof v);
            break;
        case V_PORT:
            snprintf(v, sizeof v, "%u", (unsigned)c.value[0] << 8 | c.value[1]);
            break;
        case V_DNS:
            memcpy(v, c.value, c.len);
            v[c.len] = '\0';
            break;
        case V_P2P: {
            pl_p2p_peer_id id = {.len = (uint8_t)c.len};
            memcpy(id.bytes, c.value, c.len);
            char t[PL_P2P_PEER_ID_TEXT_SIZE];
            e = pl_p2p_peer_id_format(t, &id);
            snprintf(v, sizeof v, "%s", t);
            break;
        }
        case V_NONE:
            break;
        }
        if (e == PL_OK) e = put(out, cap, &pos, "/");
        if (e == PL_OK) e = put(out, cap, &pos, v);
    }
    if (e != PL_OK) out[0] = '\0';
    return e;
}

pl_err pl__ma_dial_target(pl__ma_dial *d, const uint8_t *b, size_t len) {
    PL_REQUIRE(d && (b || len == 0));
    memset(d, 0, sizeof *d);
    PL_TRY(pl__ma_check(b, len));
    pl__ma_comp c[8];
    size_t n = 0, off = 0;
    bool other_transport = false;
    pl__ma_comp one;
    while (pl__ma_next(b, len, &off, &one)) {
        if (n == PL_ARRAY_LEN(c)) return PL_ERR_P2P_MULTIADDR;
        c[n++] = one;
        switch (one.code) {
        case PL__MA_WS:
        case PL__MA_WSS:
        case PL__MA_TLS:
        case PL__MA_QUIC:
        case PL__MA_QUIC_V1:
        case PL__MA_UDP:
        case PL__MA_P2P_CIRCUIT:
            other_transport = true;
            break;
        default:
            break;
        }
    }
    if (other_transport) return PL_ERR_P2P_TRANSPORT;
    if (n < 2 || n > 3 || c[1].code != PL__MA_TCP) return PL_ERR_P2P_MULTIADDR;
    if (n == 3 && c[2].code != PL__MA_P2P) return PL_ERR_P2P_MULTIADDR;
    switch (c[0].code) {
    case PL__MA_IP4:
        d->kind = PL__MA_HOST_IP4;
        inet_ntop(AF_INET, c[0].value, d->host, sizeof d->host);
        break;
    case PL__MA_IP6:
        d->kind = PL__MA_HOST_IP6;
        inet_ntop(AF_INET6, c[0].value, d->host, sizeof d->host);
        break;
    case PL__MA_DNS:
    case PL__MA_DNS4:
    case PL__MA_DNS6:
        d->kind = c[0].code == PL__MA_DNS    ? PL__MA_HOST_DNS
                  : c[0].code == PL__MA_DNS4 ? PL__MA_HOST_DNS4
                                             : PL__MA_HOST_DNS6;
        memcpy(d->host, c[0].value, c[0].len);
        d->host[c[0].len] = '\0';
        break;
    default:
        memset(d, 0, sizeof *d);
        return PL_ERR_P2P_MULTIADDR;
    }
    d->port = (uint16_t)(c[1].value[0] << 8 | c[1].value[1]);
    if (n == 3) {
        d->peer.len = (uint8_t)c[2].len;
        memcpy(d->peer.bytes, c[2].value, c[2].len);
    }
    return PL_OK;
}

void pl__ma_from_ip_port(pl__ma *ma, const uint8_t *ip, size_t ip_len, uint16_t port) {
    PL_REQUIRE(ma && ip && (ip_len == 4 || ip_len == 16));
    ma->len = 0;
    uint8_t p[2] = {(uint8_t)(port >> 8), (uint8_t)port};
    pl_err e = pl__ma_append(ma, ip_len == 4 ? PL__MA_IP4 : PL__MA_IP6, ip, ip_len);
    if (e == PL_OK) e = pl__ma_append(ma, PL__MA_TCP, p, 2);
    PL_REQUIRE(e == PL_OK);
}
