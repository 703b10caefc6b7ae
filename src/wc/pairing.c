/* SPDX-License-Identifier: Apache-2.0 */
/* WalletConnect Pairing API engine: see include/pairlink/wc_pairing.h.
 * Bounded arrays with linear search: an engine holds at most a few thousand
 * pairings and the hot path (one delivered message) does one lookup. */
#include "pairlink/wc_pairing.h"

#include "core/internal.h"
#include "wc/wc_internal.h"
#include "pairlink/hash.h"
#include "pairlink/relay_client.h"
#include "pairlink/uri.h"

#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Request ids already handled, per engine: the relay delivers at least once,
 * and a request must not be handled twice after a redelivery. */
#define SEEN_RING 256

typedef struct method_entry {
    pl_wc_method m;
    char name[PL_WC_METHOD_MAX + 1];
    pl_wc_request_fn on_request;
    pl_wc_response_fn on_response;
    void *ud;
    bool builtin;
} method_entry;

typedef struct seen_entry {
    char topic[PL_TOPIC_HEX_SIZE];
    pl_rpc_id id;
} seen_entry;

struct pl_wc_engine {
    pl_wc_config cfg;
    pl_transport *tp;
    pl_wc_store store;
    bool has_store;

    pl_wc_pairing *pairings;
    size_t n_pairings;

    pl_wc_pending *pending;
    size_t n_pending;

    method_entry methods[PL_WC_MAX_METHODS];
    size_t n_methods;

    seen_entry seen[SEEN_RING];
    size_t seen_next;

    int64_t last_id; /* ids this engine gave out strictly increase */
};

static const pl_wc_method builtin_methods[] = {
    {"wc_pairingDelete", 1000, 86400, false, 1001, 86400},
    {"wc_pairingPing", 1002, 30, false, 1003, 30},
    {"wc_pairingExtend", 1004, 86400, false, 1005, 86400},
};

/* ---- helpers ---- */

static void emit(pl_wc_engine *e, const pl_wc_event *ev) {
    if (e->cfg.on_event) e->cfg.on_event(e->cfg.ud, e, ev);
}

static method_entry *method_lookup(pl_wc_engine *e, const char *name) {
    for (size_t i = 0; i < e->n_methods; i++)
        if (!strcmp(e->methods[i].name, name)) return &e->methods[i];
    return NULL;
}

const pl_wc_method *pl_wc_method_find(const pl_wc_engine *e, const char *name) {
    PL_REQUIRE(e && name);
    method_entry *m = method_lookup((pl_wc_engine *)e, name);
    return m ? &m->m : NULL;
}

static pl_wc_pairing *pairing_lookup(pl_wc_engine *e, const char *topic) {
    for (size_t i = 0; i < e->n_pairings; i++)
        if (!strcmp(e->pairings[i].topic, topic)) return &e->pairings[i];
    return NULL;
}

static int64_t active_ttl(const pl_wc_engine *e) {
    return e->cfg.active_ttl > 0 ? e->cfg.active_ttl : PL_WC_ACTIVE_TTL;
}

static int64_t inactive_ttl(const pl_wc_engine *e) {
    return e->cfg.inactive_ttl > 0 ? e->cfg.inactive_ttl : PL_WC_INACTIVE_TTL;
}

static pl_err store_pairing(pl_wc_engine *e, const pl_wc_pairing *p) {
    return e->has_store && e->store.save_pairing ? e->store.save_pairing(e->store.ctx, p) : PL_OK;
}

static pl_err store_pending(pl_wc_engine *e, const pl_wc_pending *r) {
    return e->has_store && e->store.save_pending ? e->store.save_pending(e->store.ctx, r) : PL_OK;
}

static void unstore_pending(pl_wc_engine *e, const char *topic, const pl_rpc_id *id) {
    /* Best effort: a stale pending row only causes a timeout callback after a
     * restart, never a wrong delivery, so a failure here is not fatal. */
    if (e->has_store && e->store.remove_pending) (void)e->store.remove_pending(e->store.ctx, topic, id);
}

/* Remove pairing at index i: store, unsubscribe, fail its pending requests,
 * wipe the key, then emit `kind`. */
