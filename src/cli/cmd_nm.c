/* Node-manager pairing commands: `pairlink app pair|run`,
 * `pairlink node-manager pair|run`, `pairlink peers`, `pairlink send`.
 * User guide: docs/node-manager.md. */
#include "cli/cli.h"
#include "pairlink/codec.h"
#include "pairlink/nm_node.h"
#include "pairlink/nm_store.h"
#include "pairlink/store.h"
#include "pairlink/waku_transport.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <libwebsockets.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#define DEFAULT_RELAY "ws://127.0.0.1:8787"

typedef enum mode { M_PAIR = 1, M_RUN, M_SEND } mode;

typedef struct ctx {
    const char *cmd;
    mode mode;
    pl_nm_role role;
    bool json;
    pl_cli_qr qr;
    bool wait_session;
    pl_nm_node *node;
    uv_loop_t *loop;
    uv_signal_t sigint, sigterm;
    uv_timer_t guard; /* session wait / send time-out; then the close */
    int status;       /* -1 while running */
    bool stopping;
    uint8_t target[PL_NM_KEY_BYTES]; /* pair: the paired peer; send: the destination */
    bool have_target;
    bool qr_failed; /* --qr-png could not be written */
    uint64_t req_id;
    const char *message;
    bool waku;           /* --waku: a Waku transport instead of the relay */
    bool verbose;        /* --verbose: the Waku node's log on stderr */
    pl_cli_waku_opts w;  /* --peer, --listen, ... */
} ctx;

static const char *role_name(pl_nm_role r) { return r == PL_NM_ROLE_APP ? "app" : "node-manager"; }

static bool want_help(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) return true;
    return false;
}

static const char *default_relay(void) {
    const char *r = getenv("PAIRLINK_RELAY");
    return r && *r ? r : DEFAULT_RELAY;
}

static const char *default_store(pl_nm_role role) {
    const char *s = getenv("PAIRLINK_STORE");
    if (s && *s) return s;
    return role == PL_NM_ROLE_APP ? "pairlink-app.db" : "pairlink-node-manager.db";
}

/* ---- output ---- */

static void print_json(json_t *o) {
    char *s = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII);
    if (s) printf("%s\n", s);
    free(s);
    json_decref(o);
}

static void hex32(char out[65], const uint8_t k[32]) { pl_hex_encode(out, 65, k, 32); }

/* Bodies are printed as text when they are printable UTF-8 (jansson
 * validates the UTF-8), else as hex. */
static bool printable(const uint8_t *b, size_t n) {
    json_t *j = json_stringn((const char *)b, n);
    if (!j) return false;
    json_decref(j);
    for (size_t i = 0; i < n; i++)
        if (b[i] < 0x20 || b[i] == 0x7f) return false;
    return true;
}

static const char *sev_name(pl_nm_session_event e) {
    switch (e) {
    case PL_NM_SEV_CONNECTING: return "connecting";
    case PL_NM_SEV_KNOCKED: return "knock";
    case PL_NM_SEV_ESTABLISHED: return "established";
    case PL_NM_SEV_RETRY: return "retry";
    case PL_NM_SEV_REJECTED: return "rejected";
    case PL_NM_SEV_REQUEST: return "request";
    case PL_NM_SEV_RESPONSE: return "response";
    case PL_NM_SEV_REQUEST_FAILED: return "request_failed";
    case PL_NM_SEV_DROPPED: return "dropped";
    }
    return "?";
}

