/* SPDX-License-Identifier: Apache-2.0 */
/* The hostile suite's WebSocket client: see ws.h. */
#include "ws.h"

#include <libwebsockets.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

typedef struct outf {
    struct outf *next;
    size_t len;
    unsigned char buf[]; /* LWS_PRE, then the text */
} outf;

typedef struct kept {
    struct kept *next;
    json_t *j;
    int64_t id; /* answers: their id */
} kept;

struct hs_conn {
    hs_net *net;
    hs_conn *next_in_net;
    struct lws *wsi;
    hs_conn_opts o;
    char iface[64], host[256], path[8192];
    bool open, done, failed;
    int close_code, http_status;
    outf *qh, *qt;
    char *rx;
    size_t rxlen, rxcap;
    kept *answers, *pushes, *pushes_tail;
    size_t npushes, rx_bytes, max_frame;
};

struct hs_net {
    struct lws_context *ctx;
    hs_conn *conns;
    lws_sorted_usec_list_t wake;
};

int64_t hs_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void enqueue(hs_conn *c, const char *text, size_t len) {
    if (c->done) return;
    outf *f = malloc(sizeof *f + LWS_PRE + len);
    if (!f) abort();
    f->next = NULL;
    f->len = len;
    memcpy(f->buf + LWS_PRE, text, len);
    if (c->qt)
        c->qt->next = f;
    else
        c->qh = f;
    c->qt = f;
    if (c->wsi && c->open) lws_callback_on_writable(c->wsi);
}

void hs_send(hs_conn *c, const char *text, size_t len) {
    enqueue(c, text, len);
}

void hs_sendf(hs_conn *c, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (n < 0) abort();
    enqueue(c, s, (size_t)n);
    free(s);
}

void hs_request(hs_conn *c, int64_t id, const char *method, const char *params) {
    hs_sendf(c, "{\"id\":%lld,\"jsonrpc\":\"2.0\",\"method\":\"%s\",\"params\":%s}", (long long)id,
             method, params);
}

/* One whole frame from the relay. */
static void on_frame(hs_conn *c, const char *text, size_t len) {
    c->rx_bytes += len;
    if (len > c->max_frame) c->max_frame = len;
    json_t *j = json_loadb(text, len, 0, NULL);
    if (!j) return;
    const char *method = json_string_value(json_object_get(j, "method"));
    json_t *id = json_object_get(j, "id");
    if (method && !strcmp(method, "irn_subscription")) {
        c->npushes++;
        if (c->o.answer_pushes && json_is_integer(id))
            hs_sendf(c, "{\"id\":%lld,\"jsonrpc\":\"2.0\",\"result\":true}",
                     (long long)json_integer_value(id));
        if (c->o.keep_pushes) {
            kept *k = calloc(1, sizeof *k);
            k->j = j;
            if (c->pushes_tail)
                c->pushes_tail->next = k;
            else
                c->pushes = k;
            c->pushes_tail = k;
            return;
        }
        json_decref(j);
        return;
    }
    if (!method && (json_is_integer(id) || json_is_null(id))) {
        kept *k = calloc(1, sizeof *k);
        k->j = j;
        k->id = json_is_integer(id) ? json_integer_value(id) : -1;
        k->next = c->answers;
        c->answers = k;
        return;
    }
    json_decref(j);
}