static void pairing_remove(pl_wc_engine *e, size_t i, pl_wc_event_kind kind, bool by_peer) {
    char topic[PL_TOPIC_HEX_SIZE];
    memcpy(topic, e->pairings[i].topic, sizeof topic);
    if (e->has_store && e->store.remove_pairing) (void)e->store.remove_pairing(e->store.ctx, topic);
    (void)pl_transport_unsubscribe(e->tp, topic);
    pl_wipe(&e->pairings[i], sizeof e->pairings[i]);
    e->pairings[i] = e->pairings[--e->n_pairings];

    /* Requests awaiting an answer on this topic can no longer get one. */
    for (size_t j = 0; j < e->n_pending;) {
        if (strcmp(e->pending[j].topic, topic)) {
            j++;
            continue;
        }
        pl_wc_pending r = e->pending[j];
        e->pending[j] = e->pending[--e->n_pending];
        unstore_pending(e, r.topic, &r.id);
        method_entry *m = method_lookup(e, r.method);
        if (m && m->on_response) m->on_response(m->ud, e, topic, r.method, &r.id, NULL, PL_ERR_NO_MATCHING_KEY);
    }
    pl_wc_event ev = {.kind = kind, .topic = topic, .by_peer = by_peer};
    emit(e, &ev);
}

/* Activate and/or renew after a delivery from the peer proves it is there.
 * The event is only prepared (*ev, kind 0 when nothing changed): the caller
 * emits it once the message is handled, so that an application that stops
 * on ACTIVATED (and closes with a flush) finds the answer to the request
 * that activated the pairing already queued. Emitted first, the answer came
 * after the close and was lost, while the request's id was already
 * remembered as handled. */
static void pairing_touch(pl_wc_engine *e, pl_wc_pairing *p, int64_t now_ms, pl_wc_event *ev) {
    bool was_active = p->active;
    int64_t expiry = now_ms / 1000 + active_ttl(e);
    if (was_active && expiry <= p->expiry) return;
    pl_wc_pairing updated = *p;
    updated.active = true;
    if (expiry > updated.expiry || !was_active) updated.expiry = expiry;
    if (store_pairing(e, &updated) != PL_OK) {
        pl_wipe(&updated, sizeof updated);
        return; /* keep the old state: it is what the store has */
    }
    *p = updated;
    pl_wipe(&updated, sizeof updated);
    /* ACTIVATED wins over a RENEWED of the same message */
    if (ev->kind != PL_WC_EV_ACTIVATED)
        ev->kind = was_active ? PL_WC_EV_RENEWED : PL_WC_EV_ACTIVATED;
}

/* Emit what pairing_touch prepared, if the pairing is still there (the
 * message may have deleted it). */
static void touch_emit(pl_wc_engine *e, const char *topic, pl_wc_event *ev) {
    if (!ev->kind) return;
    pl_wc_pairing *p = pairing_lookup(e, topic);
    if (!p) return;
    ev->topic = p->topic;
    ev->expiry = p->expiry;
    emit(e, ev);
}

static bool seen_contains(const pl_wc_engine *e, const char *topic, const pl_rpc_id *id) {
    for (size_t i = 0; i < SEEN_RING; i++)
        if (e->seen[i].id.kind != PL_RPC_ID_NONE && pl_rpc_id_equal(&e->seen[i].id, id) &&
            !strcmp(e->seen[i].topic, topic))
            return true;
    return false;
}

static void seen_add(pl_wc_engine *e, const char *topic, const pl_rpc_id *id) {
    seen_entry *s = &e->seen[e->seen_next];
    e->seen_next = (e->seen_next + 1) % SEEN_RING;
    memcpy(s->topic, topic, sizeof s->topic);
    s->id = *id;
}

/* Seen in this process or (restored) in an earlier one? If not, remember
 * it, in the store too, for as long as the relay may redeliver it. */
static bool seen_check_and_add(pl_wc_engine *e, const char *topic, const pl_rpc_id *id,
                               int64_t until_ms) {
    if (seen_contains(e, topic, id)) return true;
    seen_add(e, topic, id);
    if (e->has_store && e->store.save_seen) (void)e->store.save_seen(e->store.ctx, topic, id, until_ms);
    return false;
}

void pl_wc_restore_seen(pl_wc_engine *e, const char *topic, const pl_rpc_id *id) {
    PL_REQUIRE(e && topic && id);
    if (!seen_contains(e, topic, id)) seen_add(e, topic, id);
}

