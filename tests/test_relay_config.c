/* SPDX-License-Identifier: Apache-2.0 */
/* The relay as a service (issue 13): the settings of `pairlink relay` (one
 * key table for flags and the config file, layers, errors with file:line,
 * reload diff, the allow-list file), the log line formats, the core's
 * limits changed live and its error counters, /health and /metrics bodies,
 * and frames redacted for the debug log. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pairlink/log.h"
#include "relay/observe.h"
#include "relay/relay_config.h"
#include "relay/relay_core.h"
#include "support/support.h"

#define DID_A "did:key:z6MkodHZwneVRShtaLf8JKYkxpDGp1vGZnpGmdBpX8M2exxH"
#define DID_B "did:key:z6MkqeYpRzQ1gfpuH2XQmPBqHyMBx4VrEe7QGj7TqwHLx3hN"

static char tmpdir[64];

static int setup(void **state) {
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/pl-relaycfg.XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Write text to tmpdir/name; returns the path (static buffer per call site). */
static const char *write_file(const char *name, const char *text, char *path, size_t cap) {
    snprintf(path, cap, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return path;
}

static size_t key(const char *name) {
    int k = pl__relay_config_key_find(name);
    assert_true(k >= 0);
    return (size_t)k;
}

static void test_keys_are_the_flags(void **state) {
    (void)state;
    static const char *const flags[] = {"listen",
                                        "db",
                                        "require-auth",
                                        "public-url",
                                        "ping-interval",
                                        "idle-timeout",
                                        "mailbox-limit",
                                        "max-message",
                                        "rate-limit",
                                        "allowance",
                                        "max-topics",
                                        "max-memory",
                                        "max-stored",
                                        "max-messages",
                                        "max-topics-total",
                                        "quota-messages",
                                        "quota-bytes",
                                        "quota-topics",
                                        "max-conns",
                                        "max-conns-per-addr",
                                        "max-inflight-bytes",
                                        "max-queue",
                                        "fetch-page",
                                        "handshake-timeout",
                                        "socket-sndbuf",
                                        "tls-cert",
                                        "tls-key",
                                        "fault",
                                        "verbose",
                                        "log-level",
                                        "log-format",
                                        "allow",
                                        "allow-file",
                                        "health",
                                        "metrics",
                                        "cluster",
                                        "cluster-replicas",
                                        "instance-id",
                                        "cluster-ca",
                                        "cluster-cert",
                                        "cluster-key"};
    assert_int_equal(pl__relay_config_nkeys(), sizeof flags / sizeof flags[0]);
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++) {
        int k = pl__relay_config_key_find(flags[i]);
        assert_true(k >= 0);
        assert_string_equal(pl__relay_config_key_name((size_t)k), flags[i]);
    }
    assert_int_equal(pl__relay_config_key_find("config"), -1); /* not inside a file */
    assert_int_equal(pl__relay_config_key_find("--listen"), -1);
    assert_false(pl__relay_config_key_has_arg(key("require-auth")));
    assert_true(pl__relay_config_key_has_arg(key("listen")));
}

