/* SPDX-License-Identifier: Apache-2.0 */
/* Shared by the Waku message and topic code (src/waku/). Private. */
#ifndef PAIRLINK_WAKU_INTERNAL_H
#define PAIRLINK_WAKU_INTERNAL_H

#include "pairlink/common.h"

#include <stddef.h>

/* What a relay accepts as a content topic: present and non-empty, valid
 * UTF-8 without NUL (PL_ERR_WAKU_TOPIC, PL_ERR_BAD_UTF8). No form is
 * required: nwaku's relay validates none and js-waku's only wants one, and
 * RFC 37's Noise session topics are not of the 23/WAKU2-TOPICS form. */
pl_err pl__waku_relay_topic_check(const char *ct, size_t len);

#endif