/* Publish envelope bytes with the relay's tag and prompt. */
static pl_err publish(pl_wc_engine *e, const char *topic, const uint8_t *env, size_t len,
                      uint32_t tag, uint32_t ttl, bool prompt) {
    pl_wc_relay_publish_ext x = {{PL_TRANSPORT_EXT_WC_RELAY}, tag, prompt};
    pl_publish_opts o = {.ttl_s = ttl, .ext = &x.ext};
    return pl_transport_publish(e->tp, topic, env, len, &o);
}

/* Seal `json` for the pairing and publish it. */
static pl_err publish_json(pl_wc_engine *e, const pl_wc_pairing *p, const char *json, uint32_t tag,
                           uint32_t ttl, bool prompt) {
    uint8_t *env = NULL;
    size_t env_len = 0;
    uint8_t iv[PL_IV_BYTES];
    pl__rng(e->cfg.rng, e->cfg.rng_ctx, iv, sizeof iv);
    pl_envelope_params params = {.type = 0, .iv = iv};
    pl_err err =
        pl_envelope_seal_raw(&env, &env_len, p->sym_key, (const uint8_t *)json, strlen(json), &params);
    if (err != PL_OK) return err;
    err = publish(e, p->topic, env, env_len, tag, ttl, prompt);
    pl_free(env);
    return err;
}

/* JS-shaped id (now_ms * 1000 + random 0..999), but never equal to or below
 * the previous one: two requests in the same millisecond collided about once
 * in a thousand, and the peer then dropped the second as a redelivery. */
static pl_rpc_id next_id(pl_wc_engine *e, int64_t now_ms) {
    pl_rpc_id id = pl__rpc_id_new(now_ms, e->cfg.rng, e->cfg.rng_ctx);
    if (id.num <= e->last_id) id.num = e->last_id + 1;
    e->last_id = id.num;
    return id;
}

/* ---- construction ---- */

pl_err pl_wc_engine_new(pl_wc_engine **out, const pl_wc_config *cfg, pl_transport *transport,
                        const pl_wc_store *store) {
    PL_REQUIRE(out && transport);
    *out = NULL;
    pl_wc_engine *e = calloc(1, sizeof *e);
    if (!e) return PL_ERR_NOMEM;
    e->pairings = calloc(PL_WC_MAX_PAIRINGS, sizeof *e->pairings);
    e->pending = calloc(PL_WC_MAX_PENDING, sizeof *e->pending);
    if (!e->pairings || !e->pending) {
        free(e->pairings);
        free(e->pending);
        free(e);
        return PL_ERR_NOMEM;
    }
    if (cfg) e->cfg = *cfg;
    e->tp = transport;
    if (store) {
        e->store = *store;
        e->has_store = true;
    }
    for (size_t i = 0; i < PL_ARRAY_LEN(builtin_methods); i++) {
        method_entry *m = &e->methods[e->n_methods++];
        snprintf(m->name, sizeof m->name, "%s", builtin_methods[i].name);
        m->m = builtin_methods[i];
        m->m.name = m->name;
        m->builtin = true;
    }
    *out = e;
    return PL_OK;
}

void pl_wc_engine_free(pl_wc_engine *e) {
    if (!e) return;
    pl_wipe(e->pairings, PL_WC_MAX_PAIRINGS * sizeof *e->pairings);
    free(e->pairings);
    free(e->pending);
    pl_wipe(e, sizeof *e);
    free(e);
}

pl_err pl_wc_register(pl_wc_engine *e, const pl_wc_method *m, pl_wc_request_fn on_request,
                      pl_wc_response_fn on_response, void *ud) {
    PL_REQUIRE(e && m && m->name);
    size_t len = strlen(m->name);
    if (!len) return PL_ERR_INVALID_ARG;
    if (len > PL_WC_METHOD_MAX) return PL_ERR_TOO_LARGE;
    method_entry *existing = method_lookup(e, m->name);
    if (existing) return existing->builtin ? PL_ERR_INVALID_ARG : PL_ERR_EXISTS;
    if (e->n_methods == PL_WC_MAX_METHODS) return PL_ERR_TOO_LARGE;
    method_entry *me = &e->methods[e->n_methods++];
    memcpy(me->name, m->name, len + 1);
    me->m = *m;
    me->m.name = me->name;
    me->on_request = on_request;
    me->on_response = on_response;
    me->ud = ud;
    return PL_OK;
}

/* ---- pairings ---- */

