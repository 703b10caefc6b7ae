/* SPDX-License-Identifier: Apache-2.0 */
/* Waku Noise transcripts in the shared JSON format (../shared/vectors/
 * README.md): replay one from its keys and check every byte, or generate
 * one with fresh keys. Tooling for `pairlink noise replay|transcript` and
 * the tests, kept out of the shipped library (it injects ephemeral keys,
 * which only known-answer checks may do): built as the static library
 * pl_tools, never installed. Thread-safe (no shared state). */
#ifndef PAIRLINK_TOOLS_NOISE_TRANSCRIPT_H
#define PAIRLINK_TOOLS_NOISE_TRANSCRIPT_H

#include "pairlink/noise.h"

#include <stddef.h>

typedef struct pl_noise_replay_report {
    int match;               /* 1 when every check passed */
    pl_noise_pattern pattern;
    size_t handshake_messages;
    size_t transport_messages;
    int checked_authcode;    /* 1 if the transcript had an authcode */
    int checked_commitments; /* 1 for WakuPairing transcripts */
    char authcode[PL_NOISE_AUTHCODE_SIZE];
    /* The first difference or the reason the transcript cannot be read,
     * human-readable; "" on a match. Shows public bytes and positions only,
     * never private keys. */
    char first_difference[512];
} pl_noise_replay_report;

/* Replay a JSON transcript (the text, not a file name) from its keys with
 * the ephemerals injected, and check every wire byte, every payload, the
 * nametags, final h, the split key, the transport messages, the authcode
 * and (WakuPairing) the QR prologue and both commitments. Stops at the
 * first difference.
 * Returns PL_OK when the transcript could be replayed; report->match then
 * says whether everything matched. Errors (transcript unusable, reason in
 * first_difference): PL_ERR_TOO_LARGE (text above 1 MiB, too many
 * messages), PL_ERR_JSON (not JSON, a field missing or of the wrong type),
 * PL_ERR_BAD_HEX, PL_ERR_BAD_LENGTH (a key not 32 bytes),
 * PL_ERR_NOISE_PATTERN, PL_ERR_NOMEM. */
pl_err pl_noise_transcript_replay(const char *json, size_t len, pl_noise_replay_report *report);

/* Generate a transcript in the same format with fresh random keys, random
 * payloads (WakuPairing: the commitment payloads of RFC 43) and `transport`
 * messages alternating initiator/responder (at most 64). psk is random for
 * XXpsk0. *json: NUL-terminated, caller frees with pl_free; it contains
 * private keys (test data). Errors: PL_ERR_NOISE_PATTERN,
 * PL_ERR_INVALID_ARG, PL_ERR_NOMEM. */
pl_err pl_noise_transcript_generate(char **json, pl_noise_pattern pattern, size_t transport);

#endif
