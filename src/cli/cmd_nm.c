/* SPDX-License-Identifier: Apache-2.0 */
/* Node-manager pairing commands: `pairlink app pair|run`,
 * `pairlink node-manager pair|run`, `pairlink peers`, `pairlink send`.
 * User guide: docs/node-manager.md; output, errors, exit statuses and files
 * as every command (docs/cli.md, src/cli/out.c, signals.c, paths.c). */
#include "cli/cli.h"
#include "pairlink/codec.h"
#include "pairlink/nm_node.h"
#include "pairlink/nm_store.h"
#include "pairlink/relay_client.h"
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
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#define DEFAULT_RELAY "ws://127.0.0.1:8787"
/* A pairing wait says what it waits for this often (docs/node-manager.md). */
#define PROGRESS_MS 20000

typedef enum mode { M_PAIR = 1, M_RUN, M_SEND, M_REVOKE } mode;

typedef struct ctx {
    const char *cmd;
    mode mode;
    pl_nm_role role;
    pl_cli_out out;
    pl_cli_qr qr;
    bool wait_session;
    bool verify; /* --verify: confirm the fingerprint before storing */
    const char *relay;
    const char *store;
    const char *code; /* node-manager pair: the typed code */
    pl_nm_node *node;
    uv_loop_t *loop;
    pl_cli_signals sig;
    pl_cli_lock lock;
    uv_timer_t guard;    /* session wait / send time-out; then the close */
    uv_timer_t progress; /* pair: what we are waiting for, now and then */
    uv_poll_t input;     /* --verify: the user's answer on stdin */
    bool input_on;
    char answer[64];
    size_t answer_len;
    int status; /* -1 while running */
    bool stopping;
    uint8_t target[PL_NM_KEY_BYTES]; /* pair: the paired peer; send: the destination */
    bool have_target;
    bool qr_failed; /* --qr-png could not be written */
    bool relay_up;
    char why_down[256];             /* the last account of why the relay is not reached */
    int64_t started_ms, expires_ms; /* pair: when the code expires */
    unsigned drops[PL_NM_DROP__COUNT];
    uint64_t req_id;
    const char *message;
    bool waku;          /* --waku: a Waku transport instead of the relay */
    bool verbose;       /* --verbose: the Waku node's log on stderr */
    pl_cli_waku_opts w; /* --peer, --listen, ... */
} ctx;

static const char *role_name(pl_nm_role r) {
    return r == PL_NM_ROLE_APP ? "app" : "node-manager";
}

static bool want_help(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) return true;
    return false;
}

static const char *default_relay(void) {
    const char *r = getenv("PAIRLINK_RELAY");
    return r && *r ? r : DEFAULT_RELAY;
}

static const char *store_name(pl_nm_role role) {
    return role == PL_NM_ROLE_APP ? "app.db" : "node-manager.db";
}

/* Test knobs (docs/node-manager.md, "Testing knobs"). */
static int64_t env_ms(const char *name, int64_t max) {
    const char *v = getenv(name);
    if (!v || !*v) return 0;
    long long t = strtoll(v, NULL, 10);
    return t > 0 && t <= max ? t : 0;
}

/* ---- output ---- */

static void hex32(char out[65], const uint8_t k[32]) {
    pl_hex_encode(out, 65, k, 32);
}

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

/* The counterparty fields of an event: peer_id (the short id), peer_key_hex,
 * name. */
static void set_peer(json_t *o, const uint8_t key[PL_NM_KEY_BYTES], const char *name) {
    char id[PL_NM_PEER_ID_SIZE], hex[65];
    pl_nm_peer_id(id, key);
    hex32(hex, key);
    json_object_set_new(o, "peer_id", json_string(id));
    json_object_set_new(o, "peer_key_hex", json_string(hex));
    if (name) json_object_set_new(o, "name", json_string(name));
}

static void set_failure(json_t *o, pl_err err, const char *message) {
    json_object_set_new(o, "code", json_string(pl_errname(err)));
    json_object_set_new(o, "message",
                        json_string(message && *message ? message : pl_strerror(err)));
}

/* Why the relay is away, in words: the relay client's own account, else the
 * error's. */
static const char *transport_reason(ctx *c, pl_err err) {
    pl_transport *tp = c->node ? pl_nm_node_transport(c->node) : NULL;
    const char *why = tp && !c->waku && pl_relay_client_is(tp) ? pl_relay_client_reason(tp) : "";
    return *why ? why : pl_strerror(err ? err : PL_ERR_DISCONNECTED);
}

/* A HELLO that was not acted upon, as a sentence a user understands (the
 * reason's name stays in --json). NULL: routine, not worth a line. */
static const char *drop_sentence(const ctx *c, pl_nm_drop_reason r) {
    bool app = c->role == PL_NM_ROLE_APP;
    switch (r) {
    case PL_NM_DROP_MALFORMED:
        return "ignored a damaged message on this code's channel (not from a pairlink peer)";
    case PL_NM_DROP_WRONG_KEY:
        return "ignored a message on this code's channel that was made with another code";
    case PL_NM_DROP_WRONG_ROLE:
        return app ? "another app answered: the code must be typed on a node manager "
                     "('pairlink node-manager pair CODE'), not on an app"
                   : "another node manager is using this code: it was typed on two node "
                     "managers, or the other side runs 'node-manager pair' instead of 'app pair'";
    case PL_NM_DROP_STALE:
        return "ignored a pairing message dated more than 5 minutes away: check that the clocks of "
               "both machines are right";
    case PL_NM_DROP_REPLAY:
        return "ignored a replayed pairing message (someone repeats old messages)";
    case PL_NM_DROP_WRONG_ECHO:
        return app ? "ignored an answer that is not for this app"
                   : "ignored an answer meant for another node manager (an old one kept by the "
                     "relay, or someone else also typed this code)";
    case PL_NM_DROP_CODE_USED:
        return "another device tried this code after it was used: ignored (a code pairs once)";
    case PL_NM_DROP_OWN:
    case PL_NM_DROP_DUPLICATE:
    case PL_NM_DROP_NONE:
    case PL_NM_DROP__COUNT:
        break;
    }
    return NULL;
}

static void fmt_left(char out[32], int64_t ms) {
    if (ms < 0) ms = 0;
    long s = (long)((ms + 999) / 1000);
    snprintf(out, 32, "%ld:%02ld", s / 60, s % 60);
}