static pl_err add_pairing(pl_wc_engine *e, const pl_wc_pairing *p) {
    if (e->n_pairings == PL_WC_MAX_PAIRINGS) return PL_ERR_TOO_LARGE;
    PL_TRY(store_pairing(e, p));
    pl_err err = pl_transport_subscribe(e->tp, p->topic);
    if (err != PL_OK) {
        if (e->has_store && e->store.remove_pairing) (void)e->store.remove_pairing(e->store.ctx, p->topic);
        return err;
    }
    e->pairings[e->n_pairings++] = *p;
    return PL_OK;
}

static void join_methods(char *out, size_t cap, const char *const *methods, size_t n) {
    size_t off = 0;
    out[0] = 0;
    for (size_t i = 0; i < n; i++) {
        int w = snprintf(out + off, cap - off, "%s%s", i ? "," : "", methods[i]);
        if (w < 0 || (size_t)w >= cap - off) {
            out[off] = 0; /* keep whole names only */
            return;
        }
        off += (size_t)w;
    }
}

pl_err pl_wc_create(pl_wc_engine *e, const char *const *methods, size_t n_methods, int64_t now_ms,
                    char **out_uri, char topic[PL_TOPIC_HEX_SIZE]) {
    PL_REQUIRE(e && out_uri && (methods || n_methods == 0));
    *out_uri = NULL;
    if (e->n_pairings == PL_WC_MAX_PAIRINGS) return PL_ERR_TOO_LARGE;
    pl_uri u;
    PL_TRY(pl__uri_new(&u, methods, n_methods, now_ms / 1000, inactive_ttl(e), e->cfg.rng,
                       e->cfg.rng_ctx));
    pl_wc_pairing p = {0};
    memcpy(p.topic, u.topic, sizeof p.topic);
    memcpy(p.sym_key, u.sym_key, sizeof p.sym_key);
    snprintf(p.relay_protocol, sizeof p.relay_protocol, "%s", u.relay_protocol);
    p.expiry = u.expiry;
    p.active = false;
    p.proposer = true;
    join_methods(p.methods, sizeof p.methods, methods, n_methods);

    char *s = NULL;
    pl_err err = pl_uri_format(&s, &u);
    pl_uri_clear(&u);
    if (err == PL_OK) err = add_pairing(e, &p);
    if (err != PL_OK) {
        if (s) pl_free_secret(s, strlen(s));
        pl_wipe(&p, sizeof p);
        return err;
    }
    if (topic) memcpy(topic, p.topic, PL_TOPIC_HEX_SIZE);
    *out_uri = s;
    pl_wc_event ev = {.kind = PL_WC_EV_CREATED, .topic = p.topic, .expiry = p.expiry};
    emit(e, &ev);
    pl_wipe(&p, sizeof p);
    return PL_OK;
}

pl_err pl_wc_pair(pl_wc_engine *e, const char *uri, size_t uri_len, int64_t now_ms,
                  char topic[PL_TOPIC_HEX_SIZE]) {
    PL_REQUIRE(e && uri);
    pl_uri u;
    PL_TRY(pl_uri_parse(&u, uri, uri_len, now_ms / 1000));
    pl_err err = PL_OK;
    if (pairing_lookup(e, u.topic)) err = PL_ERR_PAIRING_EXISTS;
    pl_wc_pairing p = {0};
    if (err == PL_OK) {
        memcpy(p.topic, u.topic, sizeof p.topic);
        memcpy(p.sym_key, u.sym_key, sizeof p.sym_key);
        snprintf(p.relay_protocol, sizeof p.relay_protocol, "%s", u.relay_protocol);
        /* The responder has its proof at once: it holds the proposer's key. */
        p.active = true;
        p.proposer = false;
        p.expiry = now_ms / 1000 + active_ttl(e);
        join_methods(p.methods, sizeof p.methods, (const char *const *)u.methods, u.n_methods);
        err = add_pairing(e, &p);
    }
    pl_uri_clear(&u);
    if (err == PL_OK) {
        if (topic) memcpy(topic, p.topic, PL_TOPIC_HEX_SIZE);
        pl_wc_event ev = {.kind = PL_WC_EV_CREATED, .topic = p.topic, .expiry = p.expiry};
        emit(e, &ev);
    }
    pl_wipe(&p, sizeof p);
    return err;
}

