/* SPDX-License-Identifier: Apache-2.0 */
/* pairlink wc create | pair | run | list | ping | delete
 * The WalletConnect pairing client from the command line: every command
 * shares one runner (a loop with the client, signals and an optional
 * time limit) and differs only in what it does once started and when it is
 * done. */
#include "cli/cli.h"

#include "pairlink/codec.h"
#include "pairlink/driver.h"
#include "pairlink/hash.h"
#include "pairlink/loopback.h"
#include "pairlink/relay_client.h"
#include "pairlink/store.h"
#include "pairlink/uri.h"
#include "pairlink/wc_client.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_ACCEPT 16

typedef enum { CMD_CREATE, CMD_PAIR, CMD_RUN, CMD_PING, CMD_DELETE } wc_cmd;

typedef struct runner {
    wc_cmd cmd;
    const char *name;
    pl_cli_out out;
    pl_cli_qr qr;
    const char *relay;
    const char *store;
    const char *arg;        /* URI or topic */
    const char *methods;    /* create: methods announced in the URI */
    const char *accept[MAX_ACCEPT];
    int n_accept;
    long timeout_s;         /* 0: none */
    bool exit_when_paired;  /* create: stop once activated; pair: once paired */
    bool verbose;

    uv_loop_t loop;
    pl_wc_client *client;
    pl_cli_signals sig;
    pl_cli_lock lock;
    uv_timer_t deadline;
    uv_timer_t poll; /* delete: waits until the relay took the message */
    char topic[PL_TOPIC_HEX_SIZE];
    pl_rpc_id ping_id;
    bool peer_not_joined; /* ping: the pairing is the proposer's and inactive */
    bool stopping;
    int status;
} runner;

/* Serving (until stopped) rather than waiting for an outcome: SIGTERM is
 * then a normal stop (docs/cli.md). */
static bool serving(const runner *r) {
    return (r->cmd == CMD_RUN || r->cmd == CMD_PAIR || r->cmd == CMD_CREATE) &&
           !r->exit_when_paired;
}

static json_t *id_json(const pl_rpc_id *id) {
    if (id->kind == PL_RPC_ID_NUM) return json_integer(id->num);
    if (id->kind == PL_RPC_ID_STR) return json_string(id->str);
    return json_null();
}

static void emit(runner *r, json_t *o) {
    pl_cli_emit(&r->out, o);
}

/* "code" and "message" of a failure: the one form of docs/cli.md. */
static void set_failure(json_t *o, pl_err err, const char *message) {
    json_object_set_new(o, "code", json_string(pl_errname(err)));
    json_object_set_new(o, "message",
                        json_string(message && *message ? message : pl_strerror(err)));
}

static void stop(runner *r, int status);

static void on_event(void *ud, pl_wc_client *c, const pl_wc_event *ev) {
    (void)c;
    runner *r = ud;
    json_t *o = json_object();
    json_object_set_new(o, "event", json_string(pl_wc_event_name(ev->kind)));
    json_object_set_new(o, "topic", json_string(ev->topic));
    if (ev->kind == PL_WC_EV_CREATED || ev->kind == PL_WC_EV_ACTIVATED || ev->kind == PL_WC_EV_RENEWED)
        json_object_set_new(o, "expiry_ms", json_integer(ev->expiry * 1000));
    if (ev->kind == PL_WC_EV_DELETED) json_object_set_new(o, "by_peer", json_boolean(ev->by_peer));
    if (ev->method) json_object_set_new(o, "method", json_string(ev->method));
    if (ev->kind == PL_WC_EV_PONG || ev->kind == PL_WC_EV_UNSUPPORTED ||
        ev->kind == PL_WC_EV_REQUEST_TIMEOUT || ev->kind == PL_WC_EV_PING)
        json_object_set_new(o, "id", id_json(&ev->id));
    if (ev->kind == PL_WC_EV_BAD_MESSAGE || ev->kind == PL_WC_EV_PUBLISH_FAILED)
        set_failure(o, ev->err, NULL);
    if (ev->kind == PL_WC_EV_PUBLISH_FAILED && ev->relay_code)
        json_object_set_new(o, "relay_code", json_integer(ev->relay_code));
    emit(r, o);

    bool ours = !strcmp(ev->topic, r->topic);
    if (r->cmd == CMD_PING && ours && ev->kind == PL_WC_EV_PONG && pl_rpc_id_equal(&ev->id, &r->ping_id))
        stop(r, ev->err == PL_OK ? 0 : 1);
    else if (r->cmd == CMD_PING && ours &&
             (ev->kind == PL_WC_EV_REQUEST_TIMEOUT || ev->kind == PL_WC_EV_PUBLISH_FAILED))
        stop(r, 1);
    else if ((r->cmd == CMD_CREATE || r->cmd == CMD_PAIR) && ours &&
             (ev->kind == PL_WC_EV_EXPIRED || ev->kind == PL_WC_EV_DELETED))
        stop(r, ev->kind == PL_WC_EV_EXPIRED ? 1 : 0);
    else if (r->cmd == CMD_CREATE && ours && r->exit_when_paired && ev->kind == PL_WC_EV_ACTIVATED)
        stop(r, 0);
}

