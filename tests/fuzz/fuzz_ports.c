/*
 * libFuzzer target for the port-list parser (AUTOCLOSE_PORTS, ac_parse_ports), held against a
 * plain second reading of the rules written out below. The two must agree on every port and on
 * the verdict; the complaint must say which list element was bad, and, when nothing in the list
 * was good, that no connection will be handled.
 *
 * The rules (README, Configuration): a comma list of elements; an element is a port N or a
 * range N-M, with blanks allowed around the element and around each number; 1 <= N <= M <=
 * 65535; leading zeros are fine; an element longer than 31 characters once trimmed is refused;
 * a bad element is reported and skipped while the good ones count.
 */
#include "autoclose.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "check failed: %s (line %d)\n", #cond, __LINE__);                      \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* One number: blanks, digits, blanks, and nothing else; at most 65535. */
static bool number(const char *s, size_t n, unsigned *out)
{
    size_t i = 0;
    while (i < n && isspace((unsigned char)s[i]))
        i++;
    if (i == n || !isdigit((unsigned char)s[i]))
        return false;
    unsigned long v = 0;
    for (; i < n && isdigit((unsigned char)s[i]); i++) {
        v = v * 10 + (unsigned long)(s[i] - '0');
        if (v > 65535)
            return false;
    }
    while (i < n && isspace((unsigned char)s[i]))
        i++;
    *out = (unsigned)v;
    return i == n;
}

static bool element(const char *s, size_t n, unsigned *lo, unsigned *hi)
{
    while (n > 0 && isspace((unsigned char)*s)) {
        s++;
        n--;
    }
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        n--;
    if (n == 0 || n > 31)
        return false;
    const char *dash = memchr(s, '-', n);
    if (dash == NULL) {
        if (!number(s, n, lo))
            return false;
        *hi = *lo;
    } else if (!number(s, (size_t)(dash - s), lo) ||
               !number(dash + 1, n - (size_t)(dash - s) - 1, hi)) {
        return false;
    }
    return *lo >= 1 && *lo <= *hi;
}

static uint8_t want[65536];

/* The complaint always fits its 256 bytes (the value is quoted shortened), so its end is the
 * fallback; looking anywhere else could find the value itself. */
static bool ends_with(const char *s, const char *tail)
{
    size_t n = strlen(s), t = strlen(tail);
    return n >= t && strcmp(s + n - t, tail) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *v = malloc(size + 1);
    if (v == NULL)
        return 0;
    memcpy(v, data, size);
    v[size] = '\0';

    memset(want, 0, sizeof want);
    bool any_good = false, any_bad = false;
    const char *p = v;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        unsigned lo, hi;
        if (element(p, n, &lo, &hi)) {
            any_good = true;
            memset(want + lo, 1, hi - lo + 1);
        } else {
            any_bad = true;
        }
        if (comma == NULL)
            break;
        p = comma + 1;
    }

    static struct ac_portset got;
    char why[256];
    memset(why, 0, sizeof why);
    bool ok = ac_parse_ports(v, &got, why, sizeof why);
    CHECK(ok == !any_bad);
    CHECK(!got.all);
    for (unsigned port = 0; port < 65536; port++)
        CHECK(ac_portset_has(&got, port) == (want[port] != 0));
    if (!ok) {
        CHECK(strncmp(why, "AUTOCLOSE_PORTS=", 16) == 0);
        CHECK(ends_with(why,
                        any_good ? "; ignoring that element" : "; no connection will be handled"));
    }
    free(v);
    return 0;
}
