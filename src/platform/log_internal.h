/* SPDX-License-Identifier: Apache-2.0 */
/* Private to the library: the code that creates a libwebsockets context
 * applies the log setting of pl_set_log() first (lws's is process-wide and
 * otherwise writes to stderr). Not installed. */
#ifndef PAIRLINK_PLATFORM_LOG_INTERNAL_H
#define PAIRLINK_PLATFORM_LOG_INTERNAL_H

void pl__log_apply(void);

#endif
