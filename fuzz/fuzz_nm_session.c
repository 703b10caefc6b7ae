/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target: the node-manager session manager
 * (include/pairlink/nm_session.h) fed relay messages.
 *
 * Two managers with fixed identities know each other: A (app role) and N
 * (node-manager role). The harness is their relay: it records what each
 * publishes and delivers it only when the input says so.
 *
 * Input: first, the whole input is given to both managers on their
 * rendezvous topic, as relay text and as bytes. Then it is read
 * as a script of records: control byte, big-endian 16-bit length, that many
 * bytes of data
 * (fewer at the end). Control byte:
 *   bits 0-2  op: 0 data as text from a WalletConnect relay (decoded as the
 *             relay transport does: base64, or an undecodable arrival);
 *             1 data as bytes on the topic; 2 deliver every queued publish
 *             to the other party;
 *             3 deliver the oldest queued publish with data XORed into its
 *             bytes after the nametag; 4 request with body data; 5 respond
 *             to the last request received with body data; 6 restart
 *             (data[0] odd: a new manager; else remove and re-add the peer);
 *             7 replay a message delivered before (data[0] picks it);
 *   bit 3     the party acting or receiving: A or N;
 *   bits 4-5  topic: the rendezvous topic, the newest or the oldest other
 *             topic the party subscribed to, or a topic nobody uses;
 *   bits 6-7  time advance before the record: 0, 150, 2500 or 31000 ms.
 * After every record both managers' timers run when due, and every output
 * is polled.
 *
 * Checks, besides "no crash, no leak, no UB, no hang":
 *  - on_message / on_bad_delivery answer PL_ERR_NOT_FOUND exactly for the
 *    topics the party is not subscribed to (subscriptions tracked from its
 *    outputs); their other errors are named codes;
 *  - PUBLISH: a pairlink content topic, a non-empty message, ttl > 0;
 *    events name the other party; RESPONSE and REQUEST_FAILED
 *    name one of our outstanding requests, once;
 *  - after on_timer(now) the next deadline is later than now.
 *
 * With PL_FUZZ_WRITE_SEEDS=DIR in the environment, the initializer writes
 * scripts of real two-party runs (handshake, request/response, knocks,
 * retries, a restart, replays, a real message 1 injected) to DIR. */
#include "pairlink/codec.h"
#include "pairlink/nm_session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define T0 INT64_C(1700000000000)
#define MAXT 16    /* topics a party may be subscribed to */
#define MAXQ 64    /* queued publishes */
#define MAXH 8     /* delivered messages kept for replays */
#define MAXREQ 128 /* outstanding requests tracked */
#define TOPIC PL_NM_SESSION_TOPIC_SIZE

static const int64_t advance[4] = {0, 150, 2500, 31000};
static const char unused_topic[] = "/pairlink/1/rv-00000000000000000000000000000000/proto";

static void check(int cond) {
    if (!cond) abort();
}

typedef struct party {
    pl_nm_sessions *m;
    pl_nm_role role;
    uint8_t priv[32], pub[32];
    char topics[MAXT][TOPIC];
    size_t ntopics;
    uint64_t reqs[MAXREQ];
    size_t nreqs;
    uint64_t last_request; /* id of the last REQUEST received */
    bool have_request;
    uint32_t rng;
} party;

typedef struct qmsg {
    int from;
    char topic[TOPIC];
    uint8_t *data;
    size_t len;
} qmsg;

typedef struct world {
    party p[2];
    qmsg q[MAXQ], hist[MAXH];
    size_t nq, nhist;
    int64_t now;
    char rv[TOPIC];
    /* seed writer: the last message 1 N published, decoded */
    uint8_t msg1[1024];
    size_t msg1_len;
} world;

static uint8_t keys[2][32], pubs[2][32];

static void jitter(void *ctx, uint8_t *buf, size_t len) {
    uint32_t *s = ctx;
    for (size_t i = 0; i < len; i++) {
        *s = *s * 1103515245u + 12345u;
        buf[i] = (uint8_t)(*s >> 16);
    }
}

