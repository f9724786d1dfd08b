"""BCC's --cgroupmap and --mntnsmap, live: the test pins a hash map in a
bpffs of its own, as BCC's docs do with bpftool, puts a held child's cgroup
id (a fresh cgroup v2 directory) or mount namespace (unshare -m) in it, and
the same event by another process must not show. Paths that hold no
suitable map exit 2 with one line."""
import os
import struct
import subprocess
import sys
import tempfile
import time

import pytest

from helpers import ROOT, Tracer, cgroup2_root, held_child, own_cgroup_id, release, run_tool

MAP_TOOLS = ["execsnoop", "opensnoop", "bindsnoop", "mountsnoop"]     # BCC's with the options


def bpftool(*args):
    subprocess.run(["bpftool", *args], check=True, capture_output=True, text=True)


def map_create(path, key=8, value=8, kind="hash"):
    bpftool("map", "create", path, "type", kind, "key", str(key), "value", str(value),
            "entries", "128", "name", "testset")
    return path


def map_add(path, key, value_size=8):
    """key (a u64) into the map pinned at path, as BCC's docs do it."""
    hexes = lambda data: ["%02x" % b for b in data]      # noqa: E731
    bpftool("map", "update", "pinned", path, "key", "hex", *hexes(struct.pack("=Q", key)),
            "value", "hex", *hexes(bytes(value_size)), "any")


@pytest.fixture
def bpffs():
    """A BPF filesystem of the test's own (none need be at /sys/fs/bpf)."""
    d = tempfile.mkdtemp(prefix="snooptools-bpffs-")
    subprocess.run(["mount", "-t", "bpf", "bpf", d], check=True)
    try:
        yield d
    finally:
        subprocess.run(["umount", d], check=True)
        os.rmdir(d)


@pytest.fixture
def fresh_cgroup():
    d = os.path.join(cgroup2_root(), "snooptools-maps-%d" % os.getpid())
    os.mkdir(d)
    try:
        yield d
    finally:
        for _ in range(100):         # its last task may still be exiting
            try:
                os.rmdir(d)
                break
            except OSError:
                time.sleep(0.05)


@pytest.fixture
def target():
    fd, path = tempfile.mkstemp(prefix="snooptools-maps-")
    os.close(fd)
    yield path
    os.unlink(path)


def test_cgroupmap_only_cgroups_in_the_map(bpffs, fresh_cgroup, target):
    cgmap = map_create(os.path.join(bpffs, "cgroupset"))
    child = held_child("cat " + target)
    with open(os.path.join(fresh_cgroup, "cgroup.procs"), "w") as f:
        f.write(str(child.pid))
    other = held_child("cat " + target)         # the test's own cgroup
    with Tracer("opensnoop", "--path", target, "--cgroupmap", cgmap) as t:
        # added while tracing: the programs look in the user's map itself
        map_add(cgmap, os.stat(fresh_cgroup).st_ino)
        assert release(other)[0] == 0
        assert release(child)[0] == 0
    assert t.returncode == 0, t.stderr
    assert [{k: v for k, v in e.items() if k != "ts"} for e in t.events] == [
        {"pid": child.pid, "tid": child.pid, "uid": 0, "comm": "cat",
         "cgroup_id": os.stat(fresh_cgroup).st_ino, "call": "openat",
         "path": target, "fd": 3, "err": 0, "flags": 0, "mode": 0}]


def wait_for_new_mntns(pid):
    """The inode of pid's mount namespace once unshare -m has made its own."""
    ours = os.stat("/proc/self/ns/mnt").st_ino
    for _ in range(200):
        ino = os.stat("/proc/%d/ns/mnt" % pid).st_ino
        if ino != ours:
            return ino
        time.sleep(0.01)
    pytest.fail("unshare -m made no mount namespace")


