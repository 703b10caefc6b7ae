/* SPDX-License-Identifier: Apache-2.0 */
/* Node-manager sessions (include/pairlink/nm_session.h): K1K1 handshakes on
 * the rendezvous topic, knocks, retries with backoff, request/response
 * framing. Specified in docs/protocol/node-manager-pairing.md section 13. */
#include "pairlink/nm_session.h"

#include "core/internal.h"
#include "pairlink/codec.h"
#include "pairlink/hash.h"
#include "pairlink/noise.h"
#include "pairlink/waku_payload.h"

#include <limits.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define HS_PAYLOAD_LEN 20 /* magic(4) | created_at(8) | echo(8) */
#define KNOCK_LEN 20      /* magic(4) | created_at(8) | knock id(8) */
#define MY_KNOCKS 4       /* app: recent knock ids a message 1 may echo */

/* Frame types (spec 13.3). REVOKE: "I forgot you" (a request without a
 * body, answered by a RESPONSE like any request; spec 13.5). */
enum { FR_READY = 1, FR_REQUEST = 2, FR_RESPONSE = 3, FR_REVOKE = 4 };

typedef struct req {
    uint64_t id;
    int64_t deadline;
    uint8_t *body; /* kept until sent */
    size_t len;
    bool sent;
    uint8_t type; /* FR_REQUEST or FR_REVOKE */
} req;

typedef struct responder {
    pl_noise_hs *hs;
    int64_t deadline;
} responder;

typedef struct peer {
    uint8_t pub[PL_NM_KEY_BYTES];
    pl_nm_rendezvous rv;
    /* initiator */
    pl_noise_hs *hs;
    int64_t hs_deadline;
    int64_t hs_started;
    int64_t added_at;
    uint32_t attempt;
    int64_t next_attempt; /* INT64_MAX: none scheduled */
    pl_noise_session *pending;
    char pending_topic[PL_NM_SESSION_TOPIC_SIZE];
    int64_t pending_deadline;
    /* responder */
    responder resp[PL_NM_SESSION_RESPONDERS];
    int64_t next_knock;   /* INT64_MAX: not knocking */
    uint32_t knock_attempt;
    int64_t last_knock;
    /* Two processes of one identity (a daemon and a one-shot `send`) both
     * read the rendezvous topic: a handshake the node manager starts for a
     * knock echoes the knock's id, and only the process that knocked
     * answers it. */
    uint64_t my_knocks[MY_KNOCKS]; /* app: ids of its latest knocks */
    size_t my_knock_next;
    uint64_t answer_knock;         /* nm: knock id the next message 1 echoes */
    /* the session */
    pl_noise_session *sess;
    char sess_topic[PL_NM_SESSION_TOPIC_SIZE];
    int64_t established_at;
    uint64_t next_id;
    req reqs[PL_NM_SESSION_MAX_REQUESTS];
    size_t nreqs;
} peer;

typedef struct qnode {
    struct qnode *next;
    pl_nm_session_output o;
} qnode;

struct pl_nm_sessions {
    pl_nm_role role;
    uint8_t priv[PL_NM_KEY_BYTES];
    uint8_t pub[PL_NM_KEY_BYTES];
    int64_t hs_timeout, bo_min, bo_max, req_timeout;
    /* admission: attempts under way, counted at every timer run and
     * increased by each start in between (ends are seen at the next run) */
    size_t max_hs, active;
    pl_nm_rng_fn rng;
    void *rng_ctx;
    peer **peers;
    size_t npeers, cap;
    qnode *qhead, *qtail;
    size_t qlen;
    pl_nm_sessions_stats stats;
};

/* ---- output queue ---- */

void pl_nm_session_output_clear(pl_nm_session_output *o) {
    if (!o) return;
    free(o->message);
    if (o->body) pl_free_secret(o->body, o->body_len);
    memset(o, 0, sizeof *o);
}

static void push(pl_nm_sessions *m, pl_nm_session_output *o) {
    if (m->qlen >= PL_NM_SESSION_QUEUE_MAX) {
        m->stats.outputs_lost++;
        pl_nm_session_output_clear(o);
        return;
    }
    qnode *n = calloc(1, sizeof *n);
    if (!n) {
        m->stats.outputs_lost++;
        pl_nm_session_output_clear(o);
        return;
    }
    n->o = *o;
    memset(o, 0, sizeof *o);
    if (m->qtail) m->qtail->next = n;
    else m->qhead = n;
    m->qtail = n;
    m->qlen++;
}

bool pl_nm_sessions_poll(pl_nm_sessions *m, pl_nm_session_output *out) {
    PL_REQUIRE(m && out);
    memset(out, 0, sizeof *out);
    qnode *n = m->qhead;
    if (!n) return false;
    m->qhead = n->next;
    if (!m->qhead) m->qtail = NULL;
    m->qlen--;
    *out = n->o;
    free(n);
    return true;
}

static void out_topic(pl_nm_sessions *m, pl_nm_session_output_kind k, const char *topic) {
    pl_nm_session_output o = {.kind = k};
    snprintf(o.topic, sizeof o.topic, "%s", topic);
    push(m, &o);
}

static void ev(pl_nm_sessions *m, const peer *p, pl_nm_session_event e, pl_err err) {
    pl_nm_session_output o = {.kind = PL_NM_SOUT_EVENT, .event = e, .err = err};
    memcpy(o.peer, p->pub, PL_NM_KEY_BYTES);
    push(m, &o);
}

static void dropped(pl_nm_sessions *m, const peer *p, pl_err err) {
    m->stats.dropped++;
    ev(m, p, PL_NM_SEV_DROPPED, err);
}

