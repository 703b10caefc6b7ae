/* SPDX-License-Identifier: Apache-2.0 */
/* Noise HandshakeState (Noise spec 5.3) driven one message at a time, with
 * the Waku message format: every handshake message is a PayloadV2 whose
 * nametag is part of the payload's associated data. */
#include "noise/noise_internal.h"

#include "pairlink/hash.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct pl_noise_hs {
    const pl__noise_pattern_def *pat;
    pl_noise_role role;
    pl__noise_ss ss;
    uint8_t s_priv[PL_NOISE_KEY_BYTES], s_pub[PL_NOISE_KEY_BYTES];
    uint8_t e_priv[PL_NOISE_KEY_BYTES], e_pub[PL_NOISE_KEY_BYTES];
    uint8_t e_given[PL_NOISE_KEY_BYTES]; /* injected ephemeral, used when e is written */
    uint8_t rs[PL_NOISE_KEY_BYTES], re[PL_NOISE_KEY_BYTES];
    uint8_t psk[PL_NOISE_KEY_BYTES];
    bool has_s, has_e, has_e_given, has_rs, has_re, has_psk;
    uint8_t msg_idx;
    bool failed, done;
};

static bool is_mine(const pl_noise_hs *hs, bool from_initiator) {
    return from_initiator == (hs->role == PL_NOISE_INITIATOR);
}

/* Any failure wipes every secret and leaves only the FAILED state. */
static pl_err fail(pl_noise_hs *hs, pl_err err) {
    const pl__noise_pattern_def *pat = hs->pat;
    pl_noise_role role = hs->role;
    sodium_memzero(hs, sizeof *hs);
    hs->pat = pat;
    hs->role = role;
    hs->failed = true;
    return err;
}

pl_err pl_noise_hs_new(pl_noise_hs **out, pl_noise_pattern pattern, pl_noise_role role,
                       const pl_noise_keys *keys, const uint8_t *prologue, size_t prologue_len,
                       const uint8_t *psk) {
    PL_REQUIRE(out && keys && (prologue || prologue_len == 0));
    PL_REQUIRE(role == PL_NOISE_INITIATOR || role == PL_NOISE_RESPONDER);
    *out = NULL;
    const pl__noise_pattern_def *pat = pl__noise_pattern_lookup(pattern);
    if (!pat) return PL_ERR_NOISE_PATTERN;
    if (prologue_len > PL_NOISE_MAX_PROLOGUE) return PL_ERR_TOO_LARGE;
    if (pat->psk && !psk) return PL_ERR_NOISE_MISSING_KEY;
    if (!pat->psk && psk) return PL_ERR_INVALID_ARG;
    /* Every supported pattern authenticates both parties by a static key. */
    if (!keys->static_priv) return PL_ERR_NOISE_MISSING_KEY;

    pl_noise_hs *hs = calloc(1, sizeof *hs);
    if (!hs) return PL_ERR_NOMEM;
    hs->pat = pat;
    hs->role = role;
    memcpy(hs->s_priv, keys->static_priv, PL_NOISE_KEY_BYTES);
    if (keys->static_pub) memcpy(hs->s_pub, keys->static_pub, PL_NOISE_KEY_BYTES);
    else pl__noise_pub(hs->s_pub, hs->s_priv);
    hs->has_s = true;
    if (keys->ephemeral_priv) {
        memcpy(hs->e_given, keys->ephemeral_priv, PL_NOISE_KEY_BYTES);
        hs->has_e_given = true;
    }
    if (psk) {
        memcpy(hs->psk, psk, PL_NOISE_KEY_BYTES);
        hs->has_psk = true;
    }

    pl__noise_ss_init(&hs->ss, pat->name);
    pl__noise_mix_hash(&hs->ss, prologue, prologue_len);

    pl_err err = PL_OK;
    for (uint8_t i = 0; i < pat->npre && err == PL_OK; i++) {
        const pl__noise_msg_pattern *pre = &pat->pre[i];
        bool mine = is_mine(hs, pre->from_initiator);
        const uint8_t *pub = NULL;
        if (pre->tokens[0] == PL__TOK_S) {
            if (mine) {
                pub = hs->s_pub;
            } else if (!keys->remote_static_pub) {
                err = PL_ERR_NOISE_MISSING_KEY;
            } else {
                memcpy(hs->rs, keys->remote_static_pub, PL_NOISE_KEY_BYTES);
                hs->has_rs = true;
                pub = hs->rs;
            }
        } else { /* PL__TOK_E */
            if (mine) {
                /* The WakuPairing responder's QR key: given, or fresh now so
                 * that it can be shown before the handshake starts. */
                if (hs->has_e_given) memcpy(hs->e_priv, hs->e_given, PL_NOISE_KEY_BYTES);
                else pl_random(hs->e_priv, PL_NOISE_KEY_BYTES);
                pl__noise_pub(hs->e_pub, hs->e_priv);
                hs->has_e = true;
                pub = hs->e_pub;
            } else if (!keys->remote_ephemeral_pub) {
                err = PL_ERR_NOISE_MISSING_KEY;
            } else {
                memcpy(hs->re, keys->remote_ephemeral_pub, PL_NOISE_KEY_BYTES);
                hs->has_re = true;
                pub = hs->re;
            }
        }
        if (err == PL_OK) {
            pl__noise_mix_hash(&hs->ss, pub, PL_NOISE_KEY_BYTES);
            if (pat->psk && pre->tokens[0] == PL__TOK_E)
                pl__noise_mix_key(&hs->ss, pub, PL_NOISE_KEY_BYTES);
        }
    }
    if (err != PL_OK) {
        pl_noise_hs_free(hs);
        return err;
    }
    *out = hs;
    return PL_OK;
}

