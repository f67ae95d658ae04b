/*
 * Log lines as the library and the daemon write them, "<UTC time> <program>[<pid>]: <message>",
 * or for the journal "<N><program>[<pid>]: <message>", and the token bucket that keeps a storm
 * from flooding the log. Async-signal-safe: the library builds a line on paths a signal handler
 * can reach.
 */
#include "core.h"

#include <stdlib.h>
#include <time.h>

void ac_log_format(struct ac_text *t, int journal_priority, const char *program, long pid,
                   const char *msg)
{
    if (journal_priority >= 0) {
        /* sd-daemon(3)'s prefix; journald stamps the line itself. */
        ac_text_str(t, "<");
        ac_text_int(t, journal_priority);
        ac_text_str(t, ">");
    } else {
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        ac_text_utc(t, now.tv_sec, now.tv_nsec / 1000000);
        ac_text_str(t, " ");
    }
    ac_text_str(t, program);
    ac_text_str(t, "[");
    ac_text_int(t, pid);
    ac_text_str(t, "]: ");
    ac_text_str(t, msg);
    ac_text_str(t, "\n");
}

int ac_log_priority(enum ac_log_level level)
{
    return level == AC_LOG_ERROR ? 3 : level == AC_LOG_DEBUG ? 7 : 6; /* LOG_ERR, INFO, DEBUG */
}

bool ac_journal_stream_is(const char *value, dev_t dev, ino64_t ino)
{
    /* "<st_dev>:<st_ino>" in decimal, as systemd sets it for a service's stderr. */
    if (value == NULL || *value < '0' || *value > '9')
        return false;
    char *end;
    unsigned long long d = strtoull(value, &end, 10);
    if (*end != ':' || end[1] < '0' || end[1] > '9')
        return false;
    unsigned long long i = strtoull(end + 1, &end, 10);
    return *end == '\0' && d == (unsigned long long)dev && i == (unsigned long long)ino;
}

bool ac_rate_take(struct ac_rate *r, uint64_t now_ms, uint32_t burst, uint32_t per_sec)
{
    if (r->last_ms == 0)
        r->last_ms = now_ms;
    uint64_t refill = (now_ms - r->last_ms) * per_sec / 1000;
    if (refill > 0) {
        if (refill + r->tokens >= burst) {
            r->tokens = burst;
            r->last_ms = now_ms; /* a full bucket earns nothing more */
        } else {
            r->tokens += (uint32_t)refill;
            /* Advance only by the time the whole tokens account for, keeping the fraction of
             * the next one already earned: otherwise a steady stream gets half the rate. */
            r->last_ms += refill * 1000 / per_sec;
        }
    }
    if (r->tokens == 0) {
        r->suppressed++;
        return false;
    }
    r->tokens--;
    return true;
}
