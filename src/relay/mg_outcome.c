/*
 * mg_outcome — the decision table of an attempt's events.
 */
#include <stdio.h>

#include "mg_outcome.h"

enum mg_outcome
mg_outcome_classify(enum mg_phase phase, enum mg_attempt_event ev, enum mg_head_class cls,
                    CURLcode rc, unsigned flags)
{
    static const enum mg_outcome head[] = {
        [MG_HEAD_PENDING] = MG_OUTCOME_PENDING, [MG_HEAD_FINAL] = MG_OUTCOME_OPEN,
        [MG_HEAD_FAILOVER] = MG_OUTCOME_HOLD, [MG_HEAD_INSPECT] = MG_OUTCOME_INSPECT,
    };
    enum mg_outcome broken = rc == CURLE_OPERATION_TIMEDOUT ? MG_OUTCOME_FAIL_TIMEOUT
                                                             : MG_OUTCOME_FAIL_ERROR;

    if (ev == MG_AEV_HEAD) {
        return head[cls];
    }
    switch (phase) {
    case MG_PHASE_RELAY:
        /* a clean end of the transfer is still a cut when the relay found the stream broken */
        return ev == MG_AEV_END && rc == CURLE_OK && !(flags & MG_AF_RELAY_CUT)
               ? MG_OUTCOME_COMPLETE : MG_OUTCOME_CUT;
    case MG_PHASE_HOLD:
        return MG_OUTCOME_FAIL_STATUS;   /* what was read of it is passed on if it is last */
    case MG_PHASE_OPEN:
        if (flags & MG_AF_RELAY_EMPTY) {
            return MG_OUTCOME_FAIL_EMPTY;
        }
        if (flags & MG_AF_RELAY_FAILED) {
            return MG_OUTCOME_FAIL_EVENT;
        }
        if (ev == MG_AEV_TIMEOUT) {
            return MG_OUTCOME_FAIL_TIMEOUT;
        }
        return rc == CURLE_OK ? MG_OUTCOME_COMPLETE : broken;
    case MG_PHASE_INSPECT:
        if (ev == MG_AEV_TIMEOUT) {
            return MG_OUTCOME_FAIL_TIMEOUT;
        }
        if (rc != CURLE_OK) {
            return broken;
        }
        return flags & MG_AF_CONTEXT ? MG_OUTCOME_FAIL_CONTEXT : MG_OUTCOME_FINAL;
    case MG_PHASE_WAIT:
    default:
        return ev == MG_AEV_TIMEOUT ? MG_OUTCOME_FAIL_TIMEOUT : broken;
    }
}

int
mg_outcome_fails(enum mg_outcome o)
{
    return o == MG_OUTCOME_FAIL_STATUS || o == MG_OUTCOME_FAIL_ERROR ||
           o == MG_OUTCOME_FAIL_TIMEOUT || o == MG_OUTCOME_FAIL_EVENT ||
           o == MG_OUTCOME_FAIL_EMPTY || o == MG_OUTCOME_FAIL_CONTEXT;
}

const char *
mg_outcome_result(enum mg_outcome o, long status, char *buf, size_t len)
{
    switch (o) {
    case MG_OUTCOME_FAIL_STATUS:
        snprintf(buf, len, "http_%ld", status);
        return buf;
    case MG_OUTCOME_FAIL_TIMEOUT:
        return "timeout";
    case MG_OUTCOME_FAIL_ERROR:
        return "error";
    case MG_OUTCOME_FAIL_EVENT:
        return "error_event";
    case MG_OUTCOME_FAIL_EMPTY:
        return "empty_stream";
    case MG_OUTCOME_FAIL_CONTEXT:
        return "context_length";
    case MG_OUTCOME_CUT:
        return "cut";
    default:
        return "ok";
    }
}
