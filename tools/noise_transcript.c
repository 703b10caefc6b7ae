/* SPDX-License-Identifier: Apache-2.0 */
/* Waku Noise transcripts: see noise_transcript.h. Replays check bytes;
 * they never print or open files. */
#include "tools/noise_transcript.h"

#include "noise/noise_internal.h"

#include "pairlink/hash.h"

#include <jansson.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_JSON (1u << 20)
#define MAX_TRANSPORT 1024

/* ------------------------------------------------------------------ */
/* Small buffer helpers                                                */

typedef struct bytes {
    uint8_t *p;
    size_t n;
} bytes;

static void bytes_free(bytes *b) {
    if (b->p) pl_free_secret(b->p, b->n ? b->n : 1);
    b->p = NULL;
    b->n = 0;
}

typedef struct party {
    bytes static_priv, static_pub, eph_priv, eph_pub;
} party;

static void party_free(party *p) {
    bytes_free(&p->static_priv);
    bytes_free(&p->static_pub);
    bytes_free(&p->eph_priv);
    bytes_free(&p->eph_pub);
}

typedef struct replay {
    pl_noise_replay_report *r;
    json_t *root;
} replay;

static pl_err say(replay *rp, pl_err err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static pl_err say(replay *rp, pl_err err, const char *fmt, ...) {
    if (!rp->r->first_difference[0]) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(rp->r->first_difference, sizeof rp->r->first_difference, fmt, ap);
        va_end(ap);
    }
    return err;
}

/* A mismatch: the replay ran but the bytes differ. */
static void diff(replay *rp, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void diff(replay *rp, const char *fmt, ...) {
    if (!rp->r->first_difference[0]) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(rp->r->first_difference, sizeof rp->r->first_difference, fmt, ap);
        va_end(ap);
    }
    rp->r->match = 0;
}

/* hex member `key` of obj into b; nullable: JSON null or absent gives an
 * empty b with *present = false. exact: required size (0 = any, <= max). */
static pl_err get_hex(replay *rp, json_t *obj, const char *where, const char *key, bytes *b,
                      size_t exact, size_t max, bool nullable, bool *present) {
    memset(b, 0, sizeof *b);
    if (present) *present = false;
    json_t *v = obj ? json_object_get(obj, key) : NULL;
    if (!v || json_is_null(v)) {
        if (nullable) return PL_OK;
        return say(rp, PL_ERR_JSON, "%s%s: missing", where, key);
    }
    if (!json_is_string(v)) return say(rp, PL_ERR_JSON, "%s%s: not a string", where, key);
    const char *s = json_string_value(v);
    size_t sl = json_string_length(v);
    if (sl % 2 || sl / 2 > max) {
        return say(rp, sl % 2 ? PL_ERR_BAD_HEX : PL_ERR_TOO_LARGE, "%s%s: %s", where, key,
                   sl % 2 ? "odd hex length" : "too long");
    }
    b->p = malloc(sl / 2 ? sl / 2 : 1);
    if (!b->p) return PL_ERR_NOMEM;
    size_t n = 0;
    if (sodium_hex2bin(b->p, sl / 2, s, sl, NULL, &n, NULL) != 0 || n != sl / 2) {
        bytes_free(b);
        return say(rp, PL_ERR_BAD_HEX, "%s%s: malformed hex", where, key);
    }
    b->n = n;
    if (exact && n != exact) {
        bytes_free(b);
        return say(rp, PL_ERR_BAD_LENGTH, "%s%s: %zu bytes, expected %zu", where, key, n, exact);
    }
    if (present) *present = true;
    return PL_OK;
}

static const char *wire_field(const uint8_t *wire, size_t len, size_t at) {
    if (at < 16) return "nametag";
    if (at == 16) return "protocol id";
    if (at == 17) return "handshake length";
    size_t hs = len > 17 ? wire[17] : 0;
    if (at < 18 + hs) return "handshake keys";
    if (at < 26 + hs) return "transport length";
    return "transport";
}