static void print_event(ctx *c, const pl_nm_node_event *ev) {
    char pub[65] = "";
    hex32(pub, ev->peer);
    if (c->json) {
        json_t *o = json_object();
        switch (ev->kind) {
        case PL_NM_NODE_TRANSPORT:
            json_object_set_new(o, "event", json_string(c->waku ? "waku" : "relay"));
            json_object_set_new(o, "state",
                                json_string(ev->transport_state == PL_TRANSPORT_CONNECTED ? "connected"
                                            : ev->transport_state == PL_TRANSPORT_CLOSED  ? "failed"
                                                                                          : "disconnected"));
            if (ev->err) json_object_set_new(o, "error", json_string(pl_errname(ev->err)));
            break;
        case PL_NM_NODE_PAIR_CODE:
            json_object_set_new(o, "event", json_string("code"));
            json_object_set_new(o, "code", json_string(ev->code));
            if (pl_cli_qr_show(&c->qr, c->cmd, ev->code, true) != 0) c->qr_failed = true;
            break;
        case PL_NM_NODE_PAIR_DROPPED:
            json_object_set_new(o, "event", json_string("hello_dropped"));
            json_object_set_new(o, "reason", json_string(pl_nm_drop_reason_name(ev->reason)));
            json_object_set_new(o, "error", json_string(pl_errname(ev->err)));
            break;
        case PL_NM_NODE_PAIR_STORED:
        case PL_NM_NODE_PAIRED:
            json_object_set_new(o, "event", json_string(ev->kind == PL_NM_NODE_PAIRED ? "paired" : "stored"));
            json_object_set_new(o, "peer", json_string(pub));
            json_object_set_new(o, "id", json_string(ev->peer_id));
            json_object_set_new(o, "name", json_string(ev->name));
            if (ev->kind == PL_NM_NODE_PAIRED)
                json_object_set_new(o, "fingerprint", json_string(ev->fingerprint));
            break;
        case PL_NM_NODE_PUBLISH_FAILED:
            json_object_set_new(o, "event", json_string("publish_failed"));
            json_object_set_new(o, "topic", json_string(ev->topic));
            json_object_set_new(o, "error", json_string(pl_errname(ev->err)));
            if (ev->relay_code) json_object_set_new(o, "code", json_integer(ev->relay_code));
            break;
        case PL_NM_NODE_PAIR_FAILED:
            json_object_set_new(o, "event", json_string("pair_failed"));
            json_object_set_new(o, "error", json_string(pl_errname(ev->err)));
            json_object_set_new(o, "message", json_string(pl_strerror(ev->err)));
            break;
        case PL_NM_NODE_SESSION: {
            const pl_nm_session_output *s = ev->session;
            json_object_set_new(o, "event", json_string(sev_name(s->event)));
            json_object_set_new(o, "peer", json_string(pub));
            json_object_set_new(o, "id", json_string(ev->peer_id));
            json_object_set_new(o, "name", json_string(ev->name));
            if (s->event == PL_NM_SEV_ESTABLISHED) json_object_set_new(o, "replaced", json_boolean(s->replaced));
            if (s->attempt) json_object_set_new(o, "attempt", json_integer(s->attempt));
            if (s->err) json_object_set_new(o, "error", json_string(pl_errname(s->err)));
            if (s->event == PL_NM_SEV_REQUEST || s->event == PL_NM_SEV_RESPONSE ||
                s->event == PL_NM_SEV_REQUEST_FAILED)
                json_object_set_new(o, "request", json_integer((json_int_t)s->id));
            if (s->body) {
                if (printable(s->body, s->body_len))
                    json_object_set_new(o, "body", json_stringn((const char *)s->body, s->body_len));
                else {
                    char *h = malloc(2 * s->body_len + 1);
                    if (h && pl_hex_encode(h, 2 * s->body_len + 1, s->body, s->body_len) == PL_OK)
                        json_object_set_new(o, "body_hex", json_string(h));
                    free(h);
                }
            }
            break;
        }
        }
        print_json(o);
        return;
    }
    switch (ev->kind) {
    case PL_NM_NODE_TRANSPORT:
        if (c->waku && ev->transport_state == PL_TRANSPORT_CONNECTED)
            printf("waku connected (a relay peer is up)\n");
        else if (c->waku)
            printf("waku: no relay peer (%s); retrying\n", pl_strerror(ev->err));
        else if (ev->transport_state == PL_TRANSPORT_CONNECTED) printf("relay connected\n");
        else printf("relay %s: %s\n", ev->transport_state == PL_TRANSPORT_CLOSED ? "failed" : "disconnected",
                    pl_strerror(ev->err));
        break;
    case PL_NM_NODE_PAIR_CODE:
        printf("pairing code: %s\n", ev->code);
        printf("type it on the node manager: pairlink node-manager pair %s\n", ev->code);
        if (pl_cli_qr_show(&c->qr, c->cmd, ev->code, false) != 0) c->qr_failed = true;
        printf("waiting for the node manager (the code expires in 5 minutes)...\n");
        break;
    case PL_NM_NODE_PAIR_DROPPED:
        printf("HELLO dropped: %s (%s)\n", pl_nm_drop_reason_name(ev->reason), pl_strerror(ev->err));
        break;
    case PL_NM_NODE_PAIR_STORED: printf("stored %s \"%s\"\n", ev->peer_id, ev->name); break;
    case PL_NM_NODE_PAIRED:
        printf("paired with %s \"%s\"; fingerprint %s (both screens must show the same)\n", ev->peer_id,
               ev->name, ev->fingerprint);
        break;
    case PL_NM_NODE_PAIR_FAILED: printf("pairing failed: %s\n", pl_strerror(ev->err)); break;
    case PL_NM_NODE_PUBLISH_FAILED:
        printf("publish refused on %s: %s (relay code %lld)\n", ev->topic, pl_strerror(ev->err),
               (long long)ev->relay_code);
        break;
    case PL_NM_NODE_SESSION: {
        const pl_nm_session_output *s = ev->session;
        switch (s->event) {
        case PL_NM_SEV_ESTABLISHED:
            printf("session established with %s \"%s\"%s\n", ev->peer_id, ev->name,
                   s->replaced ? " (replaces the previous one)" : "");
            break;
        case PL_NM_SEV_REQUEST:
        case PL_NM_SEV_RESPONSE:
            printf("%s %llu from %s \"%s\": ", s->event == PL_NM_SEV_REQUEST ? "message" : "reply",
                   (unsigned long long)s->id, ev->peer_id, ev->name);
            if (printable(s->body, s->body_len)) printf("%.*s\n", (int)s->body_len, (const char *)s->body);
            else printf("(%zu bytes of binary)\n", s->body_len);
            break;
        case PL_NM_SEV_REQUEST_FAILED:
            printf("message %llu to %s failed: %s\n", (unsigned long long)s->id, ev->peer_id,
                   pl_strerror(s->err));
            break;
        case PL_NM_SEV_RETRY:
            printf("session with %s: attempt %u failed (%s); retrying\n", ev->peer_id, s->attempt,
                   pl_strerror(s->err));
            break;
        case PL_NM_SEV_REJECTED:
            printf("session with %s rejected: %s\n", ev->peer_id, pl_strerror(s->err));
            break;
        case PL_NM_SEV_CONNECTING:
        case PL_NM_SEV_KNOCKED:
        case PL_NM_SEV_DROPPED: break; /* routine; --json shows them */
        }
        break;
    }
    }
}