pl_err pl_wc_request(pl_wc_engine *e, const char *topic, const char *method, const char *params_json,
                     int64_t now_ms, pl_rpc_id *id_out) {
    PL_REQUIRE(e && topic && method);
    if (id_out) memset(id_out, 0, sizeof *id_out);
    pl_wc_pairing *p = pairing_lookup(e, topic);
    if (!p) return PL_ERR_NO_MATCHING_KEY;
    method_entry *m = method_lookup(e, method);
    if (!m) return PL_ERR_UNSUPPORTED_METHOD;
    if (e->n_pending == PL_WC_MAX_PENDING) return PL_ERR_TOO_LARGE;

    pl_wc_pending r = {0};
    memcpy(r.topic, topic, sizeof r.topic);
    r.id = next_id(e, now_ms);
    snprintf(r.method, sizeof r.method, "%s", method);
    r.deadline_ms = now_ms + (int64_t)m->m.req_ttl * 1000;

    char *json = NULL;
    uint8_t *env = NULL;
    size_t env_len = 0;
    PL_TRY(pl_rpc_encode_request(&json, &r.id, method, params_json ? params_json : "{}"));
    uint8_t iv[PL_IV_BYTES];
    pl__rng(e->cfg.rng, e->cfg.rng_ctx, iv, sizeof iv);
    pl_envelope_params params = {.type = 0, .iv = iv};
    pl_err err =
        pl_envelope_seal_raw(&env, &env_len, p->sym_key, (const uint8_t *)json, strlen(json), &params);
    pl_free(json);
    if (err != PL_OK) return err;
    /* Stored with its sealed bytes before it leaves: a crash before the
     * relay has it is repaired by publishing it again at restart. */
    r.message = env;
    r.message_len = env_len;
    r.tag = m->m.req_tag;
    r.ttl = m->m.req_ttl;
    r.prompt = m->m.req_prompt;
    err = store_pending(e, &r);
    if (err == PL_OK) {
        err = publish(e, p->topic, env, env_len, r.tag, r.ttl, r.prompt);
        if (err != PL_OK) unstore_pending(e, r.topic, &r.id);
    }
    pl_free(env);
    r.message = NULL;
    r.message_len = 0;
    if (err != PL_OK) return err;
    e->pending[e->n_pending++] = r;
    if (id_out) *id_out = r.id;
    return PL_OK;
}

static pl_err respond_json(pl_wc_engine *e, const char *topic, const char *method, char *json) {
    pl_wc_pairing *p = pairing_lookup(e, topic);
    if (!p) {
        pl_free(json);
        return PL_ERR_NO_MATCHING_KEY;
    }
    method_entry *m = method ? method_lookup(e, method) : NULL;
    /* Unknown methods answer with tag 0 and a day's TTL, as the JS SDK does. */
    uint32_t tag = m ? m->m.res_tag : 0, ttl = m ? m->m.res_ttl : 86400;
    pl_err err = publish_json(e, p, json, tag, ttl, false);
    pl_free(json);
    return err;
}

pl_err pl_wc_respond(pl_wc_engine *e, const char *topic, const char *method, const pl_rpc_id *id,
                     const char *result_json) {
    PL_REQUIRE(e && topic && id);
    char *json = NULL;
    PL_TRY(pl_rpc_encode_result(&json, id, result_json ? result_json : "true"));
    return respond_json(e, topic, method, json);
}

pl_err pl_wc_respond_error(pl_wc_engine *e, const char *topic, const char *method,
                           const pl_rpc_id *id, int64_t code, const char *message) {
    PL_REQUIRE(e && topic && id && message);
    char *json = NULL;
    PL_TRY(pl_rpc_encode_error(&json, id, code, message, NULL));
    return respond_json(e, topic, method, json);
}

pl_err pl_wc_ping(pl_wc_engine *e, const char *topic, int64_t now_ms, pl_rpc_id *id_out) {
    return pl_wc_request(e, topic, "wc_pairingPing", "{}", now_ms, id_out);
}