/* Publish a PayloadV2 (takes ownership of wire). Ephemeral: worthless
 * once its moment passed and repaired by the protocol itself when lost
 * (handshake messages, knocks, READY); requests and responses are not. */
static void publish_wire(pl_nm_sessions *m, const char *topic, uint8_t *wire, size_t len,
                         bool ephemeral) {
    pl_nm_session_output o = {
        .kind = PL_NM_SOUT_PUBLISH, .ttl_s = PL_NM_SESSION_RELAY_TTL_S, .ephemeral = ephemeral};
    snprintf(o.topic, sizeof o.topic, "%s", topic);
    o.message = wire;
    o.message_len = len;
    push(m, &o);
}

/* ---- helpers ---- */

static void put_u64(uint8_t *b, uint64_t v) {
    for (int i = 7; i >= 0; i--, v >>= 8) b[i] = (uint8_t)v;
}

static uint64_t get_u64(const uint8_t *b) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v = v << 8 | b[i];
    return v;
}

static const uint8_t *knock_tag(const peer *p) { return p->rv.rv + 16; }

static peer *find_peer(const pl_nm_sessions *m, const uint8_t pub[PL_NM_KEY_BYTES]) {
    for (size_t i = 0; i < m->npeers; i++)
        if (!memcmp(m->peers[i]->pub, pub, PL_NM_KEY_BYTES)) return m->peers[i];
    return NULL;
}

/* Backoff for attempt n (1-based): min * 2^(n-1), capped, minus up to 25 %
 * jitter so that many peers restarted together do not retry in lockstep. */
static int64_t backoff(pl_nm_sessions *m, uint32_t n) {
    int64_t d = m->bo_min;
    for (uint32_t i = 1; i < n && d < m->bo_max; i++) d *= 2;
    if (d > m->bo_max) d = m->bo_max;
    uint8_t r[2];
    pl__rng(m->rng, m->rng_ctx, r, sizeof r);
    int64_t j = (d / 4) * (int64_t)(r[0] << 8 | r[1]) / 65536;
    return d - j;
}

static void free_req(req *r) {
    if (r->body) pl_free_secret(r->body, r->len);
    r->body = NULL;
}

static void clear_responders(peer *p) {
    for (size_t i = 0; i < PL_NM_SESSION_RESPONDERS; i++) {
        pl_noise_hs_free(p->resp[i].hs);
        p->resp[i].hs = NULL;
    }
}

static void free_peer(peer *p) {
    if (!p) return;
    pl_noise_hs_free(p->hs);
    pl_noise_session_free(p->pending);
    pl_noise_session_free(p->sess);
    clear_responders(p);
    for (size_t i = 0; i < p->nreqs; i++) free_req(&p->reqs[i]);
    sodium_memzero(p, sizeof *p);
    free(p);
}

static pl_err session_topic(char out[PL_NM_SESSION_TOPIC_SIZE], const pl_noise_session *s) {
    char *ct = NULL;
    PL_TRY(pl_noise_session_content_topic(&ct, s, "pairlink", "1"));
    size_t n = strlen(ct);
    PL_REQUIRE(n < PL_NM_SESSION_TOPIC_SIZE); /* fixed by the app and version names */
    memcpy(out, ct, n + 1);
    pl_free(ct);
    return PL_OK;
}

/* Encrypt one frame on a session and publish it on its topic. */
static pl_err send_frame(pl_nm_sessions *m, pl_noise_session *s, const char *topic, int type,
                         uint64_t id, const uint8_t *body, size_t len) {
    if (len > PL_NM_SESSION_BODY_MAX) return PL_ERR_TOO_LARGE;
    uint8_t *f = malloc(PL_NM_SESSION_FRAME_HEADER + len + 1);
    if (!f) return PL_ERR_NOMEM;
    f[0] = (uint8_t)type;
    put_u64(f + 1, id);
    if (len) memcpy(f + PL_NM_SESSION_FRAME_HEADER, body, len);
    uint8_t *wire = NULL;
    size_t wlen = 0;
    pl_err e = pl_noise_session_encrypt(s, f, PL_NM_SESSION_FRAME_HEADER + len, &wire, &wlen);
    pl_free_secret(f, PL_NM_SESSION_FRAME_HEADER + len + 1);
    if (e != PL_OK) return e;
    publish_wire(m, topic, wire, wlen, type == FR_READY);
    return PL_OK;
}

static void flush_requests(pl_nm_sessions *m, peer *p) {
    for (size_t i = 0; i < p->nreqs; i++) {
        req *r = &p->reqs[i];
        if (r->sent) continue;
        if (send_frame(m, p->sess, p->sess_topic, r->type, r->id, r->body, r->len) != PL_OK)
            continue; /* stays queued; its deadline still applies */
        r->sent = true;
        free_req(r);
    }
}

/* A session became usable: it replaces the previous one (seed step 11: a
 * restarted peer re-handshakes). */
static void install_session(pl_nm_sessions *m, peer *p, pl_noise_session *s, const char *topic,
                            int64_t now) {
    bool replaced = p->sess != NULL;
    if (p->sess) {
        if (strcmp(p->sess_topic, topic)) out_topic(m, PL_NM_SOUT_UNSUBSCRIBE, p->sess_topic);
        pl_noise_session_free(p->sess);
    }
    p->sess = s;
    snprintf(p->sess_topic, sizeof p->sess_topic, "%s", topic);
    p->established_at = now;
    p->attempt = 0;
    p->next_attempt = INT64_MAX;
    p->knock_attempt = 0;
    p->next_knock = INT64_MAX;
    /* Requests sent on the old session may never be answered; re-send
     * those still waiting on the new one (ids are unique per sender, so the
     * peer answers whichever arrives). */
    m->stats.established++;
    pl_nm_session_output o = {.kind = PL_NM_SOUT_EVENT, .event = PL_NM_SEV_ESTABLISHED,
                              .replaced = replaced};
    memcpy(o.peer, p->pub, PL_NM_KEY_BYTES);
    pl_noise_session_id(s, o.session_id);
    push(m, &o);
    flush_requests(m, p);
}

