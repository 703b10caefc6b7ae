/* SPDX-License-Identifier: Apache-2.0 */
/* The node-manager pairing engine: one state machine per side, no I/O.
 *
 * Node manager: WAITING (HELLO_APP every resend_ms) -> on a valid
 * HELLO_NODE_MANAGER echoing its nonce: PERSISTING -> confirm: DONE.
 * App: WAITING -> on the first valid HELLO_APP: PERSISTING -> confirm:
 * publish HELLO_NODE_MANAGER, ANSWERING (re-answer that node manager's
 * retransmissions, because the app cannot know its answer arrived) ->
 * expiry: DONE. Either side: expiry before completion, a failed
 * persistence, or cancel: FAILED. */
#include "nm/nm_internal.h"

#include "core/internal.h"
#include "pairlink/codec.h"
#include "pairlink/hash.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Outputs the state machine can have queued at once, whatever the caller
 * does: SUBSCRIBE, UNSUBSCRIBE, one PUBLISH, PEER_LEARNED, COMPLETED, FAILED.
 * Informative events may use the rest of the queue. */
#define ESSENTIAL_OUTPUTS 6

/* Times are unix ms; anything past year 292277 is a caller bug, and the
 * bound keeps every now +/- window computation far from overflow. */
#define PL_NM_TIME_MAX (INT64_MAX / 4)

typedef struct seen_hello {
    uint8_t nonce[PL_NM_NONCE_BYTES];
    uint8_t body_hash[PL_SHA256_BYTES];
} seen_hello;

struct pl_nm_pairing {
    pl_nm_role role;
    pl_nm_state state;
    uint8_t identity[PL_NM_KEY_BYTES];
    char name[PL_NM_NAME_MAX + 1];
    pl_nm_secrets sec; /* hs is secret */
    int64_t expires_at_ms;
    int64_t resend_ms;
    int64_t next_resend_ms; /* node manager in WAITING */
    int64_t last_answer_ms; /* app: last HELLO_NODE_MANAGER sent */
    pl_nm_rng_fn rng;
    void *rng_ctx;

    pl_nm_hello mine; /* the HELLO we (re)send: nm's HELLO_APP or the app's current answer */
    bool have_mine;

    pl_nm_peer peer;
    bool have_peer;
    uint8_t peer_nonce[PL_NM_NONCE_BYTES]; /* app: newest HELLO_APP nonce of the peer */

    seen_hello seen[PL_NM_SEEN_MAX];
    size_t n_seen, seen_next;

    pl_nm_output q[PL_NM_QUEUE_MAX];
    size_t q_head, q_len;
    pl_nm_pairing_stats stats;
};

static const char *const drop_names[PL_NM_DROP__COUNT] = {
    [PL_NM_DROP_NONE] = "none",
    [PL_NM_DROP_MALFORMED] = "malformed",
    [PL_NM_DROP_WRONG_KEY] = "wrong_key",
    [PL_NM_DROP_OWN] = "own",
    [PL_NM_DROP_WRONG_ROLE] = "wrong_role",
    [PL_NM_DROP_STALE] = "stale",
    [PL_NM_DROP_REPLAY] = "replay",
    [PL_NM_DROP_DUPLICATE] = "duplicate",
    [PL_NM_DROP_WRONG_ECHO] = "wrong_echo",
    [PL_NM_DROP_CODE_USED] = "code_used",
};

const char *pl_nm_drop_reason_name(pl_nm_drop_reason r) {
    if ((unsigned)r >= PL_NM_DROP__COUNT) return "unknown";
    return drop_names[r];
}


static void sat_inc(uint32_t *c) {
    if (*c != UINT32_MAX) (*c)++;
}

static pl_nm_role peer_role(const pl_nm_pairing *p) {
    return p->role == PL_NM_ROLE_APP ? PL_NM_ROLE_NODE_MANAGER : PL_NM_ROLE_APP;
}

/* ---- the output queue ---- */