pl_err pl_wc_delete(pl_wc_engine *e, const char *topic, int64_t now_ms) {
    PL_REQUIRE(e && topic);
    pl_wc_pairing *p = pairing_lookup(e, topic);
    if (!p) return PL_ERR_NO_MATCHING_KEY;
    /* Tell the peer first (the key is needed to seal), then forget. A failed
     * publish still deletes locally: the user asked to disconnect. */
    pl_rpc_id id = next_id(e, now_ms);
    char *json = NULL;
    pl_err err = pl_rpc_encode_request(&json, &id, "wc_pairingDelete",
                                       "{\"code\":6000,\"message\":\"User disconnected.\"}");
    if (err == PL_OK) {
        err = publish_json(e, p, json, 1000, 86400, false);
        pl_free(json);
    }
    pairing_remove(e, (size_t)(p - e->pairings), PL_WC_EV_DELETED, false);
    return err;
}

pl_err pl_wc_extend(pl_wc_engine *e, const char *topic, int64_t expiry, int64_t now_ms) {
    PL_REQUIRE(e && topic);
    pl_wc_pairing *p = pairing_lookup(e, topic);
    if (!p) return PL_ERR_NO_MATCHING_KEY;
    if (expiry <= now_ms / 1000 || expiry > now_ms / 1000 + active_ttl(e)) return PL_ERR_INVALID_ARG;
    char params[64];
    snprintf(params, sizeof params, "{\"expiry\":%lld}", (long long)expiry);
    PL_TRY(pl_wc_request(e, topic, "wc_pairingExtend", params, now_ms, NULL));
    p = pairing_lookup(e, topic);
    if (p && expiry > p->expiry) {
        pl_wc_pairing updated = *p;
        updated.expiry = expiry;
        if (store_pairing(e, &updated) == PL_OK) p->expiry = expiry;
        pl_wipe(&updated, sizeof updated);
    }
    return PL_OK;
}

/* ---- inbound ---- */

static void handle_builtin_request(pl_wc_engine *e, pl_wc_pairing *p, const pl_rpc_msg *req,
                                   int64_t now_ms) {
    char topic[PL_TOPIC_HEX_SIZE];
    memcpy(topic, p->topic, sizeof topic);
    if (!strcmp(req->method, "wc_pairingPing")) {
        (void)pl_wc_respond(e, topic, req->method, &req->id, "true");
        pl_wc_event ev = {.kind = PL_WC_EV_PING, .topic = topic, .id = req->id};
        emit(e, &ev);
    } else if (!strcmp(req->method, "wc_pairingDelete")) {
        /* The JS SDK deletes without answering; so do we. */
        pairing_remove(e, (size_t)(p - e->pairings), PL_WC_EV_DELETED, true);
    } else if (!strcmp(req->method, "wc_pairingExtend")) {
        json_int_t expiry = 0;
        bool ok = false;
        if (req->params) {
            json_t *j = json_loads(req->params, 0, NULL);
            json_t *x = j ? json_object_get(j, "expiry") : NULL;
            if (json_is_integer(x)) {
                expiry = json_integer_value(x);
                ok = expiry > now_ms / 1000 && expiry <= now_ms / 1000 + active_ttl(e);
            }
            json_decref(j);
        }
        if (!ok) {
            (void)pl_wc_respond_error(e, topic, req->method, &req->id, 1001,
                                      "Invalid wc_pairingExtend expiry.");
            return;
        }
        if (expiry > p->expiry) {
            pl_wc_pairing updated = *p;
            updated.expiry = expiry;
            if (store_pairing(e, &updated) == PL_OK) {
                p->expiry = expiry;
                pl_wc_event ev = {.kind = PL_WC_EV_RENEWED, .topic = topic, .expiry = expiry};
                emit(e, &ev);
            }
            pl_wipe(&updated, sizeof updated);
        }
        (void)pl_wc_respond(e, topic, req->method, &req->id, "true");
    }
}

static void handle_request(pl_wc_engine *e, pl_wc_pairing *p, const pl_rpc_msg *req, int64_t now_ms,
                           pl_wc_event *touched) {
    char topic[PL_TOPIC_HEX_SIZE];
    memcpy(topic, p->topic, sizeof topic);
    /* The longest a relay keeps a request is its TTL; a day covers every
     * method of the protocol (wc_pairingDelete/Extend: 86400 s). */
    if (req->id.kind != PL_RPC_ID_NONE && seen_check_and_add(e, topic, &req->id, now_ms + 86400LL * 1000))
        return;
    pairing_touch(e, p, now_ms, touched);
    method_entry *m = method_lookup(e, req->method);
    if (m && m->builtin) {
        handle_builtin_request(e, p, req, now_ms);
    } else if (m && m->on_request) {
        m->on_request(m->ud, e, topic, req);
    } else if (!m) {
        char msg[PL_WC_METHOD_MAX + 64];
        snprintf(msg, sizeof msg, "Unsupported wc_ method. %.*s", PL_WC_METHOD_MAX, req->method);
        (void)pl_wc_respond_error(e, topic, NULL, &req->id, PL_WC_CODE_UNSUPPORTED_METHOD, msg);
        pl_wc_event ev = {.kind = PL_WC_EV_UNSUPPORTED, .topic = topic, .method = req->method,
                          .id = req->id};
        emit(e, &ev);
    }
}