static bool subscribed(const party *p, const char *topic) {
    for (size_t i = 0; i < p->ntopics; i++)
        if (!strcmp(p->topics[i], topic)) return true;
    return false;
}

static bool our_topic(const char *s) {
    return !strncmp(s, "/pairlink/1/", 12) && strlen(s) < TOPIC;
}

static void qmsg_free(qmsg *m) {
    free(m->data);
    m->data = NULL;
}

static bool take_req(party *p, uint64_t id) {
    for (size_t i = 0; i < p->nreqs; i++)
        if (p->reqs[i] == id) {
            p->reqs[i] = p->reqs[--p->nreqs];
            return true;
        }
    return false;
}

static void on_output(world *w, int k, pl_nm_session_output *o) {
    party *p = &w->p[k];
    switch (o->kind) {
    case PL_NM_SOUT_SUBSCRIBE:
        check(our_topic(o->topic));
        if (!subscribed(p, o->topic)) {
            check(p->ntopics < MAXT);
            memcpy(p->topics[p->ntopics++], o->topic, TOPIC);
        }
        break;
    case PL_NM_SOUT_UNSUBSCRIBE:
        check(our_topic(o->topic));
        for (size_t i = 0; i < p->ntopics; i++)
            if (!strcmp(p->topics[i], o->topic)) {
                memmove(p->topics[i], p->topics[i + 1], (p->ntopics - i - 1) * TOPIC);
                p->ntopics--;
                break;
            }
        break;
    case PL_NM_SOUT_PUBLISH: {
        check(our_topic(o->topic) && o->ttl_s > 0);
        check(o->message != NULL && o->message_len > 0);
        if (k == 1 && !w->msg1_len && !strcmp(o->topic, w->rv) && o->message_len <= sizeof w->msg1) {
            memcpy(w->msg1, o->message, o->message_len);
            w->msg1_len = o->message_len;
        }
        if (w->nq == MAXQ) {
            qmsg_free(&w->q[0]);
            memmove(w->q, w->q + 1, (MAXQ - 1) * sizeof *w->q);
            w->nq--;
        }
        qmsg *m = &w->q[w->nq++];
        m->from = k;
        memcpy(m->topic, o->topic, TOPIC);
        m->data = o->message; /* ownership moves to the queue */
        m->len = o->message_len;
        o->message = NULL;
        break;
    }
    case PL_NM_SOUT_EVENT:
        check(!memcmp(o->peer, w->p[!k].pub, 32));
        if (o->event == PL_NM_SEV_REQUEST) {
            p->last_request = o->id;
            p->have_request = true;
            check(o->body != NULL && o->body_len <= PL_NM_SESSION_BODY_MAX);
        } else if (o->event == PL_NM_SEV_RESPONSE || o->event == PL_NM_SEV_REQUEST_FAILED) {
            check(take_req(p, o->id));
        }
        break;
    default: check(0);
    }
}

static void drain(world *w) {
    for (int k = 0; k < 2; k++) {
        if (!w->p[k].m) continue;
        pl_nm_session_output o;
        while (pl_nm_sessions_poll(w->p[k].m, &o)) {
            on_output(w, k, &o);
            pl_nm_session_output_clear(&o);
        }
    }
}

static void timers(world *w) {
    for (int k = 0; k < 2; k++) {
        pl_nm_sessions *m = w->p[k].m;
        if (pl_nm_sessions_next_deadline(m) > w->now) continue;
        pl_nm_sessions_on_timer(m, w->now);
        check(pl_nm_sessions_next_deadline(m) > w->now);
    }
    drain(w);
}

static void party_start(world *w, int k) {
    party *p = &w->p[k];
    p->ntopics = 0;
    p->nreqs = 0;
    p->have_request = false;
    pl_nm_sessions_config cfg = {.role = p->role, .static_priv = p->priv, .rng = jitter, .rng_ctx = &p->rng};
    check(pl_nm_sessions_new(&p->m, &cfg, w->now) == PL_OK);
    check(pl_nm_sessions_add_peer(p->m, w->p[!k].pub, w->now) == PL_OK);
    drain(w);
}