static void emit_session(ctx *c, const pl_nm_node_event *ev) {
    const pl_nm_session_output *s = ev->session;
    if (c->out.json) {
        json_t *o = json_object();
        json_object_set_new(o, "event", json_string(pl_nm_session_event_name(s->event)));
        set_peer(o, ev->peer, ev->name);
        if (s->event == PL_NM_SEV_ESTABLISHED)
            json_object_set_new(o, "replaced", json_boolean(s->replaced));
        if (s->attempt) json_object_set_new(o, "attempt", json_integer(s->attempt));
        if (s->err) set_failure(o, s->err, NULL);
        if (s->event == PL_NM_SEV_REQUEST || s->event == PL_NM_SEV_RESPONSE ||
            s->event == PL_NM_SEV_REQUEST_FAILED)
            json_object_set_new(o, "id", json_integer((json_int_t)s->id));
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
        pl_cli_emit(&c->out, o);
        return;
    }
    switch (s->event) {
    case PL_NM_SEV_ESTABLISHED:
        printf("session established with %s \"%s\"%s\n", ev->peer_id, ev->name,
               s->replaced ? " (replaces the previous one)" : "");
        break;
    case PL_NM_SEV_REQUEST:
    case PL_NM_SEV_RESPONSE:
        printf("%s %llu from %s \"%s\": ", s->event == PL_NM_SEV_REQUEST ? "message" : "reply",
               (unsigned long long)s->id, ev->peer_id, ev->name);
        if (printable(s->body, s->body_len))
            printf("%.*s\n", (int)s->body_len, (const char *)s->body);
        else
            printf("(%zu bytes of binary)\n", s->body_len);
        break;
    case PL_NM_SEV_REQUEST_FAILED:
        printf("message %llu to %s failed: %s\n", (unsigned long long)s->id, ev->peer_id,
               pl_strerror(s->err));
        break;
    case PL_NM_SEV_RETRY:
        printf("session with %s \"%s\": attempt %u got no answer (%s); retrying (is its daemon "
               "running?)\n",
               ev->peer_id, ev->name, s->attempt, pl_strerror(s->err));
        break;
    case PL_NM_SEV_REJECTED:
        printf("session with %s rejected: %s\n", ev->peer_id, pl_strerror(s->err));
        break;
    default:
        break; /* routine; --json shows them */
    }
}

static void emit_transport(ctx *c, const pl_nm_node_event *ev) {
    bool up = ev->transport_state == PL_TRANSPORT_CONNECTED;
    c->relay_up = up;
    if (ev->transport_state == PL_TRANSPORT_CLOSED) return; /* the failure line says it */
    json_t *o = json_object();
    if (c->waku) {
        json_object_set_new(o, "event", json_string(up ? "waku_connected" : "waku_disconnected"));
        if (!up)
            set_failure(o, ev->err ? ev->err : PL_ERR_DISCONNECTED,
                        "no Waku relay peer yet; redialling the --peer addresses");
    } else {
        json_object_set_new(o, "event", json_string(up ? "relay_connected" : "relay_disconnected"));
        json_object_set_new(o, "relay", json_string(c->relay));
        if (!up) {
            snprintf(c->why_down, sizeof c->why_down, "%s", transport_reason(c, ev->err));
            set_failure(o, ev->err ? ev->err : PL_ERR_DISCONNECTED, c->why_down);
        }
    }
    if (c->out.json) {
        pl_cli_emit(&c->out, o);
        return;
    }
    json_decref(o);
    if (c->waku)
        printf(up ? "waku connected (a relay peer is up)\n"
                  : "waku: no relay peer yet; redialling\n");
    else if (up)
        printf("relay %s connected\n", c->relay);
    else
        printf("relay %s not reached: %s; retrying\n", c->relay, c->why_down);
}

static void print_event(ctx *c, const pl_nm_node_event *ev) {
    json_t *o = NULL;
    switch (ev->kind) {
    case PL_NM_NODE_TRANSPORT:
        emit_transport(c, ev);
        return;
    case PL_NM_NODE_SESSION:
        emit_session(c, ev);
        return;
    case PL_NM_NODE_PAIR_FAILED:
        return; /* on_event: the one failure line */
    case PL_NM_NODE_PAIR_CODE:
        if (pl_cli_qr_show(&c->qr, c->cmd, ev->code, c->out.json) != 0) c->qr_failed = true;
        if (c->out.json) {
            o = json_pack("{s:s,s:s,s:I}", "event", "pair_code", "pairing_code", ev->code,
                          "expires_in_ms", (json_int_t)(c->expires_ms - c->started_ms));
            break;
        }
        printf("pairing code: %s\n", ev->code);
        printf("type it on the node manager: pairlink node-manager pair %s\n", ev->code);
        printf("waiting for the node manager (the code expires in %lld minutes)...\n",
               (long long)((c->expires_ms - c->started_ms + 59999) / 60000));
        return;
    case PL_NM_NODE_PAIR_DROPPED: {
        if (ev->reason < PL_NM_DROP__COUNT) c->drops[ev->reason]++;
        const char *say = drop_sentence(c, ev->reason);
        if (c->out.json) {
            o = json_pack("{s:s,s:s}", "event", "pair_dropped", "reason",
                          pl_nm_drop_reason_name(ev->reason));
            set_failure(o, ev->err, say ? say : pl_strerror(ev->err));
            break;
        }
        if (say && c->drops[ev->reason] == 1) printf("%s\n", say); /* once per reason */
        return;
    }
    case PL_NM_NODE_PAIR_STORED:
        if (c->out.json) {
            o = json_pack("{s:s}", "event", "pair_stored");
            set_peer(o, ev->peer, ev->name);
            break;
        }
        printf("stored %s \"%s\"\n", ev->peer_id, ev->name);
        return;
    case PL_NM_NODE_PAIRED:
        if (c->out.json) {
            o = json_pack("{s:s}", "event", "paired");
            set_peer(o, ev->peer, ev->name);
            json_object_set_new(o, "fingerprint", json_string(ev->fingerprint));
            break;
        }
        printf("paired with %s \"%s\"; fingerprint %s (both screens must show the same)\n",
               ev->peer_id, ev->name, ev->fingerprint);
        return;
    case PL_NM_NODE_PAIR_VERIFY:
        if (c->out.json) {
            o = json_pack("{s:s}", "event", "pair_verify");
            set_peer(o, ev->peer, ev->name);
            json_object_set_new(o, "fingerprint", json_string(ev->fingerprint));
            json_object_set_new(
                o, "message",
                json_string("compare the fingerprint with the other screen; answer yes or no on "
                            "standard input"));
            break;
        }
        printf("fingerprint %s for %s \"%s\"\n", ev->fingerprint, ev->peer_id, ev->name);
        printf("does the other screen show the same fingerprint? [y/N] ");
        fflush(stdout);
        return;
    case PL_NM_NODE_PEER_ADDED:
        if (c->out.json) {
            o = json_pack("{s:s}", "event", "peer_added");
            set_peer(o, ev->peer, ev->name);
            break;
        }
        printf("new counterparty %s \"%s\" (paired by another command)%s\n", ev->peer_id, ev->name,
               c->mode == M_RUN ? ": starting a session" : "");
        return;
    case PL_NM_NODE_PEER_REMOVED:
        if (c->mode == M_REVOKE) return; /* on_event says how it went */
        if (c->out.json) {
            o = json_pack("{s:s,s:b}", "event", "peer_removed", "by_peer", ev->by_peer);
            set_peer(o, ev->peer, ev->name);
            break;
        }
        if (ev->by_peer)
            printf("%s \"%s\" removed this pairing on its side: forgotten here too\n", ev->peer_id,
                   ev->name);
        else
            printf("%s \"%s\" was removed from the store by another command: session closed\n",
                   ev->peer_id, ev->name);
        return;
    case PL_NM_NODE_PUBLISH_FAILED:
        o = json_pack("{s:s,s:s}", "event", "publish_failed", "topic", ev->topic);
        set_failure(o, ev->err, NULL);
        if (ev->relay_code) json_object_set_new(o, "relay_code", json_integer(ev->relay_code));
        if (!c->out.json) {
            json_decref(o);
            printf("the network refused a message on %s: %s (relay code %lld)\n", ev->topic,
                   pl_strerror(ev->err), (long long)ev->relay_code);
            return;
        }
        break;
    }
    if (o) pl_cli_emit(&c->out, o);
}

