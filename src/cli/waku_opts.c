/* SPDX-License-Identifier: Apache-2.0 */
/* The Waku network options shared by `pairlink waku node|subscribe|publish`
 * and the node-manager commands with --waku (see cli.h). */
#include "cli/cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void pl_cli_waku_init(pl_cli_waku_opts *w) {
    memset(w, 0, sizeof *w);
    w->cluster = PL_WAKU_DEFAULT_CLUSTER;
}

static bool parse_ulong(const char *s, unsigned long max, unsigned long *out) {
    char *end;
    errno = 0;
    if (!s || !*s || *s == '-' || *s == '+') return false;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || *end || v > max) return false;
    *out = v;
    return true;
}

int pl_cli_waku_option(pl_cli_waku_opts *w, const char *cmd, const char *name, const char *arg) {
    unsigned long v;
    if (!strcmp(name, "listen")) {
        if (w->nlisten == PL_CLI_WAKU_MAX_LISTEN)
            return -pl_cli_usage_error(cmd, "at most %d --listen", PL_CLI_WAKU_MAX_LISTEN);
        w->listen[w->nlisten++] = arg;
    } else if (!strcmp(name, "peer")) {
        if (w->npeers == PL_WAKU_NODE_MAX_PEERS_OPT)
            return -pl_cli_usage_error(cmd, "at most %d --peer", PL_WAKU_NODE_MAX_PEERS_OPT);
        w->peers[w->npeers++] = arg;
    } else if (!strcmp(name, "cluster")) {
        if (!parse_ulong(arg, 65535, &w->cluster))
            return -pl_cli_usage_error(cmd, "--cluster wants 0..65535, got '%s'", arg);
    } else if (!strcmp(name, "shard")) {
        if (!parse_ulong(arg, 65535, &v))
            return -pl_cli_usage_error(cmd, "--shard wants 0..65535, got '%s'", arg);
        if (w->nshards == PL_WAKU_NODE_MAX_SHARDS_OPT)
            return -pl_cli_usage_error(cmd, "at most %d --shard", PL_WAKU_NODE_MAX_SHARDS_OPT);
        w->shards[w->nshards++] = (uint16_t)v;
    } else if (!strcmp(name, "autosharding")) {
        if (!parse_ulong(arg, 1024, &w->autoshard) || w->autoshard == 0)
            return -pl_cli_usage_error(cmd, "--autosharding wants 1..1024 shards, got '%s'", arg);
    } else if (!strcmp(name, "key-file")) {
        w->key_file = arg;
    } else if (!strcmp(name, "muxer")) {
        if (!strcmp(arg, "yamux"))
            w->muxers = PL_P2P_MUXERS_YAMUX;
        else if (!strcmp(arg, "mplex"))
            w->muxers = PL_P2P_MUXERS_MPLEX;
        else if (!strcmp(arg, "both"))
            w->muxers = PL_P2P_MUXERS_DEFAULT;
        else
            return -pl_cli_usage_error(cmd, "--muxer wants yamux, mplex or both, got '%s'", arg);
    } else {
        return 0;
    }
    w->given = true;
    return 1;
}

int pl_cli_waku_check(const pl_cli_waku_opts *w, const char *cmd) {
    if (w->autoshard)
        for (size_t i = 0; i < w->nshards; i++)
            if (w->shards[i] >= w->autoshard)
                return pl_cli_usage_error(cmd, "--shard %u is outside --autosharding %lu",
                                          w->shards[i], w->autoshard);
    return 0;
}

void pl_cli_waku_node_opts(const pl_cli_waku_opts *w, pl_waku_node_opts *o) {
    pl_waku_node_opts_init(o);
    o->peers = w->peers;
    o->n_peers = w->npeers;
    o->sharding.cluster = (uint16_t)w->cluster;
    if (w->nshards) o->sharding.shard = w->shards[0];
    o->sharding.num_shards = (uint32_t)w->autoshard;
    o->shards = w->shards;
    o->n_shards = w->nshards;
    o->muxers = w->muxers;
}
