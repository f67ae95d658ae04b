/*
 * The container a process is in, as its cgroup path names it (/proc/PID/cgroup, read by the
 * scanner: netns.c): the runtime and the first 12 digits of the id, as `docker ps` shows them,
 * for log lines and the gauge. The text work is pure, tested on its own
 * (tests/unit/test_container.c).
 *
 * A name counts only where root made it: the cgroup directory whose name gives the id must be
 * root's. A user with a subtree of his own (systemd's Delegate=, every user@UID.service) may make
 * ".../kubepods/pod<uid>/docker-<id>.scope" in it with another container's id (ids are in every
 * /proc/PID/cgroup, world-readable); his sockets would then carry that container's name. The
 * directory is stat'ed under its tree's mount (/proc/self/mountinfo, read once): the cgroup2 one
 * for the "0::" line (/sys/fs/cgroup, /sys/fs/cgroup/unified on a hybrid host), a v1 line's
 * own hierarchy otherwise. stat(2) on cgroupfs never waits on a process. A directory that is not
 * root's, or cannot be found (no such mount here, a path outside the mount, as in a cgroup
 * namespace of the daemon's own), gives no name: none rather than a wrong one.
 */
#include "autoclosed.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

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

/* The outermost component that names a container, and the pod around it. Outermost: that one
 * is the host's runtime's, the container `docker ps` on the host shows; a group below it is made
 * by whatever runs inside (docker-in-docker, kind's nodes), which may well be root without a user
 * namespace, and could name its own subgroup after another container. */
static bool name_in(char *buf, char *out, size_t cap, size_t *prefix)
{
    const char *pod = NULL;
    for (char *c = buf; *c;) {
        char *slash = strchr(c, '/');
        size_t len = slash ? (size_t)(slash - c) : strlen(c);
        char after = c[len];
        c[len] = '\0'; /* buf is now the path up to this component: what names it is read there */
        const char *id = NULL, *r = runtime_of(c, len, buf, &id);
        if (r && strcmp(r, "podman") == 0 && strncmp(c, "libpod-conmon-", 14) == 0)
            r = NULL;
        const char *p = pod == NULL ? pod_of(c, len) : NULL;
        if (p && strstr(buf, "kubepods"))
            pod = p;
        c[len] = after;
        if (r) {
            char podtext[48] = "";
            if (pod) {
                memcpy(podtext, " pod=", 5);
                for (size_t k = 0; k < 36; k++) /* systemd's driver writes _ for - */
                    podtext[5 + k] = pod[k] == '_' ? '-' : pod[k];
                podtext[5 + 36] = '\0';
            }
            snprintf(out, cap, "%s:%.12s%s", r, id, podtext);
            *prefix = (size_t)(c - buf) + len;
            return true;
        }
        if (!slash)
            break;
        c = slash + 1;
    }
    return false;
}

void ad_container_parse(const char *cgroup, char *out, size_t cap, struct ad_cgroup_dir *dir)
{
    out[0] = '\0';
    dir->hierarchy[0] = dir->path[0] = '\0';
    /* Each line "ID:CONTROLLERS:PATH"; the cgroup2 line (0::) first when there is one. */
    for (int pass = 0; pass < 2; pass++) {
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
            size_t plen = end ? (size_t)(end - path - 1) : strlen(path + 1);
            size_t hlen = (size_t)(path - colon - 1), prefix;
            if (plen >= sizeof dir->path || hlen >= sizeof dir->hierarchy)
                continue;
            memcpy(dir->path, path + 1, plen);
            dir->path[plen] = '\0';
            if (name_in(dir->path, out, cap, &prefix)) {
                dir->path[prefix] = '\0';
                memcpy(dir->hierarchy, colon + 1, hlen);
                dir->hierarchy[hlen] = '\0';
                return;
            }
            dir->path[0] = '\0';
        }
    }
}

/* ---- whose the directory is: the trees' mounts ---------------------------------------------- */

#define MOUNTS_MAX 16