/* ---- lifecycle ---- */

static void close_handle(uv_handle_t *h) {
    if (h->loop && !uv_is_closing(h)) uv_close(h, NULL);
}

static void on_closed(void *ud) {
    ctx *c = ud;
    c->node = NULL;
    pl_cli_signals_close(&c->sig);
    pl_cli_store_unlock(&c->lock);
    close_handle((uv_handle_t *)&c->guard);
    close_handle((uv_handle_t *)&c->progress);
    if (c->input_on) close_handle((uv_handle_t *)&c->input);
}

/* Close once the network has taken what we published (the app's answer, a
 * response), or after 5 s; at once after a signal (it means now). */
#define FLUSH_MS 5000

static void close_from_loop(uv_timer_t *t) {
    ctx *c = t->data;
    if (c->node)
        pl_nm_node_close(c->node, c->sig.signum ? 0 : FLUSH_MS, on_closed);
    else
        on_closed(c);
}

/* From the loop, not inside the node's callback: the node finishes what it
 * is doing first. */
static void finish(ctx *c, int status) {
    if (c->stopping) return;
    c->stopping = true;
    c->status = status;
    uv_timer_stop(&c->progress);
    if (c->input_on) uv_poll_stop(&c->input);
    uv_timer_stop(&c->guard);
    uv_timer_start(&c->guard, close_from_loop, 0, 0);
}

static void on_guard(uv_timer_t *t) {
    ctx *c = t->data;
    if (c->mode == M_REVOKE) {
        /* removed already: only the telling did not happen */
        char id[PL_NM_PEER_ID_SIZE], msg[512];
        pl_nm_peer_id(id, c->target);
        snprintf(msg, sizeof msg,
                 "removed %s; the peer was not told (not reached in time%s%s): its sessions with "
                 "us are refused "
                 "from now on",
                 id, !c->waku && !c->relay_up ? ": relay " : "",
                 !c->waku && !c->relay_up ? c->relay : "");
        if (c->out.json) {
            json_t *o = json_pack("{s:s}", "event", "removed");
            set_peer(o, c->target, NULL);
            json_object_set_new(o, "peer_told", json_false());
            json_object_set_new(o, "message", json_string(msg));
            pl_cli_emit(&c->out, o);
        } else {
            printf("%s\n", msg);
        }
        finish(c, 0);
    } else if (c->mode == M_SEND) {
        if (!c->waku && !c->relay_up)
            pl_cli_error(&c->out, PL_ERR_TIMEOUT, "relay %s not reached: %s", c->relay,
                         c->why_down[0] ? c->why_down : transport_reason(c, PL_OK));
        else
            pl_cli_error(
                &c->out, PL_ERR_TIMEOUT,
                "no answer in time: the peer's daemon ('pairlink %s run') is not running, or "
                "it uses another %s",
                role_name(c->role == PL_NM_ROLE_APP ? PL_NM_ROLE_NODE_MANAGER : PL_NM_ROLE_APP),
                c->waku ? "Waku network" : "relay");
        finish(c, 1);
    } else {
        /* Pairing done but no session yet: the pairing itself succeeded. */
        json_t *o = json_pack("{s:s,s:s}", "event", "no_session", "message",
                              "paired, but no session yet; 'run' keeps trying");
        if (c->out.json)
            pl_cli_emit(&c->out, o);
        else {
            json_decref(o);
            fprintf(stderr, "pairlink %s: paired, but no session yet; `run` keeps trying\n",
                    c->cmd);
        }
        finish(c, 0);
    }
}

static void on_stop_signal(void *data, int signum) {
    ctx *c = data;
    if (c->stopping) return;
    pl_cli_signal_report(&c->out, signum);
    /* The cancel's PAIR_FAILED is not printed: the signal line said it. */
    c->stopping = true;
    if (c->mode == M_PAIR && c->node) pl_nm_node_pair_cancel(c->node);
    c->stopping = false;
    finish(c, pl_cli_signal_status(signum, c->mode == M_RUN));
}

/* pair: what we wait for, every PROGRESS_MS (a code nobody shows, another
 * relay or network would otherwise be 5 silent minutes). */
static void on_progress(uv_timer_t *t) {
    ctx *c = t->data;
    if (c->stopping) return;
    char left[32], msg[1024];
    int64_t now = pl_wall_clock_ms();
    fmt_left(left, c->expires_ms - now);
    const char *net = c->waku ? "Waku network" : "relay";
    if (!c->waku && !c->relay_up)
        snprintf(msg, sizeof msg, "still not connected to the relay %s (%s); retrying, %s left",
                 c->relay, c->why_down[0] ? c->why_down : transport_reason(c, PL_OK), left);
    else if (c->waku && !c->relay_up)
        snprintf(msg, sizeof msg,
                 "no Waku relay peer yet (redialling the --peer addresses), %s left", left);
    else if (c->role == PL_NM_ROLE_APP)
        snprintf(msg, sizeof msg,
                 "still waiting for a node manager to type the code (%s left); it must use the "
                 "same %s%s%s",
                 left, net, c->waku ? "" : " ", c->waku ? "" : c->relay);
    else if (c->drops[PL_NM_DROP_WRONG_KEY])
        snprintf(msg, sizeof msg,
                 "no answer from the app yet (%s left); messages made with another code were seen: "
                 "check "
                 "that %s is the code the app shows now",
                 left, c->code);
    else
        snprintf(msg, sizeof msg,
                 "no answer from an app showing %s yet (%s left): check that the app still shows "
                 "this code "
                 "and uses the same %s%s%s",
                 c->code, left, net, c->waku ? "" : " ", c->waku ? "" : c->relay);
    if (c->out.json) {
        json_t *o = json_pack("{s:s,s:I,s:b,s:s}", "event", "waiting", "expires_in_ms",
                              (json_int_t)(c->expires_ms > now ? c->expires_ms - now : 0),
                              "connected", c->relay_up, "message", msg);
        pl_cli_emit(&c->out, o);
    } else {
        printf("%s\n", msg);
    }
}