static void on_request(void *ud, pl_wc_engine *e, const char *topic, const pl_rpc_msg *req) {
    (void)e;
    runner *r = ud;
    json_t *o = json_object();
    json_object_set_new(o, "event", json_string("request"));
    json_object_set_new(o, "topic", json_string(topic));
    json_object_set_new(o, "method", json_string(req->method));
    json_object_set_new(o, "id", id_json(&req->id));
    json_t *params = req->params ? json_loads(req->params, JSON_DECODE_ANY, NULL) : NULL;
    json_object_set_new(o, "params", params ? params : json_null());
    emit(r, o);
}

/* Why the relay is away, in words: the relay client's own account, else
 * the error's. */
static const char *relay_reason(runner *r, pl_err err) {
    pl_transport *tp = r->client ? pl_wc_client_transport(r->client) : NULL;
    const char *why = tp && pl_relay_client_is(tp) ? pl_relay_client_reason(tp) : "";
    return *why ? why : pl_strerror(err);
}

static void on_transport_state(void *ud, pl_wc_client *c, pl_transport_state state, pl_err err) {
    (void)c;
    runner *r = ud;
    if (state == PL_TRANSPORT_CLOSED) {
        /* given up for good (the relay refused our authentication): the
         * one line that says so, then exit 1 */
        pl_cli_error(&r->out, err, "relay %s: %s", r->relay, relay_reason(r, err));
        stop(r, 1);
        return;
    }
    json_t *o = json_object();
    json_object_set_new(
        o, "event",
        json_string(state == PL_TRANSPORT_CONNECTED ? "relay_connected" : "relay_disconnected"));
    json_object_set_new(o, "relay", json_string(r->relay));
    if (err != PL_OK) set_failure(o, err, relay_reason(r, err));
    emit(r, o);
}

static void close_handle(uv_handle_t *h) {
    if (!uv_is_closing(h)) uv_close(h, NULL);
}

static void on_closed(void *ud) {
    runner *r = ud;
    r->client = NULL;
    pl_cli_signals_close(&r->sig);
    pl_cli_store_unlock(&r->lock);
}

/* Before exiting, let the relay take what we already answered (an answer
 * to a peer's request that arrived just before we stop): the handled id is
 * remembered in the store, so an answer lost here would never be sent. At
 * most DRAIN_MS, and not at all on a signal or when the relay is away. */
#define DRAIN_MS 3000

static void stop(runner *r, int status) {
    if (r->stopping) return;
    r->stopping = true;
    r->status = status;
    close_handle((uv_handle_t *)&r->deadline);
    close_handle((uv_handle_t *)&r->poll);
    if (!r->client) {
        on_closed(r);
        return;
    }
    pl_transport *tp = pl_wc_client_transport(r->client);
    bool connected = pl_transport_get_state(tp, NULL) == PL_TRANSPORT_CONNECTED;
    pl_wc_client_close(r->client, connected && !r->sig.signum ? DRAIN_MS : 0, on_closed);
}

