/* SPDX-License-Identifier: Apache-2.0 */
/* A small WebSocket client for the hostile-client suite: libwebsockets on
 * its own poll loop (one context per thread), speaking the relay protocol
 * frame by frame, able to misbehave on purpose (stop reading, bind to
 * another loopback address, send another Host header). Test code only. */
#ifndef PAIRLINK_TESTS_HOSTILE_WS_H
#define PAIRLINK_TESTS_HOSTILE_WS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct hs_net hs_net;
typedef struct hs_conn hs_conn;

/* Monotonic milliseconds. */
int64_t hs_now_ms(void);

/* One libwebsockets context; used by one thread. */
hs_net *hs_net_new(void);
void hs_net_free(hs_net *n); /* closes what is still open */
/* Service the sockets for up to ms milliseconds. */
void hs_net_service(hs_net *n, int ms);

typedef struct hs_conn_opts {
    int port;           /* the relay on 127.0.0.1 */
    const char *iface;  /* source address (127.0.0.x); NULL: any */
    const char *host;   /* Host header; NULL: 127.0.0.1:PORT */
    const char *path;   /* NULL: "/" */
    bool answer_pushes; /* answer every irn_subscription with true */
    bool keep_pushes;   /* keep pushes for hs_take_push (else only counted) */
    bool small_rcvbuf;  /* a 4 KiB socket receive buffer: what is not read stays at the relay */
} hs_conn_opts;

/* Start connecting; NULL only when libwebsockets refused at once. The
 * connection is freed with its hs_net. */
hs_conn *hs_connect(hs_net *n, const hs_conn_opts *o);

bool hs_is_open(const hs_conn *c);
/* Closed or failed (also when it never opened). */
bool hs_is_done(const hs_conn *c);
bool hs_failed(const hs_conn *c);     /* never opened */
int hs_close_code(const hs_conn *c);  /* the relay's close code, 0 if none */
int hs_http_status(const hs_conn *c); /* the upgrade's status when refused, 0 if none */

/* Service n until c is open or done, at most timeout_ms: true if open. */
bool hs_wait_open(hs_net *n, hs_conn *c, int timeout_ms);

/* Queue a text frame (copied). */
void hs_send(hs_conn *c, const char *text, size_t len);
__attribute__((format(printf, 2, 3))) void hs_sendf(hs_conn *c, const char *fmt, ...);
/* A request {id, jsonrpc, method, params} (params: JSON text). */
void hs_request(hs_conn *c, int64_t id, const char *method, const char *params);
/* Stop reading from the socket (the relay's frames pile up), and start
 * again. */
void hs_pause(hs_conn *c);
void hs_resume(hs_conn *c);
/* Close now (a close frame, then the socket). */
void hs_close(hs_conn *c);

/* The answer to request id (result or error object, caller decrefs), taken
 * from what arrived; NULL if not (yet). */
json_t *hs_take_answer(hs_conn *c, int64_t id);
/* Service n until the answer to id arrives (or c is done), at most
 * timeout_ms. */
json_t *hs_wait_answer(hs_net *n, hs_conn *c, int64_t id, int timeout_ms);
/* The oldest kept push (the whole irn_subscription request; caller
 * decrefs), or NULL. */
json_t *hs_take_push(hs_conn *c);

/* Counters. */
size_t hs_pushes(const hs_conn *c);    /* irn_subscription requests received */
size_t hs_rx_bytes(const hs_conn *c);  /* text bytes received */
size_t hs_max_frame(const hs_conn *c); /* the largest frame received */

/* The error code of an answer, 0 if it is a result. */
int64_t hs_error_code(const json_t *answer);

#endif