/* --verify: the user's answer, a line on standard input ("y", "yes": the
 * fingerprints match; anything else, or the end of input: they do not). */
static void answer_verify(ctx *c) {
    if (c->input_on) uv_poll_stop(&c->input);
    char *a = c->answer;
    while (*a == ' ' || *a == '\t')
        a++;
    bool yes = !strncasecmp(a, "y", 1) && (a[1] == '\0' || !strcasecmp(a, "yes"));
    c->answer_len = 0;
    if (c->node && !c->stopping) (void)pl_nm_node_pair_verify(c->node, yes);
}

/* Take what stdin holds; true once a line (or the end) was read. */
static bool read_answer(ctx *c) {
    for (;;) {
        char ch;
        ssize_t r = read(STDIN_FILENO, &ch, 1);
        if (r < 0 && (errno == EAGAIN || errno == EINTR)) return false;
        if (r <= 0 || ch == '\n') {
            c->answer[c->answer_len] = '\0';
            return true;
        }
        if (c->answer_len + 1 < sizeof c->answer) c->answer[c->answer_len++] = ch;
    }
}

static void on_input(uv_poll_t *h, int status, int events) {
    (void)events;
    ctx *c = h->data;
    if (status < 0 || read_answer(c)) answer_verify(c);
}

static void ask_verify(ctx *c) {
    c->answer_len = 0;
    if (!c->input_on && uv_poll_init(c->loop, &c->input, STDIN_FILENO) == 0) {
        c->input_on = true;
        c->input.data = c;
    }
    if (c->input_on && uv_poll_start(&c->input, UV_READABLE, on_input) == 0) return;
    /* stdin is a file (or closed): it can be read at once */
    read_answer(c);
    answer_verify(c);
}

static void pair_failed(ctx *c, pl_err err) {
    switch (err) {
    case PL_ERR_FINGERPRINT_REJECTED:
        pl_cli_error(
            &c->out, err,
            "pairing refused: the fingerprint was not confirmed; nothing was stored. If the two "
            "screens showed different fingerprints, someone else may have used the code: pair "
            "again "
            "with a new code");
        break;
    case PL_ERR_CODE_EXPIRED:
        pl_cli_error(
            &c->out, err,
            "pairing failed: nobody paired within the code's lifetime (the code expired); run "
            "'pairlink app pair' again for a new code");
        break;
    case PL_ERR_TIMEOUT:
        pl_cli_error(
            &c->out, err,
            "pairing failed: no app answered with code %s in time (a wrong or expired code, no app "
            "waiting, or the app uses another %s)",
            c->code ? c->code : "", c->waku ? "Waku network" : "relay");
        break;
    default:
        pl_cli_error(&c->out, err, "pairing failed: %s", pl_strerror(err));
        break;
    }
    finish(c, 1);
}

static void on_event(void *ud, pl_nm_node *n, const pl_nm_node_event *ev) {
    ctx *c = ud;
    if (c->stopping && ev->kind == PL_NM_NODE_PAIR_FAILED) return;
    print_event(c, ev);
    if (c->stopping) return;
    switch (ev->kind) {
    case PL_NM_NODE_PAIR_CODE:
        if (c->qr_failed) { /* --qr-png could not be written: the user asked for that file */
            c->stopping = true;
            pl_nm_node_pair_cancel(n);
            c->stopping = false;
            finish(c, 1);
        }
        break;
    case PL_NM_NODE_PAIR_FAILED:
        if (c->mode == M_PAIR) pair_failed(c, ev->err);
        break;
    case PL_NM_NODE_PAIR_VERIFY:
        uv_timer_stop(&c->progress); /* the peer is here: the user is asked */
        if (c->mode == M_PAIR) ask_verify(c);
        break;
    case PL_NM_NODE_PAIR_STORED:
        uv_timer_stop(&c->progress);
        break;
    case PL_NM_NODE_PEER_REMOVED:
        if (c->mode == M_REVOKE && ev->revoked) {
            char msg[256];
            if (ev->err == PL_OK)
                snprintf(msg, sizeof msg, "removed %s \"%s\"; the peer was told and forgot us",
                         ev->peer_id, ev->name);
            else
                snprintf(msg, sizeof msg,
                         "removed %s \"%s\"; the peer was not told (%s): its sessions with us are "
                         "refused from now on",
                         ev->peer_id, ev->name, pl_strerror(ev->err));
            if (c->out.json) {
                json_t *o = json_pack("{s:s}", "event", "removed");
                set_peer(o, ev->peer, ev->name);
                json_object_set_new(o, "peer_told", json_boolean(ev->err == PL_OK));
                json_object_set_new(o, "message", json_string(msg));
                pl_cli_emit(&c->out, o);
            } else {
                printf("%s\n", msg);
            }
            finish(c, 0);
        }
        break;
    case PL_NM_NODE_PAIRED:
        if (c->mode == M_PAIR) {
            uv_timer_stop(&c->progress);
            memcpy(c->target, ev->peer, PL_NM_KEY_BYTES);
            c->have_target = true;
            if (!c->wait_session)
                finish(c, 0);
            else
                uv_timer_start(&c->guard, on_guard, 30000, 0);
        }
        break;
    case PL_NM_NODE_TRANSPORT:
        if (ev->transport_state == PL_TRANSPORT_CLOSED) {
            pl_cli_error(&c->out, ev->err, "relay %s: %s", c->relay, transport_reason(c, ev->err));
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
                pl_cli_error(&c->out, s->err, "message to %s: %s", ev->peer_id,
                             pl_strerror(s->err));
            finish(c, s->event == PL_NM_SEV_RESPONSE ? 0 : 1);
        }
        break;
    }
    default:
        break;
    }
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
        if (c->out.json)
            pl_cli_emit(&c->out, json_pack("{s:s,s:s}", "event", "listening", "address", addr));
        else
            printf("waku: listening on %s\n", addr);
    }
    fflush(stdout);
}

/* The node could not start: the relay's error, the identity key file's, or
 * the store's, each with its path and cause. */
static int start_error(ctx *c, pl_err e) {
    if (e == PL_ERR_KEY_FILE && strcmp(c->store, ":memory:") != 0) {
        /* the store itself, or its identity key PATH.key beside it */
        struct stat st;
        bool store_ok = lstat(c->store, &st) == 0 && S_ISREG(st.st_mode) && !(st.st_mode & 077) &&
                        st.st_uid == geteuid();
        if (store_ok) {
            char key[4200];
            snprintf(key, sizeof key, "%s.key", c->store);
            return pl_cli_key_file_error(&c->out, key, e, "identity key");
        }
    }
    if (c->waku && e != PL_ERR_KEY_FILE && e != PL_ERR_STORE && e != PL_ERR_STORE_CORRUPT &&
        e != PL_ERR_SYS && e != PL_ERR_IO)
        return pl_cli_error(&c->out, e, "cannot start the Waku node: %s", pl_strerror(e));
    return pl_cli_start_error(&c->out, c->store, c->relay, e);
}