static void on_stop_signal(void *data, int signum) {
    runner *r = data;
    if (r->stopping) return;
    pl_cli_signal_report(&r->out, signum);
    stop(r, pl_cli_signal_status(signum, serving(r)));
}

static bool relay_up(runner *r) {
    return r->client && pl_transport_get_state(pl_wc_client_transport(r->client), NULL) ==
                            PL_TRANSPORT_CONNECTED;
}

static void on_deadline(uv_timer_t *t) {
    runner *r = t->data;
    /* Serving until the time limit is success; waiting for something
     * (an answer, --until-active, --exit) that did not come is not. */
    if (serving(r)) {
        stop(r, 0);
        return;
    }
    pl_err why = PL_OK;
    pl_transport_get_state(pl_wc_client_transport(r->client), &why);
    if (r->cmd == CMD_CREATE)
        pl_cli_error(&r->out, PL_ERR_TIMEOUT,
                     "not activated within %ld s: the peer did not pair with the URI%s",
                     r->timeout_s, relay_up(r) ? "" : " (and the relay is not reached)");
    else if (!relay_up(r))
        pl_cli_error(&r->out, PL_ERR_TIMEOUT, "relay %s not reached within %ld s: %s", r->relay,
                     r->timeout_s, relay_reason(r, why ? why : PL_ERR_DISCONNECTED));
    else if (r->cmd == CMD_PING && r->peer_not_joined)
        pl_cli_error(&r->out, PL_ERR_TIMEOUT,
                     "no answer within %ld s: the peer has not joined this pairing (its URI was "
                     "not used yet, or the peer is offline)",
                     r->timeout_s);
    else if (r->cmd == CMD_PING)
        pl_cli_error(&r->out, PL_ERR_TIMEOUT,
                     "no answer within %ld s: the peer is offline, or it deleted the pairing",
                     r->timeout_s);
    else
        pl_cli_error(&r->out, PL_ERR_TIMEOUT, "the relay did not take the message within %ld s",
                     r->timeout_s);
    stop(r, 1);
}

/* delete: done once the relay acknowledged the wc_pairingDelete.
 * pair --exit: done once connected (the subscribe goes out on open); before
 * that nothing is pending either, and exiting 0 then would report a pairing
 * the relay never heard of, even with an unreachable relay. */
static void on_poll(uv_timer_t *t) {
    runner *r = t->data;
    if (!r->client || r->stopping) return;
    pl_transport *tp = pl_wc_client_transport(r->client);
    if (r->cmd == CMD_PAIR && pl_transport_get_state(tp, NULL) != PL_TRANSPORT_CONNECTED) return;
    if (pl_transport_pending(tp) == 0) stop(r, 0);
}

/* --accept registers the Sign protocol's methods exactly as the JS SDK. */
static const pl_wc_method *method_settings(const char *name, pl_wc_method *tmp) {
    const pl_wc_method *m = pl_wc_sign_method(name);
    if (m) return m;
    /* Unknown protocols: a day's TTL, tag 0 like unregistered replies. */
    *tmp = (pl_wc_method){name, 0, 86400, false, 0, 86400};
    return tmp;
}

/* pair: the URI's pairing is already in the store (an earlier `wc pair`
 * that was interrupted, or the relay was not reached): serve it again
 * rather than fail. A proposer's own pairing is not ours to pair with. */
