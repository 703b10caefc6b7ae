/* SPDX-License-Identifier: Apache-2.0 */
/* libp2p: identity keys, peer ids, and a host that speaks the libp2p stack
 * js-libp2p and nwaku accept (TCP, multistream-select 1.0, Noise XX, yamux
 * 1.0.0 / mplex 6.7.0, identify, ping). docs/p2p.md describes the layers,
 * limits and choices.
 *
 * Keys and peer ids (the first part) are plain functions: reentrant, no
 * I/O except the key-file functions, which do blocking file I/O.
 *
 * The host (the second part) runs on a libuv loop: see its own comment. */
#ifndef PAIRLINK_P2P_H
#define PAIRLINK_P2P_H

#include "pairlink/common.h"
#include "pairlink/driver.h"

#include <stdbool.h>
#include <uv.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- identity keys ------------------------------------------------------ */

typedef enum pl_p2p_key_type {
    PL_P2P_KEY_ED25519 = 1,   /* js-libp2p's default and ours */
    PL_P2P_KEY_SECP256K1 = 2, /* nwaku node keys */
} pl_p2p_key_type;

/* A private identity key. Opaque; the secret is wiped by pl_p2p_key_free. */
typedef struct pl_p2p_key pl_p2p_key;

#define PL_P2P_SECRET_BYTES 32

/* A fresh random key. Errors: PL_ERR_INVALID_ARG (unknown type),
 * PL_ERR_NOMEM. */
PL_EXPORT pl_err pl_p2p_key_generate(pl_p2p_key **out, pl_p2p_key_type type);

/* A key from its 32-byte secret: the Ed25519 seed, or the secp256k1 secret
 * scalar (what nwaku's --nodekey takes as hex). Errors: PL_ERR_P2P_KEY (a
 * secp256k1 secret of zero or not below the group order),
 * PL_ERR_INVALID_ARG, PL_ERR_NOMEM. */
PL_EXPORT pl_err pl_p2p_key_from_secret(pl_p2p_key **out, pl_p2p_key_type type,
                                        const uint8_t secret[PL_P2P_SECRET_BYTES]);

/* libp2p's marshalled PrivateKey protobuf {Type = 1, Data = 2}: Ed25519
 * Data is seed || public key (64 bytes; the public half must match the
 * seed), secp256k1 Data the 32-byte secret. This is the key file format.
 * unmarshal errors: PL_ERR_P2P_PROTOBUF, PL_ERR_P2P_KEY (other key types,
 * wrong sizes), PL_ERR_NOMEM. marshal: *out (caller frees with
 * pl_free_secret(*out, *len)); PL_ERR_NOMEM. */
PL_EXPORT pl_err pl_p2p_key_unmarshal(pl_p2p_key **out, const uint8_t *pb, size_t len);
PL_EXPORT pl_err pl_p2p_key_marshal(const pl_p2p_key *k, uint8_t **out, size_t *len);

/* The key in the file at `path` (format above, rules of keyfile.h: a
 * regular file owned by the user, mode 0600 or stricter, 1..256 bytes), or
 * a new key of `type` written there atomically when the file does not
 * exist; *created (may be NULL) says which. Errors: PL_ERR_KEY_FILE (unsafe
 * file or a wrong size), those of pl_p2p_key_unmarshal, PL_ERR_IO /
 * PL_ERR_SYS (pl_last_detail() holds errno). Blocking file I/O. */
PL_EXPORT pl_err pl_p2p_key_load_or_create(const char *path, pl_p2p_key_type type, pl_p2p_key **out,
                                           bool *created);
/* Write k to a new file at `path` (0600); PL_ERR_EXISTS if there is one. */
PL_EXPORT pl_err pl_p2p_key_save(const char *path, const pl_p2p_key *k);

PL_EXPORT void pl_p2p_key_free(pl_p2p_key *k);
PL_EXPORT pl_p2p_key_type pl_p2p_key_type_of(const pl_p2p_key *k);

/* ---- peer ids ----------------------------------------------------------- */

/* A peer id in binary: a multihash of the marshalled public key (identity
 * multihash for keys of up to 42 bytes, i.e. Ed25519 and secp256k1; sha256
 * otherwise). */