static int run_node(ctx *c, const char *name, int64_t send_timeout_ms) {
    /* libwebsockets' notices would drown the event lines. */
    if (!c->verbose) lws_set_log_level(LLL_ERR, NULL);
    uv_loop_t loop;
    uv_loop_init(&loop);
    c->loop = &loop;
    c->status = -1;
    c->lock.fd = -1;
    int64_t ttl = env_ms("PAIRLINK_TEST_CODE_TTL_MS", PL_NM_CODE_TTL_MS);
    c->started_ms = pl_wall_clock_ms();
    c->expires_ms = c->started_ms + (ttl ? ttl : PL_NM_CODE_TTL_MS);
    pl_nm_node_opts o = {
        .role = c->role,
        .relay_url = c->relay,
        .store_path = c->store,
        .name = name,
        .sessions = c->mode == M_RUN,
        .code_ttl_ms = ttl,
        .pair_no_session = c->mode == M_PAIR && !c->wait_session,
        .verify = c->verify,
        /* a daemon notices pairings and removals made by other commands */
        .store_poll_ms = c->mode == M_RUN ? env_ms("PAIRLINK_TEST_STORE_POLL_MS", 60000) : -1,
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
        if ((c->mode == M_SEND || c->mode == M_REVOKE) && !c->w.key_file) {
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
        c->node = NULL;
        uv_run(&loop, UV_RUN_DEFAULT); /* what a failed start left closing */
        uv_loop_close(&loop);
        return start_error(c, e);
    }
    pl_cli_signals_start(&c->sig, &loop, on_stop_signal, c);
    uv_timer_init(&loop, &c->guard);
    uv_timer_init(&loop, &c->progress);
    c->guard.data = c->progress.data = c;
    /* a daemon serves the store: one per store. pair, send and peers run
     * beside it (it notices what they change) */
    bool serving = c->mode == M_RUN;
    int rc = serving ? pl_cli_store_lock(&c->lock, &c->out, c->store) : 0;
    if (rc != 0) {
        c->stopping = true;
        c->status = rc;
        uv_timer_start(&c->guard, close_from_loop, 0, 0);
    } else if (c->waku) {
        print_listening(c);
    }
    if (rc != 0) {
    } else if (c->mode == M_PAIR) {
        e = pl_nm_node_pair(c->node, c->code, NULL);
        if (e != PL_OK) {
            c->status = pl_cli_error(&c->out, e, "%s: %s", c->code ? "pairing code" : "pairing",
                                     pl_strerror(e));
            c->stopping = true;
            uv_timer_start(&c->guard, close_from_loop, 0, 0);
        } else if (!c->stopping) {
            int64_t every = env_ms("PAIRLINK_TEST_PROGRESS_MS", 3600000);
            if (!every) every = PROGRESS_MS;
            uv_timer_start(&c->progress, on_progress, (uint64_t)every, (uint64_t)every);
        }
    } else if (c->mode == M_REVOKE) {
        e = pl_nm_node_revoke(c->node, c->target);
        if (e != PL_OK) {
            c->status = pl_cli_error(&c->out, e, "remove: %s", pl_strerror(e));
            c->stopping = true;
            uv_timer_start(&c->guard, close_from_loop, 0, 0);
        } else {
            uv_timer_start(&c->guard, on_guard, (uint64_t)send_timeout_ms, 0);
        }
    } else if (c->mode == M_SEND) {
        e = pl_nm_node_connect(c->node, c->target);
        if (e == PL_OK)
            e = pl_nm_node_request(c->node, c->target, (const uint8_t *)c->message,
                                   strlen(c->message), &c->req_id);
        if (e != PL_OK) {
            c->status = pl_cli_error(&c->out, e, "send: %s", pl_strerror(e));
            c->stopping = true;
            uv_timer_start(&c->guard, close_from_loop, 0, 0);
        } else {
            uv_timer_start(&c->guard, on_guard, (uint64_t)send_timeout_ms, 0);
        }
    } else {
        uint8_t pub[PL_NM_KEY_BYTES];
        char id[PL_NM_PEER_ID_SIZE], hex[65];
        pl_nm_node_identity(c->node, pub);
        pl_nm_peer_id(id, pub);
        hex32(hex, pub);
        if (c->out.json)
            pl_cli_emit(&c->out,
                        json_pack("{s:s,s:s,s:s,s:s,s:s,s:I}", "event", "running", "role",
                                  role_name(c->role), "identity_id", id, "identity_key_hex", hex,
                                  "store", c->store, "counterparties",
                                  (json_int_t)pl_nm_node_restored(c->node)));
        else
            printf("%s %s running on store %s; %zu counterparties\n", role_name(c->role), id,
                   c->store, pl_nm_node_restored(c->node));
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_run(&loop, UV_RUN_DEFAULT); /* what the close scheduled (libwebsockets) */
    uv_loop_close(&loop);
    return c->status < 0 ? 0 : c->status;
}

/* ---- app / node-manager ---- */

static const char pair_usage_app[] =
    "usage: pairlink app pair [--relay URL | --waku --peer MULTIADDR...] [--store PATH]\n"
    "                         [--name NAME] [--json] [--qr | --no-qr] [--qr-png FILE]\n"
    "                         [--no-session] [--verify] [Waku options]\n"
    "\n"
    "Show a pairing code (and its QR code) and wait until a node manager pairs with it\n"
    "(`pairlink node-manager pair CODE`), or until it expires after 5 minutes; every\n"
    "20 s a line says what it is still waiting for. Both sides then print the same\n"
    "fingerprint; compare them (--verify asks you to confirm it before the node manager\n"
    "is stored). Then a session with it is awaited (up to 30 s) unless --no-session.\n"
    "The QR code is drawn when stdout is a terminal (not with --json); --qr draws\n"
    "it anyway, --no-qr never. --qr-png FILE also writes it as a PNG image (mode\n"
    "0600).\n";
static const char pair_usage_nm[] =
    "usage: pairlink node-manager pair CODE [--relay URL | --waku --peer MULTIADDR...]\n"
    "                                  [--store PATH] [--name NAME] [--json] [--no-session]\n"
    "                                  [--verify] [Waku options]\n"
    "\n"
    "Pair with the app showing CODE (any case; dashes and spaces optional). A mistyped\n"
    "code is refused at once; a code nobody shows times out after 5 minutes (every 20 s\n"
    "a line says what it is still waiting for). The app is stored, then a Noise session\n"
    "with it is opened (waits up to 30 s) unless --no-session. --verify shows the\n"
    "fingerprint and asks you to confirm it before the app is stored.\n";
static const char run_usage[] =
    "usage: pairlink %s run [--relay URL | --waku --peer MULTIADDR...] [--store PATH]\n"
    "                       [--name NAME] [--json] [Waku options]\n"
    "\n"
    "Daemon: opens a Noise session with every stored counterparty, keeps them up\n"
    "(re-establishing after either side restarts), prints session events and the\n"
    "messages received (each is acknowledged with \"ok\"). Counterparties paired or\n"
    "removed by other commands on the same store are noticed within a second.\n"
    "SIGINT (exit 130) or SIGTERM (exit 0) stops it.\n";
static const char common_opts[] =
    "\n"
    "options:\n"
    "  --relay URL    relay (default $PAIRLINK_RELAY or " DEFAULT_RELAY ")\n"
    "  --store PATH   SQLite store (default $PAIRLINK_STORE, else app.db or\n"
    "                 node-manager.db in $XDG_DATA_HOME/pairlink or ~/.local/share/pairlink);\n"
    "                 the identity key is PATH.key (mode 0600). run locks it: one\n"
    "                 daemon per store (pair, send and peers run beside it)\n"
    "  --name NAME    display name sent to the other side (pair)\n"
    "  --json         one JSON object per line (docs/cli.md)\n"
    "  --help         this text\n"
    "Exit status: 0 done, 1 failed, 2 usage, 130 interrupted (SIGINT), 143 SIGTERM while\n"
    "pairing (0 for run).\n";

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
    {"waku", no_argument, NULL, (base)}, {"peer", required_argument, NULL, (base) + 1},            \
        {"listen", required_argument, NULL, (base) + 1},                                           \
        {"cluster", required_argument, NULL, (base) + 1},                                          \
        {"shard", required_argument, NULL, (base) + 1},                                            \
        {"autosharding", required_argument, NULL, (base) + 1},                                     \
        {"muxer", required_argument, NULL, (base) + 1},                                            \
        {"key-file", required_argument, NULL, (base) + 1}, {                                       \
        "verbose", no_argument, NULL, (base) + 2                                                   \
    }

/* One getopt_long result among WAKU_LONGOPTS(base): 1 taken, 0 not one of
 * them, -status after a usage error (printed). */
static int waku_getopt(ctx *c, int opt, int base, const char *cmd, const char *oname) {
    if (opt == base) {
        c->waku = true;
    } else if (opt == base + 1) {
        int r = pl_cli_waku_option(&c->w, cmd, oname, optarg);
        if (r < 0) return r;
    } else if (opt == base + 2) {
        c->verbose = true;
    } else {
        return 0;
    }
    return 1;
}

/* After parsing: the Waku options make sense together. 0 or the usage status. */
static int waku_check(ctx *c, const char *cmd, bool relay_given) {
    if (!c->waku) {
        if (c->w.given)
            return pl_cli_usage_error(cmd,
                                      "--peer, --listen and the other Waku options need --waku");
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
               top,
               role == PL_NM_ROLE_APP ? "a node manager (shows a code)" : "an app (takes its code)",
               top);
        return argc < 2 ? 2 : 0;
    }
    char cmd[64];
    snprintf(cmd, sizeof cmd, "%s %s", top, argv[1]);
    mode m = !strcmp(argv[1], "pair") ? M_PAIR : !strcmp(argv[1], "run") ? M_RUN : 0;
    if (!m) return pl_cli_usage_error(top, "unknown command '%s'", argv[1]);
    argc--, argv++;
    if (want_help(argc, argv)) {
        if (m == M_PAIR)
            fputs(role == PL_NM_ROLE_APP ? pair_usage_app : pair_usage_nm, stdout);
        else
            printf(run_usage, top);
        fputs(common_opts, stdout);
        fputs(waku_opts_help, stdout);
        return 0;
    }
    enum {
        O_RELAY = 1,
        O_STORE,
        O_NAME,
        O_JSON,
        O_NOQR,
        O_NOSESS,
        O_QR,
        O_QR_PNG,
        O_VERIFY,
        O_WAKU
    };
    static const struct option longopts[] = {{"relay", required_argument, NULL, O_RELAY},
                                             {"store", required_argument, NULL, O_STORE},
                                             {"name", required_argument, NULL, O_NAME},
                                             {"json", no_argument, NULL, O_JSON},
                                             {"no-qr", no_argument, NULL, O_NOQR},
                                             {"no-session", no_argument, NULL, O_NOSESS},
                                             {"qr", no_argument, NULL, O_QR},
                                             {"qr-png", required_argument, NULL, O_QR_PNG},
                                             {"verify", no_argument, NULL, O_VERIFY},
                                             WAKU_LONGOPTS(O_WAKU),
                                             {NULL, 0, NULL, 0}};
    ctx c = {.cmd = cmd, .mode = m, .role = role, .wait_session = true, .out = {.cmd = cmd}};
    pl_cli_waku_init(&c.w);
    const char *name = NULL;
    char store_buf[4096];
    c.relay = default_relay();
    bool relay_given = false;
    optind = 1;
    opterr = 0;
    int opt, li = -1;
    while ((opt = getopt_long(argc, argv, "", longopts, &li)) != -1) {
        const char *oname = li >= 0 ? longopts[li].name : "?";
        li = -1;
        int w = waku_getopt(&c, opt, O_WAKU, cmd, oname);
        if (w < 0) return -w;
        if (w) continue;
        switch (opt) {
        case O_RELAY:
            c.relay = optarg, relay_given = true;
            break;
        case O_STORE:
            c.store = optarg;
            break;
        case O_NAME:
            name = optarg;
            break;
        case O_JSON:
            c.out.json = true;
            break;
        case O_NOQR:
            c.qr.mode = PL_CLI_QR_OFF;
            break;
        case O_QR:
            c.qr.mode = PL_CLI_QR_ON;
            break;
        case O_QR_PNG:
            c.qr.png_path = optarg;
            break;
        case O_NOSESS:
            c.wait_session = false;
            break;
        case O_VERIFY:
            c.verify = true;
            break;
        default:
            return pl_cli_usage_error(cmd, "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (!name) name = role == PL_NM_ROLE_APP ? "pairlink app" : "pairlink node manager";
    if (strlen(name) > PL_NM_NAME_MAX)
        return pl_cli_usage_error(cmd, "--name is longer than 64 bytes");
    if (m == M_PAIR && role == PL_NM_ROLE_NODE_MANAGER) {
        if (optind + 1 != argc) return pl_cli_usage_error(cmd, "expected one argument: CODE");
        c.code = argv[optind];
    } else if (optind != argc) {
        return pl_cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    }
    if ((c.qr.mode == PL_CLI_QR_ON || c.qr.png_path) && !(m == M_PAIR && role == PL_NM_ROLE_APP))
        return pl_cli_usage_error(cmd, "--qr and --qr-png are options of 'app pair'");
    if ((!c.wait_session || c.verify) && m != M_PAIR)
        return pl_cli_usage_error(cmd, "--no-session and --verify are options of 'pair'");
    int bad = waku_check(&c, cmd, relay_given);
    if (bad) return bad;
    if (!c.store)
        c.store = pl_cli_default_store(store_buf, sizeof store_buf, store_name(role), true);
    if (c.verbose) pl_cli_log_init(true);
    if (pl_cli_qr_open(&c.qr, cmd) != 0) return 1;
    int rc = run_node(&c, name, 0);
    pl_cli_qr_close(&c.qr);
    return rc;
}

int pl_cli_app(int argc, char **argv) {
    return role_cmd(argc, argv, PL_NM_ROLE_APP);
}
int pl_cli_node_manager(int argc, char **argv) {
    return role_cmd(argc, argv, PL_NM_ROLE_NODE_MANAGER);
}

/* ---- peers, send: commands that read a store ---- */

/* The store of `peers` and `send`: --store or $PAIRLINK_STORE, else the one
 * default store (app.db or node-manager.db) that exists. 0 with *path set
 * (NULL: no store at all yet, nothing named), or the exit status. */
static int pick_store(const pl_cli_out *o, const char *given, const char **path, char *buf,
                      size_t cap) {
    *path = NULL;
    const char *env = getenv("PAIRLINK_STORE");
    if (!given && env && *env) given = env;
    if (given) {
        if (pl_cli_store_must_exist(o, given) != 0) return 1;
        *path = given;
        return 0;
    }
    char app[4096], nm[4096];
    pl_cli_default_file(app, sizeof app, "app.db", false);
    pl_cli_default_file(nm, sizeof nm, "node-manager.db", false);
    struct stat st;
    bool has_app = stat(app, &st) == 0, has_nm = stat(nm, &st) == 0;
    if (has_app && has_nm) {
        fprintf(stderr, "pairlink %s: both %s and %s exist: say which with --store\n", o->cmd, app,
                nm);
        return 2;
    }
    if (has_app || has_nm) {
        snprintf(buf, cap, "%s", has_app ? app : nm);
        *path = buf;
    }
    return 0;
}

static pl_err open_store(const char *path, pl_store **s) {
    pl_err e = pl_store_open(s, path);
    if (e == PL_OK) e = pl_nm_store_init(*s);
    if (e != PL_OK) {
        pl_store_close(*s);
        *s = NULL;
    }
    return e;
}

/* A counterparty named on the command line: the store's answer, as a
 * sentence. */
static int find_error(const pl_cli_out *o, const char *store, const char *id, pl_err e) {
    if (e == PL_ERR_NOT_FOUND)
        return pl_cli_error(o, e,
                            "no counterparty '%s' in store %s (see 'pairlink peers --store %s')",
                            id, store, store);
    if (e == PL_ERR_EXISTS)
        return pl_cli_error(o, e,
                            "'%s' matches several counterparties in store %s: give more hex digits",
                            id, store);
    if (e == PL_ERR_INVALID_ARG)
        return pl_cli_error(o, e, "'%s' is neither a name nor a hex id of at least 4 digits", id);
    return pl_cli_store_error(o, store, e);
}

static const char peers_usage[] =
    "usage: pairlink peers [list] [--store PATH] [--json]\n"
    "       pairlink peers remove ID [--store PATH] [--relay URL | --waku --peer MULTIADDR...]\n"
    "                                [--timeout SEC] [--offline] [--json] [Waku options]\n"
    "\n"
    "List the counterparties paired with (id = the first 16 hex digits of the key),\n"
    "or revoke one (ID: a hex prefix of at least 4 digits, or the exact name).\n"
    "remove takes effect at once (a daemon running on the store notices it within a\n"
    "second and drops the session), then tells the peer through the relay (or the\n"
    "Waku network with --waku), whose daemon forgets us too; a peer not reached\n"
    "within --timeout (default 10 s) is not told, and its sessions are refused from\n"
    "then on. --offline only forgets it here.\n"
    "\n"
    "options:\n"
    "  --store PATH   SQLite store (default $PAIRLINK_STORE, else the one of app.db and\n"
    "                 node-manager.db in the data directory that exists); it must exist\n"
    "  --relay URL    relay (default $PAIRLINK_RELAY or " DEFAULT_RELAY ")\n"
    "  --timeout SEC  remove: how long to try telling the peer (default 10)\n"
    "  --offline      remove: forget the peer here only, tell nobody\n"
    "  --json         one JSON object per line: a \"peer\" per counterparty\n"
    "  --help         this text\n";

static void fmt_time(char out[32], int64_t ms) {
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int peers_list(const pl_cli_out *o, pl_store *s, const char *store) {
    pl_nm_counterparty *all = NULL;
    size_t n = 0;
    pl_err e = pl_nm_store_list(s, &all, &n);
    if (e != PL_OK) return pl_cli_store_error(o, store, e);
    for (size_t i = 0; i < n; i++) {
        char id[PL_NM_PEER_ID_SIZE], first[32], last[32];
        pl_nm_peer_id(id, all[i].pub);
        fmt_time(first, all[i].first_seen_ms);
        fmt_time(last, all[i].last_seen_ms);
        if (o->json) {
            json_t *j = json_pack("{s:s}", "event", "peer");
            set_peer(j, all[i].pub, NULL);
            json_object_set_new(j, "role", json_string(role_name(all[i].role)));
            json_object_set_new(j, "name", json_string(all[i].name));
            json_object_set_new(j, "fingerprint", json_string(all[i].fingerprint));
            json_object_set_new(j, "first_seen_ms", json_integer(all[i].first_seen_ms));
            json_object_set_new(j, "last_seen_ms", json_integer(all[i].last_seen_ms));
            json_object_set_new(j, "confirmed", json_boolean(all[i].confirmed));
            pl_cli_emit(o, j);
        } else {
            printf("%s  %-12s  %-9s  %-20s  first %s  last %s%s\n", id, role_name(all[i].role),
                   all[i].fingerprint[0] ? all[i].fingerprint : "-", all[i].name, first, last,
                   all[i].confirmed ? "" : "  (no session yet)");
        }
    }
    if (!o->json && n == 0) printf("no counterparties\n");
    pl_free(all);
    return 0;
}

int pl_cli_peers(int argc, char **argv) {
    if (want_help(argc, argv)) {
        fputs(peers_usage, stdout);
        fputs(waku_opts_help, stdout);
        return 0;
    }
    enum { O_STORE = 1, O_JSON, O_RELAY, O_TIMEOUT, O_OFFLINE, O_WAKU };
    static const struct option longopts[] = {{"store", required_argument, NULL, O_STORE},
                                             {"json", no_argument, NULL, O_JSON},
                                             {"relay", required_argument, NULL, O_RELAY},
                                             {"timeout", required_argument, NULL, O_TIMEOUT},
                                             {"offline", no_argument, NULL, O_OFFLINE},
                                             WAKU_LONGOPTS(O_WAKU),
                                             {NULL, 0, NULL, 0}};
    const char *store = NULL, *relay = default_relay();
    long timeout_s = 10;
    bool offline = false, net_opts = false, relay_given = false;
    pl_cli_out out = {.cmd = "peers"};
    /* the network that tells the peer (remove): the relay, or Waku as for send */
    ctx net = {.cmd = "peers remove"};
    pl_cli_waku_init(&net.w);
    optind = 1;
    opterr = 0;
    int opt, li = -1;
    while ((opt = getopt_long(argc, argv, "", longopts, &li)) != -1) {
        const char *oname = li >= 0 ? longopts[li].name : "?";
        li = -1;
        int w = waku_getopt(&net, opt, O_WAKU, "peers remove", oname);
        if (w < 0) return -w;
        if (w) {
            net_opts = true;
            continue;
        }
        switch (opt) {
        case O_STORE:
            store = optarg;
            break;
        case O_JSON:
            out.json = true;
            break;
        case O_RELAY:
            relay = optarg, net_opts = true, relay_given = true;
            break;
        case O_OFFLINE:
            offline = true, net_opts = true;
            break;
        case O_TIMEOUT: {
            char *end;
            errno = 0;
            timeout_s = strtol(optarg, &end, 10);
            if (errno || *end || timeout_s < 1 || timeout_s > 3600)
                return pl_cli_usage_error(out.cmd, "--timeout takes 1..3600 seconds");
            net_opts = true;
            break;
        }
        default:
            return pl_cli_usage_error(out.cmd, "unknown option '%s'", argv[optind - 1]);
        }
    }
    const char *sub = optind < argc ? argv[optind] : "list";
    bool rm = !strcmp(sub, "remove");
    if (!rm && strcmp(sub, "list")) return pl_cli_usage_error(out.cmd, "unknown command '%s'", sub);
    if (rm ? optind + 2 != argc : optind + 1 < argc)
        return pl_cli_usage_error(out.cmd, rm ? "remove takes one ID" : "list takes no argument");
    if (rm)
        out.cmd = "peers remove";
    else if (net_opts)
        return pl_cli_usage_error(
            out.cmd, "--relay, --waku, --timeout and --offline are options of 'remove'");
    if (rm) {
        int bad = waku_check(&net, out.cmd, relay_given);
        if (bad) return bad;
        if (offline && (net.waku || relay_given))
            return pl_cli_usage_error(out.cmd, "--offline tells nobody: no --relay or --waku");
    }
    char buf[4096];
    int rc = pick_store(&out, store, &store, buf, sizeof buf);
    if (rc != 0) return rc;
    if (!store) { /* no default store yet */
        if (rm) return pl_cli_error(&out, PL_ERR_NOT_FOUND, "no store yet: nothing to remove");
        if (!out.json) printf("no counterparties\n");
        return 0;
    }
    pl_store *s = NULL;
    pl_err e = open_store(store, &s);
    if (e != PL_OK) return pl_cli_store_error(&out, store, e);
    int status = 0;
    if (rm) {
        pl_nm_counterparty cp;
        const char *id = argv[optind + 1];
        e = pl_nm_store_find(s, id, &cp);
        if (e == PL_OK && !offline) {
            /* revoke: forget it now, then tell it (a node of our identity) */
            pl_store_close(s);
            ctx c = net;
            c.mode = M_REVOKE, c.out = out, c.relay = relay, c.store = store;
            memcpy(c.target, cp.pub, PL_NM_KEY_BYTES);
            c.have_target = true;
            c.role = cp.role == PL_NM_ROLE_APP ? PL_NM_ROLE_NODE_MANAGER : PL_NM_ROLE_APP;
            return run_node(&c, NULL, timeout_s * 1000);
        }
        if (e == PL_OK) e = pl_nm_store_remove(s, cp.pub);
        if (e != PL_OK) {
            status = find_error(&out, store, id, e);
        } else if (out.json) {
            json_t *j = json_pack("{s:s}", "event", "removed");
            set_peer(j, cp.pub, cp.name);
            pl_cli_emit(&out, j);
        } else {
            char pid[PL_NM_PEER_ID_SIZE];
            pl_nm_peer_id(pid, cp.pub);
            printf("removed %s \"%s\"\n", pid, cp.name);
        }
    } else {
        status = peers_list(&out, s, store);
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
    "  --store PATH   SQLite store (default $PAIRLINK_STORE, else the one of app.db and\n"
    "                 node-manager.db in the data directory that exists); it must exist\n"
    "  --timeout SEC  give up after SEC seconds (default 30)\n"
    "  --json         one JSON object per line (docs/cli.md)\n"
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
    const char *store = NULL;
    long timeout_s = 30;
    ctx c = {.cmd = cmd, .mode = M_SEND, .out = {.cmd = cmd}};
    c.relay = default_relay();
    pl_cli_waku_init(&c.w);
    bool relay_given = false;
    optind = 1;
    opterr = 0;
    int opt, li = -1;
    while ((opt = getopt_long(argc, argv, "", longopts, &li)) != -1) {
        const char *oname = li >= 0 ? longopts[li].name : "?";
        li = -1;
        int w = waku_getopt(&c, opt, O_WAKU, cmd, oname);
        if (w < 0) return -w;
        if (w) continue;
        switch (opt) {
        case O_RELAY:
            c.relay = optarg, relay_given = true;
            break;
        case O_STORE:
            store = optarg;
            break;
        case O_TIMEOUT: {
            char *end;
            errno = 0;
            timeout_s = strtol(optarg, &end, 10);
            if (errno || *end || timeout_s < 1 || timeout_s > 3600)
                return pl_cli_usage_error(cmd, "--timeout takes 1..3600 seconds");
            break;
        }
        case O_JSON:
            c.out.json = true;
            break;
        default:
            return pl_cli_usage_error(cmd, "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind + 2 != argc) return pl_cli_usage_error(cmd, "expected PEER and MESSAGE");
    int bad = waku_check(&c, cmd, relay_given);
    if (bad) return bad;
    c.message = argv[optind + 1];
    if (strlen(c.message) > PL_NM_SESSION_BODY_MAX)
        return pl_cli_usage_error(cmd, "MESSAGE is longer than %u bytes", PL_NM_SESSION_BODY_MAX);
    char buf[4096];
    int rc = pick_store(&c.out, store, &store, buf, sizeof buf);
    if (rc != 0) return rc;
    if (!store)
        return pl_cli_error(
            &c.out, PL_ERR_NOT_FOUND,
            "no store yet: pair first ('pairlink app pair' or 'pairlink node-manager pair')");
    c.store = store;
    pl_store *s = NULL;
    pl_err e = open_store(store, &s);
    if (e != PL_OK) return pl_cli_store_error(&c.out, store, e);
    pl_nm_counterparty cp;
    e = pl_nm_store_find(s, argv[optind], &cp);
    pl_store_close(s);
    if (e != PL_OK) return find_error(&c.out, store, argv[optind], e);
    memcpy(c.target, cp.pub, PL_NM_KEY_BYTES);
    c.have_target = true;
    c.role = cp.role == PL_NM_ROLE_APP ? PL_NM_ROLE_NODE_MANAGER : PL_NM_ROLE_APP;
    if (c.verbose) pl_cli_log_init(true);
    /* A request is given the whole --timeout, handshake included. */
    return run_node(&c, NULL, timeout_s * 1000);
}
