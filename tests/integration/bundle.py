#!/usr/bin/env python3
"""Write an OCI bundle config for the integration tests (no jq, no PyYAML).

usage: bundle.py BUNDLE_DIR CGROUPS_PATH [PYTHON_STATEMENT ...]

Starts from a runc-`spec`-like default (non-terminal, root user, the usual
mounts and namespaces, rootfs at BUNDLE_DIR/rootfs) and runs each statement
with `c` bound to the config dict and a few helpers (below), then writes
BUNDLE_DIR/config.json.
"""
import json
import os
import sys

DEFAULT_CAPS = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]


def default_config(cgroups_path):
    return {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": False,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {k: list(DEFAULT_CAPS) for k in ("bounding", "effective", "permitted")},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True,
        },
        "root": {"path": "rootfs", "readonly": False},
        "hostname": "envrun-test",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
        ],
        "linux": {
            "resources": {"devices": [{"allow": False, "access": "rwm"}]},
            "cgroupsPath": cgroups_path,
            "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")],
            "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                            "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                            "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                              "/proc/sysrq-trigger"],
        },
    }


def main():
    bundle, cgroups_path, statements = sys.argv[1], sys.argv[2], sys.argv[3:]
    c = default_config(cgroups_path)

    def args(*a):
        c["process"]["args"] = list(a)

    def script(text):  # run a shell script as the container process
        c["process"]["args"] = ["sh", "-c", text]

    def ns_remove(kind):
        c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"] if n["type"] != kind]

    def ns_set(kind, path=None):
        ns_remove(kind)
        n = {"type": kind}
        if path:
            n["path"] = path
        c["linux"]["namespaces"].append(n)

    def mount(destination, type, source, options=None):
        m = {"destination": destination, "type": type, "source": source}
        if options is not None:
            m["options"] = options
        c["mounts"].append(m)

    def mounts_remove(*destinations):
        c["mounts"] = [m for m in c["mounts"] if m["destination"] not in destinations]

    def caps(names):
        c["process"]["capabilities"] = {k: list(names) for k in ("bounding", "effective", "permitted")}

    def hook(phase, path, args=None, env=None, timeout=None):
        h = {"path": path}
        if args is not None:
            h["args"] = args
        if env is not None:
            h["env"] = env
        if timeout is not None:
            h["timeout"] = timeout
        c.setdefault("hooks", {}).setdefault(phase, []).append(h)

    scope = dict(c=c, B=bundle, args=args, script=script, ns_remove=ns_remove, ns_set=ns_set,
                 mount=mount, mounts_remove=mounts_remove, caps=caps, hook=hook, env=os.environ)
    for st in statements:
        exec(st, scope)
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(c, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()
