/*
 * The container a process is in, as its cgroup path names it (/proc/PID/cgroup, read by the
 * scanner: netns.c): the runtime and the first 12 digits of the id, as `docker ps` shows them,
 * for log lines and the gauge. Pure text work, tested on its own (tests/unit/test_container.c).
 */
#include "autoclosed.h"

#include <stdio.h>
#include <string.h>

static bool hex64(const char *p)
{
    for (int i = 0; i < 64; i++)
        if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f')))
            return false;
    return true;
}

/* A path component naming a container: the runtime's prefix and 64 hex digits (".scope" after
 * them under systemd's driver; bare under cgroupfs's, in a /docker or /kubepods tree). */
static const char *runtime_of(const char *c, size_t len, const char *path, const char **id)
{
    static const struct {
        const char *prefix, *name;
    } known[] = {{"docker-", "docker"},
                 {"cri-containerd-", "containerd"},
                 {"crio-", "cri-o"},
                 {"libpod-", "podman"}};
    for (size_t i = 0; i < sizeof known / sizeof *known; i++) {
        size_t n = strlen(known[i].prefix);
        if (len >= n + 64 && memcmp(c, known[i].prefix, n) == 0 && hex64(c + n)) {
            *id = c + n;
            return known[i].name;
        }
    }
    if (len == 64 && hex64(c)) {
        *id = c;
        if (strstr(path, "/kubepods"))
            return "kubernetes";
        if (strstr(path, "/docker/"))
            return "docker";
        if (strstr(path, "/libpod_parent/"))
            return "podman";
        return "container";
    }
    return NULL;
}

/* A Kubernetes pod's uid in a path component: "pod" and 36 characters of a uid (its dashes
 * written as _ by systemd's driver), at the component's start or after a dash. */
static const char *pod_of(const char *c, size_t len)
{
    for (size_t at = 0; at + 3 + 36 <= len; at++) {
        if (memcmp(c + at, "pod", 3) != 0 || (at > 0 && c[at - 1] != '-'))
            continue;
        const char *u = c + at + 3;
        bool uid = true;
        for (size_t k = 0; k < 36 && uid; k++)
            uid = (k == 8 || k == 13 || k == 18 || k == 23)
                      ? (u[k] == '-' || u[k] == '_')
                      : ((u[k] >= '0' && u[k] <= '9') || (u[k] >= 'a' && u[k] <= 'f'));
        if (uid)
            return u;
    }
    return NULL;
}

void ad_container_of(const char *cgroup, char *out, size_t cap)
{
    out[0] = '\0';
    /* Each line "ID:CONTROLLERS:PATH"; the cgroup2 line (0::) first when there is one. */
    for (int pass = 0; pass < 2 && out[0] == '\0'; pass++) {
        for (const char *line = cgroup; line && *line; line = strchr(line, '\n')) {
            if (*line == '\n')
                line++;
            const char *colon = strchr(line, ':'), *end = strchr(line, '\n');
            if (colon == NULL || (end && colon > end))
                break;
            if ((pass == 0) != (strncmp(line, "0::", 3) == 0))
                continue;
            const char *path = strchr(colon + 1, ':');
            if (path == NULL || (end && path > end))
                continue;
            char buf[1024];
            size_t plen = end ? (size_t)(end - path - 1) : strlen(path + 1);
            if (plen >= sizeof buf)
                continue;
            memcpy(buf, path + 1, plen);
            buf[plen] = '\0';
            const char *runtime = NULL, *id = NULL, *pod = NULL;
            size_t podlen = 0;
            for (char *c = buf; *c;) { /* the last component that names one wins */
                char *slash = strchr(c, '/');
                size_t len = slash ? (size_t)(slash - c) : strlen(c);
                const char *i2;
                const char *r = runtime_of(c, len, buf, &i2);
                if (r && !(strcmp(r, "podman") == 0 && strncmp(c, "libpod-conmon-", 14) == 0)) {
                    runtime = r;
                    id = i2;
                }
                const char *p = pod_of(c, len);
                if (p && strstr(buf, "kubepods")) {
                    pod = p;
                    podlen = 36;
                }
                if (!slash)
                    break;
                c = slash + 1;
            }
            if (runtime) {
                char podtext[48] = "";
                if (pod) {
                    memcpy(podtext, " pod=", 5);
                    for (size_t k = 0; k < podlen; k++) /* systemd's driver writes _ for - */
                        podtext[5 + k] = pod[k] == '_' ? '-' : pod[k];
                    podtext[5 + podlen] = '\0';
                }
                snprintf(out, cap, "%s:%.12s%s", runtime, id, podtext);
                break;
            }
        }
    }
}