#define PL_P2P_PEER_ID_MAX 48
#define PL_P2P_PEER_ID_TEXT_SIZE 72 /* base58btc text and NUL */

typedef struct pl_p2p_peer_id {
    uint8_t len; /* 0: no peer id */
    uint8_t bytes[PL_P2P_PEER_ID_MAX];
} pl_p2p_peer_id;

PL_EXPORT void pl_p2p_key_peer_id(const pl_p2p_key *k, pl_p2p_peer_id *id);

/* Parse the text of a peer id: base58btc ("12D3KooW...", "16Uiu2...",
 * "Qm...") or a CIDv1 in base32 ("bafz...", multicodec libp2p-key). *id is
 * zeroed on failure. Errors: PL_ERR_P2P_PEER_ID. */
PL_EXPORT pl_err pl_p2p_peer_id_parse(pl_p2p_peer_id *id, const char *text, size_t len);

/* base58btc text. PL_ERR_P2P_PEER_ID for an empty or malformed id. */
PL_EXPORT pl_err pl_p2p_peer_id_format(char out[PL_P2P_PEER_ID_TEXT_SIZE],
                                       const pl_p2p_peer_id *id);

PL_EXPORT bool pl_p2p_peer_id_equal(const pl_p2p_peer_id *a, const pl_p2p_peer_id *b);

/* ---- identify ------------------------------------------------------------- */

/* What a peer said about itself in identify (/ipfs/id/1.0.0). Strings are
 * UTF-8 and NUL-terminated; empty when the peer left them out. Protocol ids
 * that could never be negotiated and addresses we cannot read are left
 * out. Owned by the library: see where it is handed out for how long it
 * stays valid. */
typedef struct pl_p2p_identify {
    const char *protocol_version; /* "ipfs/0.1.0" */
    const char *agent_version;    /* e.g. "js-libp2p/1.9.4 UserAgent=v20.20.0" */
    const char *const *protocols; /* e.g. "/vac/waku/relay/2.0.0" */
    size_t nprotocols;
    const char *const *listen_addrs; /* multiaddr text */
    size_t nlisten_addrs;
    const char *observed_addr; /* how the peer sees us; "" when absent */
} pl_p2p_identify;

/* ---- the host --------------------------------------------------------------
 *
 * A libp2p host on a driver's libuv loop (driver.h: it shares the driver's
 * clock and timer with whatever else runs on it, e.g. a Waku relay core):
 * TCP dial and listen, and on every
 * connection multistream-select, Noise XX (the remote peer id checked
 * against a dialed /p2p/ id), yamux or mplex, identify (asked of every peer
 * and answered automatically) and ping (answered automatically).
 *
 * Identifiers, not pointers: connections and streams are named by 64-bit
 * ids that are never reused within a host. Calls with an id that is gone
 * return PL_ERR_NOT_FOUND; that is how a stale reference shows.
 *
 * Events: connection events go to opts.on_event; each stream's events go
 * to the callback given when it was opened (pl_p2p_stream_open) or to the
 * handler of its protocol (pl_p2p_host_handle). Pointers inside events are
 * valid during the callback only unless said otherwise.
 *
 * Reading is pull-style with backpressure: READABLE says bytes wait; the
 * application takes them with pl_p2p_stream_peek + pl_p2p_stream_consume
 * or pl_p2p_stream_read_msg. Unread bytes stay in the stream's receive
 * buffer (at most stream_recv_buffer); while it is full the peer's yamux
 * window stays closed (an mplex stream that overflows it is reset with
 * PL_ERR_P2P_BACKPRESSURE: mplex has no flow control).
 *
 * Writing takes what fits: pl_p2p_stream_write says how much it took,
 * pl_p2p_stream_write_msg takes a whole length-prefixed message or nothing
 * (PL_ERR_P2P_BACKPRESSURE); WRITABLE follows when room came back. Nothing
 * queues without bound: per stream stream_send_buffer, per connection
 * conn_send_buffer bytes on their way to the socket.
 *
 * Threads: everything runs on the loop's thread, callbacks too. Callbacks
 * may call any function here, pl_p2p_conn_close and pl_p2p_host_close
 * included. Errors: bad input from a peer never reaches the caller as a
 * failure of a call; it ends the stream (CLOSED with the error) or the
 * connection (DISCONNECTED with the error), and the host goes on serving
 * the others.
 *
 * Signals: libuv writes to TCP sockets with write(2), so a write on a
 * connection the peer has reset raises SIGPIPE, whose default action
 * ends the process. The host handles the write error itself; a process
 * that runs a host must set SIGPIPE to SIG_IGN (the pairlink CLI does).
 * A library does not change a process's signal dispositions behind its
 * back, so the host does not do it for you. */