void pl_noise_hs_free(pl_noise_hs *hs) {
    if (!hs) return;
    sodium_memzero(hs, sizeof *hs);
    free(hs);
}

pl_noise_action pl_noise_hs_action(const pl_noise_hs *hs) {
    PL_REQUIRE(hs);
    if (hs->failed) return PL_NOISE_ACTION_FAILED;
    if (hs->done) return PL_NOISE_ACTION_DONE;
    if (hs->msg_idx >= hs->pat->nmsgs) return PL_NOISE_ACTION_SPLIT;
    return is_mine(hs, hs->pat->msgs[hs->msg_idx].from_initiator) ? PL_NOISE_ACTION_WRITE
                                                                   : PL_NOISE_ACTION_READ;
}

pl_noise_pattern pl_noise_hs_pattern(const pl_noise_hs *hs) {
    PL_REQUIRE(hs);
    return hs->pat->id;
}

pl_noise_role pl_noise_hs_role(const pl_noise_hs *hs) {
    PL_REQUIRE(hs);
    return hs->role;
}

void pl_noise_hs_next_nametag(const pl_noise_hs *hs, uint8_t nametag[PL_NOISE_NAMETAG_BYTES]) {
    PL_REQUIRE(hs && nametag);
    if (hs->msg_idx == 0) {
        memset(nametag, 0, PL_NOISE_NAMETAG_BYTES);
        return;
    }
    pl__noise_hkdf_h(nametag, PL_NOISE_NAMETAG_BYTES, hs->ss.h);
}

/* MixKey(DH(...)) for ee/es/se/ss; which keys depends on the role
 * (Noise 7.x: "es" is e of the initiator with s of the responder). */
static pl_err mix_dh(pl_noise_hs *hs, pl__noise_token tok) {
    bool ini = hs->role == PL_NOISE_INITIATOR;
    const uint8_t *priv = NULL, *pub = NULL;
    bool ok = false;
    switch (tok) {
    case PL__TOK_EE:
        priv = hs->e_priv, pub = hs->re, ok = hs->has_e && hs->has_re;
        break;
    case PL__TOK_ES:
        if (ini) priv = hs->e_priv, pub = hs->rs, ok = hs->has_e && hs->has_rs;
        else priv = hs->s_priv, pub = hs->re, ok = hs->has_s && hs->has_re;
        break;
    case PL__TOK_SE:
        if (ini) priv = hs->s_priv, pub = hs->re, ok = hs->has_s && hs->has_re;
        else priv = hs->e_priv, pub = hs->rs, ok = hs->has_e && hs->has_rs;
        break;
    case PL__TOK_SS:
        priv = hs->s_priv, pub = hs->rs, ok = hs->has_s && hs->has_rs;
        break;
    default:
        break;
    }
    /* The pattern tables never ask for a key that is not there yet. */
    if (!ok) return PL_ERR_INTERNAL;
    uint8_t dh[PL_NOISE_KEY_BYTES];
    pl_err err = pl__noise_dh(dh, priv, pub);
    if (err == PL_OK) pl__noise_mix_key(&hs->ss, dh, sizeof dh);
    sodium_memzero(dh, sizeof dh);
    return err;
}

