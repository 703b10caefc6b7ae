/* SPDX-License-Identifier: Apache-2.0 */
/* Test driver for tests/interop/nm_e2e.sh: many node-manager-pairing apps
 * in one process, so that restart re-establishment with 50 (or 1000)
 * persisted counterparties takes seconds.
 *
 *   nm_fleet seed DIR COUNT NM_STORE
 *       creates DIR/app-<i>.db (+ .key) for i < COUNT, each storing the node
 *       manager of NM_STORE (its identity is created if missing), and stores
 *       every app in NM_STORE. Prints the node manager's key.
 *   nm_fleet run DIR COUNT RELAY_URL [SECONDS]
 *       runs the COUNT apps on one loop; prints "established N" each time the
 *       number of apps with an established session changes (first sessions
 *       and replacements both count: "sessions N" counts every ESTABLISHED),
 *       and "all established" once every app has one. Exits after SECONDS
 *       (default 60) or on SIGTERM. */
#include "pairlink/codec.h"
#include "pairlink/nm_node.h"
#include "pairlink/nm_store.h"
#include "pairlink/store.h"

#include <libwebsockets.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#define MAX_APPS 2000

static pl_nm_node *nodes[MAX_APPS];
static bool up[MAX_APPS];
static size_t n_apps, n_up, n_sessions;
static int closing;
static uv_timer_t stop_timer;
static uv_signal_t sigterm;

static void on_event(void *ud, pl_nm_node *n, const pl_nm_node_event *ev) {
    (void)n;
    size_t i = (size_t)(uintptr_t)ud;
    if (ev->kind != PL_NM_NODE_SESSION) return;
    const pl_nm_session_output *s = ev->session;
    if (s->event == PL_NM_SEV_ESTABLISHED) {
        n_sessions++;
        if (!up[i]) {
            up[i] = true;
            n_up++;
        }
        printf("sessions %zu established %zu\n", n_sessions, n_up);
        if (n_up == n_apps && !s->replaced) printf("all established\n");
        else if (s->replaced) printf("replaced %zu\n", i);
        fflush(stdout);
    } else if (s->event == PL_NM_SEV_REQUEST) {
        pl_nm_node_respond(n, ev->peer, s->id, (const uint8_t *)"ok", 2);
    }
}

static void on_closed(void *ud) {
    (void)ud;
    if (--closing == 0) {
        uv_close((uv_handle_t *)&stop_timer, NULL);
        uv_close((uv_handle_t *)&sigterm, NULL);
    }
}

static void stop_all(void) {
    if (closing) return;
    closing = (int)n_apps;
    for (size_t i = 0; i < n_apps; i++) pl_nm_node_close(nodes[i], 0, on_closed);
}

static void on_stop(uv_timer_t *t) {
    (void)t;
    stop_all();
}

static void on_sig(uv_signal_t *s, int sig) {
    (void)s, (void)sig;
    stop_all();
}

static int seed(const char *dir, size_t count, const char *nm_store) {
    uint8_t nm_priv[32], nm_pub[32];
    pl_err e = pl_nm_store_identity(nm_store, nm_priv, nm_pub, NULL);
    pl_store *nms = NULL;
    if (e == PL_OK) e = pl_store_open(&nms, nm_store);
    if (e == PL_OK) e = pl_nm_store_init(nms);
    int64_t now = pl_wall_clock_ms();
    for (size_t i = 0; e == PL_OK && i < count; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/app-%zu.db", dir, i);
        uint8_t priv[32], pub[32];
        pl_store *s = NULL;
        e = pl_nm_store_identity(path, priv, pub, NULL);
        if (e == PL_OK) e = pl_store_open(&s, path);
        if (e == PL_OK) e = pl_nm_store_init(s);
        pl_nm_counterparty c = {.role = PL_NM_ROLE_NODE_MANAGER, .first_seen_ms = now, .last_seen_ms = now};
        memcpy(c.pub, nm_pub, 32);
        snprintf(c.name, sizeof c.name, "fleet nm");
        if (e == PL_OK) e = pl_nm_store_put(s, &c);
        pl_store_close(s);
        pl_nm_counterparty a = {.role = PL_NM_ROLE_APP, .first_seen_ms = now, .last_seen_ms = now};
        memcpy(a.pub, pub, 32);
        snprintf(a.name, sizeof a.name, "fleet app %zu", i);
        if (e == PL_OK) e = pl_nm_store_put(nms, &a);
    }
    pl_store_close(nms);
    if (e != PL_OK) {
        fprintf(stderr, "nm_fleet seed: %s\n", pl_strerror(e));
        return 1;
    }
    char hex[65];
    pl_hex_encode(hex, sizeof hex, nm_pub, 32);
    printf("%s\n", hex);
    return 0;
}

static int run(const char *dir, size_t count, const char *relay, long seconds) {
    lws_set_log_level(LLL_ERR, NULL);
    uv_loop_t *loop = uv_default_loop();
    for (size_t i = 0; i < count; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/app-%zu.db", dir, i);
        pl_nm_node_opts o = {.role = PL_NM_ROLE_APP, .relay_url = relay, .store_path = path,
                             .sessions = true, .on_event = on_event, .ud = (void *)(uintptr_t)i};
        pl_err e = pl_nm_node_new(&nodes[i], loop, &o);
        if (e != PL_OK) {
            fprintf(stderr, "nm_fleet run: app %zu: %s\n", i, pl_strerror(e));
            return 1;
        }
        n_apps++;
    }
    uv_timer_init(loop, &stop_timer);
    uv_timer_start(&stop_timer, on_stop, (uint64_t)seconds * 1000, 0);
    uv_signal_init(loop, &sigterm);
    uv_signal_start(&sigterm, on_sig, SIGTERM);
    uv_run(loop, UV_RUN_DEFAULT);
    uv_loop_close(loop);
    return n_up == n_apps ? 0 : 1;
}

int main(int argc, char **argv) {
    pl_init();
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc >= 5 && !strcmp(argv[1], "seed")) {
        size_t count = strtoul(argv[3], NULL, 10);
        if (count < 1 || count > MAX_APPS) return 2;
        return seed(argv[2], count, argv[4]);
    }
    if (argc >= 5 && !strcmp(argv[1], "run")) {
        size_t count = strtoul(argv[3], NULL, 10);
        if (count < 1 || count > MAX_APPS) return 2;
        return run(argv[2], count, argv[4], argc > 5 ? strtol(argv[5], NULL, 10) : 60);
    }
    fprintf(stderr, "usage: nm_fleet seed DIR COUNT NM_STORE | run DIR COUNT RELAY_URL [SECONDS]\n");
    return 2;
}