typedef struct pl_p2p_host pl_p2p_host;
typedef uint64_t pl_p2p_conn_id;   /* 0 is never a connection */
typedef uint64_t pl_p2p_stream_id; /* 0 is never a stream */

typedef enum pl_p2p_muxers {
    PL_P2P_MUXERS_DEFAULT = 0, /* dial: offer /yamux/1.0.0 then /mplex/6.7.0; accept either */
    PL_P2P_MUXERS_YAMUX,       /* yamux only, both ways */
    PL_P2P_MUXERS_MPLEX,       /* mplex only, both ways */
} pl_p2p_muxers;

typedef enum pl_p2p_event_kind {
    /* Secure and multiplexed: streams may be opened. peer, inbound,
     * remote_addr, muxer. Identify follows. */
    PL_P2P_EV_CONNECTED = 1,
    /* The peer's identify arrived (err PL_OK, identify set; it stays
     * readable through pl_p2p_conn_info until the connection ends) or did
     * not (err: PL_ERR_TIMEOUT after identify_timeout_ms,
     * PL_ERR_P2P_NEGOTIATION when the peer does not speak it, a decoding
     * error). The connection stays up either way: whether a peer without
     * identify is worth keeping is the caller's decision. */
    PL_P2P_EV_IDENTIFIED,
    /* The connection is over; its id is gone after the callback. err says
     * why: PL_ERR_CLOSED (an orderly end by either side), the reason given
     * to pl_p2p_conn_close, PL_ERR_TIMEOUT (dial or handshake),
     * PL_ERR_SYS / PL_ERR_IO (pl_last_detail() is not kept: see log),
     * PL_ERR_NOT_FOUND (DNS name without an address), a peer's protocol
     * violation (PL_ERR_P2P_*), PL_ERR_P2P_PEER_MISMATCH, PL_ERR_DECRYPT,
     * PL_ERR_BAD_SIGNATURE. established says whether CONNECTED was
     * reported; for a dial that never got there this is how it failed. */
    PL_P2P_EV_DISCONNECTED,
} pl_p2p_event_kind;

typedef struct pl_p2p_event {
    pl_p2p_event_kind kind;
    pl_p2p_conn_id conn;
    const pl_p2p_peer_id *peer; /* len 0 when not known (yet) */
    bool inbound;
    bool established;                /* DISCONNECTED */
    const char *remote_addr;         /* multiaddr text of the TCP peer, "" if none yet */
    const char *muxer;               /* "/yamux/1.0.0", "/mplex/6.7.0"; "" before CONNECTED */
    const pl_p2p_identify *identify; /* IDENTIFIED with PL_OK, else NULL */
    pl_err err;
} pl_p2p_event;

typedef void (*pl_p2p_event_cb)(void *ud, pl_p2p_host *h, const pl_p2p_event *ev);

typedef enum pl_p2p_stream_event_kind {
    PL_P2P_STREAM_OPENED = 1, /* negotiated: protocol; inbound streams begin here */
    PL_P2P_STREAM_READABLE,   /* bytes wait (peek / read_msg) */
    PL_P2P_STREAM_EOF,        /* the peer closed its side; bytes may still wait */
    PL_P2P_STREAM_WRITABLE,   /* room in the send buffer after a short write */
    /* The stream is gone; its id too, after the callback. err: PL_OK (both
     * sides closed and everything read), PL_ERR_P2P_STREAM_RESET (by the
     * peer), PL_ERR_P2P_NEGOTIATION (the peer speaks none of the
     * protocols), PL_ERR_TIMEOUT (negotiation), PL_ERR_P2P_BACKPRESSURE
     * (mplex overflow), PL_ERR_CLOSED (the connection ended). Not
     * reported for a stream the application reset. */
    PL_P2P_STREAM_CLOSED,
} pl_p2p_stream_event_kind;