static int resume_pair(runner *r, pl_wc_engine *e, int64_t now) {
    pl_uri u;
    pl_err err = pl_uri_parse(&u, r->arg, strlen(r->arg), now / 1000);
    if (err != PL_OK)
        return pl_cli_error(&r->out, err, "cannot pair with this URI: %s", pl_strerror(err));
    snprintf(r->topic, sizeof r->topic, "%s", u.topic);
    pl_uri_clear(&u);
    pl_wc_pairing p;
    err = pl_wc_pairing_get(e, r->topic, &p);
    bool proposer = p.proposer;
    int64_t expiry = p.expiry;
    pl_wipe(&p, sizeof p);
    if (err != PL_OK)
        return pl_cli_error(&r->out, err, "pairing %s: %s", r->topic, pl_strerror(err));
    if (proposer)
        return pl_cli_error(
            &r->out, PL_ERR_PAIRING_EXISTS,
            "store %s created this pairing (topic %s): its URI is for the other side; "
            "pair from another --store",
            r->store, r->topic);
    json_t *o = json_object();
    json_object_set_new(o, "event", json_string("resumed"));
    json_object_set_new(o, "topic", json_string(r->topic));
    json_object_set_new(o, "expiry_ms", json_integer(expiry * 1000));
    emit(r, o);
    return 0;
}

/* ping, delete: the topic must be a pairing of this store. */
static int find_pairing(runner *r, pl_wc_engine *e) {
    pl_wc_pairing p;
    pl_err err = pl_wc_pairing_get(e, r->topic, &p);
    bool waiting = err == PL_OK && p.proposer && !p.active;
    int64_t expiry = p.expiry;
    pl_wipe(&p, sizeof p);
    if (err != PL_OK)
        return pl_cli_error(&r->out, err, "no pairing %s in store %s (see 'pairlink wc list')",
                            r->topic, r->store);
    if (r->cmd == CMD_PING && waiting) {
        /* no sign of the peer yet (this side cannot know whether its URI
         * was used until the peer answers): say so now, not 35 s later */
        r->peer_not_joined = true;
        int64_t left = expiry - pl_wc_client_now(r->client) / 1000;
        json_t *o = json_object();
        json_object_set_new(o, "event", json_string("waiting"));
        json_object_set_new(o, "topic", json_string(r->topic));
        json_object_set_new(o, "expires_in_ms", json_integer(left > 0 ? left * 1000 : 0));
        json_object_set_new(
            o, "message",
            json_string("no message from the peer on this pairing yet (its first answer "
                        "activates it): waiting for the peer"));
        emit(r, o);
    }
    return 0;
}

/* What each command does once the client is up. */
static int start(runner *r) {
    pl_wc_engine *e = pl_wc_client_engine(r->client);
    int64_t now = pl_wc_client_now(r->client);
    for (int i = 0; i < r->n_accept; i++) {
        pl_wc_method tmp;
        pl_err err = pl_wc_register(e, method_settings(r->accept[i], &tmp), on_request, NULL, r);
        if (err != PL_OK)
            return pl_cli_error(&r->out, err, "--accept %s: %s", r->accept[i], pl_strerror(err));
    }
    pl_err err = PL_OK;
    switch (r->cmd) {
    case CMD_CREATE: {
        const char *list[PL_URI_MAX_METHODS];
        size_t n = 0;
        char *copy = r->methods ? strdup(r->methods) : NULL;
        for (char *save = NULL, *tok = copy ? strtok_r(copy, ",", &save) : NULL;
             tok && n < PL_URI_MAX_METHODS; tok = strtok_r(NULL, ",", &save))
            list[n++] = tok;
        char *uri = NULL;
        err = pl_wc_create(e, list, n, now, &uri, r->topic);
        free(copy);
        if (err != PL_OK)
            return pl_cli_error(&r->out, err, "creating the pairing: %s", pl_strerror(err));
        /* The PNG is complete before the line that announces the URI. */
        int rc = pl_cli_qr_show(&r->qr, r->name, uri, r->out.json);
        if (r->out.json)
            emit(r, json_pack("{s:s,s:s,s:s}", "event", "uri", "topic", r->topic, "uri", uri));
        else
            printf("%s\n", uri);
        pl_free_secret(uri, strlen(uri));
        if (rc != 0) return rc;
        break;
    }
    case CMD_PAIR:
        err = pl_wc_pair(e, r->arg, strlen(r->arg), now, r->topic);
        if (err == PL_ERR_PAIRING_EXISTS) {
            int rc = resume_pair(r, e, now);
            if (rc != 0) return rc;
        } else if (err != PL_OK) {
            return pl_cli_error(&r->out, err, "cannot pair with this URI: %s", pl_strerror(err));
        }
        if (r->exit_when_paired) {
            /* stay until the relay has the subscription, then stop */
            uv_timer_start(&r->poll, on_poll, 200, 200);
        }
        break;
    case CMD_RUN:
        emit(r, json_pack("{s:s,s:I}", "event", "restored", "pairings",
                          (json_int_t)pl_wc_client_restored(r->client)));
        break;
    case CMD_PING: {
        snprintf(r->topic, sizeof r->topic, "%s", r->arg);
        int rc = find_pairing(r, e);
        if (rc != 0) return rc;
        err = pl_wc_ping(e, r->topic, now, &r->ping_id);
        if (err != PL_OK) return pl_cli_error(&r->out, err, "ping: %s", pl_strerror(err));
        break;
    }
    case CMD_DELETE: {
        snprintf(r->topic, sizeof r->topic, "%s", r->arg);
        int rc = find_pairing(r, e);
        if (rc != 0) return rc;
        err = pl_wc_delete(e, r->topic, now);
        if (err != PL_OK) return pl_cli_error(&r->out, err, "delete: %s", pl_strerror(err));
        uv_timer_start(&r->poll, on_poll, 50, 50);
        break;
    }
    }
    return 0;
}