/* ---- initiator (node manager) ---- */

static void hs_payload(uint8_t out[HS_PAYLOAD_LEN], int64_t now, uint64_t echo) {
    memcpy(out, PL_NM_SESSION_HS_MAGIC, 4);
    put_u64(out + 4, (uint64_t)now);
    put_u64(out + 12, echo);
}

/* A handshake payload is fresh when made within the handshake time-out
 * (plus clock skew): old messages that a relay mailbox hands to a late
 * subscriber are not answered. */
static pl_err check_hs_payload(pl_nm_sessions *m, const uint8_t *pl, size_t len, int64_t now) {
    if (len != HS_PAYLOAD_LEN || memcmp(pl, PL_NM_SESSION_HS_MAGIC, 4)) return PL_ERR_NOISE_PAYLOAD;
    int64_t t = (int64_t)get_u64(pl + 4);
    if (t < now - m->hs_timeout - PL_NM_CLOCK_SKEW_MS || t > now + PL_NM_CLOCK_SKEW_MS)
        return PL_ERR_TIMEOUT;
    return PL_OK;
}

static pl_err new_hs(pl_nm_sessions *m, const peer *p, pl_noise_role role, pl_noise_hs **out) {
    pl_noise_keys keys = {
        .static_priv = m->priv, .static_pub = m->pub, .remote_static_pub = p->pub};
    return pl_noise_hs_new(out, PL_NOISE_K1K1, role, &keys, (const uint8_t *)PL_NM_SESSION_PROLOGUE,
                           strlen(PL_NM_SESSION_PROLOGUE), NULL);
}

static void schedule_retry(pl_nm_sessions *m, peer *p, pl_err why, int64_t now) {
    pl_noise_hs_free(p->hs);
    p->hs = NULL;
    if (p->pending) {
        out_topic(m, PL_NM_SOUT_UNSUBSCRIBE, p->pending_topic);
        pl_noise_session_free(p->pending);
        p->pending = NULL;
    }
    if (p->attempt == 0) p->attempt = 1;
    p->next_attempt = now + backoff(m, p->attempt);
    pl_nm_session_output o = {.kind = PL_NM_SOUT_EVENT, .event = PL_NM_SEV_RETRY, .err = why,
                              .attempt = p->attempt, .retry_at_ms = p->next_attempt};
    memcpy(o.peer, p->pub, PL_NM_KEY_BYTES);
    push(m, &o);
}

static void start_attempt(pl_nm_sessions *m, peer *p, int64_t now) {
    pl_noise_hs_free(p->hs);
    p->hs = NULL;
    p->attempt++;
    p->next_attempt = INT64_MAX;
    p->hs_started = now;
    uint8_t pl[HS_PAYLOAD_LEN];
    /* echo the knock this attempt answers (0: started on our own) */
    hs_payload(pl, now, p->answer_knock);
    p->answer_knock = 0;
    uint8_t *wire = NULL;
    size_t wlen = 0;
    pl_err e = new_hs(m, p, PL_NOISE_INITIATOR, &p->hs);
    if (e == PL_OK) e = pl_noise_hs_write(p->hs, p->rv.nametag, pl, sizeof pl, &wire, &wlen);
    if (e != PL_OK) {
        schedule_retry(m, p, e, now);
        return;
    }
    p->hs_deadline = now + m->hs_timeout;
    m->stats.handshakes_started++;
    publish_wire(m, p->rv.content_topic, wire, wlen, true);
    pl_nm_session_output o = {.kind = PL_NM_SOUT_EVENT, .event = PL_NM_SEV_CONNECTING,
                              .attempt = p->attempt};
    memcpy(o.peer, p->pub, PL_NM_KEY_BYTES);
    push(m, &o);
}

/* An attempt, if fewer than max_hs are under way; otherwise this peer's
 * turn comes at a later timer run. */
#define ADMIT_RECHECK_MS 50

static void try_start(pl_nm_sessions *m, peer *p, int64_t now) {
    if (m->active >= m->max_hs) {
        m->stats.handshakes_deferred++;
        p->next_attempt = now + ADMIT_RECHECK_MS;
        return;
    }
    start_attempt(m, p, now);
    if (p->hs) m->active++;
}

static size_t count_active(const pl_nm_sessions *m) {
    size_t n = 0;
    for (size_t i = 0; i < m->npeers; i++) n += m->peers[i]->hs || m->peers[i]->pending;
    return n;
}

static void rejected(pl_nm_sessions *m, peer *p) {
    m->stats.rejected++;
    ev(m, p, PL_NM_SEV_REJECTED, PL_ERR_UNKNOWN_PEER);
}