/* ---- lifecycle ---- */

static void on_closed(void *ud) {
    ctx *c = ud;
    c->node = NULL;
    uv_close((uv_handle_t *)&c->sigint, NULL);
    uv_close((uv_handle_t *)&c->sigterm, NULL);
    uv_close((uv_handle_t *)&c->guard, NULL);
}

/* Close once the relay has taken what we published (the app's answer, a
 * response), or after 5 s. */
#define FLUSH_MS 5000

static void close_now(ctx *c) {
    if (c->node) pl_nm_node_close(c->node, FLUSH_MS, on_closed);
}

static void close_from_loop(uv_timer_t *t) { close_now(t->data); }

/* From the loop, not inside the node's callback: the node finishes what it
 * is doing first. */
static void finish(ctx *c, int status) {
    if (c->stopping) return;
    c->stopping = true;
    c->status = status;
    uv_timer_stop(&c->guard);
    uv_timer_start(&c->guard, close_from_loop, 0, 0);
}

static void on_guard(uv_timer_t *t) {
    ctx *c = t->data;
    if (c->mode == M_SEND) {
        fprintf(stderr, "pairlink %s: no answer in time (%s)\n", c->cmd, pl_errname(PL_ERR_TIMEOUT));
        finish(c, 1);
    } else {
        /* Pairing done but no session yet: the pairing itself succeeded. */
        fprintf(stderr, "pairlink %s: paired, but no session yet; `run` keeps trying\n", c->cmd);
        finish(c, 0);
    }
}

static void on_signal(uv_signal_t *s, int sig) {
    (void)sig;
    ctx *c = s->data;
    if (c->mode == M_PAIR && c->node) pl_nm_node_pair_cancel(c->node);
    finish(c, c->mode == M_RUN ? 0 : 130);
}

static void on_event(void *ud, pl_nm_node *n, const pl_nm_node_event *ev) {
    ctx *c = ud;
    print_event(c, ev);
    if (c->stopping) return;
    switch (ev->kind) {
    case PL_NM_NODE_PAIR_CODE:
        if (c->qr_failed) { /* --qr-png could not be written: the user asked for that file */
            pl_nm_node_pair_cancel(n);
            finish(c, 1);
        }
        break;
    case PL_NM_NODE_PAIR_FAILED:
        if (c->mode == M_PAIR) {
            fprintf(stderr, "pairlink %s: pairing failed: %s (%s)\n", c->cmd, pl_strerror(ev->err),
                    pl_errname(ev->err));
            finish(c, 1);
        }
        break;
    case PL_NM_NODE_PAIRED:
        if (c->mode == M_PAIR) {
            memcpy(c->target, ev->peer, PL_NM_KEY_BYTES);
            c->have_target = true;
            if (!c->wait_session) finish(c, 0);
            else uv_timer_start(&c->guard, on_guard, 30000, 0);
        }
        break;
    case PL_NM_NODE_TRANSPORT:
        if (ev->transport_state == PL_TRANSPORT_CLOSED) {
            fprintf(stderr, "pairlink %s: relay: %s\n", c->cmd, pl_strerror(ev->err));
            finish(c, 1);
        }
        break;
    case PL_NM_NODE_SESSION: {
        const pl_nm_session_output *s = ev->session;
        bool ours = c->have_target && !memcmp(ev->peer, c->target, PL_NM_KEY_BYTES);
        if (s->event == PL_NM_SEV_REQUEST) {
            /* Daemons acknowledge every message so the sender knows it arrived. */
            static const char ack[] = "ok";
            pl_nm_node_respond(n, ev->peer, s->id, (const uint8_t *)ack, sizeof ack - 1);
        } else if (s->event == PL_NM_SEV_ESTABLISHED && ours && c->mode == M_PAIR) {
            finish(c, 0);
        } else if (ours && c->mode == M_SEND && s->id == c->req_id &&
                   (s->event == PL_NM_SEV_RESPONSE || s->event == PL_NM_SEV_REQUEST_FAILED)) {
            if (s->event == PL_NM_SEV_REQUEST_FAILED)
                fprintf(stderr, "pairlink %s: %s (%s)\n", c->cmd, pl_strerror(s->err), pl_errname(s->err));
            finish(c, s->event == PL_NM_SEV_RESPONSE ? 0 : 1);
        }
        break;
    }
    default: break;
    }
}