static void usage(const runner *r) {
    static const char *const text[] = {
        [CMD_CREATE] =
            "usage: pairlink wc create [--methods a,b] [--accept METHOD]... [--until-active]\n"
            "                          [--timeout S] [--qr | --no-qr] [--qr-png FILE]\n"
            "                          [common options]\n\n"
            "Create a pairing (inactive, expires after 5 minutes unless the peer answers),\n"
            "print its URI and QR code, and serve it until it is deleted or expires.\n"
            "The QR code is drawn when stdout is a terminal; --qr draws it anyway,\n"
            "--no-qr never. --qr-png FILE also writes it as a PNG image (mode 0600:\n"
            "the URI holds the pairing key).\n",
        [CMD_PAIR] =
            "usage: pairlink wc pair URI [--accept METHOD]... [--exit] [--timeout S] [common "
            "options]\n\n"
            "Pair with a URI (the pairing is active at once, for 30 days renewed on every\n"
            "delivered message) and serve it: answer pings, print requests and events.\n"
            "--exit stops once connected to the relay (the subscription is sent); with\n"
            "--timeout, exit status 1 if the relay was not reached in time. A URI this\n"
            "store already paired with (an earlier run that did not reach the relay) is\n"
            "served again.\n",
        [CMD_RUN] = "usage: pairlink wc run [--accept METHOD]... [--timeout S] [common options]\n\n"
                    "Restore every stored pairing and serve them until interrupted.\n",
        [CMD_PING] =
            "usage: pairlink wc ping TOPIC [--timeout S] [common options]\n\n"
            "Send wc_pairingPing and wait for the answer (exit 0) or a time-out (exit 1).\n"
            "It may run beside a serving command of the same store.\n",
        [CMD_DELETE] = "usage: pairlink wc delete TOPIC [common options]\n\n"
                       "Tell the peer (wc_pairingDelete, 6000 \"User disconnected.\") and forget "
                       "the pairing.\n",
    };
    printf("%s", text[r->cmd]);
    printf("\ncommon options:\n"
           "  --relay URL   relay to use (default $PAIRLINK_RELAY or ws://127.0.0.1:8787)\n"
           "  --store PATH  SQLite store (default $PAIRLINK_STORE or\n"
           "                $XDG_DATA_HOME/pairlink/wc.db, else ~/.local/share/pairlink/wc.db)\n"
           "  --json        one JSON object per line (docs/cli.md)\n"
           "  --verbose     also show libwebsockets' log lines on stderr\n"
           "--accept METHOD registers METHOD (e.g. wc_sessionPropose) and prints its requests.\n"
           "create, pair and run serve a store and lock it: one of them per store.\n"
           "Exit status: 0 done, 1 failed, 2 usage, 130 interrupted (SIGINT), 143 stopped\n"
           "by SIGTERM while waiting (0 while serving).\n");
}