/* Message 2 (or noise) on the rendezvous topic at the node manager. */
static pl_err initiator_read(pl_nm_sessions *m, peer *p, const uint8_t *wire, size_t len,
                             int64_t now) {
    if (!p->hs || pl_noise_hs_action(p->hs) != PL_NOISE_ACTION_READ) {
        m->stats.dropped++;
        return PL_OK;
    }
    uint8_t *pl = NULL;
    size_t plen = 0;
    pl_err e = pl_noise_hs_read(p->hs, wire, len, NULL, &pl, &plen);
    if (e == PL_ERR_NOISE_NAMETAG || e == PL_ERR_NOISE_STATE ||
        (e == PL_ERR_NOISE_PAYLOAD && len < PL_NOISE_NAMETAG_BYTES)) {
        m->stats.dropped++; /* another step's message (an old attempt's answer) */
        return PL_OK;
    }
    if (e == PL_OK) {
        e = check_hs_payload(m, pl, plen, now);
        pl_free_secret(pl, plen);
    }
    if (e != PL_OK) {
        /* Addressed to this step but does not verify: the answer is not from
         * the stored key (K1K1 binds both static keys). */
        rejected(m, p);
        schedule_retry(m, p, PL_ERR_UNKNOWN_PEER, now);
        return e;
    }
    uint8_t out_pl[HS_PAYLOAD_LEN];
    hs_payload(out_pl, now, 0);
    uint8_t *w3 = NULL;
    size_t w3len = 0;
    pl_noise_session *s = NULL;
    char topic[PL_NM_SESSION_TOPIC_SIZE];
    e = pl_noise_hs_write(p->hs, NULL, out_pl, sizeof out_pl, &w3, &w3len);
    if (e == PL_OK) e = pl_noise_hs_split(p->hs, &s);
    if (e == PL_OK) e = session_topic(topic, s);
    pl_noise_hs_free(p->hs);
    p->hs = NULL;
    if (e != PL_OK) {
        pl_free(w3);
        pl_noise_session_free(s);
        schedule_retry(m, p, e, now);
        return PL_OK;
    }
    /* Subscribe before message 3 goes out so that the app's READY, sent on
     * reading it, finds us listening. */
    if (p->pending) {
        out_topic(m, PL_NM_SOUT_UNSUBSCRIBE, p->pending_topic);
        pl_noise_session_free(p->pending);
    }
    p->pending = s;
    snprintf(p->pending_topic, sizeof p->pending_topic, "%s", topic);
    p->pending_deadline = now + m->hs_timeout;
    out_topic(m, PL_NM_SOUT_SUBSCRIBE, topic);
    publish_wire(m, p->rv.content_topic, w3, w3len, true);
    return PL_OK;
}

static void on_knock(pl_nm_sessions *m, peer *p, const uint8_t *t, size_t tlen, int64_t now) {
    if (tlen != KNOCK_LEN || memcmp(t, PL_NM_SESSION_KNOCK_MAGIC, 4)) {
        dropped(m, p, PL_ERR_NOISE_PAYLOAD);
        return;
    }
    int64_t at = (int64_t)get_u64(t + 4);
    uint64_t knock_id = get_u64(t + 12);
    /* A knock made before something we did since (adding the peer, the
     * last attempt, the current session) asks for nothing new: relay
     * mailboxes hand old knocks to late subscribers. */
    if (at < now - 2 * m->hs_timeout - PL_NM_CLOCK_SKEW_MS || at < p->added_at ||
        at < p->hs_started || (p->sess && at < p->established_at)) {
        m->stats.dropped++;
        return;
    }
    m->stats.knocks_received++;
    pl_nm_session_output o = {.kind = PL_NM_SOUT_EVENT, .event = PL_NM_SEV_KNOCKED};
    memcpy(o.peer, p->pub, PL_NM_KEY_BYTES);
    push(m, &o);
    if ((p->hs || p->pending) && now - p->hs_started < PL_NM_SESSION_KNOCK_MIN_MS) return;
    if (p->hs && now - p->hs_started < m->hs_timeout / 2) return; /* an attempt is under way */
    p->answer_knock = knock_id;
    p->attempt = 0;
    if (p->hs || p->pending) start_attempt(m, p, now); /* a restart: counted already */
    else try_start(m, p, now);
}

/* ---- responder (app) ---- */

static void send_knock(pl_nm_sessions *m, peer *p, int64_t now) {
    uint8_t t[KNOCK_LEN];
    uint64_t id = 0;
    while (id == 0) pl__rng(m->rng, m->rng_ctx, (uint8_t *)&id, sizeof id); /* 0: "no knock" */
    memcpy(t, PL_NM_SESSION_KNOCK_MAGIC, 4);
    put_u64(t + 4, (uint64_t)now);
    put_u64(t + 12, id);
    p->my_knocks[p->my_knock_next++ % MY_KNOCKS] = id;
    pl_noise_payload pl = {.protocol_id = PL_NOISE_PROTOCOL_TRANSPORT, .transport = t,
                           .transport_len = sizeof t};
    memcpy(pl.nametag, knock_tag(p), PL_NOISE_NAMETAG_BYTES);
    uint8_t *wire = NULL;
    size_t wlen = 0;
    if (pl_noise_payload_serialize(&wire, &wlen, &pl) != PL_OK) return;
    p->last_knock = now;
    p->knock_attempt++;
    m->stats.knocks_sent++;
    publish_wire(m, p->rv.content_topic, wire, wlen, true);
    pl_nm_session_output o = {.kind = PL_NM_SOUT_EVENT, .event = PL_NM_SEV_KNOCKED,
                              .attempt = p->knock_attempt};
    memcpy(o.peer, p->pub, PL_NM_KEY_BYTES);
    push(m, &o);
}

