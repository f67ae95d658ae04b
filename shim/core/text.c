/*
 * A bounded string builder for log lines. It never allocates and calls nothing that is not
 * async-signal-safe, because a log line may be built on a path a signal handler can reach.
 */
#include "core.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

void ac_text_init(struct ac_text *t, char *buf, size_t cap)
{
    t->buf = buf;
    t->cap = cap;
    t->len = 0;
    t->truncated = false;
    if (cap)
        buf[0] = '\0';
}

static void put(struct ac_text *t, char c)
{
    if (t->len + 1 < t->cap) {
        t->buf[t->len++] = c;
        t->buf[t->len] = '\0';
    } else {
        t->truncated = true;
    }
}

void ac_text_str(struct ac_text *t, const char *s)
{
    while (s && *s)
        put(t, *s++);
}

void ac_text_uint(struct ac_text *t, uint64_t v)
{
    char digits[24];
    int n = 0;
    do {
        digits[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        put(t, digits[--n]);
}

void ac_text_int(struct ac_text *t, int64_t v)
{
    if (v < 0) {
        put(t, '-');
        ac_text_uint(t, (uint64_t)0 - (uint64_t)v);
    } else {
        ac_text_uint(t, (uint64_t)v);
    }
}

static void uint_padded(struct ac_text *t, uint64_t v, int width)
{
    uint64_t limit = 1;
    for (int i = 1; i < width; i++)
        limit *= 10;
    for (; limit > 1 && v < limit; limit /= 10)
        put(t, '0');
    ac_text_uint(t, v);
}

void ac_text_sockaddr(struct ac_text *t, const struct sockaddr *sa)
{
    char host[INET6_ADDRSTRLEN];
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
        ac_text_str(t, host);
        put(t, ':');
        ac_text_uint(t, ntohs(in->sin_port));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
        put(t, '[');
        ac_text_str(t, host);
        ac_text_str(t, "]:");
        ac_text_uint(t, ntohs(in6->sin6_port));
    } else {
        ac_text_str(t, "?");
    }
}

/* Civil date from days since 1970-01-01 (Howard Hinnant's algorithm): gmtime_r is not on the
 * async-signal-safe list, and this is a dozen lines. */
void ac_text_utc(struct ac_text *t, int64_t sec, long msec)
{
    int64_t days = sec / 86400, rem = sec % 86400;
    if (rem < 0) {
        rem += 86400;
        days--;
    }
    int64_t z = days + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int64_t day = doy - (153 * mp + 2) / 5 + 1;
    int64_t month = mp < 10 ? mp + 3 : mp - 9;
    int64_t year = yoe + era * 400 + (month <= 2);
    uint_padded(t, (uint64_t)year, 4);
    put(t, '-');
    uint_padded(t, (uint64_t)month, 2);
    put(t, '-');
    uint_padded(t, (uint64_t)day, 2);
    put(t, 'T');
    uint_padded(t, (uint64_t)(rem / 3600), 2);
    put(t, ':');
    uint_padded(t, (uint64_t)(rem / 60 % 60), 2);
    put(t, ':');
    uint_padded(t, (uint64_t)(rem % 60), 2);
    put(t, '.');
    uint_padded(t, (uint64_t)msec, 3);
    put(t, 'Z');
}

void ac_text_quoted(struct ac_text *t, const char *s, size_t max)
{
    put(t, '\'');
    size_t i = 0;
    for (; s[i] && i < max; i++) {
        unsigned char c = (unsigned char)s[i];
        put(t, c >= 0x20 && c < 0x7f && c != '\'' ? (char)c : '?');
    }
    put(t, '\'');
    if (s[i])
        ac_text_str(t, "...");
}

void ac_text_field(struct ac_text *t, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    put(t, '"');
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            put(t, '\\');
            put(t, (char)c);
        } else if (c >= 0x20 && c < 0x7f) {
            put(t, (char)c);
        } else {
            put(t, '\\');
            put(t, 'x');
            put(t, hex[c >> 4]);
            put(t, hex[c & 15]);
        }
    }
    put(t, '"');
}