static void handle_response(pl_wc_engine *e, pl_wc_pairing *p, const pl_rpc_msg *res, int64_t now_ms) {
    /* Any answer from the peer proves the pairing, even one to a request
     * another process sharing this store sent (e.g. `pairlink wc ping`
     * beside a running daemon): renew before matching the id. A response
     * needs no answer, so ACTIVATED comes at once, before the PONG or the
     * handler that may end the application. */
    pl_wc_event touched = {0};
    pairing_touch(e, p, now_ms, &touched);
    touch_emit(e, p->topic, &touched);
    size_t j;
    for (j = 0; j < e->n_pending; j++)
        if (!strcmp(e->pending[j].topic, p->topic) && pl_rpc_id_equal(&e->pending[j].id, &res->id))
            break;
    if (j == e->n_pending) return; /* a redelivery, or an answer we gave up on */
    pl_wc_pending r = e->pending[j];
    e->pending[j] = e->pending[--e->n_pending];
    unstore_pending(e, r.topic, &r.id);
    if (!strcmp(r.method, "wc_pairingPing")) {
        pl_wc_event ev = {.kind = PL_WC_EV_PONG, .topic = r.topic, .method = r.method, .id = r.id,
                          .err = res->kind == PL_RPC_ERROR ? PL_ERR_RELAY : PL_OK};
        emit(e, &ev);
        return;
    }
    method_entry *m = method_lookup(e, r.method);
    if (m && m->on_response) m->on_response(m->ud, e, r.topic, r.method, &r.id, res, PL_OK);
}

pl_err pl_wc_engine_on_message(pl_wc_engine *e, const char *topic, const uint8_t *data, size_t len,
                               const pl_delivery_info *dinfo, int64_t now_ms) {
    PL_REQUIRE(e && topic && (data || len == 0));
    pl_wc_pairing *p = pairing_lookup(e, topic);
    if (!p) return PL_ERR_NO_MATCHING_KEY;
    uint8_t *plain = NULL;
    size_t plain_len = 0;
    pl_envelope_info info = {0};
    pl_err err = dinfo && dinfo->err != PL_OK
                     ? dinfo->err
                     : pl_envelope_open_raw(&plain, &plain_len, &info, p->sym_key, data, len);
    /* Pairing messages are type 0 only. A type 1 envelope is keyed by what
     * its sender key derives, not by the symKey, and the JS SDK ignores it
     * on a pairing topic: taking one opened with the symKey as a request
     * would act on a message the peer's own SDK never would. */
    if (err == PL_OK && info.type != 0) err = PL_ERR_ENVELOPE_TYPE;
    pl_rpc_msg *msgs = NULL;
    size_t n = 0;
    bool batch = false;
    if (err == PL_OK) err = pl_rpc_decode(&msgs, &n, &batch, (const char *)plain, plain_len);
    if (plain) pl_free_secret(plain, plain_len);
    if (err != PL_OK) {
        pl_wc_event ev = {.kind = PL_WC_EV_BAD_MESSAGE, .topic = topic, .err = err};
        emit(e, &ev);
        return err;
    }
    char t[PL_TOPIC_HEX_SIZE];
    snprintf(t, sizeof t, "%s", topic);
    /* ACTIVATED / RENEWED by a request come after the whole message (a
     * batch too) was handled: see pairing_touch. */
    pl_wc_event touched = {0};
    for (size_t i = 0; i < n; i++) {
        /* A handler may delete the pairing: look it up again each time. */
        p = pairing_lookup(e, t);
        if (!p) break;
        if (msgs[i].kind == PL_RPC_REQUEST)
            handle_request(e, p, &msgs[i], now_ms, &touched);
        else handle_response(e, p, &msgs[i], now_ms);
    }
    touch_emit(e, t, &touched);
    pl_rpc_msgs_free(msgs, n);
    return PL_OK;
}