/* Compare got with want; on a difference record where and return false. */
static bool same(replay *rp, const char *what, const uint8_t *want, size_t want_len,
                 const uint8_t *got, size_t got_len, bool is_wire) {
    size_t n = want_len < got_len ? want_len : got_len;
    size_t i = 0;
    while (i < n && want[i] == got[i]) i++;
    if (i == n && want_len == got_len) return true;
    if (i == n) {
        diff(rp, "%s: length %zu, expected %zu (first %zu bytes equal)", what, got_len, want_len,
             n);
    } else {
        diff(rp, "%s: byte %zu%s%s%s differs: expected 0x%02x, got 0x%02x", what, i,
             is_wire ? " (" : "", is_wire ? wire_field(want, want_len, i) : "", is_wire ? ")" : "",
             want[i], got[i]);
    }
    return false;
}

static pl_err load_party(replay *rp, const char *name, party *p) {
    json_t *o = json_object_get(rp->root, name);
    if (!json_is_object(o)) return say(rp, PL_ERR_JSON, "%s: missing or not an object", name);
    char where[48];
    snprintf(where, sizeof where, "%s.", name);
    PL_TRY(get_hex(rp, o, where, "static_priv", &p->static_priv, 32, 32, false, NULL));
    PL_TRY(get_hex(rp, o, where, "static_pub", &p->static_pub, 32, 32, true, NULL));
    PL_TRY(get_hex(rp, o, where, "ephemeral_priv", &p->eph_priv, 32, 32, false, NULL));
    PL_TRY(get_hex(rp, o, where, "ephemeral_pub", &p->eph_pub, 32, 32, true, NULL));
    return PL_OK;
}

/* Fill in missing public keys; report any that do not belong to the
 * private key beside them. */
static bool check_pubs(replay *rp, const char *name, party *p, uint8_t s_pub[32],
                       uint8_t e_pub[32]) {
    pl__noise_pub(s_pub, p->static_priv.p);
    pl__noise_pub(e_pub, p->eph_priv.p);
    char what[64];
    snprintf(what, sizeof what, "%s.static_pub", name);
    if (p->static_pub.p && !same(rp, what, p->static_pub.p, 32, s_pub, 32, false)) return false;
    snprintf(what, sizeof what, "%s.ephemeral_pub", name);
    if (p->eph_pub.p && !same(rp, what, p->eph_pub.p, 32, e_pub, 32, false)) return false;
    return true;
}

static const char *role_name(bool initiator) { return initiator ? "initiator" : "responder"; }

typedef struct msg_rec {
    bytes nametag, payload, wire;
    bool from_initiator;
} msg_rec;

static pl_err replay_run(replay *rp, const char *json, size_t len) {
    pl_noise_replay_report *r = rp->r;
    json_error_t jerr;
    rp->root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!rp->root) return say(rp, PL_ERR_JSON, "not JSON: line %d: %s", jerr.line, jerr.text);
    if (!json_is_object(rp->root)) return say(rp, PL_ERR_JSON, "top level is not an object");

    const char *pname = json_string_value(json_object_get(rp->root, "pattern"));
    if (!pname) return say(rp, PL_ERR_JSON, "pattern: missing");
    if (pl_noise_pattern_from_name(&r->pattern, pname) != PL_OK)
        return say(rp, PL_ERR_NOISE_PATTERN, "pattern: unknown '%.64s'", pname);
    const pl__noise_pattern_def *pat = pl__noise_pattern_lookup(r->pattern);

    pl_err err = PL_OK;
    bytes prologue = {0}, psk = {0}, final_h = {0}, k_init_out = {0}, k_resp_in = {0};
    party ini = {0}, res = {0};
    msg_rec msgs[3];
    memset(msgs, 0, sizeof msgs);
    pl_noise_hs *hs_i = NULL, *hs_r = NULL;
    pl_noise_session *s_i = NULL, *s_r = NULL;
    bool have_final_h = false, have_ki = false, have_kr = false;