static pl_err check_turn(const pl_noise_hs *hs, bool writing) {
    pl_noise_action a = pl_noise_hs_action(hs);
    return a == (writing ? PL_NOISE_ACTION_WRITE : PL_NOISE_ACTION_READ) ? PL_OK
                                                                          : PL_ERR_NOISE_STATE;
}

static pl_err write_tokens(pl_noise_hs *hs, pl_noise_payload *p) {
    const pl__noise_msg_pattern *m = &hs->pat->msgs[hs->msg_idx];
    for (uint8_t t = 0; t < m->ntokens; t++) {
        pl__noise_token tok = m->tokens[t];
        if (tok == PL__TOK_E) {
            if (hs->has_e_given) memcpy(hs->e_priv, hs->e_given, PL_NOISE_KEY_BYTES);
            else pl_random(hs->e_priv, PL_NOISE_KEY_BYTES);
            pl__noise_pub(hs->e_pub, hs->e_priv);
            hs->has_e = true;
            pl__noise_mix_hash(&hs->ss, hs->e_pub, PL_NOISE_KEY_BYTES);
            if (hs->pat->psk) pl__noise_mix_key(&hs->ss, hs->e_pub, PL_NOISE_KEY_BYTES);
            p->keys[p->nkeys].flag = 0;
            memcpy(p->keys[p->nkeys].data, hs->e_pub, PL_NOISE_KEY_BYTES);
            p->nkeys++;
        } else if (tok == PL__TOK_S) {
            size_t n = 0;
            PL_TRY(pl__noise_encrypt_and_hash(&hs->ss, p->keys[p->nkeys].data, &n, hs->s_pub,
                                              PL_NOISE_KEY_BYTES, NULL, 0));
            p->keys[p->nkeys].flag = n > PL_NOISE_KEY_BYTES ? 1 : 0;
            p->nkeys++;
        } else if (tok == PL__TOK_PSK) {
            pl__noise_mix_key_and_hash(&hs->ss, hs->psk, PL_NOISE_KEY_BYTES);
        } else {
            PL_TRY(mix_dh(hs, tok));
        }
    }
    return PL_OK;
}

pl_err pl_noise_hs_write(pl_noise_hs *hs, const uint8_t *nametag, const uint8_t *payload,
                         size_t payload_len, uint8_t **wire, size_t *wire_len) {
    PL_REQUIRE(hs && (payload || payload_len == 0) && wire && wire_len);
    *wire = NULL;
    *wire_len = 0;
    PL_TRY(check_turn(hs, true));
    if (payload_len > PL_NOISE_MAX_MESSAGE) return PL_ERR_TOO_LARGE;

    pl_noise_payload p;
    memset(&p, 0, sizeof p);
    p.protocol_id = (uint8_t)hs->pat->id;
    if (nametag) memcpy(p.nametag, nametag, PL_NOISE_NAMETAG_BYTES);
    else pl_noise_hs_next_nametag(hs, p.nametag);

    pl_err err = write_tokens(hs, &p);
    if (err != PL_OK) return fail(hs, err);

    size_t padded = pl__noise_padded_len(payload_len);
    uint8_t *buf = malloc(padded + PL_NOISE_TAG_BYTES);
    if (!buf) return fail(hs, PL_ERR_NOMEM);
    pl__noise_pad(buf, payload, payload_len);
    size_t ct_len = 0;
    uint8_t *ct = malloc(padded + PL_NOISE_TAG_BYTES);
    if (!ct) {
        pl_free_secret(buf, padded + PL_NOISE_TAG_BYTES);
        return fail(hs, PL_ERR_NOMEM);
    }
    err = pl__noise_encrypt_and_hash(&hs->ss, ct, &ct_len, buf, padded, p.nametag,
                                     PL_NOISE_NAMETAG_BYTES);
    pl_free_secret(buf, padded + PL_NOISE_TAG_BYTES);
    if (err != PL_OK) {
        free(ct);
        return fail(hs, err);
    }
    p.transport = ct;
    p.transport_len = ct_len;
    err = pl_noise_payload_serialize(wire, wire_len, &p);
    free(ct);
    if (err != PL_OK) return fail(hs, err);
    hs->msg_idx++;
    return PL_OK;
}