static void push(pl_nm_pairing *p, const pl_nm_output *o) {
    if (o->kind == PL_NM_OUT_PUBLISH) {
        /* Every PUBLISH carries the engine's current HELLO: a newer one
         * supersedes one the caller has not taken yet. */
        for (size_t i = 0; i < p->q_len; i++) {
            pl_nm_output *x = &p->q[(p->q_head + i) % PL_NM_QUEUE_MAX];
            if (x->kind == PL_NM_OUT_PUBLISH) {
                *x = *o;
                return;
            }
        }
    }
    bool informative = o->kind == PL_NM_OUT_EVENT &&
                       (o->event == PL_NM_EV_DROPPED || o->event == PL_NM_EV_REANSWERED);
    if (informative && p->q_len >= PL_NM_QUEUE_MAX - ESSENTIAL_OUTPUTS) {
        sat_inc(&p->stats.events_lost);
        return;
    }
    PL_REQUIRE(p->q_len < PL_NM_QUEUE_MAX); /* bounded by the state machine */
    p->q[(p->q_head + p->q_len) % PL_NM_QUEUE_MAX] = *o;
    p->q_len++;
}

static void push_topic(pl_nm_pairing *p, pl_nm_output_kind kind) {
    pl_nm_output o;
    memset(&o, 0, sizeof o);
    o.kind = kind;
    memcpy(o.content_topic, p->sec.content_topic, sizeof o.content_topic);
    push(p, &o);
}

static void push_event(pl_nm_pairing *p, pl_nm_event_kind ev, pl_err err, pl_nm_drop_reason reason,
                       const pl_nm_peer *peer) {
    pl_nm_output o;
    memset(&o, 0, sizeof o);
    o.kind = PL_NM_OUT_EVENT;
    o.event = ev;
    o.err = err;
    o.reason = reason;
    if (peer) {
        o.peer = *peer;
        o.has_peer = true;
    }
    push(p, &o);
}

/* Seal p->mine with fresh IV and padding from the engine's rng. */
static pl_err push_publish(pl_nm_pairing *p) {
    pl_nm_output o;
    memset(&o, 0, sizeof o);
    o.kind = PL_NM_OUT_PUBLISH;
    memcpy(o.content_topic, p->sec.content_topic, sizeof o.content_topic);

    uint8_t body[PL_NM_HELLO_BODY_MAX];
    size_t n = 0;
    pl_err e = pl_nm_hello_encode(body, &n, &p->mine);
    pl_wipe(body, sizeof body);
    if (e != PL_OK) return e;
    uint8_t iv[PL_WAKU_V1_IV_BYTES], pad[PL_WAKU_V1_PAD_BLOCK];
    pl__rng(p->rng, p->rng_ctx, iv, sizeof iv);
    pl__rng(p->rng, p->rng_ctx, pad, pl_waku_v1_padding_len(n));
    pl_waku_v1_seal_opts opts = {.iv = iv, .padding = pad};
    e = pl_nm_hello_seal(o.payload, p->sec.hs, &p->mine, &opts);
    if (e != PL_OK) return e;
    o.payload_len = PL_NM_HELLO_WIRE_BYTES;
    push(p, &o);
    sat_inc(&p->stats.published);
    return PL_OK;
}

/* ---- state changes ---- */

static void finish(pl_nm_pairing *p, pl_nm_state st) {
    push_topic(p, PL_NM_OUT_UNSUBSCRIBE);
    p->state = st;
    /* HS is not needed any more; the topics stay for pl_nm_pairing_topic. */
    pl_wipe(p->sec.hs, sizeof p->sec.hs);
    pl_wipe(p->sec.topic_key, sizeof p->sec.topic_key);
}

static void fail(pl_nm_pairing *p, pl_err err) {
    push_event(p, PL_NM_EV_FAILED, err, PL_NM_DROP_NONE, p->have_peer ? &p->peer : NULL);
    finish(p, PL_NM_ST_FAILED);
}

static bool finished(const pl_nm_pairing *p) {
    return p->state == PL_NM_ST_DONE || p->state == PL_NM_ST_FAILED;
}