#define TRY(x)                       \
    do {                             \
        err = (x);                   \
        if (err != PL_OK) goto done; \
    } while (0)
#define MISMATCH() goto done

    TRY(get_hex(rp, rp->root, "", "prologue", &prologue, 0, PL_NOISE_MAX_PROLOGUE, true, NULL));
    TRY(get_hex(rp, rp->root, "", "psk", &psk, 32, 32, true, NULL));
    TRY(load_party(rp, "initiator", &ini));
    TRY(load_party(rp, "responder", &res));
    TRY(get_hex(rp, rp->root, "", "final_h", &final_h, 32, 32, true, &have_final_h));
    TRY(get_hex(rp, rp->root, "", "initiator_outbound_key", &k_init_out, 32, 32, true, &have_ki));
    TRY(get_hex(rp, rp->root, "", "responder_inbound_key", &k_resp_in, 32, 32, true, &have_kr));

    json_t *jm = json_object_get(rp->root, "messages");
    if (!json_is_array(jm)) TRY(say(rp, PL_ERR_JSON, "messages: missing or not an array"));
    if (json_array_size(jm) != pat->nmsgs)
        TRY(say(rp, PL_ERR_JSON, "messages: %zu, the pattern has %u", json_array_size(jm),
                (unsigned)pat->nmsgs));
    for (size_t i = 0; i < pat->nmsgs; i++) {
        json_t *m = json_array_get(jm, i);
        char where[48];
        snprintf(where, sizeof where, "messages[%zu].", i);
        if (!json_is_object(m)) TRY(say(rp, PL_ERR_JSON, "%s: not an object", where));
        const char *snd = json_string_value(json_object_get(m, "sender"));
        if (!snd || (strcmp(snd, "initiator") && strcmp(snd, "responder")))
            TRY(say(rp, PL_ERR_JSON, "%ssender: not initiator/responder", where));
        msgs[i].from_initiator = !strcmp(snd, "initiator");
        TRY(get_hex(rp, m, where, "nametag", &msgs[i].nametag, 16, 16, false, NULL));
        TRY(get_hex(rp, m, where, "payload", &msgs[i].payload, 0, PL_NOISE_MAX_MESSAGE, false,
                    NULL));
        TRY(get_hex(rp, m, where, "wire", &msgs[i].wire, 0, PL_NOISE_MAX_WIRE, false, NULL));
    }
    json_t *jt = json_object_get(rp->root, "transport");
    if (jt && !json_is_null(jt) && !json_is_array(jt))
        TRY(say(rp, PL_ERR_JSON, "transport: not an array"));
    if (json_is_array(jt) && json_array_size(jt) > MAX_TRANSPORT)
        TRY(say(rp, PL_ERR_TOO_LARGE, "transport: more than %u messages", MAX_TRANSPORT));
    json_t *jac = json_object_get(rp->root, "authcode");
    if (jac && !json_is_null(jac) && !json_is_string(jac))
        TRY(say(rp, PL_ERR_JSON, "authcode: not a string"));

    /* From here on the transcript is usable: differences are mismatches. */
    r->match = 1;
    uint8_t is_pub[32], ie_pub[32], rs_pub[32], re_pub[32];
    if (!check_pubs(rp, "initiator", &ini, is_pub, ie_pub)) MISMATCH();
    if (!check_pubs(rp, "responder", &res, rs_pub, re_pub)) MISMATCH();

    pl_noise_keys ki = {ini.static_priv.p, ini.eph_priv.p, rs_pub, re_pub, NULL};
    pl_noise_keys kr = {res.static_priv.p, res.eph_priv.p, is_pub, ie_pub, NULL};
    if (pat->psk && !psk.p) TRY(say(rp, PL_ERR_NOISE_MISSING_KEY, "psk: missing for %s", pname));
    const uint8_t *pskp = pat->psk ? psk.p : NULL;
    TRY(pl_noise_hs_new(&hs_i, r->pattern, PL_NOISE_INITIATOR, &ki, prologue.p, prologue.n, pskp));
    TRY(pl_noise_hs_new(&hs_r, r->pattern, PL_NOISE_RESPONDER, &kr, prologue.p, prologue.n, pskp));

    for (size_t i = 0; i < pat->nmsgs; i++) {
        msg_rec *m = &msgs[i];
        char what[64];
        if (m->from_initiator != pat->msgs[i].from_initiator) {
            diff(rp, "message %zu: sent by the %s, the pattern has the %s send it", i + 1,
                 role_name(m->from_initiator), role_name(pat->msgs[i].from_initiator));
            MISMATCH();
        }
        pl_noise_hs *w = m->from_initiator ? hs_i : hs_r, *rd = m->from_initiator ? hs_r : hs_i;
        /* Message 1's tag comes from outside; later ones are derived. */
        const uint8_t *tag = i == 0 ? m->nametag.p : NULL;
        if (i > 0) {
            uint8_t derived[16];
            pl_noise_hs_next_nametag(w, derived);
            snprintf(what, sizeof what, "message %zu nametag", i + 1);
            if (!same(rp, what, m->nametag.p, 16, derived, 16, false)) MISMATCH();
        }
        uint8_t *wire = NULL, *pl = NULL;
        size_t wire_len = 0, pl_len = 0;
        pl_err e = pl_noise_hs_write(w, tag, m->payload.p, m->payload.n, &wire, &wire_len);
        if (e != PL_OK) {
            diff(rp, "message %zu: the %s cannot write it: %s", i + 1,
                 role_name(m->from_initiator), pl_strerror(e));
            MISMATCH();
        }
        snprintf(what, sizeof what, "message %zu (%s) wire", i + 1, role_name(m->from_initiator));
        bool ok = same(rp, what, m->wire.p, m->wire.n, wire, wire_len, true);
        free(wire);
        if (!ok) MISMATCH();
        e = pl_noise_hs_read(rd, m->wire.p, m->wire.n, tag, &pl, &pl_len);
        if (e != PL_OK) {
            diff(rp, "message %zu: the %s rejects it: %s", i + 1, role_name(!m->from_initiator),
                 pl_strerror(e));
            MISMATCH();
        }
        snprintf(what, sizeof what, "message %zu payload", i + 1);
        ok = same(rp, what, m->payload.p, m->payload.n, pl, pl_len, false);
        pl_free_secret(pl, pl_len ? pl_len : 1);
        if (!ok) MISMATCH();
        r->handshake_messages++;
        if (i == 0) {
            char other[PL_NOISE_AUTHCODE_SIZE];
            pl_noise_hs_authcode(hs_i, r->authcode);
            pl_noise_hs_authcode(hs_r, other);
            if (strcmp(r->authcode, other)) {
                diff(rp, "authcode: initiator %s, responder %s", r->authcode, other);
                MISMATCH();
            }
            if (json_is_string(jac)) {
                r->checked_authcode = 1;
                if (strcmp(json_string_value(jac), r->authcode)) {
                    diff(rp, "authcode: expected %.16s, got %s", json_string_value(jac),
                         r->authcode);
                    MISMATCH();
                }
            }
        }
    }

    uint8_t h_i[32], h_r[32];
    pl_noise_hs_handshake_hash(hs_i, h_i);
    pl_noise_hs_handshake_hash(hs_r, h_r);
    if (!same(rp, "final h (responder vs initiator)", h_i, 32, h_r, 32, false)) MISMATCH();
    if (have_final_h && !same(rp, "final_h", final_h.p, 32, h_i, 32, false)) MISMATCH();

    TRY(pl_noise_hs_split(hs_i, &s_i));
    TRY(pl_noise_hs_split(hs_r, &s_r));
    uint8_t io[32], ii[32], ro[32], ri[32];
    pl__noise_session_keys(s_i, io, ii);
    pl__noise_session_keys(s_r, ro, ri);
    bool keys_ok = same(rp, "split: initiator outbound vs responder inbound", io, 32, ri, 32, false) &&
                   same(rp, "split: responder outbound vs initiator inbound", ro, 32, ii, 32, false) &&
                   (!have_ki || same(rp, "initiator_outbound_key", k_init_out.p, 32, io, 32, false)) &&
                   (!have_kr || same(rp, "responder_inbound_key", k_resp_in.p, 32, ri, 32, false));
    sodium_memzero(io, 32), sodium_memzero(ii, 32), sodium_memzero(ro, 32), sodium_memzero(ri, 32);
    if (!keys_ok) MISMATCH();

    for (size_t i = 0; json_is_array(jt) && i < json_array_size(jt); i++) {
        json_t *m = json_array_get(jt, i);
        char where[48], what[64];
        snprintf(where, sizeof where, "transport[%zu].", i);
        if (!json_is_object(m)) TRY(say(rp, PL_ERR_JSON, "%s: not an object", where));
        const char *snd = json_string_value(json_object_get(m, "sender"));
        if (!snd || (strcmp(snd, "initiator") && strcmp(snd, "responder")))
            TRY(say(rp, PL_ERR_JSON, "%ssender: not initiator/responder", where));
        bool from_i = !strcmp(snd, "initiator");
        bytes payload = {0}, wire_want = {0};
        err = get_hex(rp, m, where, "payload", &payload, 0, PL_NOISE_MAX_MESSAGE, false, NULL);
        if (err == PL_OK)
            err = get_hex(rp, m, where, "wire", &wire_want, 0, PL_NOISE_MAX_WIRE, false, NULL);
        if (err != PL_OK) {
            bytes_free(&payload);
            goto done;
        }
        uint8_t *wire = NULL, *pl = NULL;
        size_t wire_len = 0, pl_len = 0;
        bool ok = false;
        pl_err e = pl_noise_session_encrypt(from_i ? s_i : s_r, payload.p, payload.n, &wire,
                                            &wire_len);
        snprintf(what, sizeof what, "transport %zu (%s) wire", i + 1, role_name(from_i));
        if (e != PL_OK) {
            diff(rp, "transport %zu: the %s cannot encrypt it: %s", i + 1, role_name(from_i),
                 pl_strerror(e));
        } else if (same(rp, what, wire_want.p, wire_want.n, wire, wire_len, true)) {
            e = pl_noise_session_decrypt(from_i ? s_r : s_i, wire_want.p, wire_want.n, &pl, &pl_len);
            snprintf(what, sizeof what, "transport %zu payload", i + 1);
            if (e != PL_OK)
                diff(rp, "transport %zu: the %s rejects it: %s", i + 1, role_name(!from_i),
                     pl_strerror(e));
            else ok = same(rp, what, payload.p, payload.n, pl, pl_len, false);
        }
        free(wire);
        if (pl) pl_free_secret(pl, pl_len ? pl_len : 1);
        bytes_free(&payload);
        bytes_free(&wire_want);
        if (!ok) MISMATCH();
        r->transport_messages++;
    }

    if (r->pattern == PL_NOISE_WAKU_PAIRING) {
        /* RFC 43: the QR is the prologue; message 1 carries H(sA || s),
         * message 2 opens the QR's H(sB || r), message 3 opens message 1's. */
        pl_noise_qr qr;
        r->checked_commitments = 1;
        if (pl_noise_qr_parse(&qr, (const char *)prologue.p, prologue.n) != PL_OK) {
            diff(rp, "prologue: not a WakuPairing QR string");
            MISMATCH();
        }
        if (!same(rp, "QR ephemeral key vs responder.ephemeral_pub", qr.ephemeral_pub, 32, re_pub,
                  32, false))
            MISMATCH();
        if (pl_noise_commit_check(qr.committed_static, rs_pub, msgs[1].payload.p,
                                  msgs[1].payload.n) != PL_OK) {
            diff(rp, "QR commitment is not sha256(responder static || message 2 payload)");
            MISMATCH();
        }
        if (msgs[0].payload.n != 32 ||
            pl_noise_commit_check(msgs[0].payload.p, is_pub, msgs[2].payload.p,
                                  msgs[2].payload.n) != PL_OK) {
            diff(rp, "message 1 payload is not sha256(initiator static || message 3 payload)");
            MISMATCH();
        }
    }

