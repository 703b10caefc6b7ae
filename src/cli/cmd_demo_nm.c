/* SPDX-License-Identifier: Apache-2.0 */
/* pairlink demo, second part: the node-manager pairing of the seed
 * (docs/protocol/node-manager-pairing.md), step by step, then a message over
 * the Noise session and a restart of both sides. */
#include "cli/cli.h"
#include "cli/demo.h"

#include "pairlink/codec.h"
#include "pairlink/nm_node.h"
#include "pairlink/waku_transport.h"

#include <stdio.h>
#include <string.h>

typedef struct side {
    const char *label;
    pl_nm_node *n;
    bool connected, got_code, stored, paired, established, failed, closed;
    bool got_request, got_response;
    char code[PL_NM_CODE_TEXT_SIZE];
    char fingerprint[PL_NM_FINGERPRINT_SIZE];
    char peer_name[PL_NM_NAME_MAX + 1];
    uint8_t peer[PL_NM_KEY_BYTES];
    char body[128];
    pl_err err;
} side;

static void on_event(void *ud, pl_nm_node *n, const pl_nm_node_event *ev) {
    side *s = ud;
    switch (ev->kind) {
    case PL_NM_NODE_TRANSPORT: s->connected = ev->transport_state == PL_TRANSPORT_CONNECTED; break;
    case PL_NM_NODE_PAIR_CODE:
        snprintf(s->code, sizeof s->code, "%s", ev->code);
        s->got_code = true;
        break;
    case PL_NM_NODE_PAIR_STORED:
        s->stored = true;
        memcpy(s->peer, ev->peer, sizeof s->peer);
        snprintf(s->peer_name, sizeof s->peer_name, "%s", ev->name);
        break;
    case PL_NM_NODE_PAIRED:
        s->paired = true;
        snprintf(s->fingerprint, sizeof s->fingerprint, "%s", ev->fingerprint);
        break;
    case PL_NM_NODE_PAIR_FAILED:
        s->failed = true;
        s->err = ev->err;
        break;
    case PL_NM_NODE_SESSION:
        if (!ev->session) break;
        if (ev->session->event == PL_NM_SEV_ESTABLISHED) {
            s->established = true;
            memcpy(s->peer, ev->peer, sizeof s->peer);
        } else if (ev->session->event == PL_NM_SEV_REQUEST) {
            s->got_request = true;
            snprintf(s->body, sizeof s->body, "%.*s", (int)ev->session->body_len,
                     (const char *)ev->session->body);
            static const char reply[] = "{\"syncing\":false,\"head\":9123456,\"peers\":87}";
            pl_nm_node_respond(n, ev->peer, ev->session->id, (const uint8_t *)reply, sizeof reply - 1);
        } else if (ev->session->event == PL_NM_SEV_RESPONSE) {
            s->got_response = true;
            snprintf(s->body, sizeof s->body, "%.*s", (int)ev->session->body_len,
                     (const char *)ev->session->body);
        }
        break;
    default: break;
    }
}

static void on_closed(void *ud) { ((side *)ud)->closed = true; }

static pl_err side_open(pl_demo *d, side *s, const char *label, pl_nm_role role, const char *name,
                        const char *db) {
    memset(s, 0, sizeof *s);
    s->label = label;
    char path[600];
    snprintf(path, sizeof path, "%s/%s", d->dir, db);
    pl_nm_node_opts o = {.role = role,
                         .relay_url = d->relay_url,
                         .store_path = path,
                         .name = name,
                         .sessions = true,
                         .on_event = on_event,
                         .ud = s};
    /* Over Waku: a node of its own that dials only the relay node, its
     * libp2p identity beside the store (the same peer id after a restart). */
    pl_waku_transport_opts wo;
    const char *peers[1] = {d->waku_peer};
    if (d->waku) {
        pl_waku_transport_opts_init(&wo);
        wo.node.peers = peers;
        wo.node.n_peers = 1;
        o.waku = &wo;
        o.relay_url = NULL;
    }
    pl_err e = pl_nm_node_new(&s->n, &d->loop, &o);
    if (e != PL_OK) return e;
    if (!pl__demo_run_until(&d->loop, &s->connected, 10000)) return PL_ERR_TIMEOUT;
    return PL_OK;
}

