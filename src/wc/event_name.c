/* SPDX-License-Identifier: Apache-2.0 */
/* pl_wc_event_name: see include/pairlink/wc_pairing.h. */
#include "pairlink/wc_pairing.h"

const char *pl_wc_event_name(pl_wc_event_kind k) {
    switch (k) {
    case PL_WC_EV_CREATED:
        return "created";
    case PL_WC_EV_ACTIVATED:
        return "activated";
    case PL_WC_EV_RENEWED:
        return "renewed";
    case PL_WC_EV_EXPIRED:
        return "expired";
    case PL_WC_EV_DELETED:
        return "deleted";
    case PL_WC_EV_PING:
        return "ping";
    case PL_WC_EV_PONG:
        return "pong";
    case PL_WC_EV_REQUEST_TIMEOUT:
        return "request_timeout";
    case PL_WC_EV_UNSUPPORTED:
        return "unsupported_method";
    case PL_WC_EV_BAD_MESSAGE:
        return "bad_message";
    case PL_WC_EV_PUBLISH_FAILED:
        return "publish_failed";
    }
    return "unknown";
}
