"""mountsnoop, live: real mount calls by a held child in its own mount
namespace, asserted field by field."""
import errno
import os
import platform
import subprocess

import pytest

from helpers import PYTHON, PYTHON_COMM, Tracer, run_tool
from snooptools import kernel

MS_NOSUID, MS_NODEV, MS_REC, MS_PRIVATE = 2, 4, 1 << 14, 1 << 18
MNT_DETACH = 2

# The child makes its own mount namespace (so nothing it mounts reaches the
# host), prints its temp dir, then waits for a line on stdin and runs CODE
# with `D` the dir as bytes. Its set-up happens before tracing starts.
PRELUDE = """\
import ctypes, os, sys, tempfile
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
assert libc.unshare(0x20000) == 0, os.strerror(ctypes.get_errno())
assert libc.mount(None, b"/", None, %d, None) == 0, os.strerror(ctypes.get_errno())
d = tempfile.mkdtemp()
D = d.encode()
print(d, flush=True)
sys.stdin.readline()
%s
"""


def comm_of(pid):
    with open("/proc/%d/comm" % pid) as f:
        return f.read().strip()


def run(code, *args, json_mode=True):
    """Trace the child's code with args (and --pid child unless a filter is
    given; {pid} and {ns} in args are the child's); return (tracer, child pid,
    its temp dir, its mount namespace)."""
    child = subprocess.Popen([PYTHON, "-c", PRELUDE % (MS_REC | MS_PRIVATE, code)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    d = child.stdout.readline().strip()
    try:
        assert d, child.communicate(timeout=10)[1]
        ns = os.stat("/proc/%d/ns/mnt" % child.pid).st_ino
        args = tuple(a.format(pid=child.pid, ns=ns) for a in args)
        if not any(a in args for a in ("--pid", "-p", "--comm")):
            args += ("--pid", str(child.pid))
        with Tracer("mountsnoop", *args, json_mode=json_mode) as t:
            _, err = child.communicate("go\n", timeout=10)
        assert child.returncode == 0, err
    finally:
        child.kill()
        child.wait()
        if d:
            os.rmdir(d)        # the child's mounts died with its namespace
    return t, child.pid, d, ns


def mine(t, pid):
    return [e for e in t.events if e["pid"] == pid]


MOUNT_UMOUNT = """\
assert libc.mount(b"tmpfs", D, b"tmpfs", %d, b"size=1m") == 0
assert libc.umount2(D, 0) == 0
assert libc.umount2(D, 0) == -1
""" % (MS_NOSUID | MS_NODEV)


def test_tmpfs_mount_umount_exact_fields_and_failed_umount():
    t, pid, d, ns = run(MOUNT_UMOUNT)
    assert ns != os.stat("/proc/self/ns/mnt").st_ino
    [mnt, umnt, bad] = mine(t, pid)
    for e in (mnt, umnt, bad):
        assert (e["pid"], e["tid"], e["comm"], e["uid"]) == (pid, pid, PYTHON_COMM, os.getuid())
        assert (e["mnt_ns"], e["ppid"], e["pcomm"]) == (ns, os.getpid(), comm_of(os.getpid()))
        assert 0 <= e["lat_ms"] < 10000
    assert {k: mnt[k] for k in ("call", "source", "target", "fstype", "flags", "flags_names",
                                "data", "ret", "err")} == {
        "call": "mount", "source": "tmpfs", "target": d, "fstype": "tmpfs",
        "flags": MS_NOSUID | MS_NODEV, "flags_names": "MS_NOSUID|MS_NODEV", "data": "size=1m",
        "ret": 0, "err": 0}
    assert (umnt["call"], umnt["target"], umnt["flags"], umnt["flags_names"]) == \
        ("umount", d, 0, "0x0")
    assert (umnt["source"], umnt["fstype"], umnt["data"], umnt["ret"]) == (None, None, None, 0)
    assert (bad["call"], bad["target"], bad["ret"], bad["err"]) == \
        ("umount", d, -errno.EINVAL, errno.EINVAL)


def test_failed_mounts_show_error_and_unreadable_pointer():
    t, pid, d, _ = run("assert libc.mount(b'none', D, b'nosuchfs', 0, None) == -1\n"
                       "assert libc.mount(ctypes.c_void_p(8), D, b'tmpfs', 0, None) == -1\n")
    [nodev, fault] = mine(t, pid)
    assert (nodev["source"], nodev["fstype"], nodev["data"], nodev["flags_names"]) == \
        ("none", "nosuchfs", None, "0x0")
    assert (nodev["ret"], nodev["err"]) == (-errno.ENODEV, errno.ENODEV)
    assert (fault["source"], fault["faulted"], fault["target"]) == (None, ["source"], d)
    assert (fault["ret"], fault["err"]) == (-errno.EFAULT, errno.EFAULT)


def has_setattr():
    """mount_setattr() is 5.12's: where the kernel lacks it, the call fails
    with ENOSYS and mountsnoop, without its tracepoint, shows the rest."""
    return kernel.tracepoint_exists("syscalls", "sys_enter_mount_setattr")


# x86_64 syscall numbers: libc has no wrappers for all of these.
NEW_API = """\
sc = libc.syscall
class MountAttr(ctypes.Structure):
    _fields_ = [(n, ctypes.c_uint64) for n in ("set", "clr", "prop", "userns_fd")]
fd = sc(430, b"tmpfs", 1)                               # fsopen FSOPEN_CLOEXEC
assert sc(431, fd, 1, b"size", b"1m", 0) == 0           # fsconfig SET_STRING
assert sc(431, fd, 2, b"size", b"a\\0\\n", 3) == -1      # SET_BINARY: not for tmpfs
assert sc(431, fd, 6, None, None, 0) == 0               # fsconfig CMD_CREATE
mfd = sc(432, fd, 1, 0x2 | 0x4 | 0x10)                  # fsmount NOSUID|NODEV|NOATIME
assert sc(429, mfd, b"", -100, D, 4) == 0               # move_mount F_EMPTY_PATH
attr = MountAttr(1, 0, 0, 0)
if HAS_SETATTR:
    assert sc(442, -100, D, 0x8000, ctypes.byref(attr), 32) == 0   # mount_setattr RDONLY
else:
    assert sc(442, -100, D, 0x8000, ctypes.byref(attr), 32) == -1 and ctypes.get_errno() == 38
assert sc(428, -100, D, 1 | 0o2000000) >= 0             # open_tree CLONE|CLOEXEC
assert sc(433, -100, D, 1) >= 0                         # fspick FSPICK_CLOEXEC
assert sc(431, 999, 0, b"ro", None, 0) == -1            # fsconfig on a bad fd
assert libc.umount2(D, 2) == 0
print(fd, mfd)
"""


@pytest.mark.skipif(platform.machine() != "x86_64", reason="syscall numbers are x86_64's")
def test_new_mount_api_decoded():
    t, pid, d, ns = run(NEW_API.replace("HAS_SETATTR", str(has_setattr())), json_mode=False)
    header, *lines = t.stdout.splitlines()
    assert header.split() == ["COMM", "PID", "TID", "MNT_NS", "CALL"]
    prefix = "%-16s %-7d %-7d %-11d " % (PYTHON_COMM, pid, pid, ns)
    calls = [line[len(prefix):] for line in lines if line.startswith(prefix)]
    assert calls == [
        'fsopen("tmpfs", FSOPEN_CLOEXEC) = 3',
        'fsconfig(3, FSCONFIG_SET_STRING, "size", "1m", 0) = 0',
        'fsconfig(3, FSCONFIG_SET_BINARY, "size", "a\\x00\\n", 3) = -EINVAL',
        'fsconfig(3, FSCONFIG_CMD_CREATE, NULL, NULL, 0) = 0',
        'fsmount(3, FSMOUNT_CLOEXEC, MOUNT_ATTR_NOATIME|MOUNT_ATTR_NOSUID|MOUNT_ATTR_NODEV) = 4',
        'move_mount(4, "", AT_FDCWD, "%s", MOVE_MOUNT_F_EMPTY_PATH) = 0' % d,
    ] + [
        'mount_setattr(AT_FDCWD, "%s", AT_RECURSIVE, {attr_set=MOUNT_ATTR_RDONLY, '
        'attr_clr=0x0, propagation=0x0, userns_fd=0}, 32) = 0' % d,
    ][:has_setattr()] + [
        'open_tree(AT_FDCWD, "%s", OPEN_TREE_CLONE|OPEN_TREE_CLOEXEC) = 5' % d,
        'fspick(AT_FDCWD, "%s", FSPICK_CLOEXEC) = 6' % d,
        'fsconfig(999, FSCONFIG_SET_FLAG, "ro", NULL, 0) = -EBADF',
        'umount("%s", MNT_DETACH) = 0' % d,
    ]


@pytest.mark.skipif(platform.machine() != "x86_64", reason="syscall numbers are x86_64's")
def test_new_mount_api_json_keeps_raw_numbers():
    t, pid, d, _ = run(NEW_API.replace("HAS_SETATTR", str(has_setattr())))
    evs = {e["call"]: e for e in mine(t, pid)}
    fsmount, move = evs["fsmount"], evs["move_mount"]
    assert (fsmount["fd"], fsmount["flags"], fsmount["flags_names"], fsmount["attr_flags"]) == \
        (3, 1, "FSMOUNT_CLOEXEC", 0x16)
    assert (move["from_dfd"], move["source"], move["to_dfd"], move["target"], move["flags"]) == \
        (4, "", -100, d, 4)
    assert ("mount_setattr" in evs) == has_setattr()
    if has_setattr():
        setattr_ = evs["mount_setattr"]
        assert setattr_["attr"] == {
            "attr_set": 1, "attr_clr": 0, "propagation": 0, "userns_fd": 0,
            "attr_set_names": "MOUNT_ATTR_RDONLY", "attr_clr_names": "0x0",
            "propagation_names": "0x0"}
        assert (setattr_["dfd"], setattr_["target"], setattr_["flags"], setattr_["size"]) == \
            (-100, d, 0x8000, 32)
    assert (evs["fsopen"]["fstype"], evs["fsopen"]["ret"]) == ("tmpfs", 3)
    [binary] = [e for e in mine(t, pid) if e.get("cmd") == 2]
    assert (binary["key"], binary["value"], binary["aux"], binary["err"]) == \
        ("size", "a\0\n", 3, errno.EINVAL)
    [create] = [e for e in mine(t, pid) if e.get("cmd") == 6]
    assert (create["cmd_name"], create["key"], create["value"], create["fd"]) == \
        ("FSCONFIG_CMD_CREATE", None, None, 3)


@pytest.mark.skipif(platform.machine() != "x86_64", reason="syscall numbers are x86_64's")
def test_open_tree_attr_and_unreadable_attr():
    # open_tree_attr() is 6.15's: where the kernel lacks it, only the rest
    has_attr = kernel.tracepoint_exists("syscalls", "sys_enter_open_tree_attr")
    t, pid, d, _ = run("""\
assert libc.mount(b"tmpfs", D, b"tmpfs", 0, None) == 0
if %s:
    attr = (ctypes.c_uint64 * 4)(0x10, 0x70, 1 << 18, 0)
    assert libc.syscall(467, -100, D, 1 | 0o2000000 | 0x8000, attr, 32) >= 0
assert libc.syscall(442, -100, D, 0, ctypes.c_void_p(8), 32) == -1
""" % has_attr, json_mode=False)
    rows = [line.split(None, 4)[4] for line in t.stdout.splitlines()[1:]
            if line.split()[1] == str(pid)]
    assert rows[1:] == [
        'open_tree_attr(AT_FDCWD, "%s", OPEN_TREE_CLONE|OPEN_TREE_CLOEXEC|AT_RECURSIVE, '
        '{attr_set=MOUNT_ATTR_NOATIME, attr_clr=MOUNT_ATTR__ATIME, propagation=MS_PRIVATE, '
        'userns_fd=0}, 32) = 3' % d][:has_attr] + [
        'mount_setattr(AT_FDCWD, "%s", 0x0, 0x8, 32) = -EFAULT' % d][:has_setattr()]


def test_text_row_with_parent_columns():
    t, pid, d, ns = run(MOUNT_UMOUNT, "-P", json_mode=False)
    header, *lines = t.stdout.splitlines()
    assert header.split() == ["COMM", "PID", "TID", "PCOMM", "PPID", "MNT_NS", "CALL"]
    prefix = "%-16s %-7d %-7d %-16s %-7d %-11d " % (
        PYTHON_COMM, pid, pid, comm_of(os.getpid()), os.getpid(), ns)
    assert [line for line in lines if line.startswith(prefix)] == [prefix + c for c in (
        'mount("tmpfs", "%s", "tmpfs", MS_NOSUID|MS_NODEV, "size=1m") = 0' % d,
        'umount("%s", 0x0) = 0' % d,
        'umount("%s", 0x0) = -EINVAL' % d)]


def test_failed_filter_both_ways():
    t, pid, d, _ = run(MOUNT_UMOUNT, "-x")
    assert [(e["call"], e["err"]) for e in mine(t, pid)] == [("umount", errno.EINVAL)]


def test_call_filter_both_ways():
    t, pid, _, _ = run(MOUNT_UMOUNT, "-c", "umount2")
    assert [(e["call"], e["ret"]) for e in mine(t, pid)] == [("umount", 0),
                                                           ("umount", -errno.EINVAL)]
    t, pid, _, _ = run(MOUNT_UMOUNT, "--call", "fsopen")
    assert mine(t, pid) == []


def test_mntns_filter_both_ways():
    for ns_arg in ("{ns}", "/proc/{pid}/ns/mnt"):
        t, pid, _, ns = run(MOUNT_UMOUNT, "--mntns", "1", "--mntns", ns_arg)
        assert [(e["call"], e["mnt_ns"]) for e in mine(t, pid)] == [("mount", ns)] + \
            [("umount", ns)] * 2
    t, pid, _, _ = run(MOUNT_UMOUNT, "--mntns", "/proc/self/ns/mnt")     # the tracer's
    assert mine(t, pid) == []


def test_pid_filter_excludes_others():
    t, pid, _, _ = run(MOUNT_UMOUNT, "--pid", str(os.getpid()))
    assert mine(t, pid) == []


@pytest.mark.parametrize("bad", [["-c", "open"], ["--mntns", "/no/such/ns"], ["--mntns", "x"],
                                 ["--mntns", "/proc/self/ns/net"]])
def test_bad_arguments_exit_2(bad):
    r = run_tool("mountsnoop", *bad)
    assert r.returncode == 2 and "usage:" in r.stderr and "Traceback" not in r.stderr
