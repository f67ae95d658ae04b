/*
 * --metrics-listen: GET /metrics over HTTP, the same text as --stats-file, for a scraper that
 * reads the daemon itself rather than node_exporter's textfile directory.
 *
 * Served by libmicrohttpd's own thread, never by the daemon's loop: the loop renders the text each
 * interval a value changed (report.c) and publishes it here as one immutable response, swapped
 * under a mutex that is held only for the swap and for a connection's queueing of it
 * (libmicrohttpd counts a response's references itself). So a client, however slow or hostile,
 * costs the loop nothing: no wait, no render, no allocation per request. What a client can hold is
 * bounded: CONNECTIONS in all, PER_IP of one address, TIMEOUT_S of silence each (slowloris),
 * MEMORY_BYTES of request each (longer headers get 431, a longer path 414), and nothing else is
 * read: only GET and HEAD of /metrics (404 for another path, 405 for another method). No line is
 * logged per request.
 *
 * libmicrohttpd is loaded only when --metrics-listen is given (dlopen): it brings GnuTLS and five
 * more libraries, whose constructors a root daemon without an endpoint, the common case, need not
 * run. The daemon names it by its soname; without it, one line and exit status 2 at start.
 *
 * The socket is made, bound and set listening here, before libmicrohttpd takes it: a refusal at
 * any step is one line naming the step and exit status 2 at start (a unit's
 * RestrictAddressFamilies= refuses socket() itself). Close-on-exec; the scanners and takers the
 * daemon forks inherit it and never touch it. SIGPIPE is ignored process-wide (main.c), and
 * libmicrohttpd sends with MSG_NOSIGNAL besides.
 */
#include "autoclosed.h"

#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define CONNECTIONS  16
#define PER_IP       8
#define TIMEOUT_S    5
#define MEMORY_BYTES 16384
#define BACKLOG      16

#define LIBMICROHTTPD "libmicrohttpd.so.12"

/* The few entry points used, typed by the header's own declarations. */
static struct {
    __typeof__(MHD_start_daemon) *start_daemon;
    __typeof__(MHD_stop_daemon) *stop_daemon;
    __typeof__(MHD_create_response_from_buffer) *create_response_from_buffer;
    __typeof__(MHD_destroy_response) *destroy_response;
    __typeof__(MHD_queue_response) *queue_response;
    __typeof__(MHD_add_response_header) *add_response_header;
} mhd;

static bool load_libmicrohttpd(void)
{
    void *lib = dlopen(LIBMICROHTTPD, RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL) {
        ad_complain("--metrics-listen needs %s (Debian: libmicrohttpd12): %s", LIBMICROHTTPD,
                    dlerror());
        return false;
    }
    struct {
        void **slot;
        const char *name;
    } want[] = {
        {(void **)&mhd.start_daemon, "MHD_start_daemon"},
        {(void **)&mhd.stop_daemon, "MHD_stop_daemon"},
        {(void **)&mhd.create_response_from_buffer, "MHD_create_response_from_buffer"},
        {(void **)&mhd.destroy_response, "MHD_destroy_response"},
        {(void **)&mhd.queue_response, "MHD_queue_response"},
        {(void **)&mhd.add_response_header, "MHD_add_response_header"},
    };
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        *want[i].slot = dlsym(lib, want[i].name);
        if (*want[i].slot == NULL) {
            ad_complain("--metrics-listen: %s has no %s", LIBMICROHTTPD, want[i].name);
            return false;
        }
    }
    return true; /* kept loaded for the daemon's life */
}

static struct MHD_Daemon *server;
static pthread_mutex_t current_lock = PTHREAD_MUTEX_INITIALIZER;
static struct MHD_Response *current; /* the last text published; NULL before the first */
static struct MHD_Response *not_found, *not_allowed, *not_yet;

#define CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

bool ad_metrics_parse(const char *value, struct ad_metrics_addr *out)
{
    char host[64];
    const char *port_text;
    *out = (struct ad_metrics_addr){0};
    const char *colon = strrchr(value, ':');
    if (value[0] == '[') { /* [::1]:9836 */
        const char *close = strchr(value, ']');
        if (close == NULL || close[1] != ':' || (size_t)(close - value - 1) >= sizeof host)
            return false;
        memcpy(host, value + 1, (size_t)(close - value - 1));
        host[close - value - 1] = '\0';
        port_text = close + 2;
    } else if (colon) { /* 127.0.0.1:9836 */
        if ((size_t)(colon - value) >= sizeof host)
            return false;
        memcpy(host, value, (size_t)(colon - value));
        host[colon - value] = '\0';
        port_text = colon + 1;
    } else { /* 9836: loopback */
        strcpy(host, "127.0.0.1");
        port_text = value;
    }
    char *end;
    errno = 0;
    unsigned long port = strtoul(port_text, &end, 10);
    if (port_text[0] < '0' || port_text[0] > '9' || *end || errno || port < 1 || port > 65535)
        return false;
    struct sockaddr_in *v4 = (struct sockaddr_in *)&out->ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&out->ss;
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        out->len = sizeof *v4;
    } else if (value[0] == '[' && inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        out->len = sizeof *v6;
    } else {
        return false; /* a name is not looked up: the daemon resolves nothing */
    }
    return true;
}

