/* SPDX-License-Identifier: Apache-2.0 */
/* SIGINT and SIGTERM for every command that runs a loop: one rule for the
 * exit status and for what is printed (docs/cli.md, "Exit status"). */
#include "cli/cli.h"

#include <signal.h>
#include <stdio.h>

static void on_signal(uv_signal_t *h, int signum) {
    pl_cli_signals *s = h->data;
    if (s->signum) return; /* already stopping */
    s->signum = signum;
    if (s->on_stop) s->on_stop(s->data, signum);
}

void pl_cli_signals_start(pl_cli_signals *s, uv_loop_t *loop,
                          void (*on_stop)(void *data, int signum), void *data) {
    s->signum = 0;
    s->on_stop = on_stop;
    s->data = data;
    uv_signal_init(loop, &s->sigint_);
    uv_signal_init(loop, &s->sigterm_);
    s->sigint_.data = s->sigterm_.data = s;
    uv_signal_start(&s->sigint_, on_signal, SIGINT);
    uv_signal_start(&s->sigterm_, on_signal, SIGTERM);
    s->started_ = true;
}

void pl_cli_signals_close(pl_cli_signals *s) {
    if (!s->started_) return;
    if (!uv_is_closing((uv_handle_t *)&s->sigint_)) uv_close((uv_handle_t *)&s->sigint_, NULL);
    if (!uv_is_closing((uv_handle_t *)&s->sigterm_)) uv_close((uv_handle_t *)&s->sigterm_, NULL);
}

int pl_cli_signal_status(int signum, bool serving) {
    if (signum == SIGINT) return 128 + SIGINT;
    if (signum == SIGTERM) return serving ? 0 : 128 + SIGTERM;
    return 128 + signum;
}

void pl_cli_signal_report(const pl_cli_out *o, int signum) {
    const char *name = signum == SIGINT ? "SIGINT" : signum == SIGTERM ? "SIGTERM" : "signal";
    if (o->json) {
        pl_cli_emit(o, json_pack("{s:s,s:s}", "event", "stopped", "signal", name));
    } else {
        fflush(stdout);
        fprintf(stderr, "pairlink %s: %s (%s)\n", o->cmd,
                signum == SIGINT ? "interrupted" : "stopped", name);
    }
}