static int cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len) {
    hs_conn *c = user;
    switch (reason) {
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        if (!c) return -1;
        c->open = true;
        if (c->o.small_rcvbuf) {
            int sz = 4096;
            setsockopt(lws_get_socket_fd(wsi), SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
        }
        if (c->qh) lws_callback_on_writable(wsi);
        return 0;
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        if (!c) return 0;
        c->http_status = (int)lws_http_client_http_response(wsi);
        c->failed = !c->open;
        c->done = true;
        c->open = false;
        c->wsi = NULL;
        return 0;
    case LWS_CALLBACK_CLIENT_RECEIVE:
        if (!c) return -1;
        if (c->rxlen + len + 1 > c->rxcap) {
            size_t nc = (c->rxlen + len + 1) * 2;
            char *nb = realloc(c->rx, nc);
            if (!nb) abort();
            c->rx = nb;
            c->rxcap = nc;
        }
        memcpy(c->rx + c->rxlen, in, len);
        c->rxlen += len;
        if (lws_is_final_fragment(wsi) && !lws_remaining_packet_payload(wsi)) {
            on_frame(c, c->rx, c->rxlen);
            c->rxlen = 0;
            if (c->rxcap > (1 << 16)) {
                free(c->rx);
                c->rx = NULL;
                c->rxcap = 0;
            }
        }
        return 0;
    case LWS_CALLBACK_CLIENT_WRITEABLE:
        if (!c) return 0;
        while (c->qh) {
            outf *f = c->qh;
            if (lws_write(wsi, f->buf + LWS_PRE, f->len, LWS_WRITE_TEXT) < (int)f->len) return -1;
            c->qh = f->next;
            if (!c->qh) c->qt = NULL;
            free(f);
            if (c->qh && lws_send_pipe_choked(wsi)) {
                lws_callback_on_writable(wsi);
                break;
            }
        }
        return 0;
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
        if (c && len >= 2)
            c->close_code = ((const unsigned char *)in)[0] << 8 | ((const unsigned char *)in)[1];
        return 0;
    case LWS_CALLBACK_CLIENT_CLOSED:
        if (!c) return 0;
        c->done = true;
        c->open = false;
        c->wsi = NULL;
        return 0;
    default:
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    }
}

static const struct lws_protocols protocols[] = {
    {"hostile", cb, 0, 65536, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

hs_net *hs_net_new(void) {
    hs_net *n = calloc(1, sizeof *n);
    if (!n) abort();
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = protocols;
    info.gid = -1;
    info.uid = -1;
    info.fd_limit_per_thread = 4096;
    n->ctx = lws_create_context(&info);
    if (!n->ctx) {
        fprintf(stderr, "hostile: lws_create_context failed\n");
        abort();
    }
    return n;
}

static void kept_free(kept *k) {
    while (k) {
        kept *next = k->next;
        json_decref(k->j);
        free(k);
        k = next;
    }
}

void hs_net_free(hs_net *n) {
    if (!n) return;
    lws_context_destroy(n->ctx);
    for (hs_conn *c = n->conns, *next; c; c = next) {
        next = c->next_in_net;
        for (outf *f = c->qh, *fn; f; f = fn) {
            fn = f->next;
            free(f);
        }
        kept_free(c->answers);
        kept_free(c->pushes);
        free(c->rx);
        free(c);
    }
    free(n);
}

static void wake(lws_sorted_usec_list_t *sul) {
    (void)sul;
}

/* lws 4.1 takes any timeout >= 0 as "until the next event or timer", and
 * a negative one as "do not wait": a timer of our own bounds the wait. */
void hs_net_service(hs_net *n, int ms) {
    if (ms <= 0) {
        lws_service(n->ctx, -1);
        return;
    }
    lws_sul_schedule(n->ctx, 0, &n->wake, wake, (lws_usec_t)ms * 1000);
    lws_service(n->ctx, 0);
    lws_sul_cancel(&n->wake);
}

hs_conn *hs_connect(hs_net *n, const hs_conn_opts *o) {
    hs_conn *c = calloc(1, sizeof *c);
    if (!c) abort();
    c->net = n;
    c->o = *o;
    snprintf(c->path, sizeof c->path, "%s", o->path ? o->path : "/");
    if (o->host)
        snprintf(c->host, sizeof c->host, "%s", o->host);
    else
        snprintf(c->host, sizeof c->host, "127.0.0.1:%d", o->port);
    if (o->iface) snprintf(c->iface, sizeof c->iface, "%s", o->iface);
    c->next_in_net = n->conns;
    n->conns = c;
    struct lws_client_connect_info ci;
    memset(&ci, 0, sizeof ci);
    ci.context = n->ctx;
    ci.address = "127.0.0.1";
    ci.port = o->port;
    ci.path = c->path;
    ci.host = c->host;
    ci.origin = c->host;
    ci.iface = o->iface ? c->iface : NULL;
    ci.local_protocol_name = "hostile";
    ci.ietf_version_or_minus_one = -1;
    ci.userdata = c;
    ci.pwsi = &c->wsi;
    if (!lws_client_connect_via_info(&ci) && !c->done) {
        c->done = c->failed = true;
        c->wsi = NULL;
    }
    return c;
}

bool hs_is_open(const hs_conn *c) {
    return c->open;
}

bool hs_is_done(const hs_conn *c) {
    return c->done;
}

bool hs_failed(const hs_conn *c) {
    return c->failed;
}

int hs_close_code(const hs_conn *c) {
    return c->close_code;
}

int hs_http_status(const hs_conn *c) {
    return c->http_status;
}

bool hs_wait_open(hs_net *n, hs_conn *c, int timeout_ms) {
    int64_t end = hs_now_ms() + timeout_ms;
    while (!c->open && !c->done && hs_now_ms() < end)
        hs_net_service(n, 10);
    return c->open;
}

void hs_pause(hs_conn *c) {
    if (c->wsi) lws_rx_flow_control(c->wsi, 0);
}

void hs_resume(hs_conn *c) {
    if (c->wsi) lws_rx_flow_control(c->wsi, 1);
}

void hs_close(hs_conn *c) {
    if (!c->wsi || c->done) return;
    lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
    c->open = false;
}

json_t *hs_take_answer(hs_conn *c, int64_t id) {
    for (kept **pp = &c->answers; *pp; pp = &(*pp)->next) {
        if ((*pp)->id != id) continue;
        kept *k = *pp;
        *pp = k->next;
        json_t *j = k->j;
        free(k);
        return j;
    }
    return NULL;
}

json_t *hs_wait_answer(hs_net *n, hs_conn *c, int64_t id, int timeout_ms) {
    int64_t end = hs_now_ms() + timeout_ms;
    json_t *j;
    while (!(j = hs_take_answer(c, id)) && !c->done && hs_now_ms() < end)
        hs_net_service(n, 5);
    return j;
}

json_t *hs_take_push(hs_conn *c) {
    kept *k = c->pushes;
    if (!k) return NULL;
    c->pushes = k->next;
    if (!c->pushes) c->pushes_tail = NULL;
    json_t *j = k->j;
    free(k);
    return j;
}

size_t hs_pushes(const hs_conn *c) {
    return c->npushes;
}

size_t hs_rx_bytes(const hs_conn *c) {
    return c->rx_bytes;
}

size_t hs_max_frame(const hs_conn *c) {
    return c->max_frame;
}

int64_t hs_error_code(const json_t *answer) {
    json_t *e = json_object_get(answer, "error");
    return e ? json_integer_value(json_object_get(e, "code")) : 0;
}