/* --cluster and its companions: values, and the checks across keys. */
static void test_cluster_keys(void **state) {
    (void)state;
    pl__relay_config c;
    char why[256];
    pl__relay_config_init(&c);
    static const char *const bad[][2] = {
        {"cluster", "http://h:4222"}, {"cluster", ""},
        {"cluster-replicas", "0"},    {"cluster-replicas", "6"},
        {"instance-id", "a.b"},       {"instance-id", "a b"},
        {"instance-id", ""},          {"instance-id", "x>"},
        {"cluster", "nats://a:1,"},   {"cluster", "tls://"},
        {"cluster", "nats://a b:1"},  {"cluster-ca", ""},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        why[0] = '\0';
        assert_int_equal(pl__relay_config_set(&c, key(bad[i][0]), bad[i][1], why, sizeof why),
                         PL_ERR_CONFIG_VALUE);
        assert_true(strlen(why) > 0);
    }
    assert_int_equal(pl__relay_config_set(&c, key("cluster-replicas"), "3", why, sizeof why),
                     PL_OK);
    assert_int_equal(pl__relay_config_finish(&c, why, sizeof why), PL_ERR_CONFIG_VALUE);
    assert_non_null(strstr(why, "need cluster"));
    assert_int_equal(pl__relay_config_set(&c, key("cluster"), "nats://10.0.0.1:4222,nats://h:4222",
                                          why, sizeof why),
                     PL_OK);
    assert_int_equal(pl__relay_config_set(&c, key("instance-id"), "relay-a", why, sizeof why),
                     PL_OK);
    assert_int_equal(pl__relay_config_finish(&c, why, sizeof why), PL_OK);
    assert_string_equal(c.cluster, "nats://10.0.0.1:4222,nats://h:4222");
    assert_int_equal(c.cluster_replicas, 3);
    assert_string_equal(c.instance_id, "relay-a");
    /* A reload cannot move a running relay to another cluster. */
    pl__relay_config n;
    pl__relay_config_init(&n);
    assert_int_equal(pl__relay_config_set(&n, key("cluster"), "nats://other:4222", why, sizeof why),
                     PL_OK);
    assert_int_equal(pl__relay_config_finish(&n, why, sizeof why), PL_OK);
    char live[256], restart[256];
    pl__relay_config_diff(&c, &n, live, sizeof live, restart, sizeof restart);
    assert_non_null(strstr(restart, "cluster"));
    pl__relay_config_keep_restart(&n, &c);
    assert_string_equal(n.cluster, c.cluster);
    pl__relay_config_free(&n);
    /* TLS and a NATS user: tls:// URLs with USER:PASS@, a CA, a client
     * certificate only with its key. A value that was refused is never
     * echoed (it may hold a password). */
    assert_int_equal(
        pl__relay_config_set(&c, key("cluster"), "tls://u:s3cret@h:1,nats://x", why, sizeof why),
        PL_OK);
    assert_int_equal(
        pl__relay_config_set(&c, key("cluster"), "https://u:s3cret@h:1", why, sizeof why),
        PL_ERR_CONFIG_VALUE);
    assert_null(strstr(why, "s3cret"));
    assert_int_equal(
        pl__relay_config_set(&c, key("cluster"), "tls://u:s3cret@h:1", why, sizeof why), PL_OK);
    assert_int_equal(
        pl__relay_config_set(&c, key("cluster-ca"), "/etc/nats/ca.pem", why, sizeof why), PL_OK);
    assert_int_equal(
        pl__relay_config_set(&c, key("cluster-cert"), "/etc/nats/c.pem", why, sizeof why), PL_OK);
    assert_int_equal(pl__relay_config_finish(&c, why, sizeof why), PL_ERR_CONFIG_VALUE);
    assert_non_null(strstr(why, "cluster-key"));
    assert_int_equal(
        pl__relay_config_set(&c, key("cluster-key"), "/etc/nats/c.key", why, sizeof why), PL_OK);
    assert_int_equal(pl__relay_config_finish(&c, why, sizeof why), PL_OK);
    assert_string_equal(c.cluster_ca, "/etc/nats/ca.pem");
    pl__relay_config_init(&n);
    assert_int_equal(pl__relay_config_set(&n, key("cluster-ca"), "/x.pem", why, sizeof why), PL_OK);
    assert_int_equal(pl__relay_config_finish(&n, why, sizeof why), PL_ERR_CONFIG_VALUE);
    assert_non_null(strstr(why, "need cluster"));
    pl__relay_config_free(&n);
    assert_int_equal(pl__relay_config_set(&c, key("db"), "/tmp/x.db", why, sizeof why), PL_OK);
    assert_int_equal(pl__relay_config_finish(&c, why, sizeof why), PL_ERR_CONFIG_VALUE);
    assert_non_null(strstr(why, "exclude"));
    pl__relay_config_free(&c);
}