void pl_wc_engine_on_publish_error(pl_wc_engine *e, const char *topic, pl_err err,
                                   int64_t relay_code) {
    PL_REQUIRE(e && topic);
    pl_wc_event ev = {.kind = PL_WC_EV_PUBLISH_FAILED, .topic = topic, .err = err,
                      .relay_code = relay_code};
    emit(e, &ev);
}

void pl_wc_engine_on_timer(pl_wc_engine *e, int64_t now_ms) {
    PL_REQUIRE(e);
    /* Timeouts first: a request whose deadline passed reports a timeout even
     * if its pairing expires at the same moment. */
    for (size_t j = 0; j < e->n_pending;) {
        if (e->pending[j].deadline_ms > now_ms) {
            j++;
            continue;
        }
        pl_wc_pending r = e->pending[j];
        e->pending[j] = e->pending[--e->n_pending];
        unstore_pending(e, r.topic, &r.id);
        pl_wc_event ev = {.kind = PL_WC_EV_REQUEST_TIMEOUT, .topic = r.topic, .method = r.method,
                          .id = r.id, .err = PL_ERR_TIMEOUT};
        emit(e, &ev);
        method_entry *m = method_lookup(e, r.method);
        if (m && m->on_response) m->on_response(m->ud, e, r.topic, r.method, &r.id, NULL, PL_ERR_TIMEOUT);
    }
    for (size_t i = 0; i < e->n_pairings;) {
        if (e->pairings[i].expiry * 1000 <= now_ms) pairing_remove(e, i, PL_WC_EV_EXPIRED, false);
        else i++;
    }
}

int64_t pl_wc_engine_next_deadline(const pl_wc_engine *e) {
    PL_REQUIRE(e);
    int64_t d = INT64_MAX;
    for (size_t i = 0; i < e->n_pairings; i++)
        if (e->pairings[i].expiry * 1000 < d) d = e->pairings[i].expiry * 1000;
    for (size_t j = 0; j < e->n_pending; j++)
        if (e->pending[j].deadline_ms < d) d = e->pending[j].deadline_ms;
    return d;
}

pl_err pl_wc_restore_pairing(pl_wc_engine *e, const pl_wc_pairing *p, int64_t now_ms) {
    PL_REQUIRE(e && p);
    if (p->expiry * 1000 <= now_ms) {
        if (e->has_store && e->store.remove_pairing) (void)e->store.remove_pairing(e->store.ctx, p->topic);
        return PL_ERR_PAIRING_EXPIRED;
    }
    if (pairing_lookup(e, p->topic)) return PL_ERR_PAIRING_EXISTS;
    if (e->n_pairings == PL_WC_MAX_PAIRINGS) return PL_ERR_TOO_LARGE;
    PL_TRY(pl_transport_subscribe(e->tp, p->topic));
    e->pairings[e->n_pairings++] = *p;
    return PL_OK;
}

pl_err pl_wc_restore_pending(pl_wc_engine *e, const pl_wc_pending *r) {
    PL_REQUIRE(e && r);
    if (!pairing_lookup(e, r->topic)) {
        unstore_pending(e, r->topic, &r->id);
        return PL_ERR_NO_MATCHING_KEY;
    }
    if (e->n_pending == PL_WC_MAX_PENDING) return PL_ERR_TOO_LARGE;
    if (r->message)
        PL_TRY(publish(e, r->topic, r->message, r->message_len, r->tag, r->ttl ? r->ttl : 300,
                       r->prompt));
    pl_wc_pending copy = *r;
    copy.message = NULL;
    copy.message_len = 0;
    e->pending[e->n_pending++] = copy;
    return PL_OK;
}

size_t pl_wc_pairings(const pl_wc_engine *e, pl_wc_pairing *out, size_t cap) {
    PL_REQUIRE(e && (out || cap == 0));
    for (size_t i = 0; i < e->n_pairings && i < cap; i++) out[i] = e->pairings[i];
    return e->n_pairings;
}

pl_err pl_wc_pairing_get(const pl_wc_engine *e, const char *topic, pl_wc_pairing *out) {
    PL_REQUIRE(e && topic && out);
    const pl_wc_pairing *p = pairing_lookup((pl_wc_engine *)e, topic);
    if (!p) return PL_ERR_NO_MATCHING_KEY;
    *out = *p;
    return PL_OK;
}