/* Message 1: answer it in a fresh responder slot (the oldest slot goes). */
static pl_err responder_msg1(pl_nm_sessions *m, peer *p, const uint8_t *wire, size_t len,
                             int64_t now) {
    pl_noise_hs *hs = NULL;
    uint8_t *pl = NULL;
    size_t plen = 0;
    pl_err e = new_hs(m, p, PL_NOISE_RESPONDER, &hs);
    if (e == PL_OK) e = pl_noise_hs_read(hs, wire, len, p->rv.nametag, &pl, &plen);
    bool for_other = false;
    if (e == PL_OK) {
        e = check_hs_payload(m, pl, plen, now);
        if (e == PL_OK) {
            uint64_t echo = get_u64(pl + 12);
            for_other = echo != 0;
            for (size_t i = 0; i < MY_KNOCKS; i++)
                if (echo && p->my_knocks[i] == echo) for_other = false;
        }
        pl_free_secret(pl, plen);
    }
    if (e == PL_OK && for_other) {
        /* answers another process's knock (same identity, e.g. a daemon
         * beside `pairlink send`): leave it to that process */
        pl_noise_hs_free(hs);
        m->stats.dropped++;
        return PL_OK;
    }
    if (e == PL_ERR_TIMEOUT) {
        pl_noise_hs_free(hs);
        m->stats.dropped++; /* stale: kept by the relay mailbox */
        return PL_OK;
    }
    uint8_t out_pl[HS_PAYLOAD_LEN];
    hs_payload(out_pl, now, 0);
    uint8_t *w2 = NULL;
    size_t w2len = 0;
    if (e == PL_OK) e = pl_noise_hs_write(hs, NULL, out_pl, sizeof out_pl, &w2, &w2len);
    if (e != PL_OK) {
        pl_noise_hs_free(hs);
        dropped(m, p, e);
        return e;
    }
    size_t slot = 0;
    for (size_t i = 0; i < PL_NM_SESSION_RESPONDERS; i++) {
        if (!p->resp[i].hs) {
            slot = i;
            break;
        }
        if (p->resp[i].deadline < p->resp[slot].deadline) slot = i;
    }
    pl_noise_hs_free(p->resp[slot].hs);
    p->resp[slot].hs = hs;
    p->resp[slot].deadline = now + m->hs_timeout;
    m->stats.handshakes_started++;
    publish_wire(m, p->rv.content_topic, w2, w2len, true);
    return PL_OK;
}

/* Message 3: find the slot it answers. */
static pl_err responder_msg3(pl_nm_sessions *m, peer *p, const uint8_t *wire, size_t len,
                             int64_t now) {
    for (size_t i = 0; i < PL_NM_SESSION_RESPONDERS; i++) {
        responder *r = &p->resp[i];
        if (!r->hs) continue;
        uint8_t *pl = NULL;
        size_t plen = 0;
        pl_err e = pl_noise_hs_read(r->hs, wire, len, NULL, &pl, &plen);
        if (e == PL_ERR_NOISE_NAMETAG || e == PL_ERR_NOISE_STATE) continue;
        if (e == PL_OK) {
            e = check_hs_payload(m, pl, plen, now);
            pl_free_secret(pl, plen);
        }
        pl_noise_session *s = NULL;
        char topic[PL_NM_SESSION_TOPIC_SIZE];
        if (e == PL_OK && pl_noise_hs_action(r->hs) != PL_NOISE_ACTION_SPLIT) e = PL_ERR_NOISE_STATE;
        if (e != PL_OK) {
            pl_noise_hs_free(r->hs);
            r->hs = NULL;
            rejected(m, p);
            return e;
        }
        e = pl_noise_hs_split(r->hs, &s);
        pl_noise_hs_free(r->hs);
        r->hs = NULL;
        if (e == PL_OK) e = session_topic(topic, s);
        if (e != PL_OK) {
            pl_noise_session_free(s);
            dropped(m, p, e);
            return e;
        }
        /* Older answers are moot now. */
        clear_responders(p);
        if (!p->sess || strcmp(p->sess_topic, topic)) out_topic(m, PL_NM_SOUT_SUBSCRIBE, topic);
        e = send_frame(m, s, topic, FR_READY, 0, NULL, 0);
        install_session(m, p, s, topic, now);
        return e;
    }
    m->stats.dropped++; /* an answer to an attempt we do not hold, or our own */
    return PL_OK;
}

/* ---- session frames ---- */

static void on_frame(pl_nm_sessions *m, peer *p, const uint8_t *f, size_t len, int64_t now) {
    (void)now;
    if (len < PL_NM_SESSION_FRAME_HEADER || len - PL_NM_SESSION_FRAME_HEADER > PL_NM_SESSION_BODY_MAX) {
        dropped(m, p, PL_ERR_NOISE_PAYLOAD);
        return;
    }
    uint64_t id = get_u64(f + 1);
    const uint8_t *body = f + PL_NM_SESSION_FRAME_HEADER;
    size_t blen = len - PL_NM_SESSION_FRAME_HEADER;
    switch (f[0]) {
    case FR_READY: return;
    case FR_REVOKE: {
        pl_nm_session_output o = {.kind = PL_NM_SOUT_EVENT, .event = PL_NM_SEV_REVOKED, .id = id};
        memcpy(o.peer, p->pub, PL_NM_KEY_BYTES);
        push(m, &o);
        return;
    }
    case FR_REQUEST:
    case FR_RESPONSE: {
        if (f[0] == FR_RESPONSE) {
            size_t i = 0;
            while (i < p->nreqs && p->reqs[i].id != id) i++;
            if (i == p->nreqs) {
                m->stats.dropped++; /* late (timed out) or duplicate answer */
                return;
            }
            free_req(&p->reqs[i]);
            p->reqs[i] = p->reqs[--p->nreqs];
        }
        pl_nm_session_output o = {.kind = PL_NM_SOUT_EVENT,
                                  .event = f[0] == FR_REQUEST ? PL_NM_SEV_REQUEST : PL_NM_SEV_RESPONSE,
                                  .id = id};
        memcpy(o.peer, p->pub, PL_NM_KEY_BYTES);
        o.body = malloc(blen + 1);
        if (!o.body) {
            m->stats.outputs_lost++;
            return;
        }
        if (blen) memcpy(o.body, body, blen);
        o.body[blen] = 0; /* convenient for text; not counted in body_len */
        o.body_len = blen;
        push(m, &o);
        return;
    }
    default: dropped(m, p, PL_ERR_NOISE_PAYLOAD); return;
    }
}