static void test_values(void **state) {
    (void)state;
    pl__relay_config c;
    char why[256];
    pl__relay_config_init(&c);
    assert_int_equal(pl__relay_config_set(&c, key("listen"), "[::1]:8787", why, sizeof why), PL_OK);
    assert_int_equal(pl__relay_config_set(&c, key("listen"), "0.0.0.0:0", why, sizeof why), PL_OK);
    assert_int_equal(c.nlisten, 2);
    assert_string_equal(c.listen[0].host, "::1");
    assert_true(c.listen[0].ipv6);
    assert_int_equal(c.listen[0].port, 8787);
    assert_false(c.listen[1].ipv6);
    /* bad values: a named error and a sentence */
    static const char *const bad[][2] = {
        {"listen", "::1:8787"},     {"listen", "[::1]8787"},   {"listen", "host:99999"},
        {"listen", "[]:1"},         {"max-conns", "0"},        {"max-conns", "-1"},
        {"max-conns", "12x"},       {"max-memory", "1T"},      {"rate-limit", "1000001"},
        {"log-level", "trace"},     {"log-format", "xml"},     {"metrics", "maybe"},
        {"allow", "did:key:nope"},  {"allowance", DID_A "=0"}, {"require-auth", "perhaps"},
        {"public-url", "http://x"}, {"fault", "close=999"},    {"ping-interval", "0"},
        {"max-conns", ""},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        why[0] = '\0';
        assert_int_equal(pl__relay_config_set(&c, key(bad[i][0]), bad[i][1], why, sizeof why),
                         PL_ERR_CONFIG_VALUE);
        assert_true(strlen(why) > 0);
    }
    assert_int_equal(pl__relay_config_set(&c, key("max-memory"), "64M", why, sizeof why), PL_OK);
    assert_int_equal(c.max_memory, (size_t)64 << 20);
    assert_int_equal(pl__relay_config_set(&c, key("rate-limit"), "0", why, sizeof why), PL_OK);
    assert_true(c.limits.rate_unlimited);
    assert_int_equal(pl__relay_config_set(&c, key("require-auth"), NULL, why, sizeof why), PL_OK);
    assert_true(c.require_auth);
    assert_int_equal(pl__relay_config_set(&c, key("require-auth"), "off", why, sizeof why), PL_OK);
    assert_false(c.require_auth);
    assert_int_equal(pl__relay_config_set(&c, key("verbose"), NULL, why, sizeof why), PL_OK);
    assert_int_equal(c.log_level, PL_LOG_DEBUG);
    assert_int_equal(pl__relay_config_set(&c, key("log-level"), "warn", why, sizeof why), PL_OK);
    assert_int_equal(c.log_level, PL_LOG_WARN);
    assert_int_equal(pl__relay_config_set(&c, key("allowance"), DID_A "=7", why, sizeof why),
                     PL_OK);
    pl__relay_limits l;
    pl__relay_config_limits(&c, &l);
    assert_int_equal(l.nallowances, 1);
    assert_string_equal(l.allowances[0].did, DID_A);
    assert_int_equal(l.allowances[0].rate_per_s, 7);
    assert_int_equal(l.allowances[0].burst, 35);
    pl__relay_config_free(&c);
}

static void test_file_and_layers(void **state) {
    (void)state;
    char path[256], why[512];
    write_file("relay.conf",
               "# a comment\n"
               "\n"
               "listen 127.0.0.1:0\n"
               "listen = [::1]:0\n"
               "  max-conns = 50   \n"
               "max-conns-per-addr\t9\n"
               "require-auth\n"
               "log-format json\r\n"
               "db /var/lib/x.db\n",
               path, sizeof path);
    pl__relay_config c;
    pl__relay_config_init(&c);
    assert_int_equal(pl__relay_config_load(&c, path, why, sizeof why), PL_OK);
    assert_int_equal(c.nlisten, 2);
    assert_int_equal(c.limits.max_conns, 50);
    assert_int_equal(c.limits.max_conns_per_addr, 9);
    assert_true(c.require_auth);
    assert_int_equal(c.log_format, PL_LOG_FORMAT_JSON);
    assert_string_equal(c.db, "/var/lib/x.db");
    /* the command line: a flag wins, a list given there replaces the file's */
    pl__relay_config_layer(&c);
    assert_int_equal(pl__relay_config_set(&c, key("max-conns"), "70", why, sizeof why), PL_OK);
    assert_int_equal(pl__relay_config_set(&c, key("listen"), "127.0.0.1:1234", why, sizeof why),
                     PL_OK);
    assert_int_equal(pl__relay_config_set(&c, key("listen"), "127.0.0.2:1234", why, sizeof why),
                     PL_OK);
    assert_int_equal(pl__relay_config_finish(&c, why, sizeof why), PL_OK);
    assert_int_equal(c.limits.max_conns, 70);
    assert_int_equal(c.nlisten, 2);
    assert_string_equal(c.listen[0].host, "127.0.0.1");
    assert_int_equal(c.listen[0].port, 1234);
    assert_string_equal(c.listen[1].host, "127.0.0.2");
    pl__relay_config_free(&c);

    /* no listener anywhere: the default */
    pl__relay_config_init(&c);
    assert_int_equal(pl__relay_config_finish(&c, why, sizeof why), PL_OK);
    assert_int_equal(c.nlisten, 1);
    assert_string_equal(c.listen[0].host, "127.0.0.1");
    assert_int_equal(c.listen[0].port, 8787);
    pl__relay_config_free(&c);
}