typedef struct pl_p2p_stream_event {
    pl_p2p_stream_event_kind kind;
    pl_p2p_stream_id stream;
    pl_p2p_conn_id conn;
    const pl_p2p_peer_id *peer;
    const char *protocol; /* the negotiated protocol id; NULL before OPENED */
    bool inbound;
    pl_err err; /* CLOSED */
} pl_p2p_stream_event;

typedef void (*pl_p2p_stream_cb)(void *ud, pl_p2p_host *h, const pl_p2p_stream_event *ev);

/* One line of connection log (no newline), e.g. for stderr. */
typedef void (*pl_p2p_log_cb)(void *ud, const char *line);

/* Limits and their defaults (a 0 in opts means the default). */
#define PL_P2P_DEF_MAX_CONNECTIONS 256
#define PL_P2P_DEF_MAX_CONNECTIONS_PER_IP 16 /* inbound, per remote IP */
#define PL_P2P_DEF_MAX_STREAMS 256           /* per connection */
#define PL_P2P_DEF_STREAM_RECV_BUFFER (1u << 20)
#define PL_P2P_DEF_STREAM_SEND_BUFFER (1u << 20)
#define PL_P2P_DEF_CONN_SEND_BUFFER (1u << 20)
#define PL_P2P_DEF_DIAL_TIMEOUT_MS 10000        /* DNS + TCP connect */
#define PL_P2P_DEF_HANDSHAKE_TIMEOUT_MS 10000   /* TCP up -> muxer agreed */
#define PL_P2P_DEF_NEGOTIATION_TIMEOUT_MS 10000 /* each stream's protocol */
#define PL_P2P_DEF_IDENTIFY_TIMEOUT_MS 15000
#define PL_P2P_DEF_PING_TIMEOUT_MS 10000
#define PL_P2P_DEF_CLOSE_TIMEOUT_MS 2000 /* flushing a closing connection */

typedef struct pl_p2p_host_opts {
    const pl_p2p_key *key;    /* required; the host keeps a copy */
    pl_p2p_event_cb on_event; /* may be NULL */
    void *ud;
    pl_p2p_log_cb on_log; /* may be NULL */
    void *log_ud;
    const char *agent_version; /* NULL: "pairlink/<version>" */
    pl_p2p_muxers muxers;
    uint32_t max_connections;        /* beyond it dials fail, accepts are closed */
    uint32_t max_connections_per_ip; /* inbound */
    uint32_t max_streams;            /* inbound streams beyond it are refused */
    size_t stream_recv_buffer;       /* >= 64 KiB */
    size_t stream_send_buffer;
    size_t conn_send_buffer;
    int64_t dial_timeout_ms;
    int64_t handshake_timeout_ms;
    int64_t negotiation_timeout_ms;
    int64_t identify_timeout_ms;
    int64_t ping_timeout_ms;
    int64_t close_timeout_ms;
} pl_p2p_host_opts;

/* Create a host on a loop driver (pl_driver_new; it listens nowhere yet).
 * The driver must outlive the host: close the host first, then the driver
 * (from on_closed, or later). Errors: PL_ERR_INVALID_ARG (no key, a virtual
 * driver, a receive buffer below 64 KiB), PL_ERR_NOMEM. Nothing is left on
 * the loop on error. */
PL_EXPORT pl_err pl_p2p_host_new(pl_p2p_host **out, pl_driver *driver,
                                 const pl_p2p_host_opts *opts);

/* Graceful end: listeners stop, every connection says GO_AWAY, its streams
 * and itself report CLOSED / DISCONNECTED (PL_ERR_CLOSED), its last bytes
 * are flushed (at most close_timeout_ms), every handle is closed; then
 * on_closed(ud) runs from the driver (never inside this call; may be NULL)
 * and the host is freed. No callback follows on_closed. Calling it twice
 * is a misuse. */
PL_EXPORT void pl_p2p_host_close(pl_p2p_host *h, void (*on_closed)(void *ud), void *ud);

/* Our peer id. */
PL_EXPORT void pl_p2p_host_peer_id(const pl_p2p_host *h, pl_p2p_peer_id *id);