static int run_cmd(wc_cmd cmd, const char *name, int argc, char **argv) {
    enum { O_QR = 256, O_QR_PNG };
    static const struct option opts[] = {{"relay", required_argument, 0, 'r'},
                                         {"store", required_argument, 0, 's'},
                                         {"json", no_argument, 0, 'j'},
                                         {"methods", required_argument, 0, 'm'},
                                         {"accept", required_argument, 0, 'a'},
                                         {"timeout", required_argument, 0, 't'},
                                         {"no-qr", no_argument, 0, 'q'},
                                         {"qr", no_argument, 0, O_QR},
                                         {"qr-png", required_argument, 0, O_QR_PNG},
                                         {"until-active", no_argument, 0, 'u'},
                                         {"exit", no_argument, 0, 'x'},
                                         {"verbose", no_argument, 0, 'v'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    runner r = {.cmd = cmd, .name = name, .out = {.cmd = name}, .lock = {.fd = -1}};
    char store_buf[4096];
    const char *env_relay = getenv("PAIRLINK_RELAY");
    r.relay = env_relay && *env_relay ? env_relay : "ws://127.0.0.1:8787";
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "r:s:jm:a:t:quxvh", opts, NULL)) != -1) {
        switch (c) {
        case 'r': r.relay = optarg; break;
        case 's': r.store = optarg; break;
        case 'j':
            r.out.json = true;
            break;
        case 'm': r.methods = optarg; break;
        case 'a':
            if (r.n_accept == MAX_ACCEPT) return pl_cli_usage_error(name, "too many --accept");
            r.accept[r.n_accept++] = optarg;
            break;
        case 't': {
            char *end;
            r.timeout_s = strtol(optarg, &end, 10);
            if (*end || r.timeout_s <= 0 || r.timeout_s > 86400 * 366)
                return pl_cli_usage_error(name, "--timeout takes seconds");
            break;
        }
        case 'q': r.qr.mode = PL_CLI_QR_OFF; break;
        case O_QR: r.qr.mode = PL_CLI_QR_ON; break;
        case O_QR_PNG: r.qr.png_path = optarg; break;
        case 'u':
        case 'x': r.exit_when_paired = true; break;
        case 'v':
            r.verbose = true;
            break;
        case 'h': usage(&r); return 0;
        default: return pl_cli_usage_error(name, "bad option");
        }
    }
    bool wants_arg = cmd == CMD_PAIR || cmd == CMD_PING || cmd == CMD_DELETE;
    if (wants_arg != (optind == argc - 1) || optind < argc - 1)
        return pl_cli_usage_error(name, wants_arg ? "expects one argument" : "takes no positional arguments");
    if (wants_arg) r.arg = argv[optind];
    if (cmd != CMD_CREATE && (r.qr.mode == PL_CLI_QR_ON || r.qr.png_path))
        return pl_cli_usage_error(name, "--qr and --qr-png are options of 'wc create'");
    if ((cmd == CMD_PING || cmd == CMD_DELETE) &&
        (strlen(r.arg) != 64 || strspn(r.arg, "0123456789abcdef") != 64))
        return pl_cli_usage_error(name, "TOPIC is 64 lowercase hex characters");
    /* ping and delete act on a pairing that must already be stored: they
     * create no store (nor its directory) */
    bool reads_only = cmd == CMD_PING || cmd == CMD_DELETE;
    if (!r.store) r.store = pl_cli_default_store(store_buf, sizeof store_buf, "wc.db", !reads_only);
    if (reads_only && pl_cli_store_must_exist(&r.out, r.store) != 0) return 1;
    if (cmd == CMD_PING && !r.timeout_s) r.timeout_s = 35;
    if (cmd == CMD_DELETE && !r.timeout_s) r.timeout_s = 30;
    if (r.verbose) pl_cli_log_init(true);
    if (pl_cli_qr_open(&r.qr, name) != 0) return 1;

    uv_loop_init(&r.loop);
    pl_wc_client_opts co = {.relay_url = r.relay,
                            .store_path = r.store,
                            .on_event = on_event,
                            .on_transport_state = on_transport_state,
                            .ud = &r};
    const char *ttl = getenv("PAIRLINK_WC_INACTIVE_TTL"); /* tests shorten the 5 minutes */
    if (ttl && *ttl) co.inactive_ttl = atol(ttl);
    pl_err err = pl_wc_client_new(&r.client, &r.loop, &co);
    if (err != PL_OK) {
        uv_loop_close(&r.loop);
        pl_cli_qr_close(&r.qr);
        return pl_cli_start_error(&r.out, r.store, r.relay, err);
    }
    pl_cli_signals_start(&r.sig, &r.loop, on_stop_signal, &r);
    uv_timer_init(&r.loop, &r.deadline);
    uv_timer_init(&r.loop, &r.poll);
    r.deadline.data = r.poll.data = &r;
    int rc = reads_only ? 0 : pl_cli_store_lock(&r.lock, &r.out, r.store);
    if (rc == 0 && r.timeout_s)
        uv_timer_start(&r.deadline, on_deadline, (uint64_t)r.timeout_s * 1000, 0);
    if (rc == 0) rc = start(&r);
    if (rc != 0) stop(&r, rc);
    uv_run(&r.loop, UV_RUN_DEFAULT);
    /* Second pass for anything the first close scheduled (libwebsockets). */
    uv_run(&r.loop, UV_RUN_DEFAULT);
    uv_loop_close(&r.loop);
    pl_cli_qr_close(&r.qr);
    return r.status;
}