def test_mntnsmap_only_mount_namespaces_in_the_map(bpffs):
    nsmap = map_create(os.path.join(bpffs, "mnt_ns_set"), value=4)    # BCC's docs: value 4
    # unshare first, then wait: the namespace is known before the event
    child = subprocess.Popen(["unshare", "-m", "/bin/sh", "-c",
                              "read _; exec /bin/true mntns-marker"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    map_add(nsmap, wait_for_new_mntns(child.pid), value_size=4)
    other = held_child("/bin/true mntns-marker")
    with Tracer("execsnoop", "--mntnsmap", nsmap) as t:
        assert release(other)[0] == 0
        assert release(child)[0] == 0
    assert t.returncode == 0, t.stderr
    with open("/proc/self/comm") as f:
        comm = f.read().strip()
    assert [{k: v for k, v in e.items() if k not in ("ts", "cpu")} for e in t.events] == [
        {"pid": child.pid, "tid": child.pid, "uid": 0, "comm": "true",
         "cgroup_id": own_cgroup_id(), "ppid": os.getpid(),
         "pcomm": comm, "filename": "/bin/true", "args": ["/bin/true", "mntns-marker"],
         "args_truncated": False, "ret": 0, "err": 0}]


def test_both_maps_must_hold_the_task(bpffs, fresh_cgroup, target):
    """A task must be in both sets when both options are given (as in BCC)."""
    cgmap = map_create(os.path.join(bpffs, "cg"))
    nsmap = map_create(os.path.join(bpffs, "ns"))
    map_add(nsmap, os.stat("/proc/self/ns/mnt").st_ino)     # the host's: every child's
    child = held_child("cat " + target)
    with open(os.path.join(fresh_cgroup, "cgroup.procs"), "w") as f:
        f.write(str(child.pid))
    with Tracer("opensnoop", "--path", target, "--cgroupmap", cgmap, "--mntnsmap", nsmap) as t:
        assert release(child)[0] == 0               # its cgroup is not in cgmap
    assert t.events == []


@pytest.mark.parametrize("tool", MAP_TOOLS)
def test_every_bcc_tool_with_the_options_runs_with_them(bpffs, tool):
    cgmap, nsmap = map_create(os.path.join(bpffs, "cg")), map_create(os.path.join(bpffs, "ns"))
    with Tracer(tool, "--cgroupmap", cgmap, "--mntnsmap", nsmap) as t:
        pass
    assert t.returncode == 0 and t.events == [], t.stderr


# Loads syncsnoop's object and pins one of its programs. (bpftool's prog
# load pins an object's first program, which is --tree's, loaded only on
# request: SEC("?...").)
PIN_A_PROGRAM = """import ctypes, sys
from snooptools import libbpf
from snooptools.bpfobject import BPFObject
from snooptools.startup import use_kernel_features
lib = libbpf.load()
lib.bpf_obj_pin.argtypes = (ctypes.c_int, ctypes.c_char_p)
with BPFObject(sys.argv[1]) as obj:
    # one program (what others need, some kernels lack), loaded by default
    first = next(n for n, _, p in obj.programs() if lib.bpf_program__autoload(p))
    for name, _, _ in obj.programs():
        obj.set_autoload(name, name == first)
    use_kernel_features(obj)        # a map type some kernels lack, shrunk
    obj.load()
    sys.exit(lib.bpf_obj_pin(lib.bpf_program__fd(obj.program(first)), sys.argv[2].encode()) != 0)
"""


def pinned_program(bpffs):
    path = os.path.join(bpffs, "prog")
    subprocess.run([sys.executable, "-c", PIN_A_PROGRAM, str(ROOT / "build/bpf/killsnoop.bpf.o"),
                    path], check=True, env=dict(os.environ, PYTHONPATH=str(ROOT / "lib")))
    return path


@pytest.mark.parametrize("make,message", [
    (lambda d: os.path.join(d, "missing"), ": no such file"),
    (lambda d: "/etc/passwd", ": not in a BPF filesystem, where maps are pinned"),
    (lambda d: d, ": a directory, not a pinned map"),
    (lambda d: map_create(os.path.join(d, "arr"), key=4, kind="array"),
     ": map type array, key size 4: not a hash map keyed by a u64"),
    (lambda d: map_create(os.path.join(d, "h4"), key=4),
     ": map type hash, key size 4: not a hash map keyed by a u64"),
    (pinned_program, ": a program is pinned there, not a map"),
], ids=["missing", "not-bpffs", "directory", "array", "u32-keys", "program"])
@pytest.mark.parametrize("option", ["--cgroupmap", "--mntnsmap"])
def test_not_a_suitable_map_exits_2(bpffs, option, make, message):
    path = make(bpffs)
    r = run_tool("opensnoop", option, path)
    assert r.returncode == 2, r.stderr
    *usage, last = r.stderr.splitlines()
    assert usage[0].startswith("usage: opensnoop") and "Traceback" not in r.stderr
    assert last.startswith("opensnoop: error: ") and (path + message) in last, last


def test_bpffs_not_mounted_says_how_to_mount_it():
    with open("/proc/self/mounts") as f:
        mounted = any(line.split()[1:3] == ["/sys/fs/bpf", "bpf"] for line in f)
    r = run_tool("execsnoop", "--cgroupmap", "/sys/fs/bpf/no-such-map")
    assert r.returncode == 2
    hint = "no BPF filesystem is mounted at /sys/fs/bpf: mount -t bpf bpf /sys/fs/bpf"
    assert (hint in r.stderr) != mounted, r.stderr


def test_tools_bcc_lacks_them_for_refuse_them():
    r = run_tool("compactsnoop", "--cgroupmap", "/sys/fs/bpf/x")
    assert r.returncode == 2 and "unrecognized arguments: --cgroupmap" in r.stderr
