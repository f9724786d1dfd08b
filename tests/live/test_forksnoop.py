"""forksnoop, live: a held child makes a child each way it can (raw fork,
clone and clone3 with known flags, a failing clone3, and subprocess's
vfork), asserted field by field, in order."""
import errno
import os
import subprocess

from helpers import PYTHON, PYTHON_COMM, Tracer, own_cgroup_id

SIGCHLD, CLONE_VM, CLONE_VFORK = 17, 0x100, 0x4000
CLONE_THREAD, CLONE_NEWUTS, CLONE_NEWIPC = 0x10000, 0x4000000, 0x8000000

# Waits for a line, then makes its children (each _exits at once) and prints
# the results: fork's, clone's, clone3's, the failing clone3's and its
# errno, and the pid of the child subprocess made (CPython makes it with
# vfork). Syscall numbers: x86-64's.
CHILD = r"""
import ctypes, os, subprocess, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
L = ctypes.c_long
class CloneArgs(ctypes.Structure):
    _fields_ = [(n, ctypes.c_uint64) for n in ("flags", "pidfd", "child_tid", "parent_tid",
                "exit_signal", "stack", "stack_size", "tls", "set_tid", "set_tid_size", "cgroup")]
def made(ret):
    if ret == 0:
        os._exit(0)
    os.waitpid(ret, 0)
    return ret
sys.stdin.readline()
out = [made(libc.syscall(L(57))),
       made(libc.syscall(L(56), L(%(clone)d), L(0), L(0), L(0), L(0)))]
a = CloneArgs(flags=%(clone3)d, exit_signal=17)
out.append(made(libc.syscall(L(435), ctypes.byref(a), L(ctypes.sizeof(a)))))
bad = CloneArgs(flags=%(bad)d)
out += [libc.syscall(L(435), ctypes.byref(bad), L(ctypes.sizeof(bad))), ctypes.get_errno()]
p = subprocess.Popen(["/bin/true"])
p.wait()
print(*out, p.pid)
""" % {"clone": CLONE_NEWUTS | SIGCHLD, "clone3": CLONE_NEWIPC, "bad": CLONE_THREAD}


def run(*args, json_mode=True):
    """Trace the child, filtered to it; return (tracer, its pid, what it printed)."""
    child = subprocess.Popen([PYTHON, "-c", CHILD], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        with Tracer("forksnoop", "--pid", str(child.pid), *args, json_mode=json_mode) as t:
            out, err = child.communicate("go\n", timeout=20)
        assert child.returncode == 0, err
    finally:
        child.kill()
        child.wait()
    return t, child.pid, [int(x) for x in out.split()]


def expected(pid):
    """The events of the child's calls, given what it printed."""
    task = {"pid": pid, "tid": pid, "uid": os.getuid(), "comm": PYTHON_COMM}

    def made(call, child, flags, names, exit_signal=SIGCHLD):
        return dict(task, call=call, child=child, ret=child, err=0, flags=flags,
                    exit_signal=exit_signal, flags_names=names, thread=False)
    return lambda fork, clone, clone3, bad, bad_errno, vfork: [
        made("fork", fork, 0, "SIGCHLD"),
        made("clone", clone, CLONE_NEWUTS, "CLONE_NEWUTS|SIGCHLD"),
        made("clone3", clone3, CLONE_NEWIPC, "CLONE_NEWIPC|SIGCHLD"),
        dict(task, call="clone3", child=None, ret=-bad_errno, err=bad_errno, flags=CLONE_THREAD,
             exit_signal=0, flags_names="CLONE_THREAD", thread=True),
        made("vfork", vfork, CLONE_VM | CLONE_VFORK, "CLONE_VM|CLONE_VFORK|SIGCHLD")]


def strip(events):
    """The events without ts, once each is seen to be of this test's cgroup
    (its children's)."""
    cgroup = own_cgroup_id()
    assert all(e["cgroup_id"] == cgroup for e in events)
    return [{k: v for k, v in e.items() if k not in ("ts", "cgroup_id")} for e in events]


def test_each_call_exact_fields_in_order():
    t, pid, results = run()
    fork, clone, clone3, bad, bad_errno, vfork = results
    assert (bad, bad_errno) == (-1, errno.EINVAL)      # CLONE_THREAD without CLONE_SIGHAND
    assert len({fork, clone, clone3, vfork}) == 4 and min(fork, clone, clone3, vfork) > 0
    assert strip(t.events) == expected(pid)(*results)


def test_failed_only_and_calls_filtered_in_the_kernel():
    t, pid, results = run("-x")
    assert strip(t.events) == expected(pid)(*results)[3:4]
    t, pid, results = run("-c", "clone3", "--call", "vfork")
    assert [e["call"] for e in t.events] == ["clone3", "clone3", "vfork"]
    assert strip(t.events) == expected(pid)(*results)[2:]


def test_text_columns():
    t, pid, (fork, clone, clone3, _, _, vfork) = run(json_mode=False)
    lines = t.stdout.splitlines()
    assert lines[0].split() == ["PCOMM", "PID", "CHILD", "CALL", "FLAGS"]
    assert [line.split() for line in lines[1:]] == [
        [PYTHON_COMM, str(pid), str(fork), "fork", "SIGCHLD"],
        [PYTHON_COMM, str(pid), str(clone), "clone", "CLONE_NEWUTS|SIGCHLD"],
        [PYTHON_COMM, str(pid), str(clone3), "clone3", "CLONE_NEWIPC|SIGCHLD"],
        [PYTHON_COMM, str(pid), "-EINVAL", "clone3", "CLONE_THREAD"],
        [PYTHON_COMM, str(pid), str(vfork), "vfork", "CLONE_VM|CLONE_VFORK|SIGCHLD"]]