static pl_err read_tokens(pl_noise_hs *hs, const pl_noise_payload *p) {
    const pl__noise_msg_pattern *m = &hs->pat->msgs[hs->msg_idx];
    size_t want = 0;
    for (uint8_t t = 0; t < m->ntokens; t++)
        if (m->tokens[t] == PL__TOK_E || m->tokens[t] == PL__TOK_S) want++;
    if (p->nkeys != want) return PL_ERR_NOISE_PAYLOAD;

    size_t k = 0;
    for (uint8_t t = 0; t < m->ntokens; t++) {
        pl__noise_token tok = m->tokens[t];
        if (tok == PL__TOK_E) {
            /* Ephemeral keys travel in clear (js-noise would also take an
             * encrypted one; no implementation writes that). */
            if (p->keys[k].flag != 0) return PL_ERR_NOISE_PAYLOAD;
            memcpy(hs->re, p->keys[k].data, PL_NOISE_KEY_BYTES);
            hs->has_re = true;
            pl__noise_mix_hash(&hs->ss, hs->re, PL_NOISE_KEY_BYTES);
            if (hs->pat->psk) pl__noise_mix_key(&hs->ss, hs->re, PL_NOISE_KEY_BYTES);
            k++;
        } else if (tok == PL__TOK_S) {
            /* The flag must say exactly what the state implies: a clear key
             * where one could have been encrypted is a downgrade. */
            uint8_t want_flag = hs->ss.cs.has_key ? 1 : 0;
            if (p->keys[k].flag != want_flag) return PL_ERR_NOISE_PAYLOAD;
            size_t in_len = want_flag ? PL_NOISE_KEY_BYTES + PL_NOISE_TAG_BYTES : PL_NOISE_KEY_BYTES;
            uint8_t rs[PL_NOISE_KEY_BYTES + PL_NOISE_TAG_BYTES];
            size_t n = 0;
            PL_TRY(pl__noise_decrypt_and_hash(&hs->ss, rs, &n, p->keys[k].data, in_len, NULL, 0));
            memcpy(hs->rs, rs, PL_NOISE_KEY_BYTES);
            hs->has_rs = true;
            k++;
        } else if (tok == PL__TOK_PSK) {
            pl__noise_mix_key_and_hash(&hs->ss, hs->psk, PL_NOISE_KEY_BYTES);
        } else {
            PL_TRY(mix_dh(hs, tok));
        }
    }
    return PL_OK;
}

pl_err pl_noise_hs_read(pl_noise_hs *hs, const uint8_t *wire, size_t wire_len,
                        const uint8_t *nametag, uint8_t **payload, size_t *payload_len) {
    PL_REQUIRE(hs && (wire || wire_len == 0) && payload && payload_len);
    *payload = NULL;
    *payload_len = 0;
    PL_TRY(check_turn(hs, false));
    if (wire_len < PL_NOISE_NAMETAG_BYTES) return PL_ERR_NOISE_PAYLOAD;
    uint8_t expected[PL_NOISE_NAMETAG_BYTES];
    if (nametag) memcpy(expected, nametag, PL_NOISE_NAMETAG_BYTES);
    else pl_noise_hs_next_nametag(hs, expected);
    /* Not addressed to this step: somebody else's (or our own echoed)
     * message on the topic. Drop it without touching the state. */
    if (!pl_ct_equal(wire, expected, PL_NOISE_NAMETAG_BYTES)) return PL_ERR_NOISE_NAMETAG;

    pl_noise_payload p;
    pl_err err = pl_noise_payload_parse(&p, wire, wire_len);
    if (err != PL_OK) return fail(hs, err);
    if (p.protocol_id != (uint8_t)hs->pat->id) return fail(hs, PL_ERR_NOISE_PROTOCOL_ID);
    err = read_tokens(hs, &p);
    if (err != PL_OK) return fail(hs, err);

    uint8_t *buf = malloc(p.transport_len ? p.transport_len : 1);
    if (!buf) return fail(hs, PL_ERR_NOMEM);
    size_t n = 0, plain = 0;
    err = pl__noise_decrypt_and_hash(&hs->ss, buf, &n, p.transport, p.transport_len, p.nametag,
                                     PL_NOISE_NAMETAG_BYTES);
    if (err == PL_OK) err = pl__noise_unpad(buf, n, &plain);
    if (err != PL_OK) {
        pl_free_secret(buf, p.transport_len ? p.transport_len : 1);
        return fail(hs, err);
    }
    uint8_t *out = malloc(plain ? plain : 1);
    if (!out) {
        pl_free_secret(buf, p.transport_len ? p.transport_len : 1);
        return fail(hs, PL_ERR_NOMEM);
    }
    if (plain) memcpy(out, buf, plain);
    pl_free_secret(buf, p.transport_len ? p.transport_len : 1);
    hs->msg_idx++;
    *payload = out;
    *payload_len = plain;
    return PL_OK;
}