/* Test-only shortening of the code lifetime (docs/node-manager.md). */
static int64_t test_code_ttl(void) {
    const char *v = getenv("PAIRLINK_TEST_CODE_TTL_MS");
    if (!v || !*v) return 0;
    long long t = strtoll(v, NULL, 10);
    return t > 0 && t <= PL_NM_CODE_TTL_MS ? t : 0;
}

static void waku_log(void *ud, const char *line) {
    const ctx *c = ud;
    fprintf(stderr, "pairlink %s: waku: %s\n", c->cmd, line);
}

/* The Waku node's listen addresses, for the peers that will dial it. */
static void print_listening(ctx *c) {
    pl_waku_node *wn = pl_waku_transport_node(pl_nm_node_transport(c->node));
    char addr[1200];
    size_t n = pl_waku_node_listen_addr(wn, 0, NULL, 0);
    for (size_t i = 0; i < n; i++) {
        pl_waku_node_listen_addr(wn, i, addr, sizeof addr);
        if (c->json) {
            json_t *j = json_object();
            json_object_set_new(j, "event", json_string("listening"));
            json_object_set_new(j, "addr", json_string(addr));
            print_json(j);
        } else {
            printf("waku: listening on %s\n", addr);
        }
    }
    fflush(stdout);
}

static int run_node(ctx *c, const char *relay, const char *store, const char *name, const char *code,
                    int64_t send_timeout_ms) {
    /* libwebsockets' notices would drown the event lines. */
    lws_set_log_level(LLL_ERR, NULL);
    uv_loop_t loop;
    uv_loop_init(&loop);
    c->loop = &loop;
    c->status = -1;
    pl_nm_node_opts o = {
        .role = c->role,
        .relay_url = relay,
        .store_path = store,
        .name = name,
        .sessions = c->mode == M_RUN,
        .code_ttl_ms = test_code_ttl(),
        .on_event = on_event,
        .ud = c,
    };
    pl_waku_transport_opts wo;
    pl_p2p_key *fresh = NULL;
    pl_err e = PL_OK;
    if (c->waku) {
        pl_waku_transport_opts_init(&wo);
        pl_cli_waku_node_opts(&c->w, &wo.node);
        wo.listen = c->w.listen;
        wo.n_listen = c->w.nlisten;
        wo.key_file = c->w.key_file; /* NULL: the node's STORE.p2p.key */
        /* `send` runs beside a daemon of the same store, whose node holds
         * STORE.p2p.key: two nodes cannot share a peer id. */
        if (c->mode == M_SEND && !c->w.key_file) {
            e = pl_p2p_key_generate(&fresh, PL_P2P_KEY_ED25519);
            wo.node.key = fresh;
        }
        if (c->verbose) {
            wo.node.on_log = waku_log;
            wo.node.log_ud = c;
        }
        o.waku = &wo;
        o.relay_url = NULL;
    }
    if (e == PL_OK) e = pl_nm_node_new(&c->node, &loop, &o);
    pl_p2p_key_free(fresh);
    if (e != PL_OK) {
        uv_run(&loop, UV_RUN_DEFAULT); /* what a failed start left closing */
        uv_loop_close(&loop);
        return pl_cli_fail(c->cmd, store, e);
    }
    if (c->waku) print_listening(c);
    uv_signal_init(&loop, &c->sigint);
    uv_signal_init(&loop, &c->sigterm);
    c->sigint.data = c->sigterm.data = c;
    uv_signal_start(&c->sigint, on_signal, SIGINT);
    uv_signal_start(&c->sigterm, on_signal, SIGTERM);
    uv_timer_init(&loop, &c->guard);
    c->guard.data = c;
    if (c->mode == M_PAIR) {
        e = pl_nm_node_pair(c->node, code, NULL);
        if (e != PL_OK) {
            c->status = pl_cli_fail(c->cmd, code ? "pairing code" : "pairing", e);
            c->stopping = true;
            close_now(c);
        }
    } else if (c->mode == M_SEND) {
        e = pl_nm_node_connect(c->node, c->target);
        if (e == PL_OK)
            e = pl_nm_node_request(c->node, c->target, (const uint8_t *)c->message, strlen(c->message),
                                   &c->req_id);
        if (e != PL_OK) {
            c->status = pl_cli_fail(c->cmd, "send", e);
            c->stopping = true;
            close_now(c);
        } else {
            uv_timer_start(&c->guard, on_guard, (uint64_t)send_timeout_ms, 0);
        }
    } else if (!c->json) {
        uint8_t pub[PL_NM_KEY_BYTES];
        char id[PL_NM_PEER_ID_SIZE];
        pl_nm_node_identity(c->node, pub);
        pl_nm_peer_id(id, pub);
        printf("%s %s running; %zu counterparties\n", role_name(c->role), id, pl_nm_node_restored(c->node));
    } else {
        uint8_t pub[PL_NM_KEY_BYTES];
        char hex[65];
        pl_nm_node_identity(c->node, pub);
        hex32(hex, pub);
        json_t *j = json_object();
        json_object_set_new(j, "event", json_string("running"));
        json_object_set_new(j, "role", json_string(role_name(c->role)));
        json_object_set_new(j, "identity", json_string(hex));
        json_object_set_new(j, "counterparties", json_integer((json_int_t)pl_nm_node_restored(c->node)));
        print_json(j);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return c->status < 0 ? 0 : c->status;
}

/* ---- app / node-manager ---- */

static const char pair_usage_app[] =
    "usage: pairlink app pair [--relay URL | --waku --peer MULTIADDR...] [--store PATH]\n"
    "                         [--name NAME] [--json] [--qr | --no-qr] [--qr-png FILE]\n"
    "                         [--no-session] [Waku options]\n"
    "\n"
    "Show a pairing code (and its QR code) and wait until a node manager pairs with it\n"
    "(`pairlink node-manager pair CODE`), or until it expires after 5 minutes. Both\n"
    "sides then print the same fingerprint; compare them. The node manager is stored,\n"
    "then a session with it is awaited (up to 30 s) unless --no-session.\n"
    "The QR code is drawn when stdout is a terminal (not with --json); --qr draws\n"
    "it anyway, --no-qr never. --qr-png FILE also writes it as a PNG image (mode\n"
    "0600).\n";
static const char pair_usage_nm[] =
    "usage: pairlink node-manager pair CODE [--relay URL | --waku --peer MULTIADDR...]\n"
    "                                  [--store PATH] [--name NAME] [--json] [--no-session]\n"
    "                                  [Waku options]\n"
    "\n"
    "Pair with the app showing CODE (any case; dashes and spaces optional). A mistyped\n"
    "code is refused at once; a code nobody shows times out after 5 minutes. The app\n"
    "is stored, then a Noise session with it is opened (waits up to 30 s) unless\n"
    "--no-session.\n";
static const char run_usage[] =
    "usage: pairlink %s run [--relay URL | --waku --peer MULTIADDR...] [--store PATH]\n"
    "                       [--name NAME] [--json] [Waku options]\n"
    "\n"
    "Daemon: opens a Noise session with every stored counterparty, keeps them up\n"
    "(re-establishing after either side restarts), prints session events and the\n"
    "messages received (each is acknowledged with \"ok\"). SIGINT/SIGTERM stop it.\n";
static const char common_opts[] =
    "\n"
    "options:\n"
    "  --relay URL    relay (default $PAIRLINK_RELAY or " DEFAULT_RELAY ")\n"
    "  --store PATH   SQLite store (default $PAIRLINK_STORE or pairlink-<role>.db);\n"
    "                 the identity key is PATH.key (mode 0600)\n"
    "  --name NAME    display name sent to the other side (pair)\n"
    "  --json         one JSON object per line per event\n"
    "  --help         this text\n";

/* Shared with `send`. */
static const char waku_opts_help[] =
    "\n"
    "Waku (instead of the relay; docs/node-manager.md, \"Over Waku\"):\n"
    "  --waku              pair and talk over a Waku relay network\n"
    "  --peer MULTIADDR    a bootstrap peer, /ip4|ip6|dns4|dns6|dns/HOST/tcp/PORT[/p2p/ID]\n"
    "                      (repeatable); dialled at start, redialled with backoff\n"
    "  --listen MULTIADDR  also accept peers there, e.g. /ip4/0.0.0.0/tcp/60000\n"
    "                      (repeatable; the address is printed)\n"
    "  --cluster N         Waku cluster id (default 16: Status)\n"
    "  --shard N           static shard of the content topics (default 64; repeatable)\n"
    "  --autosharding N    map content topics over N shards instead\n"
    "  --muxer M           yamux, mplex or both (default both: yamux preferred)\n"
    "  --key-file F        libp2p identity (default PATH.p2p.key beside the store, 0600,\n"
    "                      created on first use; send: a fresh one each run)\n"
    "  --verbose           log the Waku node's peers and mesh changes on stderr\n";

/* The Waku options of getopt_long, shared by the role commands and send. */
#define WAKU_LONGOPTS(base)                                                                        \
    {"waku", no_argument, NULL, (base)}, {"peer", required_argument, NULL, (base) + 1},           \
        {"listen", required_argument, NULL, (base) + 1},                                           \
        {"cluster", required_argument, NULL, (base) + 1},                                          \
        {"shard", required_argument, NULL, (base) + 1},                                            \
        {"autosharding", required_argument, NULL, (base) + 1},                                     \
        {"muxer", required_argument, NULL, (base) + 1},                                            \
        {"key-file", required_argument, NULL, (base) + 1}, {"verbose", no_argument, NULL, (base) + 2}

/* After parsing: the Waku options make sense together. 0 or the usage status. */
static int waku_check(ctx *c, const char *cmd, bool relay_given) {
    if (!c->waku) {
        if (c->w.given || c->verbose)
            return pl_cli_usage_error(cmd, "--peer, --listen and the other Waku options need --waku");
        return 0;
    }
    if (relay_given) return pl_cli_usage_error(cmd, "--relay and --waku exclude each other");
    if (!c->w.npeers && !c->w.nlisten)
        return pl_cli_usage_error(cmd, "--waku needs a --peer MULTIADDR to join (or a --listen)");
    return pl_cli_waku_check(&c->w, cmd);
}

static int role_cmd(int argc, char **argv, pl_nm_role role) {
    const char *top = role == PL_NM_ROLE_APP ? "app" : "node-manager";
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        printf("usage: pairlink %s pair|run [options]\n\n"
               "  pair   pair with %s\n  run    keep sessions with every paired counterparty\n\n"
               "'pairlink %s <command> --help' describes a command.\n",
               top, role == PL_NM_ROLE_APP ? "a node manager (shows a code)" : "an app (takes its code)", top);
        return argc < 2 ? 2 : 0;
    }
    char cmd[64];
    snprintf(cmd, sizeof cmd, "%s %s", top, argv[1]);
    mode m = !strcmp(argv[1], "pair") ? M_PAIR : !strcmp(argv[1], "run") ? M_RUN : 0;
    if (!m) return pl_cli_usage_error(top, "unknown command '%s'", argv[1]);
    argc--, argv++;
    if (want_help(argc, argv)) {
        if (m == M_PAIR) fputs(role == PL_NM_ROLE_APP ? pair_usage_app : pair_usage_nm, stdout);
        else printf(run_usage, top);
        fputs(common_opts, stdout);
        fputs(waku_opts_help, stdout);
        return 0;
    }
    enum { O_RELAY = 1, O_STORE, O_NAME, O_JSON, O_NOQR, O_NOSESS, O_QR, O_QR_PNG, O_WAKU };
    static const struct option longopts[] = {
        {"relay", required_argument, NULL, O_RELAY}, {"store", required_argument, NULL, O_STORE},
        {"name", required_argument, NULL, O_NAME},   {"json", no_argument, NULL, O_JSON},
        {"no-qr", no_argument, NULL, O_NOQR},        {"no-session", no_argument, NULL, O_NOSESS},
        {"qr", no_argument, NULL, O_QR},             {"qr-png", required_argument, NULL, O_QR_PNG},
        WAKU_LONGOPTS(O_WAKU),                       {NULL, 0, NULL, 0}};
    ctx c = {.cmd = cmd, .mode = m, .role = role, .wait_session = true};
    pl_cli_waku_init(&c.w);
    const char *relay = default_relay(), *store = default_store(role), *name = NULL;
    bool relay_given = false;
    optind = 1;
    opterr = 0;
    int opt, li = -1;
    while ((opt = getopt_long(argc, argv, "", longopts, &li)) != -1) {
        const char *oname = li >= 0 ? longopts[li].name : "?";
        li = -1;
        switch (opt) {
        case O_WAKU: c.waku = true; break;
        case O_WAKU + 1: {
            int r = pl_cli_waku_option(&c.w, cmd, oname, optarg);
            if (r < 0) return -r;
            break;
        }
        case O_WAKU + 2: c.verbose = true; break;
        case O_RELAY: relay = optarg, relay_given = true; break;
        case O_STORE: store = optarg; break;
        case O_NAME: name = optarg; break;
        case O_JSON: c.json = true; break;
        case O_NOQR: c.qr.mode = PL_CLI_QR_OFF; break;
        case O_QR: c.qr.mode = PL_CLI_QR_ON; break;
        case O_QR_PNG: c.qr.png_path = optarg; break;
        case O_NOSESS: c.wait_session = false; break;
        default: return pl_cli_usage_error(cmd, "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (!name) name = role == PL_NM_ROLE_APP ? "pairlink app" : "pairlink node manager";
    if (strlen(name) > PL_NM_NAME_MAX) return pl_cli_usage_error(cmd, "--name is longer than 64 bytes");
    const char *code = NULL;
    if (m == M_PAIR && role == PL_NM_ROLE_NODE_MANAGER) {
        if (optind + 1 != argc) return pl_cli_usage_error(cmd, "expected one argument: CODE");
        code = argv[optind];
    } else if (optind != argc) {
        return pl_cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    }
    if ((c.qr.mode == PL_CLI_QR_ON || c.qr.png_path) && !(m == M_PAIR && role == PL_NM_ROLE_APP))
        return pl_cli_usage_error(cmd, "--qr and --qr-png are options of 'app pair'");
    int bad = waku_check(&c, cmd, relay_given);
    if (bad) return bad;
    if (pl_cli_qr_open(&c.qr, cmd) != 0) return 1;
    int rc = run_node(&c, relay, store, name, code, 0);
    pl_cli_qr_close(&c.qr);
    return rc;
}

int pl_cli_app(int argc, char **argv) { return role_cmd(argc, argv, PL_NM_ROLE_APP); }
int pl_cli_node_manager(int argc, char **argv) { return role_cmd(argc, argv, PL_NM_ROLE_NODE_MANAGER); }

/* ---- peers ---- */

static const char peers_usage[] =
    "usage: pairlink peers [list] [--store PATH] [--json]\n"
    "       pairlink peers remove ID [--store PATH]\n"
    "\n"
    "List the counterparties paired with (id = the first 16 hex digits of the key),\n"
    "or forget one (ID: a hex prefix of at least 4 digits, or the exact name).\n"
    "Opens the store only (no network); run it while no daemon uses the store, or\n"
    "restart the daemon afterwards.\n"
    "\n"
    "options:\n"
    "  --store PATH   SQLite store (default $PAIRLINK_STORE, else required)\n"
    "  --json         one JSON object per counterparty\n"
    "  --help         this text\n";

static void fmt_time(char out[32], int64_t ms) {
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static pl_err open_store(const char *path, pl_store **s) {
    *s = NULL;
    /* Never create a store here: a typo in the path should not look like an
     * empty list. */
    FILE *f = fopen(path, "rb");
    if (!f) return PL_ERR_NOT_FOUND;
    fclose(f);
    pl_err e = pl_store_open(s, path);
    if (e == PL_OK) e = pl_nm_store_init(*s);
    if (e != PL_OK) {
        pl_store_close(*s);
        *s = NULL;
    }
    return e;
}

int pl_cli_peers(int argc, char **argv) {
    static const char cmd[] = "peers";
    if (want_help(argc, argv)) {
        fputs(peers_usage, stdout);
        return 0;
    }
    enum { O_STORE = 1, O_JSON };
    static const struct option longopts[] = {
        {"store", required_argument, NULL, O_STORE}, {"json", no_argument, NULL, O_JSON}, {NULL, 0, NULL, 0}};
    const char *store = getenv("PAIRLINK_STORE");
    bool json = false;
    optind = 1;
    opterr = 0;
    int opt;
    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (opt) {
        case O_STORE: store = optarg; break;
        case O_JSON: json = true; break;
        default: return pl_cli_usage_error(cmd, "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (!store || !*store) return pl_cli_usage_error(cmd, "--store is required");
    const char *sub = optind < argc ? argv[optind] : "list";
    bool rm = !strcmp(sub, "remove");
    if (!rm && strcmp(sub, "list")) return pl_cli_usage_error(cmd, "unknown command '%s'", sub);
    if (rm ? optind + 2 != argc : optind + 1 < argc)
        return pl_cli_usage_error(cmd, rm ? "remove takes one ID" : "list takes no argument");
    pl_store *s = NULL;
    pl_err e = open_store(store, &s);
    if (e != PL_OK) return pl_cli_fail(cmd, store, e);
    int status = 0;
    if (rm) {
        pl_nm_counterparty cp;
        e = pl_nm_store_find(s, argv[optind + 1], &cp);
        if (e == PL_OK) e = pl_nm_store_remove(s, cp.pub);
        if (e != PL_OK) {
            status = pl_cli_fail(cmd, e == PL_ERR_EXISTS ? "ID matches several counterparties" : argv[optind + 1], e);
        } else {
            char id[PL_NM_PEER_ID_SIZE];
            pl_nm_peer_id(id, cp.pub);
            printf("removed %s \"%s\"\n", id, cp.name);
        }
    } else {
        pl_nm_counterparty *all = NULL;
        size_t n = 0;
        e = pl_nm_store_list(s, &all, &n);
        if (e != PL_OK) status = pl_cli_fail(cmd, "list", e);
        for (size_t i = 0; i < n; i++) {
            char id[PL_NM_PEER_ID_SIZE], hex[65], first[32], last[32];
            pl_nm_peer_id(id, all[i].pub);
            hex32(hex, all[i].pub);
            fmt_time(first, all[i].first_seen_ms);
            fmt_time(last, all[i].last_seen_ms);
            if (json) {
                json_t *o = json_object();
                json_object_set_new(o, "id", json_string(id));
                json_object_set_new(o, "peer", json_string(hex));
                json_object_set_new(o, "role", json_string(role_name(all[i].role)));
                json_object_set_new(o, "name", json_string(all[i].name));
                json_object_set_new(o, "fingerprint", json_string(all[i].fingerprint));
                json_object_set_new(o, "first_seen_ms", json_integer(all[i].first_seen_ms));
                json_object_set_new(o, "last_seen_ms", json_integer(all[i].last_seen_ms));
                json_object_set_new(o, "confirmed", json_boolean(all[i].confirmed));
                print_json(o);
            } else {
                printf("%s  %-12s  %-9s  %-20s  first %s  last %s%s\n", id, role_name(all[i].role),
                       all[i].fingerprint[0] ? all[i].fingerprint : "-", all[i].name, first, last,
                       all[i].confirmed ? "" : "  (no session yet)");
            }
        }
        if (!json && n == 0 && e == PL_OK) printf("no counterparties\n");
        free(all);
    }
    pl_store_close(s);
    return status;
}

/* ---- send ---- */

static const char send_usage[] =
    "usage: pairlink send PEER MESSAGE [--relay URL | --waku --peer MULTIADDR...]\n"
    "                     [--store PATH] [--timeout SEC] [--json] [Waku options]\n"
    "\n"
    "Open a Noise session with the stored counterparty PEER (a hex prefix of its key,\n"
    "at least 4 digits, or its exact name), send MESSAGE as a request and print the\n"
    "reply. Exit status 0 when the reply came, 1 on time-out or error.\n"
    "The peer's daemon (`run`) answers \"ok\". Running `send` replaces the session the\n"
    "peer had with this identity; a `run` daemon of this same store recovers by\n"
    "re-handshaking when one of its requests goes unanswered.\n"
    "\n"
    "options:\n"
    "  --relay URL    relay (default $PAIRLINK_RELAY or " DEFAULT_RELAY ")\n"
    "  --store PATH   SQLite store (default $PAIRLINK_STORE, else required)\n"
    "  --timeout SEC  give up after SEC seconds (default 30)\n"
    "  --json         events as JSON lines\n"
    "  --help         this text\n";

int pl_cli_send(int argc, char **argv) {
    static const char cmd[] = "send";
    if (want_help(argc, argv)) {
        fputs(send_usage, stdout);
        fputs(waku_opts_help, stdout);
        return 0;
    }
    enum { O_RELAY = 1, O_STORE, O_TIMEOUT, O_JSON, O_WAKU };
    static const struct option longopts[] = {{"relay", required_argument, NULL, O_RELAY},
                                             {"store", required_argument, NULL, O_STORE},
                                             {"timeout", required_argument, NULL, O_TIMEOUT},
                                             {"json", no_argument, NULL, O_JSON},
                                             WAKU_LONGOPTS(O_WAKU),
                                             {NULL, 0, NULL, 0}};
    const char *relay = default_relay(), *store = getenv("PAIRLINK_STORE");
    long timeout_s = 30;
    ctx c = {.cmd = cmd, .mode = M_SEND};
    pl_cli_waku_init(&c.w);
    bool relay_given = false;
    optind = 1;
    opterr = 0;
    int opt, li = -1;
    while ((opt = getopt_long(argc, argv, "", longopts, &li)) != -1) {
        const char *oname = li >= 0 ? longopts[li].name : "?";
        li = -1;
        switch (opt) {
        case O_WAKU: c.waku = true; break;
        case O_WAKU + 1: {
            int r = pl_cli_waku_option(&c.w, cmd, oname, optarg);
            if (r < 0) return -r;
            break;
        }
        case O_WAKU + 2: c.verbose = true; break;
        case O_RELAY: relay = optarg, relay_given = true; break;
        case O_STORE: store = optarg; break;
        case O_TIMEOUT: {
            char *end;
            errno = 0;
            timeout_s = strtol(optarg, &end, 10);
            if (errno || *end || timeout_s < 1 || timeout_s > 3600)
                return pl_cli_usage_error(cmd, "--timeout takes 1..3600 seconds");
            break;
        }
        case O_JSON: c.json = true; break;
        default: return pl_cli_usage_error(cmd, "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (!store || !*store) return pl_cli_usage_error(cmd, "--store is required");
    if (optind + 2 != argc) return pl_cli_usage_error(cmd, "expected PEER and MESSAGE");
    int bad = waku_check(&c, cmd, relay_given);
    if (bad) return bad;
    c.message = argv[optind + 1];
    if (strlen(c.message) > PL_NM_SESSION_BODY_MAX)
        return pl_cli_usage_error(cmd, "MESSAGE is longer than %u bytes", PL_NM_SESSION_BODY_MAX);
    pl_store *s = NULL;
    pl_err e = open_store(store, &s);
    pl_nm_counterparty cp;
    if (e == PL_OK) e = pl_nm_store_find(s, argv[optind], &cp);
    pl_store_close(s);
    if (e != PL_OK) return pl_cli_fail(cmd, argv[optind], e);
    memcpy(c.target, cp.pub, PL_NM_KEY_BYTES);
    c.have_target = true;
    c.role = cp.role == PL_NM_ROLE_APP ? PL_NM_ROLE_NODE_MANAGER : PL_NM_ROLE_APP;
    /* A request is given the whole --timeout, handshake included. */
    return run_node(&c, relay, store, NULL, NULL, timeout_s * 1000);
}