static void test_file_errors(void **state) {
    (void)state;
    char path[256], why[512], want[300];
    static const struct {
        const char *text;
        pl_err err;
        const char *says;
    } cases[] = {
        {"max-conns 5\nmax-con 7\n", PL_ERR_CONFIG_KEY, ":2: unknown key 'max-con'"},
        {"--listen 127.0.0.1:1\n", PL_ERR_CONFIG_KEY, ":1: unknown key '--listen' (write keys"},
        {"# x\n\nmax-conns = lots\n", PL_ERR_CONFIG_VALUE, ":3: max-conns: wants 1..100000000"},
        {"config other.conf\n", PL_ERR_CONFIG_KEY, ":1: unknown key 'config'"},
        {"listen\n", PL_ERR_CONFIG_VALUE, ":1: listen: wants a value"},
        {"require-auth maybe\n", PL_ERR_CONFIG_VALUE, ":1: require-auth: wants true or false"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        write_file("bad.conf", cases[i].text, path, sizeof path);
        pl__relay_config c;
        pl__relay_config_init(&c);
        assert_int_equal(pl__relay_config_load(&c, path, why, sizeof why), cases[i].err);
        snprintf(want, sizeof want, "%s%s", path, cases[i].says);
        if (strncmp(why, want, strlen(want)) != 0) fail_msg("got '%s', want '%s...'", why, want);
        pl__relay_config_free(&c);
    }
    /* a line over the bound, a missing file, a binary file */
    char *big = malloc(PL__RELAY_CONF_LINE_MAX + 16);
    assert_non_null(big);
    memset(big, 'x', PL__RELAY_CONF_LINE_MAX + 8);
    strcpy(big + PL__RELAY_CONF_LINE_MAX + 8, "\n");
    write_file("long.conf", big, path, sizeof path);
    free(big);
    pl__relay_config c;
    pl__relay_config_init(&c);
    assert_int_equal(pl__relay_config_load(&c, path, why, sizeof why), PL_ERR_TOO_LARGE);
    assert_non_null(strstr(why, ":1: line longer than"));
    snprintf(path, sizeof path, "%s/missing.conf", tmpdir);
    assert_int_equal(pl__relay_config_load(&c, path, why, sizeof why), PL_ERR_IO);
    assert_non_null(strstr(why, "missing.conf: cannot read: No such file"));
    snprintf(path, sizeof path, "%s/nul.conf", tmpdir);
    FILE *f = fopen(path, "wb");
    fwrite("max-conns 1\n\0\n", 1, 14, f);
    fclose(f);
    assert_int_equal(pl__relay_config_load(&c, path, why, sizeof why), PL_ERR_CONFIG_VALUE);
    assert_non_null(strstr(why, "NUL"));
    pl__relay_config_free(&c);
}

static void test_allow_list(void **state) {
    (void)state;
    char path[256], why[512];
    pl__relay_config c;
    pl__relay_config_init(&c);
    assert_int_equal(pl__relay_config_set(&c, key("allow"), DID_B, why, sizeof why), PL_OK);
    /* an allow-list without require-auth is a mistake */
    assert_int_equal(pl__relay_config_finish(&c, why, sizeof why), PL_ERR_CONFIG_VALUE);
    assert_non_null(strstr(why, "require-auth"));
    c.require_auth = true;
    write_file("allow.txt", "# the node managers\n" DID_A "\n\n" DID_B "\n", path, sizeof path);
    assert_int_equal(pl__relay_config_set(&c, key("allow-file"), path, why, sizeof why), PL_OK);
    assert_int_equal(pl__relay_config_finish(&c, why, sizeof why), PL_OK);
    assert_int_equal(c.nallow, 2); /* DID_B given twice: once */
    assert_true(pl__relay_config_allowed(&c, DID_A));
    assert_true(pl__relay_config_allowed(&c, DID_B));
    assert_false(pl__relay_config_allowed(&c, "did:key:z6Mkother"));
    /* finish again (a reload re-reads the file): --allow keys stay, the
     * file's are read anew */
    write_file("allow.txt", DID_A "\n", path, sizeof path);
    assert_int_equal(pl__relay_config_finish(&c, why, sizeof why), PL_OK);
    assert_int_equal(c.nallow, 2);
    write_file("allow.txt", "", path, sizeof path);
    assert_int_equal(pl__relay_config_finish(&c, why, sizeof why), PL_OK);
    assert_int_equal(c.nallow, 1);
    assert_true(pl__relay_config_allowed(&c, DID_B));
    assert_false(pl__relay_config_allowed(&c, DID_A));
    write_file("allow.txt", DID_A "\nnot-a-key\n", path, sizeof path);
    assert_int_equal(pl__relay_config_finish(&c, why, sizeof why), PL_ERR_CONFIG_VALUE);
    assert_non_null(strstr(why, "allow.txt:2: not a did:key"));
    pl__relay_config_free(&c);
}

static void test_diff(void **state) {
    (void)state;
    char why[256], live[256], restart[256];
    pl__relay_config a, b;
    pl__relay_config_init(&a);
    pl__relay_config_init(&b);
    assert_int_equal(pl__relay_config_finish(&a, why, sizeof why), PL_OK);
    assert_int_equal(pl__relay_config_finish(&b, why, sizeof why), PL_OK);
    assert_int_equal(pl__relay_config_diff(&a, &b, live, sizeof live, restart, sizeof restart), 0);
    assert_string_equal(live, "");
    assert_string_equal(restart, "");
    assert_int_equal(pl__relay_config_set(&b, key("max-conns"), "3", why, sizeof why), PL_OK);
    assert_int_equal(pl__relay_config_set(&b, key("rate-limit"), "9", why, sizeof why), PL_OK);
    assert_int_equal(pl__relay_config_set(&b, key("log-format"), "json", why, sizeof why), PL_OK);
    assert_int_equal(pl__relay_config_set(&b, key("db"), "/x.db", why, sizeof why), PL_OK);
    pl__relay_config_layer(&b);
    assert_int_equal(pl__relay_config_set(&b, key("listen"), "127.0.0.1:9", why, sizeof why),
                     PL_OK);
    assert_int_equal(pl__relay_config_diff(&a, &b, live, sizeof live, restart, sizeof restart), 5);
    assert_string_equal(live, "rate-limit max-conns log-format");
    assert_string_equal(restart, "listen db");
    /* what needs a restart keeps its running value */
    pl__relay_config_keep_restart(&b, &a);
    assert_int_equal(pl__relay_config_diff(&a, &b, live, sizeof live, restart, sizeof restart), 3);
    assert_string_equal(restart, "");
    assert_string_equal(b.db, "");
    pl__relay_config_move(&a, &b);
    assert_int_equal(a.limits.max_conns, 3);
    pl__relay_config_free(&a);
    pl__relay_config_free(&b);
}

static void test_log_lines(void **state) {
    (void)state;
    char buf[1024];
    pl_log_level lv;
    assert_true(pl_log_level_parse("warn", &lv));
    assert_int_equal(lv, PL_LOG_WARN);
    assert_false(pl_log_level_parse("loud", &lv));
    assert_int_equal(lv, PL_LOG_OFF);
    int64_t t = INT64_C(1767225600123); /* 2026-01-01T00:00:00.123Z */
    pl_log_format_line(buf, sizeof buf, PL_LOG_FORMAT_TEXT, t, PL_LOG_INFO, "relay", "stopped",
                       NULL, 0);
    assert_string_equal(buf, "2026-01-01T00:00:00.123Z relay info: stopped");
    const pl_log_field f[] = {{"conn", NULL, 42},
                              {"peer", "127.0.0.1", 0},
                              {"msg", "dropped: reserved", 0},
                              {"odd", "quote \" newline \n tab \t", 0}};
    size_t n = pl_log_format_line(buf, sizeof buf, PL_LOG_FORMAT_JSON, t, PL_LOG_WARN, "relay",
                                  "conn 42 \"closed\"\n", f, 4);
    assert_int_equal(n, strlen(buf));
    assert_null(strchr(buf, '\n')); /* one line */
    json_error_t je;
    json_t *j = json_loads(buf, 0, &je);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "ts")), "2026-01-01T00:00:00.123Z");
    assert_string_equal(json_string_value(json_object_get(j, "level")), "warn");
    assert_string_equal(json_string_value(json_object_get(j, "source")), "relay");
    assert_string_equal(json_string_value(json_object_get(j, "msg")), "conn 42 \"closed\"\n");
    assert_int_equal(json_integer_value(json_object_get(j, "conn")), 42);
    assert_string_equal(json_string_value(json_object_get(j, "peer")), "127.0.0.1");
    assert_string_equal(json_string_value(json_object_get(j, "odd")), "quote \" newline \n tab \t");
    json_decref(j);
    /* not UTF-8: still one valid JSON line */
    pl_log_format_line(buf, sizeof buf, PL_LOG_FORMAT_JSON, t, PL_LOG_ERROR, "libwebsockets",
                       "bad \xff byte", NULL, 0);
    j = json_loads(buf, 0, &je);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "msg")), "bad ? byte");
    json_decref(j);
    /* cut to the buffer like snprintf */
    char small[16];
    n = pl_log_format_line(small, sizeof small, PL_LOG_FORMAT_TEXT, t, PL_LOG_INFO, "relay", "x",
                           NULL, 0);
    assert_int_equal(strlen(small), sizeof small - 1);
    assert_true(n > sizeof small);
}