void pl_noise_hs_handshake_hash(const pl_noise_hs *hs, uint8_t h[PL_NOISE_HASH_BYTES]) {
    PL_REQUIRE(hs && h);
    memcpy(h, hs->ss.h, PL_NOISE_HASH_BYTES);
}

pl_err pl_noise_hs_remote_static(const pl_noise_hs *hs, uint8_t pub[PL_NOISE_KEY_BYTES]) {
    PL_REQUIRE(hs && pub);
    if (!hs->has_rs) return PL_ERR_STATE;
    memcpy(pub, hs->rs, PL_NOISE_KEY_BYTES);
    return PL_OK;
}

pl_err pl_noise_hs_local_ephemeral(const pl_noise_hs *hs, uint8_t pub[PL_NOISE_KEY_BYTES]) {
    PL_REQUIRE(hs && pub);
    if (!hs->has_e) return PL_ERR_STATE;
    memcpy(pub, hs->e_pub, PL_NOISE_KEY_BYTES);
    return PL_OK;
}

void pl_noise_hs_authcode(const pl_noise_hs *hs, char code[PL_NOISE_AUTHCODE_SIZE]) {
    PL_REQUIRE(hs && code);
    uint8_t out[8];
    pl__noise_hkdf_h(out, sizeof out, hs->ss.h);
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v = (v << 8) | out[i]; /* big-endian, as js-noise's BN */
    snprintf(code, PL_NOISE_AUTHCODE_SIZE, "%08llu", (unsigned long long)(v % 100000000u));
}

pl_err pl_noise_hs_split(pl_noise_hs *hs, pl_noise_session **out) {
    PL_REQUIRE(hs && out);
    *out = NULL;
    if (pl_noise_hs_action(hs) != PL_NOISE_ACTION_SPLIT) return PL_ERR_NOISE_STATE;
    if (!hs->has_rs) return PL_ERR_INTERNAL; /* every pattern ends knowing rs */

    /* nms: the two nametag secrets, then the session id (RFC 37), from one
     * HKDF(h) of 96 bytes. */
    uint8_t cs[64], nms[96];
    pl__noise_split(&hs->ss, cs, cs + 32);
    pl__noise_hkdf_h(nms, sizeof nms, hs->ss.h);
    /* cs1 = cs[0..32] protects initiator -> responder. The initiator reads
     * inbound nametags from nms1 and writes outbound ones from nms2. */
    bool ini = hs->role == PL_NOISE_INITIATOR;
    pl_err err = pl__noise_session_new(out, hs->pat->id, hs->role, hs->ss.h, hs->rs,
                                       ini ? cs : cs + 32, ini ? cs + 32 : cs,
                                       ini ? nms + 32 : nms, ini ? nms : nms + 32, nms + 64);
    sodium_memzero(cs, sizeof cs);
    sodium_memzero(nms, sizeof nms);
    if (err != PL_OK) return err;
    /* Keep h, rs and the authcode readable; drop what keys the handshake. */
    sodium_memzero(hs->ss.ck, sizeof hs->ss.ck);
    sodium_memzero(&hs->ss.cs, sizeof hs->ss.cs);
    sodium_memzero(hs->s_priv, sizeof hs->s_priv);
    sodium_memzero(hs->e_priv, sizeof hs->e_priv);
    sodium_memzero(hs->e_given, sizeof hs->e_given);
    sodium_memzero(hs->psk, sizeof hs->psk);
    hs->done = true;
    return PL_OK;
}
