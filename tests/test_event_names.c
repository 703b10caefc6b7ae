/* SPDX-License-Identifier: Apache-2.0 */
/* The runtime-independent names of events and levels (docs/cli.md): one
 * distinct word per value, "unknown" outside the enum. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "pairlink/log.h"
#include "pairlink/nm_node.h"
#include "pairlink/nm_session.h"

#include <string.h>

static void test_nm_node_event_names(void **state) {
    (void)state;
    static const char *const want[] = {NULL,           "transport",   "pair_code",
                                       "pair_dropped", "pair_stored", "paired",
                                       "pair_failed",  "session",     "publish_failed",
                                       "pair_verify",  "peer_added",  "peer_removed"};
    for (int k = PL_NM_NODE_TRANSPORT; k <= PL_NM_NODE_PEER_REMOVED; k++)
        assert_string_equal(pl_nm_node_event_name((pl_nm_node_event_kind)k), want[k]);
    assert_string_equal(pl_nm_node_event_name((pl_nm_node_event_kind)0), "unknown");
    assert_string_equal(pl_nm_node_event_name((pl_nm_node_event_kind)1000), "unknown");
}

static void test_nm_session_event_names(void **state) {
    (void)state;
    static const char *const want[] = {
        NULL,      "connecting", "knock",          "established", "retry",  "rejected",
        "request", "response",   "request_failed", "dropped",     "revoked"};
    for (int e = PL_NM_SEV_CONNECTING; e <= PL_NM_SEV_REVOKED; e++)
        assert_string_equal(pl_nm_session_event_name((pl_nm_session_event)e), want[e]);
    assert_string_equal(pl_nm_session_event_name((pl_nm_session_event)0), "unknown");
}

static void test_log_level_names(void **state) {
    (void)state;
    assert_string_equal(pl_log_level_name(PL_LOG_OFF), "off");
    assert_string_equal(pl_log_level_name(PL_LOG_ERROR), "error");
    assert_string_equal(pl_log_level_name(PL_LOG_WARN), "warn");
    assert_string_equal(pl_log_level_name(PL_LOG_INFO), "info");
    assert_string_equal(pl_log_level_name(PL_LOG_DEBUG), "debug");
    assert_string_equal(pl_log_level_name((pl_log_level)9), "off");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nm_node_event_names),
        cmocka_unit_test(test_nm_session_event_names),
        cmocka_unit_test(test_log_level_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
