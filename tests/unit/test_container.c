/*
 * autoclosed's container id, from a process's /proc/PID/cgroup text: Docker (systemd's and
 * cgroupfs's drivers), containerd and CRI-O under Kubernetes (with the pod's uid), podman (root
 * and rootless, not its conmon), and nothing for a plain service or a user's session.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "../../shim/daemon/container.c"

#define ID  "3f4e5d6c7b8a9f0e1d2c3b4a59687766554433221100ffeeddccbbaa99887766"
#define POD "0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d"

static void expect(const char *cgroup, const char *want)
{
    char out[AD_CONTAINER_LEN];
    ad_container_of(cgroup, out, sizeof out);
    assert_string_equal(out, want);
}

static void docker(void **state)
{
    (void)state;
    expect("0::/system.slice/docker-" ID ".scope\n", "docker:3f4e5d6c7b8a");
    expect("0::/docker/" ID "\n", "docker:3f4e5d6c7b8a");
    /* cgroup v1: the name=systemd line, the cgroup2 line empty */
    expect("12:cpu,cpuacct:/docker/" ID "\n1:name=systemd:/docker/" ID "\n0::/\n",
           "docker:3f4e5d6c7b8a");
}

static void kubernetes(void **state)
{
    (void)state;
    expect("0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod"
           "0a1b2c3d_4e5f_6a7b_8c9d_0e1f2a3b4c5d.slice/cri-containerd-" ID ".scope\n",
           "containerd:3f4e5d6c7b8a pod=" POD);
    expect("0::/kubepods/besteffort/pod" POD "/" ID "\n", "kubernetes:3f4e5d6c7b8a pod=" POD);
    expect("0::/kubepods.slice/kubepods-pod0a1b2c3d_4e5f_6a7b_8c9d_0e1f2a3b4c5d.slice/crio-" ID
           ".scope\n",
           "cri-o:3f4e5d6c7b8a pod=" POD);
}

static void podman(void **state)
{
    (void)state;
    expect("0::/machine.slice/libpod-" ID ".scope/container\n", "podman:3f4e5d6c7b8a");
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(docker),
        cmocka_unit_test(kubernetes),
        cmocka_unit_test(podman),
        cmocka_unit_test(none),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