static int wc_create(int argc, char **argv) { return run_cmd(CMD_CREATE, "wc create", argc, argv); }
static int wc_pair(int argc, char **argv) { return run_cmd(CMD_PAIR, "wc pair", argc, argv); }
static int wc_run(int argc, char **argv) { return run_cmd(CMD_RUN, "wc run", argc, argv); }
static int wc_ping(int argc, char **argv) { return run_cmd(CMD_PING, "wc ping", argc, argv); }
static int wc_delete(int argc, char **argv) { return run_cmd(CMD_DELETE, "wc delete", argc, argv); }

/* The pairing's methods as a JSON array (stored comma-joined). */
static json_t *methods_json(const char *joined) {
    json_t *a = json_array();
    char *copy = strdup(joined);
    for (char *save = NULL, *tok = copy ? strtok_r(copy, ",", &save) : NULL; tok;
         tok = strtok_r(NULL, ",", &save))
        json_array_append_new(a, json_string(tok));
    free(copy);
    return a;
}

static int wc_list(int argc, char **argv) {
    static const struct option opts[] = {{"store", required_argument, 0, 's'},
                                         {"json", no_argument, 0, 'j'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    pl_cli_out out = {.cmd = "wc list"};
    const char *store = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "s:jh", opts, NULL)) != -1) {
        switch (c) {
        case 's': store = optarg; break;
        case 'j':
            out.json = true;
            break;
        case 'h':
            printf("usage: pairlink wc list [--store PATH] [--json]\n\n"
                   "List the stored pairings (expired ones are removed). With --json, one object\n"
                   "per pairing: "
                   "{\"event\":\"pairing\",\"topic\",\"active\",\"proposer\",\"expiry_ms\",\n"
                   "\"methods\"}. A --store that does not exist is an error; the default store\n"
                   "not existing yet means no pairings.\n");
            return 0;
        default: return pl_cli_usage_error("wc list", "bad option");
        }
    }
    if (optind != argc) return pl_cli_usage_error("wc list", "takes no positional arguments");
    char buf[4096];
    const char *env = getenv("PAIRLINK_STORE");
    bool named = store || (env && *env);
    if (!store) store = pl_cli_default_store(buf, sizeof buf, "wc.db", false);
    struct stat st;
    if (!named && stat(store, &st) != 0 && errno == ENOENT) {
        if (!out.json) printf("no pairings\n");
        return 0;
    }
    if (pl_cli_store_must_exist(&out, store) != 0) return 1;
    pl_store *s = NULL;
    pl_err err = pl_store_open(&s, store);
    if (err != PL_OK) return pl_cli_store_error(&out, store, err);
    /* list reads the store only: the engine gets a transport that goes
     * nowhere (an endpoint alone on a loopback hub, on a virtual driver). */
    int64_t now = pl_wall_clock_ms();
    pl_driver *vd = NULL;
    pl_loopback_hub *hub = NULL;
    pl_transport *tp = NULL;
    pl_wc_store hooks = pl_store_wc_hooks(s);
    pl_wc_engine *e = NULL;
    err = pl_driver_new_virtual(&vd, now);
    if (err == PL_OK) err = pl_loopback_hub_new(&hub, vd, NULL);
    if (err == PL_OK) err = pl_loopback_new(&tp, hub, "wc list", NULL);
    if (err == PL_OK) err = pl_wc_engine_new(&e, NULL, tp, &hooks);
    if (err == PL_OK) err = pl_store_wc_load(s, e, now, NULL);
    if (err != PL_OK) {
        pl_wc_engine_free(e);
        if (tp) pl_transport_close(tp, 0, NULL, NULL);
        if (vd) pl_driver_run(vd);
        pl_loopback_hub_free(hub);
        pl_driver_free(vd);
        pl_store_close(s);
        return pl_cli_store_error(&out, store, err);
    }
    size_t n = pl_wc_pairings(e, NULL, 0);
    pl_wc_pairing *all = calloc(n ? n : 1, sizeof *all);
    if (all) pl_wc_pairings(e, all, n);
    for (size_t i = 0; all && i < n; i++) {
        if (out.json) {
            json_t *o = json_object();
            json_object_set_new(o, "event", json_string("pairing"));
            json_object_set_new(o, "topic", json_string(all[i].topic));
            json_object_set_new(o, "active", json_boolean(all[i].active));
            json_object_set_new(o, "proposer", json_boolean(all[i].proposer));
            json_object_set_new(o, "expiry_ms", json_integer(all[i].expiry * 1000));
            json_object_set_new(o, "methods", methods_json(all[i].methods));
            pl_cli_emit(&out, o);
        } else {
            printf("%s  %-8s %-9s expires in %llds  %s\n", all[i].topic,
                   all[i].active ? "active" : "inactive", all[i].proposer ? "proposer" : "responder",
                   (long long)(all[i].expiry - now / 1000), all[i].methods);
        }
    }
    if (!out.json && !n) printf("no pairings\n");
    if (all) {
        pl_wipe(all, n * sizeof *all);
        free(all);
    }
    pl_wc_engine_free(e);
    pl_transport_close(tp, 0, NULL, NULL);
    pl_driver_run(vd);
    pl_loopback_hub_free(hub);
    pl_driver_free(vd);
    pl_store_close(s);
    return 0;
}

int pl_cli_wc(int argc, char **argv) {
    static const pl_cli_cmd sub[] = {
        {"create", wc_create, "create a pairing, show its URI and QR, serve it"},
        {"delete", wc_delete, "delete a pairing on both sides"},
        {"list", wc_list, "list stored pairings"},
        {"pair", wc_pair, "pair with a URI and serve the pairing"},
        {"ping", wc_ping, "ping the peer of a pairing"},
        {"run", wc_run, "serve every stored pairing"},
    };
    return pl_cli_dispatch("pairlink wc", sub, sizeof sub / sizeof sub[0], argc, argv);
}