static void world_init(world *w) {
    memset(w, 0, sizeof *w);
    w->now = T0;
    for (int k = 0; k < 2; k++) {
        w->p[k].role = k == 0 ? PL_NM_ROLE_APP : PL_NM_ROLE_NODE_MANAGER;
        memcpy(w->p[k].priv, keys[k], 32);
        memcpy(w->p[k].pub, pubs[k], 32);
        w->p[k].rng = (uint32_t)(k + 1);
    }
    pl_nm_rendezvous rv;
    pl_nm_rendezvous_derive(&rv, pubs[1], pubs[0]);
    snprintf(w->rv, sizeof w->rv, "%s", rv.content_topic);
    party_start(w, 0);
    party_start(w, 1);
}

static void world_free(world *w) {
    for (int k = 0; k < 2; k++) pl_nm_sessions_free(w->p[k].m);
    for (size_t i = 0; i < w->nq; i++) qmsg_free(&w->q[i]);
    for (size_t i = 0; i < w->nhist; i++) qmsg_free(&w->hist[i]);
}

static void delivered(world *w, int k, const char *topic, pl_err e) {
    check((e == PL_ERR_NOT_FOUND) == !subscribed(&w->p[k], topic));
    check(e != PL_ERR_INVALID_ARG && e != PL_ERR_INTERNAL && pl_strerror(e) != NULL);
    drain(w);
}

static void deliver_bytes(world *w, int k, const char *topic, const uint8_t *b, size_t n) {
    delivered(w, k, topic, pl_nm_sessions_on_message(w->p[k].m, topic, b, n, w->now));
}

/* What a WalletConnect relay transport hands over for this text. */
static void deliver_text(world *w, int k, const char *topic, const char *text, size_t len) {
    size_t cap = len / 4 * 3 + 3;
    uint8_t *b = malloc(cap);
    size_t n = 0;
    check(b != NULL);
    if (pl_base64_decode_public(b, cap, &n, text, len, PL_B64_STD) == PL_OK)
        deliver_bytes(w, k, topic, b, n);
    else
        delivered(w, k, topic,
                  pl_nm_sessions_on_bad_delivery(w->p[k].m, topic, PL_ERR_BAD_BASE64, w->now));
    free(b);
}

static void remember(world *w, const qmsg *m) {
    if (w->nhist == MAXH) {
        qmsg_free(&w->hist[0]);
        memmove(w->hist, w->hist + 1, (MAXH - 1) * sizeof *w->hist);
        w->nhist--;
    }
    qmsg *h = &w->hist[w->nhist++];
    *h = *m;
    h->data = malloc(m->len ? m->len : 1);
    check(h->data != NULL);
    if (m->len) memcpy(h->data, m->data, m->len);
}

/* Deliver queued message i to the other party (if subscribed: the relay
 * only forwards to subscribers), optionally with bytes XORed in. */
static void deliver_queued(world *w, size_t i, const uint8_t *x, size_t xn) {
    qmsg m = w->q[i];
    memmove(w->q + i, w->q + i + 1, (w->nq - i - 1) * sizeof *w->q);
    w->nq--;
    int to = !m.from;
    if (subscribed(&w->p[to], m.topic)) {
        remember(w, &m);
        for (size_t j = 0; j < xn && m.len; j++) m.data[(16 + j) % m.len] ^= x[j];
        deliver_bytes(w, to, m.topic, m.data, m.len);
    }
    qmsg_free(&m);
}

static const char *pick_topic(const world *w, int k, int sel) {
    const party *p = &w->p[k];
    if (sel == 3) return unused_topic;
    if (sel == 0) return w->rv;
    for (size_t n = 0; n < p->ntopics; n++) {
        size_t i = sel == 1 ? p->ntopics - 1 - n : n;
        if (strcmp(p->topics[i], w->rv)) return p->topics[i];
    }
    return w->rv;
}