done:
#undef TRY
#undef MISMATCH
    if (err != PL_OK) r->match = 0;
    pl_noise_session_free(s_i);
    pl_noise_session_free(s_r);
    pl_noise_hs_free(hs_i);
    pl_noise_hs_free(hs_r);
    for (size_t i = 0; i < 3; i++) {
        bytes_free(&msgs[i].nametag);
        bytes_free(&msgs[i].payload);
        bytes_free(&msgs[i].wire);
    }
    party_free(&ini);
    party_free(&res);
    bytes_free(&prologue);
    bytes_free(&psk);
    bytes_free(&final_h);
    bytes_free(&k_init_out);
    bytes_free(&k_resp_in);
    return err;
}

pl_err pl_noise_transcript_replay(const char *json, size_t len, pl_noise_replay_report *report) {
    PL_REQUIRE(report && (json || len == 0));
    memset(report, 0, sizeof *report);
    replay rp = {report, NULL};
    pl_err err;
    if (len > MAX_JSON) err = say(&rp, PL_ERR_TOO_LARGE, "transcript larger than 1 MiB");
    else err = replay_run(&rp, json, len);
    if (err != PL_OK) report->match = 0;
    json_decref(rp.root);
    return err;
}

/* ------------------------------------------------------------------ */
/* Generation                                                          */