static pl_err expiry_error(const pl_nm_pairing *p) {
    /* The app's code ran out unused; the node manager got no answer. */
    return p->role == PL_NM_ROLE_APP ? PL_ERR_CODE_EXPIRED : PL_ERR_TIMEOUT;
}

static void check_expiry(pl_nm_pairing *p, int64_t now_ms) {
    if (finished(p) || now_ms < p->expires_at_ms) return;
    if (p->state == PL_NM_ST_ANSWERING)
        finish(p, PL_NM_ST_DONE);
    else
        fail(p, expiry_error(p));
}

/* A fresh HELLO of ours: new nonce, created now. */
static void make_mine(pl_nm_pairing *p, const uint8_t echo[PL_NM_NONCE_BYTES], int64_t now_ms) {
    memset(&p->mine, 0, sizeof p->mine);
    p->mine.role = p->role;
    memcpy(p->mine.identity, p->identity, PL_NM_KEY_BYTES);
    p->mine.created_at_ms = (uint64_t)now_ms;
    pl__rng(p->rng, p->rng_ctx, p->mine.nonce, PL_NM_NONCE_BYTES);
    if (echo) memcpy(p->mine.echo, echo, PL_NM_NONCE_BYTES);
    memcpy(p->mine.name, p->name, sizeof p->mine.name);
    p->have_mine = true;
}

/* ---- life cycle ---- */

pl_err pl_nm_pairing_new(pl_nm_pairing **out, const pl_nm_pairing_config *cfg, int64_t now_ms) {
    PL_REQUIRE(out);
    *out = NULL;
    PL_REQUIRE(cfg && cfg->secrets);
    PL_REQUIRE(cfg->role == PL_NM_ROLE_APP || cfg->role == PL_NM_ROLE_NODE_MANAGER);
    if (now_ms < 0 || now_ms > PL_NM_TIME_MAX) return PL_ERR_INVALID_ARG;
    int64_t expires = cfg->expires_at_ms ? cfg->expires_at_ms : now_ms + PL_NM_CODE_TTL_MS;
    if (expires <= now_ms || expires > now_ms + PL_NM_CODE_TTL_MS) return PL_ERR_INVALID_ARG;
    int64_t resend = cfg->resend_ms ? cfg->resend_ms : PL_NM_RESEND_MS;
    if (resend < 100 || resend > 60000) return PL_ERR_INVALID_ARG;
    const char *name = cfg->name ? cfg->name : "";
    size_t nl = strnlen(name, PL_NM_NAME_MAX + 1);
    if (nl > PL_NM_NAME_MAX) return PL_ERR_TOO_LARGE;
    if (!pl__nm_name_valid((const uint8_t *)name, nl)) return PL_ERR_BAD_UTF8;
    pl_err e = pl__nm_identity_check(cfg->identity_pub);
    if (e != PL_OK) return e;

    pl_nm_pairing *p = calloc(1, sizeof *p);
    if (!p) return PL_ERR_NOMEM;
    p->role = cfg->role;
    p->state = PL_NM_ST_WAITING;
    memcpy(p->identity, cfg->identity_pub, PL_NM_KEY_BYTES);
    memcpy(p->name, name, nl);
    p->sec = *cfg->secrets;
    p->sec.content_topic[sizeof p->sec.content_topic - 1] = '\0';
    p->expires_at_ms = expires;
    p->resend_ms = resend;
    p->rng = cfg->rng;
    p->rng_ctx = cfg->rng_ctx;

    push_topic(p, PL_NM_OUT_SUBSCRIBE);
    if (p->role == PL_NM_ROLE_NODE_MANAGER) {
        make_mine(p, NULL, now_ms);
        e = push_publish(p);
        if (e != PL_OK) {
            pl_nm_pairing_free(p);
            return e;
        }
        p->next_resend_ms = now_ms + resend;
    }
    *out = p;
    return PL_OK;
}

void pl_nm_pairing_free(pl_nm_pairing *p) {
    if (!p) return;
    pl_wipe(p, sizeof *p);
    free(p);
}