static enum MHD_Result answer(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **state)
{
    (void)cls, (void)version, (void)upload, (void)upload_size, (void)state;
    if (strcmp(url, "/metrics") != 0)
        return mhd.queue_response(c, MHD_HTTP_NOT_FOUND, not_found);
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
        return mhd.queue_response(c, MHD_HTTP_METHOD_NOT_ALLOWED, not_allowed);
    pthread_mutex_lock(&current_lock);
    enum MHD_Result r = current ? mhd.queue_response(c, MHD_HTTP_OK, current)
                                : mhd.queue_response(c, MHD_HTTP_SERVICE_UNAVAILABLE, not_yet);
    pthread_mutex_unlock(&current_lock);
    return r;
}

static struct MHD_Response *fixed(const char *text)
{
    struct MHD_Response *r =
        mhd.create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
    if (r)
        mhd.add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
    return r;
}

/* The listening socket, or -1 with the line said. */
static int listen_on(const struct ad_metrics_addr *a, const char *given)
{
    int fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        int err = errno;
        if (err == EAFNOSUPPORT || err == EPERM || err == EACCES)
            ad_complain("--metrics-listen '%.64s': cannot make an %s socket (%s): under "
                        "autoclosed.service, add %s to RestrictAddressFamilies= (see "
                        "autoclosed(8), METRICS)",
                        given, a->ss.ss_family == AF_INET ? "AF_INET" : "AF_INET6", strerror(err),
                        a->ss.ss_family == AF_INET ? "AF_INET" : "AF_INET6");
        else
            ad_complain("--metrics-listen '%.64s': cannot make a socket: %s", given, strerror(err));
        return -1;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one); /* a restart amid TIME_WAIT */
    if (a->ss.ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (bind(fd, (const struct sockaddr *)&a->ss, a->len) != 0 || listen(fd, BACKLOG) != 0) {
        int err = errno;
        const struct sockaddr_in *v4 = (const struct sockaddr_in *)&a->ss;
        const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)&a->ss;
        unsigned port = ntohs(a->ss.ss_family == AF_INET ? v4->sin_port : v6->sin6_port);
        ad_complain(
            "--metrics-listen '%.64s': cannot listen there: %s%s", given, strerror(err),
            err == EADDRINUSE      ? " (another program has that port)"
            : err == EADDRNOTAVAIL ? " (no interface of this host has that address)"
            : err == EACCES && port < 1024
                ? " (a port below 1024 needs CAP_NET_BIND_SERVICE, which the unit does not give)"
                : "");
        close(fd);
        return -1;
    }
    return fd;
}

int ad_metrics_start(void)
{
    if (ad_opt.metrics_listen == NULL)
        return -1;
    if (!load_libmicrohttpd())
        return 2;
    int fd = listen_on(&ad_opt.metrics_addr, ad_opt.metrics_listen);
    if (fd < 0)
        return 2;
    not_found = fixed("only /metrics is served here\n");
    not_allowed = fixed("only GET and HEAD\n");
    not_yet = fixed("no interval has passed yet\n");
    if (not_allowed)
        mhd.add_response_header(not_allowed, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    /* No MHD_USE_ERROR_LOG: nothing is written per connection or request. */
    server = not_found && not_allowed && not_yet
                 ? mhd.start_daemon(
                       MHD_USE_AUTO_INTERNAL_THREAD, 0, NULL, NULL, answer, NULL,
                       MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd, MHD_OPTION_CONNECTION_LIMIT,
                       (unsigned)CONNECTIONS, MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)PER_IP,
                       MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)TIMEOUT_S,
                       MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)MEMORY_BYTES,
                       MHD_OPTION_THREAD_STACK_SIZE, (size_t)(256 * 1024), MHD_OPTION_END)
                 : NULL;
    if (server == NULL) {
        int err = errno;
        ad_complain("--metrics-listen '%.64s': cannot start the HTTP server (libmicrohttpd): %s",
                    ad_opt.metrics_listen, err ? strerror(err) : "no reason given");
        close(fd);
        return 2;
    }
    return -1;
}

bool ad_metrics_on(void)
{
    return server != NULL;
}

bool ad_metrics_publish(const char *text, size_t len)
{
    if (server == NULL)
        return true;
    struct MHD_Response *r =
        mhd.create_response_from_buffer(len, (void *)text, MHD_RESPMEM_MUST_COPY);
    if (r == NULL)
        return false; /* the last text stands */
    mhd.add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, CONTENT_TYPE);
    pthread_mutex_lock(&current_lock);
    struct MHD_Response *old = current;
    current = r;
    pthread_mutex_unlock(&current_lock);
    if (old)
        mhd.destroy_response(old); /* freed once the last connection sending it is done */
    return true;
}

void ad_metrics_stop(void)
{
    if (server == NULL)
        return;
    mhd.stop_daemon(server); /* closes the listening socket it was given */
    server = NULL;
    struct MHD_Response *all[] = {current, not_found, not_allowed, not_yet};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        if (all[i])
            mhd.destroy_response(all[i]);
    current = not_found = not_allowed = not_yet = NULL;
}