/* Listen on /ip4|ip6/<addr>/tcp/<port> (port 0: any). At most 8
 * listeners. Errors: PL_ERR_P2P_MULTIADDR (not an IP TCP address),
 * PL_ERR_P2P_TRANSPORT (ws, wss, ...), PL_ERR_SYS (bind/listen; see
 * pl_last_detail(): the negative libuv code), PL_ERR_TOO_LARGE (9th),
 * PL_ERR_STATE (closing). */
PL_EXPORT pl_err pl_p2p_host_listen(pl_p2p_host *h, const char *multiaddr);

/* The addresses we listen on, with their real ports and without /p2p/
 * (text; valid until the next pl_p2p_host_listen or the host's end).
 * Returns how many. */
PL_EXPORT size_t pl_p2p_host_listen_addrs(const pl_p2p_host *h, const char *const **addrs);

/* Serve `protocol` on inbound streams: their events go to cb(ud).
 * Registering again replaces cb/ud. Errors: PL_ERR_INVALID_ARG (not a
 * protocol id: 1..1023 bytes of UTF-8 without newline; or identify /
 * ping, which the host serves itself), PL_ERR_NOMEM. The list goes into
 * the identify answers from now on. */
PL_EXPORT pl_err pl_p2p_host_handle(pl_p2p_host *h, const char *protocol, pl_p2p_stream_cb cb,
                                    void *ud);
/* Stop serving it (open streams go on). PL_ERR_NOT_FOUND. */
PL_EXPORT pl_err pl_p2p_host_unhandle(pl_p2p_host *h, const char *protocol);

/* Dial a multiaddr: /ip4|ip6|dns|dns4|dns6/<host>/tcp/<port>[/p2p/<id>].
 * With /p2p/ the peer must prove that id in Noise (else DISCONNECTED with
 * PL_ERR_P2P_PEER_MISMATCH). *conn names the connection from now on;
 * CONNECTED or DISCONNECTED follows. Errors (then no event follows):
 * PL_ERR_P2P_MULTIADDR, PL_ERR_P2P_PEER_ID, PL_ERR_P2P_TRANSPORT (ws, wss,
 * quic: valid, not spoken here), PL_ERR_P2P_CONN_LIMIT, PL_ERR_STATE
 * (closing), PL_ERR_SYS, PL_ERR_NOMEM. */
PL_EXPORT pl_err pl_p2p_host_dial(pl_p2p_host *h, const char *multiaddr, pl_p2p_conn_id *conn);

/* End a connection (e.g. a misbehaving peer): its streams report CLOSED
 * (PL_ERR_CLOSED), then DISCONNECTED with `reason` (not PL_OK). Idempotent
 * while the connection closes. PL_ERR_NOT_FOUND. */
PL_EXPORT pl_err pl_p2p_conn_close(pl_p2p_host *h, pl_p2p_conn_id conn, pl_err reason);

typedef struct pl_p2p_conn_info {
    pl_p2p_peer_id peer; /* len 0 before the Noise handshake ended */
    bool inbound;
    bool established;
    const char *remote_addr;         /* valid while the connection lives */
    const char *muxer;               /* "" before CONNECTED */
    const pl_p2p_identify *identify; /* NULL until IDENTIFIED with PL_OK */
} pl_p2p_conn_info;

/* PL_ERR_NOT_FOUND. Pointers valid until the connection is gone. */
PL_EXPORT pl_err pl_p2p_conn_info_get(const pl_p2p_host *h, pl_p2p_conn_id conn,
                                      pl_p2p_conn_info *info);
/* Up to cap ids of the current connections (dialing ones included);
 * returns how many there are. */
PL_EXPORT size_t pl_p2p_host_conns(const pl_p2p_host *h, pl_p2p_conn_id *ids, size_t cap);

/* ping /ipfs/ping/1.0.0: one round of 32 random bytes on a new stream.
 * cb(ud, ...) follows exactly once: err PL_OK with the round trip in
 * milliseconds (sub-millisecond resolution), or PL_ERR_TIMEOUT
 * (ping_timeout_ms), PL_ERR_P2P_NEGOTIATION, PL_ERR_P2P_FRAME (a wrong
 * echo), PL_ERR_CLOSED. Errors of the call (then no callback):
 * PL_ERR_NOT_FOUND, PL_ERR_STATE (not connected yet), those of
 * pl_p2p_stream_open. */