bool pl_nm_pairing_poll(pl_nm_pairing *p, pl_nm_output *out) {
    PL_REQUIRE(p && out);
    if (p->q_len == 0) {
        memset(out, 0, sizeof *out);
        return false;
    }
    *out = p->q[p->q_head];
    memset(&p->q[p->q_head], 0, sizeof p->q[0]);
    p->q_head = (p->q_head + 1) % PL_NM_QUEUE_MAX;
    p->q_len--;
    return true;
}

/* ---- receiving ---- */

static pl_err drop(pl_nm_pairing *p, pl_nm_drop_reason r, pl_err err, const pl_nm_hello *h) {
    sat_inc(&p->stats.dropped[r]);
    pl_nm_peer who, *whop = NULL;
    if (h) {
        memset(&who, 0, sizeof who);
        who.role = h->role;
        memcpy(who.identity, h->identity, PL_NM_KEY_BYTES);
        memcpy(who.name, h->name, sizeof who.name);
        who.hello_created_at_ms = h->created_at_ms > (uint64_t)INT64_MAX ? INT64_MAX
                                                                          : (int64_t)h->created_at_ms;
        whop = &who;
    }
    push_event(p, PL_NM_EV_DROPPED, err, r, whop);
    return err;
}

static bool is_zero(const uint8_t *b, size_t n) {
    uint8_t acc = 0;
    for (size_t i = 0; i < n; i++) acc |= b[i];
    return acc == 0;
}

/* 1: nonce seen with the same body, -1: seen with another body, 0: new
 * (and now remembered; the oldest entry goes when the set is full). */
static int seen_check(pl_nm_pairing *p, const pl_nm_hello *h) {
    uint8_t body[PL_NM_HELLO_BODY_MAX], hash[PL_SHA256_BYTES];
    size_t n = 0;
    if (pl_nm_hello_encode(body, &n, h) != PL_OK) return -1; /* decoded bodies re-encode */
    pl_sha256(hash, body, n);
    for (size_t i = 0; i < p->n_seen; i++) {
        if (memcmp(p->seen[i].nonce, h->nonce, PL_NM_NONCE_BYTES) == 0)
            return memcmp(p->seen[i].body_hash, hash, sizeof hash) == 0 ? 1 : -1;
    }
    seen_hello *s = &p->seen[p->seen_next];
    memcpy(s->nonce, h->nonce, PL_NM_NONCE_BYTES);
    memcpy(s->body_hash, hash, sizeof hash);
    p->seen_next = (p->seen_next + 1) % PL_NM_SEEN_MAX;
    if (p->n_seen < PL_NM_SEEN_MAX) p->n_seen++;
    return 0;
}

static void learn(pl_nm_pairing *p, const pl_nm_hello *h) {
    memset(&p->peer, 0, sizeof p->peer);
    p->peer.role = h->role;
    memcpy(p->peer.identity, h->identity, PL_NM_KEY_BYTES);
    memcpy(p->peer.name, h->name, sizeof p->peer.name);
    p->peer.hello_created_at_ms = (int64_t)h->created_at_ms; /* checked fresh: fits */
    const uint8_t *app = p->role == PL_NM_ROLE_APP ? p->identity : h->identity;
    const uint8_t *nm = p->role == PL_NM_ROLE_APP ? h->identity : p->identity;
    pl_nm_fingerprint(p->peer.fingerprint, p->sec.hs, app, nm);
    p->have_peer = true;
    memcpy(p->peer_nonce, h->nonce, PL_NM_NONCE_BYTES);
    p->state = PL_NM_ST_PERSISTING;
    push_event(p, PL_NM_EV_PEER_LEARNED, PL_OK, PL_NM_DROP_NONE, &p->peer);
}

/* App, ANSWERING: send the current answer again (or a new one for a new
 * HELLO_APP nonce of the same node manager). */
