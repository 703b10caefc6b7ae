/* SPDX-License-Identifier: Apache-2.0 */
/* pl_nm_node_event_name, pl_nm_session_event_name: see
 * include/pairlink/nm_node.h and nm_session.h. Names only: no runtime
 * state, so any binding, log or GUI shows the same words as the CLI. */
#include "pairlink/nm_node.h"
#include "pairlink/nm_session.h"

const char *pl_nm_node_event_name(pl_nm_node_event_kind k) {
    switch (k) {
    case PL_NM_NODE_TRANSPORT:
        return "transport";
    case PL_NM_NODE_PAIR_CODE:
        return "pair_code";
    case PL_NM_NODE_PAIR_DROPPED:
        return "pair_dropped";
    case PL_NM_NODE_PAIR_STORED:
        return "pair_stored";
    case PL_NM_NODE_PAIRED:
        return "paired";
    case PL_NM_NODE_PAIR_FAILED:
        return "pair_failed";
    case PL_NM_NODE_SESSION:
        return "session";
    case PL_NM_NODE_PUBLISH_FAILED:
        return "publish_failed";
    case PL_NM_NODE_PAIR_VERIFY:
        return "pair_verify";
    case PL_NM_NODE_PEER_ADDED:
        return "peer_added";
    case PL_NM_NODE_PEER_REMOVED:
        return "peer_removed";
    }
    return "unknown";
}

const char *pl_nm_session_event_name(pl_nm_session_event e) {
    switch (e) {
    case PL_NM_SEV_CONNECTING:
        return "connecting";
    case PL_NM_SEV_KNOCKED:
        return "knock";
    case PL_NM_SEV_ESTABLISHED:
        return "established";
    case PL_NM_SEV_RETRY:
        return "retry";
    case PL_NM_SEV_REJECTED:
        return "rejected";
    case PL_NM_SEV_REQUEST:
        return "request";
    case PL_NM_SEV_RESPONSE:
        return "response";
    case PL_NM_SEV_REQUEST_FAILED:
        return "request_failed";
    case PL_NM_SEV_DROPPED:
        return "dropped";
    case PL_NM_SEV_REVOKED:
        return "revoked";
    }
    return "unknown";
}