static pl_err set_hex(json_t *o, const char *key, const uint8_t *b, size_t n) {
    if (!b) return json_object_set_new(o, key, json_null()) ? PL_ERR_NOMEM : PL_OK;
    char *hex = malloc(2 * n + 1);
    if (!hex) return PL_ERR_NOMEM;
    sodium_bin2hex(hex, 2 * n + 1, b, n);
    int rc = json_object_set_new(o, key, json_string(hex));
    pl_free_secret(hex, 2 * n + 1);
    return rc ? PL_ERR_NOMEM : PL_OK;
}

static size_t rand_len(size_t max) { return (size_t)randombytes_uniform((uint32_t)max + 1); }

static pl_err gen_party(json_t *root, const char *name, uint8_t s_priv[32], uint8_t e_priv[32],
                        uint8_t s_pub[32], uint8_t e_pub[32]) {
    pl_random(s_priv, 32);
    pl_random(e_priv, 32);
    pl__noise_pub(s_pub, s_priv);
    pl__noise_pub(e_pub, e_priv);
    json_t *o = json_object();
    if (!o || json_object_set_new(root, name, o)) return PL_ERR_NOMEM;
    PL_TRY(set_hex(o, "static_priv", s_priv, 32));
    PL_TRY(set_hex(o, "static_pub", s_pub, 32));
    PL_TRY(set_hex(o, "ephemeral_priv", e_priv, 32));
    return set_hex(o, "ephemeral_pub", e_pub, 32);
}

