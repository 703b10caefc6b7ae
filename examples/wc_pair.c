/* SPDX-License-Identifier: Apache-2.0 */
/* A minimal WalletConnect pairing peer on the public API only.
 *
 *   example_wc_pair RELAY_URL STORE           create a pairing, print its URI
 *   example_wc_pair RELAY_URL STORE URI       pair with a URI
 *
 * It registers one protocol method, "example_echo", answers every request
 * for it with its own params, prints pairing events, and exits on Ctrl-C
 * once the relay acknowledged its last answer (at most 3 s).
 * Build: cc wc_pair.c $(pkg-config --cflags --libs pairlink libuv) */
#include <pairlink/wc_client.h>

#include <signal.h>
#include <stdio.h>
#include <string.h>

static void on_event(void *ud, pl_wc_client *c, const pl_wc_event *ev) {
    (void)ud, (void)c;
    static const char *const names[] = {"", "created", "activated", "renewed", "expired",
                                        "deleted", "ping", "pong", "request timeout",
                                        "unsupported method", "bad message"};
    printf("event: %s on %.12s...\n", names[ev->kind], ev->topic);
}

static void on_echo(void *ud, pl_wc_engine *e, const char *topic, const pl_rpc_msg *req) {
    (void)ud;
    /* Answer with the params we got: the engine seals and publishes it. */
    pl_err err = pl_wc_respond(e, topic, req->method, &req->id, req->params ? req->params : "null");
    if (err != PL_OK) fprintf(stderr, "respond: %s\n", pl_strerror(err));
}

static void on_closed(void *ud) { (void)ud; }

static void on_signal(uv_signal_t *s, int signum) {
    (void)signum;
    pl_wc_client_close(s->data, 3000, on_closed);
    uv_close((uv_handle_t *)s, NULL);
}

int main(int argc, char **argv) {
    if (argc != 3 && argc != 4) {
        fprintf(stderr, "usage: %s RELAY_URL STORE [URI]\n", argv[0]);
        return 2;
    }
    if (pl_init() != PL_OK) return 1;
    uv_loop_t loop;
    uv_loop_init(&loop);
    pl_wc_client_opts opts = {.relay_url = argv[1], .store_path = argv[2], .on_event = on_event};
    pl_wc_client *c = NULL;
    pl_err err = pl_wc_client_new(&c, &loop, &opts);
    if (err != PL_OK) {
        fprintf(stderr, "start: %s (%s)\n", pl_strerror(err), pl_errname(err));
        return 1;
    }
    pl_wc_engine *e = pl_wc_client_engine(c);
    const pl_wc_method echo = {"example_echo", 1400, 300, false, 1401, 300};
    pl_wc_register(e, &echo, on_echo, NULL, NULL);

    char topic[PL_TOPIC_HEX_SIZE];
    if (argc == 4) {
        err = pl_wc_pair(e, argv[3], strlen(argv[3]), pl_wc_client_now(c), topic);
    } else {
        const char *methods[] = {"example_echo"};
        char *uri = NULL;
        err = pl_wc_create(e, methods, 1, pl_wc_client_now(c), &uri, topic);
        if (err == PL_OK) printf("%s\n", uri);
        pl_free_secret(uri, uri ? strlen(uri) : 0);
    }
    if (err != PL_OK) fprintf(stderr, "pairing: %s (%s)\n", pl_strerror(err), pl_errname(err));

    uv_signal_t sig;
    uv_signal_init(&loop, &sig);
    sig.data = c;
    uv_signal_start(&sig, on_signal, SIGINT);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_run(&loop, UV_RUN_DEFAULT);
    return uv_loop_close(&loop) == 0 ? 0 : 1;
}