static pl_err reanswer(pl_nm_pairing *p, const pl_nm_hello *h, bool new_nonce, int64_t now_ms) {
    if (new_nonce) {
        memcpy(p->peer_nonce, h->nonce, PL_NM_NONCE_BYTES);
        make_mine(p, h->nonce, now_ms);
    } else if (now_ms - p->last_answer_ms < PL_NM_REANSWER_MIN_MS) {
        return drop(p, PL_NM_DROP_DUPLICATE, PL_OK, h);
    }
    pl_err e = push_publish(p);
    if (e != PL_OK) {
        fail(p, e);
        return e;
    }
    p->last_answer_ms = now_ms;
    push_event(p, PL_NM_EV_REANSWERED, PL_OK, PL_NM_DROP_NONE, &p->peer);
    return PL_OK;
}

pl_err pl_nm_pairing_on_message(pl_nm_pairing *p, const uint8_t *payload, size_t len,
                                int64_t now_ms) {
    PL_REQUIRE(p && (payload || len == 0));
    PL_REQUIRE(now_ms >= 0 && now_ms <= PL_NM_TIME_MAX);
    check_expiry(p, now_ms);
    if (finished(p)) return PL_ERR_STATE;
    sat_inc(&p->stats.received);

    pl_nm_hello h;
    pl_err e = pl_nm_hello_open(&h, p->sec.hs, payload, len);
    if (e == PL_ERR_DECRYPT) return drop(p, PL_NM_DROP_WRONG_KEY, e, NULL);
    if (e != PL_OK) return drop(p, PL_NM_DROP_MALFORMED, e, NULL);

    if (pl_ct_equal(h.identity, p->identity, PL_NM_KEY_BYTES))
        return drop(p, PL_NM_DROP_OWN, PL_OK, &h);
    if (h.role != peer_role(p)) return drop(p, PL_NM_DROP_WRONG_ROLE, PL_ERR_HELLO_ROLE, &h);
    /* [now - TTL - skew, now + skew], computed without overflow. */
    if (h.created_at_ms > (uint64_t)INT64_MAX ||
        (int64_t)h.created_at_ms > now_ms + PL_NM_CLOCK_SKEW_MS ||
        (int64_t)h.created_at_ms < now_ms - PL_NM_CODE_TTL_MS - PL_NM_CLOCK_SKEW_MS)
        return drop(p, PL_NM_DROP_STALE, PL_ERR_HELLO_STALE, &h);

    int seen = seen_check(p, &h);
    if (seen < 0) return drop(p, PL_NM_DROP_REPLAY, PL_ERR_HELLO_REPLAY, &h);
    bool from_peer = p->have_peer && memcmp(h.identity, p->peer.identity, PL_NM_KEY_BYTES) == 0;
    if (seen > 0) {
        if (p->state == PL_NM_ST_ANSWERING && from_peer &&
            memcmp(h.nonce, p->peer_nonce, PL_NM_NONCE_BYTES) == 0)
            return reanswer(p, &h, false, now_ms);
        return drop(p, PL_NM_DROP_DUPLICATE, PL_OK, &h);
    }

    bool echo_ok = p->role == PL_NM_ROLE_APP
                       ? is_zero(h.echo, PL_NM_NONCE_BYTES)
                       : memcmp(h.echo, p->mine.nonce, PL_NM_NONCE_BYTES) == 0;
    if (!echo_ok) return drop(p, PL_NM_DROP_WRONG_ECHO, PL_ERR_HELLO_ECHO, &h);

    if (p->state == PL_NM_ST_WAITING) {
        learn(p, &h);
        return PL_OK;
    }
    /* The code is spent: only the device that used it first is answered. */
    if (!from_peer) return drop(p, PL_NM_DROP_CODE_USED, PL_ERR_PAIRING_EXISTS, &h);
    if (p->role == PL_NM_ROLE_APP) {
        /* The same node manager restarted with a new nonce: answer that. */
        if (p->state == PL_NM_ST_PERSISTING) {
            memcpy(p->peer_nonce, h.nonce, PL_NM_NONCE_BYTES);
            return PL_OK;
        }
        return reanswer(p, &h, true, now_ms);
    }
    return drop(p, PL_NM_DROP_DUPLICATE, PL_OK, &h);
}