static pl_err add_message(json_t *arr, bool from_i, const uint8_t *nametag, const uint8_t *payload,
                          size_t plen, const uint8_t *wire, size_t wlen) {
    json_t *o = json_object();
    if (!o || json_array_append_new(arr, o)) return PL_ERR_NOMEM;
    if (json_object_set_new(o, "sender", json_string(role_name(from_i)))) return PL_ERR_NOMEM;
    if (nametag) PL_TRY(set_hex(o, "nametag", nametag, 16));
    PL_TRY(set_hex(o, "payload", payload, plen));
    return set_hex(o, "wire", wire, wlen);
}

static pl_err generate(json_t *root, pl_noise_pattern pattern, size_t transport) {
    const pl__noise_pattern_def *pat = pl__noise_pattern_lookup(pattern);
    uint8_t is[32], ie[32], isp[32], iep[32], rs[32], re[32], rsp[32], rep[32], psk[32];
    uint8_t r_val[32], s_val[32], c_init[32], tag1[16];
    uint8_t payloads[3][300];
    size_t plens[3];
    char *qrs = NULL;
    pl_noise_hs *hi = NULL, *hr = NULL;
    pl_noise_session *si = NULL, *sr = NULL;
    pl_err err = PL_OK;
#define TRY(x)                       \
    do {                             \
        err = (x);                   \
        if (err != PL_OK) goto done; \
    } while (0)

    TRY(json_object_set_new(root, "pattern", json_string(pat->name)) ? PL_ERR_NOMEM : PL_OK);
    TRY(json_object_set_new(root, "source", json_string("pairlink " PL_VERSION_STRING))
            ? PL_ERR_NOMEM
            : PL_OK);
    TRY(gen_party(root, "initiator", is, ie, isp, iep));
    TRY(gen_party(root, "responder", rs, re, rsp, rep));
    pl_random(psk, sizeof psk);
    pl_random(tag1, sizeof tag1);

    const uint8_t *prologue;
    size_t prologue_len;
    uint8_t rnd_prologue[24];
    if (pattern == PL_NOISE_WAKU_PAIRING) {
        pl_noise_qr qr;
        memset(&qr, 0, sizeof qr);
        strcpy(qr.app, "pairlink");
        strcpy(qr.version, "1");
        strcpy(qr.shard, "0");
        memcpy(qr.ephemeral_pub, rep, 32);
        pl_random(r_val, 32);
        pl_random(s_val, 32);
        pl_noise_commit(qr.committed_static, rsp, r_val, 32);
        pl_noise_commit(c_init, isp, s_val, 32);
        TRY(pl_noise_qr_encode(&qrs, &qr));
        prologue = (const uint8_t *)qrs;
        prologue_len = strlen(qrs);
        memcpy(payloads[0], c_init, 32), plens[0] = 32;
        memcpy(payloads[1], r_val, 32), plens[1] = 32;
        memcpy(payloads[2], s_val, 32), plens[2] = 32;
        TRY(json_object_set_new(root, "prologue_utf8", json_string(qrs)) ? PL_ERR_NOMEM : PL_OK);
    } else {
        pl_random(rnd_prologue, sizeof rnd_prologue);
        prologue = rnd_prologue;
        prologue_len = sizeof rnd_prologue;
        for (int i = 0; i < 3; i++) {
            plens[i] = rand_len(sizeof payloads[i]);
            pl_random(payloads[i], plens[i]);
        }
    }
    TRY(set_hex(root, "prologue", prologue, prologue_len));
    TRY(set_hex(root, "psk", pat->psk ? psk : NULL, 32));

    pl_noise_keys ki = {is, ie, rsp, rep, NULL}, kr = {rs, re, isp, iep, NULL};
    const uint8_t *pskp = pat->psk ? psk : NULL;
    TRY(pl_noise_hs_new(&hi, pattern, PL_NOISE_INITIATOR, &ki, prologue, prologue_len, pskp));
    TRY(pl_noise_hs_new(&hr, pattern, PL_NOISE_RESPONDER, &kr, prologue, prologue_len, pskp));

    json_t *msgs = json_array();
    if (!msgs || json_object_set_new(root, "messages", msgs)) TRY(PL_ERR_NOMEM);
    char code[PL_NOISE_AUTHCODE_SIZE] = "";
    for (size_t i = 0; i < pat->nmsgs; i++) {
        bool from_i = pat->msgs[i].from_initiator;
        pl_noise_hs *w = from_i ? hi : hr, *rd = from_i ? hr : hi;
        uint8_t tag[16];
        if (i == 0) memcpy(tag, tag1, 16);
        else pl_noise_hs_next_nametag(w, tag);
        uint8_t *wire = NULL, *pl = NULL;
        size_t wl = 0, pll = 0;
        TRY(pl_noise_hs_write(w, tag, payloads[i], plens[i], &wire, &wl));
        err = pl_noise_hs_read(rd, wire, wl, tag, &pl, &pll);
        if (err == PL_OK) err = add_message(msgs, from_i, tag, payloads[i], plens[i], wire, wl);
        free(wire);
        if (pl) pl_free_secret(pl, pll ? pll : 1);
        if (err != PL_OK) goto done;
        if (i == 0) pl_noise_hs_authcode(hi, code);
    }
    uint8_t h[32];
    pl_noise_hs_handshake_hash(hi, h);
    TRY(set_hex(root, "final_h", h, 32));
    TRY(pl_noise_hs_split(hi, &si));
    TRY(pl_noise_hs_split(hr, &sr));
    uint8_t ko[32], kin[32];
    pl__noise_session_keys(si, ko, kin);
    TRY(set_hex(root, "initiator_outbound_key", ko, 32));
    TRY(set_hex(root, "responder_inbound_key", ko, 32));
    sodium_memzero(ko, 32), sodium_memzero(kin, 32);

    json_t *tr = json_array();
    if (!tr || json_object_set_new(root, "transport", tr)) TRY(PL_ERR_NOMEM);
    for (size_t i = 0; i < transport; i++) {
        bool from_i = i % 2 == 0;
        uint8_t msg[600];
        size_t ml = rand_len(sizeof msg);
        pl_random(msg, ml);
        uint8_t *wire = NULL;
        size_t wl = 0;
        TRY(pl_noise_session_encrypt(from_i ? si : sr, msg, ml, &wire, &wl));
        err = add_message(tr, from_i, NULL, msg, ml, wire, wl);
        free(wire);
        if (err != PL_OK) goto done;
    }
    TRY(json_object_set_new(root, "authcode", json_string(code)) ? PL_ERR_NOMEM : PL_OK);

done:
#undef TRY
    sodium_memzero(is, 32), sodium_memzero(ie, 32), sodium_memzero(rs, 32);
    sodium_memzero(re, 32), sodium_memzero(psk, 32);
    pl_free(qrs);
    pl_noise_hs_free(hi);
    pl_noise_hs_free(hr);
    pl_noise_session_free(si);
    pl_noise_session_free(sr);
    return err;
}

pl_err pl_noise_transcript_generate(char **json, pl_noise_pattern pattern, size_t transport) {
    PL_REQUIRE(json);
    *json = NULL;
    if (!pl__noise_pattern_lookup(pattern)) return PL_ERR_NOISE_PATTERN;
    if (transport > 64) return PL_ERR_INVALID_ARG;
    json_t *root = json_object();
    if (!root) return PL_ERR_NOMEM;
    pl_err err = generate(root, pattern, transport);
    if (err == PL_OK) {
        char *s = json_dumps(root, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
        if (!s) {
            err = PL_ERR_NOMEM;
        } else {
            /* Hand out memory from our allocator: jansson's may differ. */
            size_t n = strlen(s);
            char *copy = malloc(n + 2);
            if (!copy) err = PL_ERR_NOMEM;
            else {
                memcpy(copy, s, n);
                copy[n] = '\n';
                copy[n + 1] = '\0';
                *json = copy;
            }
            sodium_memzero(s, n);
            free(s);
        }
    }
    json_decref(root);
    return err;
}