/* ---- the core: limits changed live, errors counted by code ---------------------------- */

static pl__relay_action pop_send(pl__relay_core *c) {
    pl__relay_action a;
    for (;;) {
        assert_true(pl__relay_core_pop(c, &a));
        if (a.kind == PL__RELAY_SEND) return a;
        pl__relay_action_release(&a);
    }
}

static int error_index(int code) {
    for (size_t i = 0; i < PL_RELAY_ERR_KINDS; i++)
        if (pl__relay_error_code(i) == code) return (int)i;
    fail_msg("code %d not counted", code);
    return -1;
}

static void test_core_live_limits(void **state) {
    (void)state;
    pl__relay_limits l;
    memset(&l, 0, sizeof l);
    l.no_store = true;
    l.max_conns = 2;
    l.rate_per_s = 1;
    l.rate_burst = 1;
    pl__relay_core *c;
    int64_t now = INT64_C(1767225600000);
    assert_int_equal(pl__relay_core_new(&c, &l, now), PL_OK);
    assert_int_equal(pl__relay_core_admit(c, "192.0.2.1"), PL_OK);
    assert_int_equal(pl__relay_core_admit(c, "192.0.2.2"), PL_OK);
    assert_int_equal(pl__relay_core_admit(c, "192.0.2.3"), PL_ERR_RELAY_BUSY);
    assert_int_equal(pl__relay_core_open(c, 1, NULL, "192.0.2.1", now), PL_OK);
    static const char sub[] =
        "{\"id\":1,\"jsonrpc\":\"2.0\",\"method\":\"irn_subscribe\",\"params\":"
        "{\"topic\":\"0000000000000000000000000000000000000000000000000000000"
        "000000000\"}}";
    assert_int_equal(pl__relay_core_receive(c, 1, sub, strlen(sub), now), PL_OK);
    pl__relay_action a = pop_send(c);
    pl__relay_action_release(&a);
    /* the bucket of 1 is empty: 3001, counted */
    assert_int_equal(pl__relay_core_receive(c, 1, sub, strlen(sub), now), PL_ERR_RATE_LIMITED);
    a = pop_send(c);
    assert_non_null(strstr(a.text, "3001"));
    pl__relay_action_release(&a);
    /* a bad frame and an unknown method, counted by code */
    assert_int_equal(pl__relay_core_receive(c, 1, "{nope", 5, now + 5000), PL_ERR_JSON);
    a = pop_send(c);
    pl__relay_action_release(&a);
    pl__relay_stats st;
    pl__relay_core_stats(c, &st);
    assert_int_equal(st.rpc_errors[error_index(PL_RELAY_ERR_RATE)], 1);
    assert_int_equal(st.rpc_errors[error_index(PL_RELAY_ERR_PARSE)], 1);
    assert_int_equal(st.rpc_errors[error_index(PL_RELAY_ERR_METHOD_NOT_FOUND)], 0);
    assert_int_equal(st.errors, 2);

    /* a reload: more connections, no rate limit; inconsistent limits are
     * refused and change nothing */
    pl__relay_limits bad;
    memset(&bad, 0, sizeof bad);
    bad.max_message_bytes = PL_RELAY_DEF_MAX_FRAME + 1;
    assert_int_equal(pl__relay_core_set_limits(c, &bad), PL_ERR_INVALID_ARG);
    assert_int_equal(pl__relay_core_limits(c)->max_conns, 2);
    pl__relay_limits more;
    memset(&more, 0, sizeof more);
    more.max_conns = 3;
    more.rate_unlimited = true;
    assert_int_equal(pl__relay_core_set_limits(c, &more), PL_OK);
    assert_int_equal(pl__relay_core_limits(c)->max_conns, 3);
    assert_true(pl__relay_core_limits(c)->no_store); /* kept from creation */
    assert_int_equal(pl__relay_core_limits(c)->max_mailbox_per_topic,
                     PL_RELAY_DEF_MAILBOX_PER_TOPIC);
    assert_int_equal(pl__relay_core_admit(c, "192.0.2.3"), PL_OK);
    for (int i = 0; i < 20; i++) {
        assert_int_equal(pl__relay_core_receive(c, 1, sub, strlen(sub), now + 5000), PL_OK);
        a = pop_send(c);
        pl__relay_action_release(&a);
    }
    pl__relay_core_close(c, 1);
    pl__relay_core_unadmit(c, "192.0.2.1");
    pl__relay_core_unadmit(c, "192.0.2.2");
    pl__relay_core_unadmit(c, "192.0.2.3");
    pl__relay_core_free(c);
}