static void side_close(pl_demo *d, side *s) {
    if (!s->n) return;
    pl_nm_node_close(s->n, 0, on_closed);
    pl__demo_run_until(&d->loop, &s->closed, 5000);
    s->n = NULL;
}

static void waku_id(side *s, pl_p2p_peer_id *id) {
    pl_waku_node_peer_id(pl_waku_transport_node(pl_nm_node_transport(s->n)), id);
}

/* Over Waku: the side's libp2p peer id, shortened, and where it joined. */
static void waku_joined(pl_demo *d, side *s) {
    if (!d->waku) return;
    pl_p2p_peer_id id;
    char txt[PL_P2P_PEER_ID_TEXT_SIZE];
    waku_id(s, &id);
    if (pl_p2p_peer_id_format(txt, &id) != PL_OK) return;
    size_t n = strlen(txt);
    printf("        (%s's Waku node ...%s joined through the relay node; shard /waku/2/rs/16/64)\n",
           s->label, n > 8 ? txt + n - 8 : txt);
}

static void key_id(const uint8_t key[PL_NM_KEY_BYTES], char out[17]) {
    char hex[PL_HEX_SIZE(PL_NM_KEY_BYTES)];
    pl_hex_encode(hex, sizeof hex, key, PL_NM_KEY_BYTES);
    memcpy(out, hex, 16);
    out[16] = '\0';
}