static pl_err session_read(pl_nm_sessions *m, peer *p, pl_noise_session *s, const uint8_t *wire,
                           size_t len, int64_t now) {
    uint8_t *f = NULL;
    size_t flen = 0;
    pl_err e = pl_noise_session_decrypt(s, wire, len, &f, &flen);
    if (e == PL_ERR_NOISE_WINDOW) {
        m->stats.dropped++; /* not for us: our own message, or an older session's */
        return PL_OK;
    }
    if (e != PL_OK) {
        dropped(m, p, e);
        return e;
    }
    if (s == p->pending) {
        p->pending = NULL;
        install_session(m, p, s, p->pending_topic, now);
    }
    on_frame(m, p, f, flen, now);
    pl_free_secret(f, flen);
    return PL_OK;
}

/* ---- public entry points ---- */

pl_err pl_nm_sessions_new(pl_nm_sessions **out, const pl_nm_sessions_config *cfg, int64_t now_ms) {
    PL_REQUIRE(out && cfg && cfg->static_priv);
    (void)now_ms;
    *out = NULL;
    if (cfg->role != PL_NM_ROLE_APP && cfg->role != PL_NM_ROLE_NODE_MANAGER) return PL_ERR_INVALID_ARG;
    int64_t hs = cfg->handshake_timeout_ms ? cfg->handshake_timeout_ms : PL_NM_SESSION_HS_TIMEOUT_MS;
    int64_t bmin = cfg->backoff_min_ms ? cfg->backoff_min_ms : PL_NM_SESSION_BACKOFF_MIN_MS;
    int64_t bmax = cfg->backoff_max_ms ? cfg->backoff_max_ms : PL_NM_SESSION_BACKOFF_MAX_MS;
    int64_t rt = cfg->request_timeout_ms ? cfg->request_timeout_ms : PL_NM_SESSION_REQUEST_TIMEOUT_MS;
    if (hs < 100 || hs > 600000 || bmin < 10 || bmin > 600000 || bmax < bmin || bmax > 86400000 ||
        rt < 100 || rt > 3600000)
        return PL_ERR_INVALID_ARG;
    pl_nm_sessions *m = calloc(1, sizeof *m);
    if (!m) return PL_ERR_NOMEM;
    m->role = cfg->role;
    memcpy(m->priv, cfg->static_priv, PL_NM_KEY_BYTES);
    pl_x25519_public(m->pub, m->priv);
    m->hs_timeout = hs;
    m->bo_min = bmin;
    m->bo_max = bmax;
    m->req_timeout = rt;
    m->max_hs = cfg->max_handshakes ? cfg->max_handshakes : PL_NM_SESSION_MAX_HANDSHAKES;
    m->rng = cfg->rng;
    m->rng_ctx = cfg->rng_ctx;
    *out = m;
    return PL_OK;
}

void pl_nm_sessions_free(pl_nm_sessions *m) {
    if (!m) return;
    for (size_t i = 0; i < m->npeers; i++) free_peer(m->peers[i]);
    free(m->peers);
    pl_nm_session_output o;
    while (pl_nm_sessions_poll(m, &o)) pl_nm_session_output_clear(&o);
    sodium_memzero(m, sizeof *m);
    free(m);
}

/* Any clamped scalar is a multiple of the cofactor 8, so it sends exactly
 * the low-order points to zero (which pl_x25519 refuses): a fixed public
 * probe decides, no randomness needed. */
static bool low_order(const uint8_t pub[PL_NM_KEY_BYTES]) {
    static const uint8_t probe[PL_NM_KEY_BYTES] = {9};
    uint8_t out[PL_NM_KEY_BYTES];
    bool bad = pl_x25519(out, probe, pub) != PL_OK;
    sodium_memzero(out, sizeof out);
    return bad;
}

pl_err pl_nm_sessions_add_peer(pl_nm_sessions *m, const uint8_t pub[PL_NM_KEY_BYTES], int64_t now_ms) {
    PL_REQUIRE(m && pub);
    if (find_peer(m, pub)) return PL_ERR_EXISTS;
    if (m->npeers >= PL_NM_SESSION_MAX_PEERS) return PL_ERR_TOO_LARGE;
    if (!memcmp(pub, m->pub, PL_NM_KEY_BYTES) || low_order(pub)) return PL_ERR_WEAK_KEY;
    if (m->npeers == m->cap) {
        size_t nc = m->cap ? m->cap * 2 : 16;
        peer **np = realloc(m->peers, nc * sizeof *np);
        if (!np) return PL_ERR_NOMEM;
        m->peers = np;
        m->cap = nc;
    }
    peer *p = calloc(1, sizeof *p);
    if (!p) return PL_ERR_NOMEM;
    memcpy(p->pub, pub, PL_NM_KEY_BYTES);
    if (m->role == PL_NM_ROLE_NODE_MANAGER) pl_nm_rendezvous_derive(&p->rv, m->pub, pub);
    else pl_nm_rendezvous_derive(&p->rv, pub, m->pub);
    p->next_attempt = INT64_MAX;
    p->next_knock = INT64_MAX;
    p->next_id = 1;
    p->added_at = now_ms;
    m->peers[m->npeers++] = p;
    out_topic(m, PL_NM_SOUT_SUBSCRIBE, p->rv.content_topic);
    if (m->role == PL_NM_ROLE_NODE_MANAGER) {
        try_start(m, p, now_ms);
    } else {
        send_knock(m, p, now_ms);
        p->next_knock = now_ms + backoff(m, p->knock_attempt);
    }
    return PL_OK;
}

