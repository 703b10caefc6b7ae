/* SPDX-License-Identifier: Apache-2.0 */
/* Shared by the demo's parts (src/cli/cmd_demo*.c). */
#ifndef PAIRLINK_CLI_DEMO_H
#define PAIRLINK_CLI_DEMO_H

#include "pairlink/common.h"

#include <stdarg.h>
#include <stdbool.h>
#include <uv.h>

typedef struct pl_demo {
    uv_loop_t loop;
    char dir[256];       /* temporary stores */
    char relay_url[64];
    bool waku;            /* the node-manager part over an embedded Waku network */
    char waku_peer[1200]; /* then: the relay node every side dials */
    const char *prefix;  /* "wc " or "nm " */
    int step;
    bool failed;
} pl_demo;

/* Run the loop until *flag is true or timeout_ms passes; returns *flag. */
bool pl__demo_run_until(uv_loop_t *loop, const bool *flag, int timeout_ms);
/* One numbered, readable line. */
void pl__demo_step(pl_demo *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Print the failure; returns 1. */
int pl__demo_fail(pl_demo *d, const char *what, pl_err e);
/* The node-manager part (src/cli/cmd_demo_nm.c). */
int pl__demo_nm_flow(pl_demo *d);

#endif