typedef void (*pl_p2p_ping_cb)(void *ud, pl_p2p_host *h, pl_p2p_conn_id conn, pl_err err,
                               double rtt_ms);
PL_EXPORT pl_err pl_p2p_ping(pl_p2p_host *h, pl_p2p_conn_id conn, pl_p2p_ping_cb cb, void *ud);

/* ---- streams ---- */

/* Open a stream proposing protocols[0..n) in order (n <= 16; strings
 * copied). OPENED (with the protocol the peer took) or CLOSED follows
 * through cb(ud). Bytes written before OPENED wait in the send buffer.
 * Errors: PL_ERR_NOT_FOUND (no such connection), PL_ERR_STATE (not
 * CONNECTED yet, or closing), PL_ERR_INVALID_ARG (an empty list, a bad
 * protocol id), PL_ERR_P2P_STREAM_LIMIT, PL_ERR_P2P_GOAWAY (the peer
 * takes no more streams), PL_ERR_NOMEM. */
PL_EXPORT pl_err pl_p2p_stream_open(pl_p2p_host *h, pl_p2p_conn_id conn,
                                    const char *const *protocols, size_t n, pl_p2p_stream_cb cb,
                                    void *ud, pl_p2p_stream_id *stream);

/* Queue up to len bytes; *taken says how many were accepted (less when
 * the send buffer is full: WRITABLE follows). Errors: PL_ERR_NOT_FOUND,
 * PL_ERR_CLOSED (after pl_p2p_stream_close). */
PL_EXPORT pl_err pl_p2p_stream_write(pl_p2p_host *h, pl_p2p_stream_id s, const uint8_t *data,
                                     size_t len, size_t *taken);

/* Queue uvarint(len) | data whole, or nothing. Errors:
 * PL_ERR_P2P_BACKPRESSURE (not enough room now: WRITABLE follows),
 * PL_ERR_TOO_LARGE (larger than the send buffer could ever hold),
 * PL_ERR_NOT_FOUND, PL_ERR_CLOSED. */
PL_EXPORT pl_err pl_p2p_stream_write_msg(pl_p2p_host *h, pl_p2p_stream_id s, const uint8_t *data,
                                         size_t len);

/* Bytes room in the send buffer now (0 for an unknown stream). */
PL_EXPORT size_t pl_p2p_stream_send_space(const pl_p2p_host *h, pl_p2p_stream_id s);

/* The unread bytes (*data valid until the next call on this stream or the
 * return to the loop), and taking n of them. Errors: PL_ERR_NOT_FOUND;
 * consume: PL_ERR_INVALID_ARG when n exceeds what is unread. */
PL_EXPORT pl_err pl_p2p_stream_peek(pl_p2p_host *h, pl_p2p_stream_id s, const uint8_t **data,
                                    size_t *len);
PL_EXPORT pl_err pl_p2p_stream_consume(pl_p2p_host *h, pl_p2p_stream_id s, size_t n);

/* Take the next whole uvarint(len) | message: PL_OK with *msg / *len
 * (valid until the next call on this stream or the return to the loop),
 * or PL_OK with *msg NULL when it has not fully arrived. max bounds the
 * length (it is also bounded by the receive buffer less 10 bytes, since
 * a larger message could never arrive whole). Errors: PL_ERR_TOO_LARGE,
 * PL_ERR_BAD_VARINT (the stream is then useless: reset it),
 * PL_ERR_NOT_FOUND. */
PL_EXPORT pl_err pl_p2p_stream_read_msg(pl_p2p_host *h, pl_p2p_stream_id s, size_t max,
                                        const uint8_t **msg, size_t *len);

/* Close our writing side once queued bytes are out (FIN); reading goes on
 * until EOF. CLOSED (PL_OK) follows when both sides closed and everything
 * was read. Idempotent. PL_ERR_NOT_FOUND. */
PL_EXPORT pl_err pl_p2p_stream_close(pl_p2p_host *h, pl_p2p_stream_id s);

/* Abort the stream both ways (yamux RST / mplex reset). The id is gone at
 * once; no CLOSED follows. PL_ERR_NOT_FOUND. */
PL_EXPORT pl_err pl_p2p_stream_reset(pl_p2p_host *h, pl_p2p_stream_id s);

#ifdef __cplusplus
}
#endif
#endif
