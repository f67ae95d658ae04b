#!/usr/bin/env bash
# The DaemonSet manifest (scripts/k8s/autoclosed-daemonset.yaml), read as YAML (python3-yaml)
# and checked against the fields it must have: kubectl and an API server are not on the test
# machine, so this is a schema-ish check, not a server's validation. One apps/v1 DaemonSet whose
# selector matches its pod's labels; hostPID; hostNetwork; a toleration of every taint; no
# service account token; one container whose image tag and version label are the Makefile's
# VERSION; every key of the pod spec, the container and its securityContext one Kubernetes
# knows (a misspelt key would be dropped by the server, silently); capabilities: drop ALL, add
# exactly those of the systemd unit's CapabilityBoundingSet= (read from the unit); root, not
# privileged, allowPrivilegeEscalation false, readOnlyRootFilesystem true, seccomp
# RuntimeDefault; cpu and memory requests and limits, each request no more than its limit; and
# its args accepted by autoclosed (a bad option exits 2), run once with --dry-run.
# shellcheck source=../integration/lib.sh
. "$(dirname "$0")/../integration/lib.sh"
# shellcheck source=../integration/daemon_lib.sh
. "$(dirname "$0")/../integration/daemon_lib.sh"
need_daemon
MANIFEST=${MANIFEST:-$REPO/scripts/k8s/autoclosed-daemonset.yaml}
UNIT=$REPO/scripts/systemd/autoclosed.service
VERSION=$(make_version)

# A python3 with PyYAML: Debian's (python3-yaml) where another comes first in PATH.
py=
for p in python3 /usr/bin/python3; do
    if "$p" -c 'import yaml' 2>/dev/null; then
        py=$p
        break
    fi
done
[ -n "$py" ] || fail "no python3 with PyYAML (scripts/install-deps.sh --image-test installs python3-yaml)"

caps=$(sed -n 's/^CapabilityBoundingSet=//p' "$UNIT" | tr ' ' '\n' | sed 's/^CAP_//' | sort | tr '\n' ' ')
echo "  the unit's CapabilityBoundingSet=: $caps"
"$py" - "$MANIFEST" "$VERSION" "$caps" >"$TMP/check.out" 2>&1 <<'EOF' || fail "$(cat "$TMP/check.out")"
import sys, yaml

path, version, unit_caps = sys.argv[1], sys.argv[2], sorted(sys.argv[3].split())
docs = [d for d in yaml.safe_load_all(open(path)) if d is not None]
problems = []


def need(cond, what):
    if not cond:
        problems.append(what)


need(len(docs) == 1, "one document, not %d" % len(docs))
ds = docs[0]
need(ds.get("apiVersion") == "apps/v1" and ds.get("kind") == "DaemonSet", "an apps/v1 DaemonSet")
meta, spec = ds.get("metadata", {}), ds.get("spec", {})
need(isinstance(meta.get("name"), str), "metadata.name")
need(meta.get("labels", {}).get("app.kubernetes.io/version") == version,
     "metadata.labels app.kubernetes.io/version %s" % version)
tmpl = spec.get("template", {})
sel = spec.get("selector", {}).get("matchLabels", {})
labels = tmpl.get("metadata", {}).get("labels", {})
need(sel and all(labels.get(k) == v for k, v in sel.items()), "the selector matches the pod's labels")
pod = tmpl.get("spec", {})
# Pod spec, container and securityContext fields of Kubernetes' API (core/v1).
POD = {"activeDeadlineSeconds", "affinity", "automountServiceAccountToken", "containers",
       "dnsConfig", "dnsPolicy", "enableServiceLinks", "ephemeralContainers", "hostAliases",
       "hostIPC", "hostNetwork", "hostPID", "hostUsers", "hostname", "imagePullSecrets",
       "initContainers", "nodeName", "nodeSelector", "os", "overhead", "preemptionPolicy",
       "priority", "priorityClassName", "readinessGates", "resourceClaims", "restartPolicy",
       "runtimeClassName", "schedulerName", "schedulingGates", "securityContext",
       "serviceAccountName", "setHostnameAsFQDN", "shareProcessNamespace", "subdomain",
       "terminationGracePeriodSeconds", "tolerations", "topologySpreadConstraints", "volumes"}