static void record(world *w, int ctl, const uint8_t *d, size_t n) {
    int op = ctl & 7, k = (ctl >> 3) & 1;
    party *p = &w->p[k];
    w->now += advance[(ctl >> 6) & 3];
    timers(w);
    const char *topic = pick_topic(w, k, (ctl >> 4) & 3);
    switch (op) {
    case 0: deliver_text(w, k, topic, (const char *)d, n); break;
    case 1: deliver_bytes(w, k, topic, d, n); break;
    case 2:
        for (int i = 0; i < 16 && w->nq; i++) deliver_queued(w, 0, NULL, 0);
        break;
    case 3:
        if (w->nq) deliver_queued(w, 0, d, n);
        break;
    case 4: {
        uint64_t id = 0;
        pl_err e = pl_nm_sessions_request(p->m, w->p[!k].pub, d, n, w->now, &id);
        if (e == PL_OK) {
            check(!take_req(p, id) && p->nreqs < MAXREQ);
            p->reqs[p->nreqs++] = id;
        } else {
            check(e == PL_ERR_TOO_LARGE || e == PL_ERR_NOMEM);
        }
        drain(w);
        break;
    }
    case 5: {
        uint64_t id = p->last_request;
        if (!p->have_request)
            for (size_t i = 0; i < n && i < 8; i++) id = id << 8 | d[i];
        pl_err e = pl_nm_sessions_respond(p->m, w->p[!k].pub, id, d, n, w->now);
        check(e == PL_OK || e == PL_ERR_DISCONNECTED || e == PL_ERR_NOMEM);
        drain(w);
        break;
    }
    case 6:
        if (n && (d[0] & 1)) {
            pl_nm_sessions_free(p->m);
            p->m = NULL;
            party_start(w, k);
        } else {
            check(pl_nm_sessions_remove_peer(p->m, w->p[!k].pub, w->now) == PL_OK);
            drain(w);
            /* Every topic was given up; the outstanding requests failed. */
            check(p->ntopics == 0 && p->nreqs == 0);
            check(pl_nm_sessions_add_peer(p->m, w->p[!k].pub, w->now) == PL_OK);
            drain(w);
        }
        break;
    case 7:
        if (w->nhist) {
            const qmsg *h = &w->hist[(n ? d[0] : 0) % w->nhist];
            deliver_bytes(w, k, h->topic, h->data, h->len);
        }
        break;
    }
    timers(w);
}

static void run(world *w, const uint8_t *data, size_t size) {
    for (int k = 0; k < 2; k++) {
        deliver_text(w, k, w->rv, (const char *)data, size);
        deliver_bytes(w, k, w->rv, data, size);
    }
    size_t i = 0;
    while (i + 3 <= size) {
        int ctl = data[i];
        size_t n = (size_t)data[i + 1] << 8 | data[i + 2];
        i += 3;
        if (n > size - i) n = size - i;
        record(w, ctl, data + i, n);
        i += n;
    }
}

/* ---- seeds ---- */

typedef struct seed {
    uint8_t b[4096];
    size_t len;
} seed;

#define CTL(op, k, t, adv) ((op) | ((k) << 3) | ((t) << 4) | ((adv) << 6))

static void add(seed *s, world *w, int ctl, const void *d, size_t n) {
    check(n <= 0xffff && s->len + 3 + n <= sizeof s->b);
    s->b[s->len++] = (uint8_t)ctl;
    s->b[s->len++] = (uint8_t)(n >> 8);
    s->b[s->len++] = (uint8_t)n;
    if (n) memcpy(s->b + s->len, d, n);
    s->len += n;
    record(w, ctl, d, n);
}

static void write_seed(const char *dir, const char *name, const seed *s) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) return;
    fwrite(s->b, 1, s->len, f);
    fclose(f);
}