/* ---- /health, /metrics, debug frames --------------------------------------------------- */

/* The value of the sample `series` (a whole line's first field) in text. */
static long long sample(const char *text, const char *series) {
    size_t n = strlen(series);
    for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        if (!strncmp(p, series, n) && p[n] == ' ') return atoll(p + n + 1);
    }
    fail_msg("no sample %s", series);
    return -1;
}

static void test_health_and_metrics(void **state) {
    (void)state;
    pl__relay_observed o;
    memset(&o, 0, sizeof o);
    o.memory_budget = 1000;
    o.max_memory = 100000;
    o.rss = 50000;
    o.uptime_ms = 61500;
    o.listeners = 2;
    o.st.conns = 3;
    o.st.sockets = 4;
    o.st.topics = 5;
    o.st.messages = 6;
    o.st.message_bytes = 700;
    o.st.published = 8;
    o.st.delivered = 9;
    o.st.memory = 749;
    o.st.rpc_errors[error_index(PL_RELAY_ERR_INVALID_PARAMS)] = 11;
    o.auth_refused = 2;
    o.not_allowed = 1;
    o.sockets_refused = 12;
    char body[512];
    assert_true(pl__relay_healthy(&o));
    assert_int_equal(pl__relay_health_json(&o, body, sizeof body), 200);
    json_t *j = json_loads(body, 0, NULL);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "status")), "ok");
    assert_int_equal(json_integer_value(json_object_get(j, "uptime_s")), 61);
    assert_int_equal(json_integer_value(json_object_get(j, "connections")), 3);
    json_decref(j);
    /* at the bulk limit (3/4 of the budget): over budget, 503 */
    o.st.memory = 750;
    assert_false(pl__relay_healthy(&o));
    assert_int_equal(pl__relay_health_json(&o, body, sizeof body), 503);
    assert_non_null(strstr(body, "\"status\":\"over_memory_budget\""));
    o.st.memory = 10;
    o.rss = 100001; /* the process over --max-memory */
    assert_int_equal(pl__relay_health_json(&o, body, sizeof body), 503);
    o.rss = 50000;
    /* a cluster instance: healthy while connected to NATS */
    o.cluster = true;
    o.cl.connected = true;
    assert_int_equal(pl__relay_health_json(&o, body, sizeof body), 200);
    o.cl.connected = false;
    assert_false(pl__relay_healthy(&o));
    assert_int_equal(pl__relay_health_json(&o, body, sizeof body), 503);
    assert_non_null(strstr(body, "\"status\":\"cluster_disconnected\""));
    o.cl.connected = true;
    o.cl.instances = 2;
    o.cl.puts = 40;
    o.cl.put_failures = 1;
    o.cl.loads = 7;
    o.cl.load_failures = 2;
    o.cl.rooms = 5;
    o.cl.rooms_failed = 1;

    char *text;
    size_t len;
    assert_int_equal(pl__relay_metrics_text(&o, &text, &len), PL_OK);
    assert_int_equal(len, strlen(text));
    assert_int_equal(sample(text, "pairlink_relay_connections"), 3);
    assert_int_equal(sample(text, "pairlink_relay_topics"), 5);
    assert_int_equal(sample(text, "pairlink_relay_stored_messages"), 6);
    assert_int_equal(sample(text, "pairlink_relay_stored_message_bytes"), 700);
    assert_int_equal(sample(text, "pairlink_relay_publishes_total"), 8);
    assert_int_equal(sample(text, "pairlink_relay_deliveries_total"), 9);
    assert_int_equal(sample(text, "pairlink_relay_listeners"), 2);
    assert_int_equal(sample(text, "process_resident_memory_bytes"), 50000);
    assert_int_equal(
        sample(text, "pairlink_relay_refusals_total{kind=\"jsonrpc\",code=\"-32602\"}"), 11);
    assert_int_equal(sample(text, "pairlink_relay_refusals_total{kind=\"jsonrpc\",code=\"3001\"}"),
                     0);
    assert_int_equal(sample(text, "pairlink_relay_refusals_total{kind=\"http\",code=\"401\"}"), 3);
    assert_int_equal(sample(text, "pairlink_relay_refusals_total{kind=\"socket\",code=\"busy\"}"),
                     12);
    assert_int_equal(sample(text, "pairlink_relay_cluster_connected"), 1);
    assert_int_equal(sample(text, "pairlink_relay_cluster_instances"), 2);
    assert_int_equal(sample(text, "pairlink_relay_cluster_puts_total{result=\"stored\"}"), 40);
    assert_int_equal(sample(text, "pairlink_relay_cluster_puts_total{result=\"failed\"}"), 1);
    assert_int_equal(sample(text, "pairlink_relay_cluster_loads_total{result=\"ok\"}"), 5);
    assert_int_equal(sample(text, "pairlink_relay_cluster_loads_total{result=\"failed\"}"), 2);
    assert_int_equal(sample(text, "pairlink_relay_cluster_rooms_total{result=\"answered\"}"), 4);
    assert_int_equal(sample(text, "pairlink_relay_cluster_rooms_total{result=\"failed\"}"), 1);
    /* exposition format 0.0.4: every line a comment or "name[{labels}] value",
     * every sample's family announced with HELP and TYPE first */
    for (char *p = text; *p;) {
        char *nl = strchr(p, '\n');
        assert_non_null(nl); /* the last line ends too */
        *nl = '\0';
        if (p[0] == '#') {
            assert_true(!strncmp(p, "# HELP ", 7) || !strncmp(p, "# TYPE ", 7));
        } else {
            char name[128];
            assert_int_equal(sscanf(p, "%127[a-z_]", name), 1);
            char help[160];
            snprintf(help, sizeof help, "# TYPE %s ", name);
            assert_non_null(strstr(text, help));
            const char *sp = strrchr(p, ' ');
            assert_non_null(sp);
            for (const char *d = sp + 1; *d; d++)
                assert_true(*d >= '0' && *d <= '9');
        }
        *nl = '\n';
        p = nl + 1;
    }
    free(text);
}