CONTAINER = {"args", "command", "env", "envFrom", "image", "imagePullPolicy", "lifecycle",
             "livenessProbe", "name", "ports", "readinessProbe", "resizePolicy", "resources",
             "restartPolicy", "securityContext", "startupProbe", "stdin", "stdinOnce",
             "terminationMessagePath", "terminationMessagePolicy", "tty", "volumeDevices",
             "volumeMounts", "workingDir"}
SECURITY = {"allowPrivilegeEscalation", "appArmorProfile", "capabilities", "privileged",
            "procMount", "readOnlyRootFilesystem", "runAsGroup", "runAsNonRoot", "runAsUser",
            "seLinuxOptions", "seccompProfile", "windowsOptions"}
need(set(pod) <= POD, "pod spec keys Kubernetes does not know: %s" % sorted(set(pod) - POD))
need(pod.get("hostPID") is True, "hostPID: true")
need(pod.get("hostNetwork") is True, "hostNetwork: true")
need(pod.get("automountServiceAccountToken") is False, "automountServiceAccountToken: false")
need({"operator": "Exists"} in pod.get("tolerations", []), "a toleration of every taint")
ctrs = pod.get("containers", [])
need(len(ctrs) == 1, "one container")
c = ctrs[0] if ctrs else {}
need(set(c) <= CONTAINER, "container keys Kubernetes does not know: %s" % sorted(set(c) - CONTAINER))
need(str(c.get("image", "")).endswith("/autoclosed:" + version), "image .../autoclosed:%s" % version)
need(isinstance(c.get("args"), list) and all(isinstance(a, str) for a in c["args"]), "args: strings")
sc = c.get("securityContext", {})
need(set(sc) <= SECURITY, "securityContext keys Kubernetes does not know: %s" % sorted(set(sc) - SECURITY))
need(sc.get("capabilities", {}).get("drop") == ["ALL"], "capabilities.drop: [ALL]")
need(sorted(sc.get("capabilities", {}).get("add", [])) == unit_caps,
     "capabilities.add: the unit's %s, not %s" % (unit_caps, sc.get("capabilities", {}).get("add")))
need(sc.get("privileged") is not True, "not privileged")
need(sc.get("allowPrivilegeEscalation") is False, "allowPrivilegeEscalation: false")
need(sc.get("readOnlyRootFilesystem") is True, "readOnlyRootFilesystem: true")
need(sc.get("runAsNonRoot") is not True and sc.get("runAsUser", 0) == 0, "runs as root")
need(sc.get("seccompProfile") == {"type": "RuntimeDefault"}, "seccompProfile RuntimeDefault")


def quantity(q):
    """cpu (m) or memory (Ki, Mi, Gi) in a common unit."""
    q = str(q)
    for suffix, mult in (("m", 1e-3), ("Ki", 2**10), ("Mi", 2**20), ("Gi", 2**30)):
        if q.endswith(suffix):
            return float(q[: -len(suffix)]) * mult
    return float(q)


res = c.get("resources", {})
for kind in ("cpu", "memory"):
    req, lim = res.get("requests", {}).get(kind), res.get("limits", {}).get(kind)
    need(req is not None and lim is not None, "%s request and limit" % kind)
    if req is not None and lim is not None:
        need(quantity(req) <= quantity(lim), "%s request %s above its limit %s" % (kind, req, lim))
if problems:
    print("scripts/k8s/autoclosed-daemonset.yaml: " + "; ".join(problems))
    sys.exit(1)
print("args=" + " ".join(c["args"]))
for kind in ("requests", "limits"):
    print("%s=cpu %s, memory %s" % (kind, res[kind]["cpu"], res[kind]["memory"]))
EOF
sed 's/^/  /' "$TMP/check.out"
read -ra args <<<"$(sed -n 's/^args=//p' "$TMP/check.out")"

# The args as the daemon takes them: --dry-run --once acts on nothing and exits 0, or 1 where
# something is out of its reach; a bad option is exit 2.
run_daemon args "${args[@]}" --dry-run --once --grace-ms 0
echo "  autoclosed ${args[*]} --dry-run --once: exit $RUN_RC"
[ "$RUN_RC" -ne 2 ] || fail "autoclosed refuses the manifest's args: $(cat "$TMP/args.err")"
[ "$RUN_RC" -le 1 ] || fail "autoclosed ${args[*]} --dry-run --once: exit $RUN_RC: $(cat "$TMP/args.err")"

pass "the DaemonSet has the host's PID namespace and network, the unit's two capabilities, a read-only root, RuntimeDefault seccomp, limits, and args the daemon takes"
