/*
 * autoclosed's container id, from a process's /proc/PID/cgroup text: Docker (systemd's and
 * cgroupfs's drivers), containerd and CRI-O under Kubernetes (with the pod's uid), podman (root
 * and rootless, not its conmon), and nothing for a plain service or a user's session; the
 * outermost container of nested ones, and the directory whose ownership decides; where the trees
 * are mounted (mountinfo lines), and a name only from a directory of root's.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdlib.h>
#include <unistd.h>

#include "../../shim/daemon/container.c"

#define ID  "3f4e5d6c7b8a9f0e1d2c3b4a59687766554433221100ffeeddccbbaa99887766"
#define POD "0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d"

static struct ad_cgroup_dir dir;

static void expect(const char *cgroup, const char *want)
{
    char out[AD_CONTAINER_LEN];
    ad_container_parse(cgroup, out, sizeof out, &dir);
    assert_string_equal(out, want);
    if (want[0] == '\0')
        assert_string_equal(dir.path, "");
}

/* The directory whose owner decides: the line's hierarchy, and the path to the named group. */
static void expect_dir(const char *hierarchy, const char *path)
{
    assert_string_equal(dir.hierarchy, hierarchy);
    assert_string_equal(dir.path, path);
}

static void docker(void **state)
{
    (void)state;
    expect("0::/system.slice/docker-" ID ".scope\n", "docker:3f4e5d6c7b8a");
    expect_dir("", "/system.slice/docker-" ID ".scope");
    expect("0::/docker/" ID "\n", "docker:3f4e5d6c7b8a");
    expect_dir("", "/docker/" ID);
    /* cgroup v1: the name=systemd line, the cgroup2 line empty; the first line that names one */
    expect("12:cpu,cpuacct:/docker/" ID "\n1:name=systemd:/docker/" ID "\n0::/\n",
           "docker:3f4e5d6c7b8a");
    expect_dir("cpu,cpuacct", "/docker/" ID);
    expect("1:name=systemd:/system.slice/docker-" ID ".scope\n0::/\n", "docker:3f4e5d6c7b8a");
    expect_dir("name=systemd", "/system.slice/docker-" ID ".scope");
}

/* Nested: the outermost, the host's runtime's, whatever is below it. */
static void nested(void **state)
{
    (void)state;
    /* docker-in-docker: the inner daemon's group below the outer container's */
    expect("0::/system.slice/docker-" ID ".scope/docker/"
           "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n",
           "docker:3f4e5d6c7b8a");
    expect_dir("", "/system.slice/docker-" ID ".scope");
    /* a kind node (a Docker container) and the pods in it: the node, and no pod of its own */
    expect("0::/system.slice/docker-" ID ".scope/kubelet.slice/kubelet-kubepods.slice/"
           "kubepods-pod0a1b2c3d_4e5f_6a7b_8c9d_0e1f2a3b4c5d.slice/cri-containerd-"
           "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff.scope\n",
           "docker:3f4e5d6c7b8a");
    /* under cgroupfs's driver: which runtime is read from the path up to the id only */
    expect("0::/docker/" ID "/kubepods/besteffort/pod" POD
           "/00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n",
           "docker:3f4e5d6c7b8a");
    /* podman's conmon is no container: the one below it is */
    expect("0::/machine.slice/libpod-conmon-" ID ".scope/libpod-" ID ".scope\n",
           "podman:3f4e5d6c7b8a");
    expect_dir("", "/machine.slice/libpod-conmon-" ID ".scope/libpod-" ID ".scope");
}

/* A user's delegated subtree named as a pod's container: the text names it (the owner check
 * refuses it, see owners), and the directory to check is his. */
static void delegated(void **state)
{
    (void)state;
    expect("0::/user.slice/user-65534.slice/user@65534.service/kubepods/pod" POD "/docker-" ID
           ".scope\n",
           "docker:3f4e5d6c7b8a pod=" POD);
    expect_dir("", "/user.slice/user-65534.slice/user@65534.service/kubepods/pod" POD "/docker-" ID
                   ".scope");
}

static void kubernetes(void **state)
{
    (void)state;
    expect("0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod"
           "0a1b2c3d_4e5f_6a7b_8c9d_0e1f2a3b4c5d.slice/cri-containerd-" ID ".scope\n",
           "containerd:3f4e5d6c7b8a pod=" POD);
    expect_dir("", "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod"
                   "0a1b2c3d_4e5f_6a7b_8c9d_0e1f2a3b4c5d.slice/cri-containerd-" ID ".scope");
    expect("0::/kubepods/besteffort/pod" POD "/" ID "\n", "kubernetes:3f4e5d6c7b8a pod=" POD);
    expect("0::/kubepods.slice/kubepods-pod0a1b2c3d_4e5f_6a7b_8c9d_0e1f2a3b4c5d.slice/crio-" ID
           ".scope\n",
           "cri-o:3f4e5d6c7b8a pod=" POD);
}

static void podman(void **state)
{
    (void)state;
    expect("0::/machine.slice/libpod-" ID ".scope/container\n", "podman:3f4e5d6c7b8a");
    expect_dir("", "/machine.slice/libpod-" ID ".scope");
    expect("0::/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-" ID ".scope\n",
           "podman:3f4e5d6c7b8a");
    expect("0::/machine.slice/libpod-conmon-" ID ".scope\n", "");
}

static void none(void **state)
{
    (void)state;
    expect("0::/system.slice/mosserver.service\n", "");
    expect("0::/user.slice/user-1000.slice/session-3.scope\n", "");
    expect("0::/\n", "");
    expect("", "");
    expect("garbage without colons", "");
    expect("0::/docker/3f4e5d\n", ""); /* not a whole id */
}