static void test_redact(void **state) {
    (void)state;
    char out[256];
    static const char pub[] =
        "{\"id\":1,\"jsonrpc\":\"2.0\",\"method\":\"irn_publish\",\"params\":{\"topic\":\"ab\","
        "\"message\":\"SECRETSECRETSECRET\",\"ttl\":300,\"attestation\":\"ATTEST\"}}";
    pl__relay_redact_frame(pub, strlen(pub), out, sizeof out);
    assert_null(strstr(out, "SECRET"));
    assert_null(strstr(out, "ATTEST"));
    assert_non_null(strstr(out, "\"message\":\"<18 bytes>\""));
    assert_non_null(strstr(out, "\"topic\":\"ab\""));
    assert_non_null(strstr(out, "irn_publish"));
    static const char batch[] =
        "{\"id\":2,\"jsonrpc\":\"2.0\",\"method\":\"irn_batchPublish\",\"params\":{\"messages\":"
        "[{\"topic\":\"t\",\"message\":\"HIDDEN1\"},{\"topic\":\"u\",\"message\":\"HIDDEN2\"}]}}";
    pl__relay_redact_frame(batch, strlen(batch), out, sizeof out);
    assert_null(strstr(out, "HIDDEN"));
    static const char push[] =
        "{\"id\":3,\"jsonrpc\":\"2.0\",\"method\":\"wc_proposeSession\","
        "\"params\":{\"pairingTopic\":\"p\",\"sessionProposal\":\"PROPOSAL\"}}";
    pl__relay_redact_frame(push, strlen(push), out, sizeof out);
    assert_null(strstr(out, "PROPOSAL"));
    pl__relay_redact_frame("not json SECRET", 15, out, sizeof out);
    assert_string_equal(out, "<15 bytes, not JSON>");
    char small[24];
    pl__relay_redact_frame(pub, strlen(pub), small, sizeof small);
    assert_int_equal(strlen(small), sizeof small - 1);
    assert_string_equal(small + sizeof small - 4, "...");
}