pl_err pl_nm_pairing_on_bad_delivery(pl_nm_pairing *p, pl_err err, int64_t now_ms) {
    PL_REQUIRE(p && err != PL_OK);
    check_expiry(p, now_ms);
    if (finished(p)) return PL_ERR_STATE;
    sat_inc(&p->stats.received);
    return drop(p, PL_NM_DROP_MALFORMED, err, NULL);
}

pl_err pl_nm_pairing_confirm_persisted(pl_nm_pairing *p, pl_err result, int64_t now_ms) {
    PL_REQUIRE(p);
    PL_REQUIRE(now_ms >= 0 && now_ms <= PL_NM_TIME_MAX);
    bool was_persisting = p->state == PL_NM_ST_PERSISTING;
    check_expiry(p, now_ms);
    if (was_persisting && p->state == PL_NM_ST_FAILED) return expiry_error(p);
    if (p->state != PL_NM_ST_PERSISTING) return PL_ERR_STATE;
    if (result != PL_OK) {
        fail(p, result);
        return PL_OK;
    }
    if (p->role == PL_NM_ROLE_APP) {
        make_mine(p, p->peer_nonce, now_ms);
        pl_err e = push_publish(p);
        if (e != PL_OK) {
            fail(p, e);
            return e;
        }
        p->last_answer_ms = now_ms;
        p->state = PL_NM_ST_ANSWERING;
        push_event(p, PL_NM_EV_COMPLETED, PL_OK, PL_NM_DROP_NONE, &p->peer);
    } else {
        push_event(p, PL_NM_EV_COMPLETED, PL_OK, PL_NM_DROP_NONE, &p->peer);
        finish(p, PL_NM_ST_DONE);
    }
    return PL_OK;
}

/* ---- time ---- */

void pl_nm_pairing_on_timer(pl_nm_pairing *p, int64_t now_ms) {
    PL_REQUIRE(p);
    PL_REQUIRE(now_ms >= 0 && now_ms <= PL_NM_TIME_MAX);
    check_expiry(p, now_ms);
    if (p->state == PL_NM_ST_WAITING && p->role == PL_NM_ROLE_NODE_MANAGER &&
        now_ms >= p->next_resend_ms) {
        /* Same body, fresh IV and padding: relays and runtimes drop
         * byte-identical repeats as duplicates. A failed seal (out of
         * memory) just skips this round. */
        (void)push_publish(p);
        /* From now, not from the missed deadline: no burst after a stall. */
        p->next_resend_ms = now_ms + p->resend_ms;
    }
}

int64_t pl_nm_pairing_next_deadline(const pl_nm_pairing *p) {
    PL_REQUIRE(p);
    if (finished(p)) return INT64_MAX;
    if (p->state == PL_NM_ST_WAITING && p->role == PL_NM_ROLE_NODE_MANAGER &&
        p->next_resend_ms < p->expires_at_ms)
        return p->next_resend_ms;
    return p->expires_at_ms;
}

void pl_nm_pairing_cancel(pl_nm_pairing *p) {
    PL_REQUIRE(p);
    if (finished(p)) return;
    if (p->state == PL_NM_ST_ANSWERING)
        finish(p, PL_NM_ST_DONE); /* already completed: nothing to undo */
    else
        fail(p, PL_ERR_CANCELLED);
}

pl_nm_state pl_nm_pairing_state(const pl_nm_pairing *p) {
    PL_REQUIRE(p);
    return p->state;
}

pl_nm_role pl_nm_pairing_role(const pl_nm_pairing *p) {
    PL_REQUIRE(p);
    return p->role;
}

const char *pl_nm_pairing_topic(const pl_nm_pairing *p) {
    PL_REQUIRE(p);
    return p->sec.content_topic;
}

void pl_nm_pairing_stats_get(const pl_nm_pairing *p, pl_nm_pairing_stats *out) {
    PL_REQUIRE(p && out);
    *out = p->stats;
}