pl_err pl_nm_sessions_remove_peer(pl_nm_sessions *m, const uint8_t pub[PL_NM_KEY_BYTES], int64_t now_ms) {
    PL_REQUIRE(m && pub);
    (void)now_ms;
    size_t i = 0;
    while (i < m->npeers && memcmp(m->peers[i]->pub, pub, PL_NM_KEY_BYTES)) i++;
    if (i == m->npeers) return PL_ERR_NOT_FOUND;
    peer *p = m->peers[i];
    out_topic(m, PL_NM_SOUT_UNSUBSCRIBE, p->rv.content_topic);
    if (p->sess) out_topic(m, PL_NM_SOUT_UNSUBSCRIBE, p->sess_topic);
    if (p->pending) out_topic(m, PL_NM_SOUT_UNSUBSCRIBE, p->pending_topic);
    for (size_t k = 0; k < p->nreqs; k++) {
        pl_nm_session_output o = {.kind = PL_NM_SOUT_EVENT, .event = PL_NM_SEV_REQUEST_FAILED,
                                  .err = PL_ERR_CANCELLED, .id = p->reqs[k].id};
        memcpy(o.peer, p->pub, PL_NM_KEY_BYTES);
        push(m, &o);
    }
    m->peers[i] = m->peers[--m->npeers];
    free_peer(p);
    return PL_OK;
}

/* The peer a topic belongs to, and which of its topics it is (1
 * rendezvous, 2 session, 3 pending session). */
static peer *peer_by_topic(pl_nm_sessions *m, const char *topic, int *which) {
    *which = 0;
    for (size_t i = 0; i < m->npeers; i++) {
        peer *q = m->peers[i];
        if (!strcmp(q->rv.content_topic, topic)) *which = 1;
        else if (q->sess && !strcmp(q->sess_topic, topic)) *which = 2;
        else if (q->pending && !strcmp(q->pending_topic, topic)) *which = 3;
        if (*which) return q;
    }
    return NULL;
}

pl_err pl_nm_sessions_on_bad_delivery(pl_nm_sessions *m, const char *topic, pl_err err,
                                      int64_t now_ms) {
    PL_REQUIRE(m && topic && err != PL_OK);
    (void)now_ms;
    int which;
    peer *p = peer_by_topic(m, topic, &which);
    if (!p) return PL_ERR_NOT_FOUND;
    dropped(m, p, err);
    return err;
}

pl_err pl_nm_sessions_on_message(pl_nm_sessions *m, const char *topic, const uint8_t *wire,
                                 size_t wlen, int64_t now_ms) {
    PL_REQUIRE(m && topic && (wire || !wlen));
    int which;
    peer *p = peer_by_topic(m, topic, &which);
    if (!p) return PL_ERR_NOT_FOUND;
    /* A PayloadV2 is at most PL_NOISE_MAX_WIRE. */
    if (wlen > PL_NOISE_MAX_WIRE) {
        dropped(m, p, PL_ERR_TOO_LARGE);
        return PL_ERR_TOO_LARGE;
    }
    pl_err e = PL_OK;
    if (which == 2 || which == 3) {
        pl_noise_session *s = which == 2 ? p->sess : p->pending;
        return session_read(m, p, s, wire, wlen, now_ms);
    }
    if (wlen < PL_NOISE_NAMETAG_BYTES) {
        dropped(m, p, PL_ERR_NOISE_PAYLOAD);
        return PL_ERR_NOISE_PAYLOAD;
    }
    bool is_msg1 = !memcmp(wire, p->rv.nametag, PL_NOISE_NAMETAG_BYTES);
    bool is_knock = !memcmp(wire, knock_tag(p), PL_NOISE_NAMETAG_BYTES);
    if (m->role == PL_NM_ROLE_NODE_MANAGER) {
        if (is_knock) {
            pl_noise_payload pl;
            e = pl_noise_payload_parse(&pl, wire, wlen);
            if (e == PL_OK && pl.protocol_id != PL_NOISE_PROTOCOL_TRANSPORT) e = PL_ERR_NOISE_PROTOCOL_ID;
            if (e == PL_OK) on_knock(m, p, pl.transport, pl.transport_len, now_ms);
            else dropped(m, p, e);
        } else if (is_msg1) {
            m->stats.dropped++; /* our own message 1 (another process of ours) */
        } else {
            e = initiator_read(m, p, wire, wlen, now_ms);
        }
    } else {
        if (is_knock) m->stats.dropped++;
        else if (is_msg1) e = responder_msg1(m, p, wire, wlen, now_ms);
        else e = responder_msg3(m, p, wire, wlen, now_ms);
    }
    return e;
}

static void timer_peer(pl_nm_sessions *m, peer *p, int64_t now) {
    if (m->role == PL_NM_ROLE_NODE_MANAGER) {
        if (p->hs && now >= p->hs_deadline) schedule_retry(m, p, PL_ERR_TIMEOUT, now);
        if (p->pending && now >= p->pending_deadline) schedule_retry(m, p, PL_ERR_TIMEOUT, now);
        if (!p->hs && !p->pending && now >= p->next_attempt) try_start(m, p, now);
    } else {
        for (size_t i = 0; i < PL_NM_SESSION_RESPONDERS; i++)
            if (p->resp[i].hs && now >= p->resp[i].deadline) {
                pl_noise_hs_free(p->resp[i].hs);
                p->resp[i].hs = NULL;
            }
        if (now >= p->next_knock) {
            send_knock(m, p, now);
            p->next_knock = p->sess ? INT64_MAX : now + backoff(m, p->knock_attempt);
        }
    }
    bool suspect = false;
    for (size_t i = 0; i < p->nreqs;) {
        req *r = &p->reqs[i];
        if (now < r->deadline) {
            i++;
            continue;
        }
        if (r->sent) suspect = true;
        pl_nm_session_output o = {.kind = PL_NM_SOUT_EVENT, .event = PL_NM_SEV_REQUEST_FAILED,
                                  .err = PL_ERR_TIMEOUT, .id = r->id};
        memcpy(o.peer, p->pub, PL_NM_KEY_BYTES);
        push(m, &o);
        free_req(r);
        p->reqs[i] = p->reqs[--p->nreqs];
    }
    /* An unanswered request on a live session: the peer may have restarted
     * and lost it. Ask for a new handshake; the old session stays until the
     * new one replaces it. */
    if (suspect && p->sess) {
        if (m->role == PL_NM_ROLE_NODE_MANAGER) {
            if (!p->hs && !p->pending) try_start(m, p, now);
        } else if (now - p->last_knock >= PL_NM_SESSION_KNOCK_MIN_MS) {
            send_knock(m, p, now);
        }
    }
}