int pl__demo_nm_flow(pl_demo *d) {
    side app, nm;
    pl_err e;
    d->prefix = "nm ";
    d->step = 0;
    if ((e = side_open(d, &app, "app", PL_NM_ROLE_APP, "Nimbus GUI", "app.db")) != PL_OK)
        return pl__demo_fail(d, "app start", e);
    pl__demo_step(d, "user starts pairing in the GUI app");
    if ((e = pl_nm_node_pair(app.n, NULL, NULL)) != PL_OK) return pl__demo_fail(d, "app pairing", e);
    pl__demo_step(d, "app generated a 64-bit code P: %s (checksummed; also shown as a QR code)", app.code);
    pl__demo_step(d, "app derived topic T = kdf(P, TOPIC_SALT) and key HS = kdf(P, HANDSHAKE_KEY_SALT) (Argon2id, 64 MiB)");
    uint8_t id[PL_NM_KEY_BYTES];
    char idtxt[17];
    pl_nm_node_identity(app.n, id);
    key_id(id, idtxt);
    pl__demo_step(d, "app is on the %s with identity %s... and listens on T",
                  d->waku ? "Waku network" : "relay", idtxt);
    waku_joined(d, &app);

    if ((e = side_open(d, &nm, "node manager", PL_NM_ROLE_NODE_MANAGER, "Status node manager", "nm.db")) !=
        PL_OK)
        return pl__demo_fail(d, "node manager start", e);
    if ((e = pl_nm_node_pair(nm.n, app.code, NULL)) != PL_OK) return pl__demo_fail(d, "node manager pairing", e);
    pl__demo_step(d, "user typed the code on the node manager, which derived the same T and HS");
    pl_nm_node_identity(nm.n, id);
    key_id(id, idtxt);
    waku_joined(d, &nm);
    pl__demo_step(d, "node manager (identity %s...) sends HELLO_APP = encrypt(HS, its identity) on T%s", idtxt,
                  d->waku ? " (WakuMessage version 1, ephemeral; repeated every 2 s)" : "");
    if (!pl__demo_run_until(&d->loop, &app.stored, 15000)) return pl__demo_fail(d, "HELLO_APP", PL_ERR_TIMEOUT);
    pl__demo_step(d, "app decrypted HELLO_APP with HS and persisted the node manager \"%s\"", app.peer_name);
    pl__demo_step(d, "app answers HELLO_NODE_MANAGER = encrypt(HS, app identity)");
    if (!pl__demo_run_until(&d->loop, &nm.stored, 15000))
        return pl__demo_fail(d, "HELLO_NODE_MANAGER", PL_ERR_TIMEOUT);
    pl__demo_step(d, "node manager decrypted it and persisted the app \"%s\"", nm.peer_name);
    if (!pl__demo_run_until(&d->loop, &nm.paired, 15000) || !pl__demo_run_until(&d->loop, &app.paired, 15000))
        return pl__demo_fail(d, "pairing completion", PL_ERR_TIMEOUT);
    if (strcmp(app.fingerprint, nm.fingerprint)) return pl__demo_fail(d, "fingerprints differ", PL_ERR_STATE);
    printf("        both sides show the fingerprint %s\n", app.fingerprint);
    if (!pl__demo_run_until(&d->loop, &nm.established, 20000) ||
        !pl__demo_run_until(&d->loop, &app.established, 20000))
        return pl__demo_fail(d, "Noise session", PL_ERR_TIMEOUT);
    pl__demo_step(d, "node manager opened a Waku Noise K1K1 session with the app's key; the app accepted");
    if (d->waku) printf("        (handshake and session messages: WakuMessage version 2 on the rendezvous and session topics)\n");

    static const char ask[] = "{\"method\":\"node_status\"}";
    if ((e = pl_nm_node_request(app.n, app.peer, (const uint8_t *)ask, sizeof ask - 1, NULL)) != PL_OK)
        return pl__demo_fail(d, "request", e);
    if (!pl__demo_run_until(&d->loop, &app.got_response, 15000))
        return pl__demo_fail(d, "response over the session", PL_ERR_TIMEOUT);
    printf("        over the session: app asked %s, node manager answered %s\n", nm.body, app.body);

    pl_p2p_peer_id ids[2] = {{0}, {0}}, ids2[2] = {{0}, {0}};
    if (d->waku) waku_id(&app, &ids[0]), waku_id(&nm, &ids[1]);
    side_close(d, &app);
    side_close(d, &nm);
    if ((e = side_open(d, &nm, "node manager", PL_NM_ROLE_NODE_MANAGER, "Status node manager", "nm.db")) != PL_OK)
        return pl__demo_fail(d, "node manager restart", e);
    if ((e = side_open(d, &app, "app", PL_NM_ROLE_APP, "Nimbus GUI", "app.db")) != PL_OK)
        return pl__demo_fail(d, "app restart", e);
    if (!pl__demo_run_until(&d->loop, &nm.established, 30000) ||
        !pl__demo_run_until(&d->loop, &app.established, 30000))
        return pl__demo_fail(d, "session after restart", PL_ERR_TIMEOUT);
    pl__demo_step(d, "both restarted: each loaded %zu counterparty and the session was re-established at once",
                  pl_nm_node_restored(app.n));
    if (d->waku) {
        waku_id(&app, &ids2[0]), waku_id(&nm, &ids2[1]);
        bool same = !memcmp(&ids[0], &ids2[0], sizeof ids[0]) && !memcmp(&ids[1], &ids2[1], sizeof ids[1]);
        printf("        (both Waku nodes rejoined %s)\n",
               same ? "with their peer ids, kept in key files beside the stores" : "with NEW peer ids");
    }
    app.got_response = false;
    if ((e = pl_nm_node_request(app.n, app.peer, (const uint8_t *)ask, sizeof ask - 1, NULL)) != PL_OK)
        return pl__demo_fail(d, "request", e);
    if (!pl__demo_run_until(&d->loop, &app.got_response, 15000))
        return pl__demo_fail(d, "response after restart", PL_ERR_TIMEOUT);
    printf("        after the restart the app asked again and got %s\n", app.body);
    side_close(d, &app);
    side_close(d, &nm);
    return 0;
}