static void write_seeds(const char *dir) {
    world w;
    seed s;

    /* Handshake (N starts, A answers, N finishes), then a request each way. */
    world_init(&w), s.len = 0;
    for (int i = 0; i < 3; i++) add(&s, &w, CTL(2, i & 1, 0, 0), NULL, 0);
    add(&s, &w, CTL(4, 1, 1, 0), "status?", 7);
    add(&s, &w, CTL(2, 1, 1, 0), NULL, 0);
    add(&s, &w, CTL(5, 0, 1, 1), "ok", 2);
    add(&s, &w, CTL(2, 0, 1, 0), NULL, 0);
    add(&s, &w, CTL(4, 0, 1, 0), "ping", 4);
    add(&s, &w, CTL(2, 0, 1, 0), NULL, 0);
    add(&s, &w, CTL(5, 1, 1, 0), "pong", 4);
    add(&s, &w, CTL(2, 1, 1, 0), NULL, 0);
    add(&s, &w, CTL(7, 0, 1, 0), "\x03", 1);
    write_seed(dir, "seed-handshake-request", &s);
    uint8_t msg1[1024];
    size_t msg1_len = w.msg1_len;
    memcpy(msg1, w.msg1, msg1_len);
    world_free(&w);

    /* Nothing delivered: N retries, A knocks; then the knock reaches N. */
    world_init(&w), s.len = 0;
    for (int i = 0; i < 4; i++) add(&s, &w, CTL(4, i & 1, 0, 2), "queued", 6);
    add(&s, &w, CTL(2, 0, 0, 3), NULL, 0);
    add(&s, &w, CTL(2, 1, 0, 0), NULL, 0);
    add(&s, &w, CTL(2, 0, 0, 0), NULL, 0);
    add(&s, &w, CTL(2, 1, 0, 3), NULL, 0);
    write_seed(dir, "seed-retry-knock", &s);
    world_free(&w);

    /* Established, then A restarts and N removes and re-adds A. */
    world_init(&w), s.len = 0;
    for (int i = 0; i < 3; i++) add(&s, &w, CTL(2, i & 1, 0, 0), NULL, 0);
    add(&s, &w, CTL(6, 0, 0, 1), "\x01", 1);
    add(&s, &w, CTL(2, 0, 0, 2), NULL, 0);
    add(&s, &w, CTL(2, 1, 0, 0), NULL, 0);
    add(&s, &w, CTL(6, 1, 0, 0), "\x00", 1);
    for (int i = 0; i < 3; i++) add(&s, &w, CTL(2, i & 1, 0, 1), NULL, 0);
    write_seed(dir, "seed-restart", &s);
    world_free(&w);

    /* Tampered messages, garbage on each topic. */
    world_init(&w), s.len = 0;
    add(&s, &w, CTL(3, 1, 0, 0), "\x01", 1);
    add(&s, &w, CTL(2, 0, 0, 2), NULL, 0);
    add(&s, &w, CTL(2, 1, 0, 0), NULL, 0);
    add(&s, &w, CTL(2, 0, 0, 0), NULL, 0);
    add(&s, &w, CTL(0, 0, 1, 0), "not base64!", 11);
    add(&s, &w, CTL(1, 1, 1, 0), "0123456789abcdef0123", 20);
    add(&s, &w, CTL(1, 0, 3, 0), "x", 1);
    write_seed(dir, "seed-tampered", &s);
    world_free(&w);

    /* A real message 1 from another run, given to A as bytes. */
    if (msg1_len) {
        world_init(&w), s.len = 0;
        add(&s, &w, CTL(1, 0, 0, 0), msg1, msg1_len);
        add(&s, &w, CTL(2, 0, 0, 0), NULL, 0);
        write_seed(dir, "seed-foreign-msg1", &s);
        world_free(&w);
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    if (pl_init() != PL_OK) abort();
    for (int k = 0; k < 2; k++) {
        for (int i = 0; i < 32; i++) keys[k][i] = (uint8_t)(0x10 * (k + 1) + i);
        pl_x25519_public(pubs[k], keys[k]);
    }
    const char *dir = getenv("PL_FUZZ_WRITE_SEEDS");
    if (dir) write_seeds(dir);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > 65536) return 0;
    world w;
    world_init(&w);
    run(&w, data, size);
    world_free(&w);
    return 0;
}