static void mountinfo(void **state)
{
    (void)state;
    struct cg_mount m;
    /* a hybrid host's (this one's): v1 trees, and cgroup2 at /sys/fs/cgroup/unified */
    assert_true(mount_line("40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup "
                           "rw,name=systemd\n",
                           &m));
    assert_false(m.v2);
    assert_string_equal(m.point, "/sys/fs/cgroup/systemd");
    assert_string_equal(m.root, "/");
    assert_true(holds(m.super, "name=systemd"));
    assert_false(holds(m.super, "pids"));
    assert_true(
        mount_line("41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n", &m));
    assert_true(m.v2);
    assert_string_equal(m.point, "/sys/fs/cgroup/unified");
    assert_true(mount_line("32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw shared:9 - cgroup cgroup "
                           "rw,cpu,cpuacct\n",
                           &m));
    assert_true(holds(m.super, "cpu,cpuacct"));
    assert_true(holds(m.super, "cpuacct"));
    assert_false(holds(m.super, "cpuset"));
    assert_false(
        mount_line("31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n", &m));
    assert_false(mount_line("25 1 8:1 / / rw - ext4 /dev/sda1 rw\n", &m));
    assert_false(mount_line("41 31 0:38 / /odd\\040name rw - cgroup2 cgroup2 rw\n", &m));
    assert_false(mount_line("garbage\n", &m));
}

static void where(void **state)
{
    (void)state;
    struct cg_mount v2 = {.v2 = true, .root = "/", .point = "/sys/fs/cgroup"};
    struct cg_mount v1 = {
        .super = "rw,name=systemd", .root = "/", .point = "/sys/fs/cgroup/systemd"};
    struct cg_mount sub = {.v2 = true, .root = "/machine.slice", .point = "/mnt/cg"};
    struct ad_cgroup_dir d = {.hierarchy = "", .path = "/system.slice/docker-" ID ".scope"};
    char path[1536];
    assert_true(path_under(&v2, &d, path, sizeof path));
    assert_string_equal(path, "/sys/fs/cgroup/system.slice/docker-" ID ".scope");
    assert_false(path_under(&v1, &d, path, sizeof path));  /* the 0:: line is cgroup2's */
    assert_false(path_under(&sub, &d, path, sizeof path)); /* outside what is mounted there */
    strcpy(d.hierarchy, "name=systemd");
    assert_true(path_under(&v1, &d, path, sizeof path));
    assert_string_equal(path, "/sys/fs/cgroup/systemd/system.slice/docker-" ID ".scope");
    assert_false(path_under(&v2, &d, path, sizeof path));
    strcpy(d.hierarchy, "");
    strcpy(d.path, "/machine.slice/libpod-" ID ".scope");
    assert_true(path_under(&sub, &d, path, sizeof path));
    assert_string_equal(path, "/mnt/cg/libpod-" ID ".scope");
    strcpy(d.path, "/machine.slicex/libpod-" ID ".scope");
    assert_false(path_under(&sub, &d, path, sizeof path));
    /* a cgroup namespace's way out, never followed */
    strcpy(d.path, "/../../system.slice/docker-" ID ".scope");
    assert_false(path_under(&v2, &d, path, sizeof path));
    strcpy(d.path, "/a/../docker-" ID ".scope");
    assert_false(path_under(&v2, &d, path, sizeof path));
    strcpy(d.path, "/a/..b/docker-" ID ".scope"); /* a name that starts with two dots is one */
    assert_true(path_under(&v2, &d, path, sizeof path));
}

/* The name only from a directory of root's: a tree "mounted" at a scratch directory. */
static void owners(void **state)
{
    (void)state;
    char top[] = "/tmp/test_container.XXXXXX", d1[256], d2[256];
    assert_non_null(mkdtemp(top));
    snprintf(d1, sizeof d1, "%s/system.slice", top);
    snprintf(d2, sizeof d2, "%s/system.slice/docker-" ID ".scope", top);
    assert_int_equal(mkdir(d1, 0755), 0);
    mounts_read = true;
    nmounts = 1;
    mounts[0] = (struct cg_mount){.v2 = true, .root = "/"};
    strcpy(mounts[0].point, top);
    const char *cg = "0::/system.slice/docker-" ID ".scope\n";
    char out[AD_CONTAINER_LEN];
    ad_container_of(cg, out, sizeof out);
    assert_string_equal(out, ""); /* no such directory */
    assert_int_equal(mkdir(d2, 0755), 0);
    ad_container_of(cg, out, sizeof out);
    assert_string_equal(out, geteuid() == 0 ? "docker:3f4e5d6c7b8a" : "");
    if (geteuid() == 0) {
        assert_int_equal(chown(d2, 65534, 65534), 0); /* a user's, delegated */
        ad_container_of(cg, out, sizeof out);
        assert_string_equal(out, "");
    }
    /* the 0:: line's group is cgroup2's: no v1 tree mounted here */
    ad_container_of("1:name=systemd:/system.slice/docker-" ID ".scope\n", out, sizeof out);
    assert_string_equal(out, "");
    nmounts = 0;
    ad_container_of(cg, out, sizeof out);
    assert_string_equal(out, "");
    rmdir(d2);
    rmdir(d1);
    rmdir(top);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(docker),    cmocka_unit_test(kubernetes), cmocka_unit_test(podman),
        cmocka_unit_test(none),      cmocka_unit_test(nested),     cmocka_unit_test(delegated),
        cmocka_unit_test(mountinfo), cmocka_unit_test(where),      cmocka_unit_test(owners),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