/* The JWT audiences of IPv6 listeners: the bracketed address, and on
 * loopback or the wildcard [::1] and localhost, never 127.0.0.1. */
static void test_ipv6_audiences(void **state) {
    (void)state;
    pl__relay_audience a;
    memset(&a, 0, sizeof a);
    assert_int_equal(pl__relay_audience_default(&a, "[::1]", 8787, false), PL_OK);
    assert_true(pl__relay_audience_match(&a, "ws://[::1]:8787"));
    assert_true(pl__relay_audience_match(&a, "ws://localhost:8787"));
    assert_false(pl__relay_audience_match(&a, "ws://127.0.0.1:8787"));
    memset(&a, 0, sizeof a);
    assert_int_equal(pl__relay_audience_default(&a, "[::]", 443, true), PL_OK);
    assert_true(pl__relay_audience_match(&a, "wss://[::1]"));
    assert_true(pl__relay_audience_match(&a, "wss://localhost/"));
    assert_false(pl__relay_audience_match(&a, "wss://[::]"));
    assert_true(pl__relay_host_is_loopback("[::1]"));
    assert_false(pl__relay_host_is_loopback("[::]"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keys_are_the_flags),
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_cluster_keys),
        cmocka_unit_test(test_file_and_layers),
        cmocka_unit_test(test_file_errors),
        cmocka_unit_test(test_allow_list),
        cmocka_unit_test(test_diff),
        cmocka_unit_test(test_log_lines),
        cmocka_unit_test(test_core_live_limits),
        cmocka_unit_test(test_health_and_metrics),
        cmocka_unit_test(test_redact),
        cmocka_unit_test(test_ipv6_audiences),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