void pl_nm_sessions_on_timer(pl_nm_sessions *m, int64_t now_ms) {
    PL_REQUIRE(m);
    m->active = count_active(m);
    for (size_t i = 0; i < m->npeers; i++) timer_peer(m, m->peers[i], now_ms);
}

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

int64_t pl_nm_sessions_next_deadline(const pl_nm_sessions *m) {
    PL_REQUIRE(m);
    int64_t d = INT64_MAX;
    for (size_t i = 0; i < m->npeers; i++) {
        const peer *p = m->peers[i];
        if (p->hs) d = min64(d, p->hs_deadline);
        if (p->pending) d = min64(d, p->pending_deadline);
        if (!p->hs && !p->pending) d = min64(d, p->next_attempt);
        d = min64(d, p->next_knock);
        for (size_t k = 0; k < PL_NM_SESSION_RESPONDERS; k++)
            if (p->resp[k].hs) d = min64(d, p->resp[k].deadline);
        for (size_t k = 0; k < p->nreqs; k++) d = min64(d, p->reqs[k].deadline);
    }
    return d;
}

static pl_err queue_request(pl_nm_sessions *m, const uint8_t pub[PL_NM_KEY_BYTES], uint8_t type,
                            const uint8_t *body, size_t body_len, int64_t now_ms, uint64_t *id) {
    if (id) *id = 0;
    peer *p = find_peer(m, pub);
    if (!p) return PL_ERR_NOT_FOUND;
    if (body_len > PL_NM_SESSION_BODY_MAX || p->nreqs >= PL_NM_SESSION_MAX_REQUESTS)
        return PL_ERR_TOO_LARGE;
    req *r = &p->reqs[p->nreqs];
    memset(r, 0, sizeof *r);
    r->id = p->next_id++;
    r->deadline = now_ms + m->req_timeout;
    r->type = type;
    if (p->sess) {
        PL_TRY(send_frame(m, p->sess, p->sess_topic, type, r->id, body, body_len));
        r->sent = true;
    } else {
        r->body = malloc(body_len + 1);
        if (!r->body) return PL_ERR_NOMEM;
        if (body_len) memcpy(r->body, body, body_len);
        r->len = body_len;
    }
    p->nreqs++;
    if (id) *id = r->id;
    return PL_OK;
}

pl_err pl_nm_sessions_request(pl_nm_sessions *m, const uint8_t pub[PL_NM_KEY_BYTES],
                              const uint8_t *body, size_t body_len, int64_t now_ms, uint64_t *id) {
    PL_REQUIRE(m && pub && (body || !body_len));
    return queue_request(m, pub, FR_REQUEST, body, body_len, now_ms, id);
}

pl_err pl_nm_sessions_revoke(pl_nm_sessions *m, const uint8_t pub[PL_NM_KEY_BYTES], int64_t now_ms,
                             uint64_t *id) {
    PL_REQUIRE(m && pub);
    return queue_request(m, pub, FR_REVOKE, NULL, 0, now_ms, id);
}

pl_err pl_nm_sessions_respond(pl_nm_sessions *m, const uint8_t pub[PL_NM_KEY_BYTES], uint64_t id,
                              const uint8_t *body, size_t body_len, int64_t now_ms) {
    PL_REQUIRE(m && pub && (body || !body_len));
    (void)now_ms;
    peer *p = find_peer(m, pub);
    if (!p) return PL_ERR_NOT_FOUND;
    if (!p->sess) return PL_ERR_DISCONNECTED;
    return send_frame(m, p->sess, p->sess_topic, FR_RESPONSE, id, body, body_len);
}

pl_err pl_nm_sessions_peer_state(const pl_nm_sessions *m, const uint8_t pub[PL_NM_KEY_BYTES],
                                 pl_nm_peer_state *state) {
    PL_REQUIRE(m && pub && state);
    const peer *p = find_peer(m, pub);
    if (!p) return PL_ERR_NOT_FOUND;
    bool hs = p->hs || p->pending;
    for (size_t i = 0; i < PL_NM_SESSION_RESPONDERS; i++) hs = hs || p->resp[i].hs;
    *state = p->sess ? PL_NM_PEER_ESTABLISHED : hs ? PL_NM_PEER_HANDSHAKING : PL_NM_PEER_IDLE;
    return PL_OK;
}

size_t pl_nm_sessions_count(const pl_nm_sessions *m, size_t *established) {
    PL_REQUIRE(m);
    if (established) {
        *established = 0;
        for (size_t i = 0; i < m->npeers; i++)
            if (m->peers[i]->sess) (*established)++;
    }
    return m->npeers;
}

void pl_nm_sessions_stats_get(const pl_nm_sessions *m, pl_nm_sessions_stats *out) {
    PL_REQUIRE(m && out);
    *out = m->stats;
}