struct cg_mount {
    bool v2;
    char super[256]; /* v1: its options, the controllers among them ("rw,cpu,cpuacct") */
    char root[256];  /* the group mounted there, "/" for the whole tree */
    char point[256];
};
static struct cg_mount mounts[MOUNTS_MAX];
static size_t nmounts;
static bool mounts_read;

/* One line of /proc/self/mountinfo: ID PARENT MAJ:MIN ROOT POINT OPTIONS [OPTIONAL...] - FSTYPE
 * SOURCE SUPEROPTIONS. False for any but a cgroup tree's, and for one whose paths hold an escaped
 * character (\ooo): left out, so that its groups get no name. */
static bool mount_line(const char *line, struct cg_mount *m)
{
    const char *sep = strstr(line, " - ");
    char fstype[16], source[64];
    *m = (struct cg_mount){0};
    if (sep == NULL || sscanf(sep + 3, "%15s %63s %255s", fstype, source, m->super) < 2)
        return false;
    m->v2 = strcmp(fstype, "cgroup2") == 0;
    if (!m->v2 && strcmp(fstype, "cgroup") != 0)
        return false;
    return sscanf(line, "%*s %*s %*s %255s %255s", m->root, m->point) == 2 &&
           strchr(m->root, '\\') == NULL && strchr(m->point, '\\') == NULL;
}

void ad_cgroup_mounts_read(void)
{
    mounts_read = true;
    FILE *f = fopen("/proc/self/mountinfo", "re");
    if (f == NULL)
        return;
    char line[4096];
    while (nmounts < MOUNTS_MAX && fgets(line, sizeof line, f))
        if (mount_line(line, &mounts[nmounts]))
            nmounts++;
    fclose(f);
}

/* Whether each of the line's controllers ("cpu,cpuacct", "name=systemd") is among a v1 mount's
 * options. */
static bool holds(const char *super, const char *hierarchy)
{
    for (const char *h = hierarchy; *h;) {
        size_t n = strcspn(h, ",");
        bool found = false;
        for (const char *o = super; *o && !found;) {
            size_t k = strcspn(o, ",");
            found = k == n && memcmp(o, h, n) == 0;
            o += k + (o[k] == ',');
        }
        if (!found)
            return false;
        h += n + (h[n] == ',');
    }
    return true;
}

/* The directory's path in the file system under mount m; false when it is not that tree's, or
 * lies outside what is mounted there. */
static bool path_under(const struct cg_mount *m, const struct ad_cgroup_dir *d, char *out,
                       size_t cap)
{
    if (d->hierarchy[0] == '\0' ? !m->v2 : (m->v2 || !holds(m->super, d->hierarchy)))
        return false;
    const char *sub = d->path;
    if (strcmp(m->root, "/") != 0) {
        size_t n = strlen(m->root);
        if (strncmp(sub, m->root, n) != 0 || (sub[n] != '/' && sub[n] != '\0'))
            return false;
        sub += n;
    }
    /* A cgroup namespace's paths climb out of it with "..": never followed. */
    if (sub[0] != '\0' && sub[0] != '/')
        return false;
    for (const char *p = sub; (p = strstr(p, "/..")) != NULL; p += 3)
        if (p[3] == '/' || p[3] == '\0')
            return false;
    return (size_t)snprintf(out, cap, "%s%s", m->point, sub) < cap;
}

static bool roots(const struct ad_cgroup_dir *d)
{
    if (!mounts_read)
        ad_cgroup_mounts_read();
    for (size_t i = 0; i < nmounts; i++) {
        char path[1536];
        struct stat st;
        if (path_under(&mounts[i], d, path, sizeof path) &&
            fstatat(AT_FDCWD, path, &st, AT_SYMLINK_NOFOLLOW) == 0)
            return S_ISDIR(st.st_mode) && st.st_uid == 0;
    }
    return false;
}

void ad_container_of(const char *cgroup, char *out, size_t cap)
{
    struct ad_cgroup_dir dir;
    ad_container_parse(cgroup, out, cap, &dir);
    if (out[0] && !roots(&dir))
        out[0] = '\0';
}
