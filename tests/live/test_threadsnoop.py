"""threadsnoop, live: threads started by a held child, asserted field by field."""
import json
import os
import shutil
import subprocess

import pytest

from helpers import PYTHON, PYTHON_COMM, Tracer, run_tool

# The child waits for a line, then starts three threads with pthread_create
# whose start routine is libc's own gettid() (so each thread's return value
# is its id, and the routine has one exported name on any glibc build, where
# a Python thread's static wrapper is named only where libpython keeps its
# full symbol table), and one thread by glibc's clone() wrapper, which never
# calls pthread_create (it runs getpid() on a stack of its own and exits).
# It prints the thread ids and the file and address ranges of its libc.
CHILD = """\
import ctypes, json, os, sys
sys.stdin.readline()
libc = ctypes.CDLL(None, use_errno=True)
libc.pthread_create.argtypes = [ctypes.POINTER(ctypes.c_ulong), ctypes.c_void_p,
                                ctypes.c_void_p, ctypes.c_void_p]
libc.pthread_join.argtypes = [ctypes.c_ulong, ctypes.POINTER(ctypes.c_void_p)]
ids = []
for _ in range(3):
    t, ret = ctypes.c_ulong(), ctypes.c_void_p()
    assert libc.pthread_create(ctypes.byref(t), None,
                               ctypes.cast(libc.gettid, ctypes.c_void_p), None) == 0
    assert libc.pthread_join(t.value, ctypes.byref(ret)) == 0
    ids.append(ret.value)
libc.clone.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p]
# CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM
stack = ctypes.create_string_buffer(1 << 16)
tid = libc.clone(ctypes.cast(libc.getpid, ctypes.c_void_p), ctypes.addressof(stack) + (1 << 16),
                 0x100 | 0x200 | 0x400 | 0x800 | 0x10000 | 0x40000, None)
assert tid > 0, ctypes.get_errno()
maps = [line.split() for line in open("/proc/self/maps")]
libc_file = next(m[5] for m in maps if len(m) == 6 and os.path.basename(m[5]).startswith("libc."))
ranges = [[int(a, 16) for a in m[0].split("-")] for m in maps if len(m) == 6 and m[5] == libc_file]
print(json.dumps({"ids": ids, "clone": tid, "module": libc_file, "ranges": ranges}))
"""


def run(*args, json_mode=True):
    """Trace the child with args (and -p child unless a pid is given);
    return (tracer, child pid, what the child printed)."""
    child = subprocess.Popen([PYTHON, "-c", CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    if not any(a in args for a in ("-p", "--pid")):
        args += ("-p", str(child.pid))
    with Tracer("threadsnoop", *args, json_mode=json_mode) as t:
        out, err = child.communicate("go\n", timeout=10)
    assert child.returncode == 0, err
    assert t.returncode == 0, t.stderr
    return t, child.pid, json.loads(out)


def mine(t, pid):
    return [e for e in t.events if e["pid"] == pid]


def test_pthread_create_exact_fields():
    t, pid, info = run()
    evs = mine(t, pid)
    assert len(evs) == 3            # the clone() thread is not pthread_create's
    for e in evs:
        assert (e["pid"], e["tid"], e["uid"], e["comm"]) == (pid, pid, os.getuid(), PYTHON_COMM)
        assert (e["func"], e["module"]) == ("gettid", info["module"])
        assert any(lo <= e["func_addr"] < hi for lo, hi in info["ranges"])
        assert "new_tid" not in e
    assert len({e["func_addr"] for e in evs}) == 1


def test_all_sees_every_new_thread_with_its_tid():
    t, pid, info = run("--all")
    # by the new thread's id: a perf buffer (the 6.12 guest's) is one buffer
    # per CPU, and the child may move between CPUs from one thread to the next
    *pthreads, raw = sorted(mine(t, pid), key=lambda e: (e["func"] is None, e["new_tid"]))
    assert [e["new_tid"] for e in pthreads] == sorted(info["ids"])
    for e in pthreads:
        assert (e["pid"], e["tid"], e["comm"]) == (pid, pid, PYTHON_COMM)
        assert (e["func"], e["module"]) == ("gettid", info["module"])
    assert (raw["new_tid"], raw["tid"], raw["comm"]) == (info["clone"], pid, PYTHON_COMM)
    assert (raw["func"], raw["func_addr"], raw["module"]) == (None, None, None)


def test_pid_filter_excludes_in_both_modes():
    # (the other tests include the child by -p)
    for args in (("-p", str(os.getpid())), ("-a", "--pid", "1,%d" % os.getpid())):
        t, pid, _ = run(*args)
        assert mine(t, pid) == []


def test_comm_filter_both_ways():
    t, pid, _ = run("-a", "--comm", PYTHON_COMM)
    assert [e["new_tid"] > 0 for e in mine(t, pid)] == [True] * 4
    t, pid, _ = run("--comm", "no-such-comm")
    assert mine(t, pid) == []


def test_libc_option_both_ways(tmp_path):
    libc = next(line.split()[5] for line in open("/proc/self/maps")
                if line.split()[-1].rsplit("/", 1)[-1].startswith("libc.so"))
    t, pid, _ = run("--libc", libc)
    assert [e["func"] for e in mine(t, pid)] == ["gettid"] * 3
    # a copy is another file: the child's pthread_create is not in it
    copy = tmp_path / "libc.so.6"
    shutil.copy(libc, copy)
    t, pid, _ = run("--libc", str(copy))
    assert mine(t, pid) == []


def test_text_columns():
    t, pid, _ = run(json_mode=False)
    header, *lines = t.stdout.splitlines()
    assert header.split() == ["TIME(ms)", "PID", "COMM", "FUNC"]
    rows = [line.split() for line in lines]
    assert [r[1:] for r in rows] == [[str(pid), PYTHON_COMM, "gettid"]] * 3
    assert rows[0][0] == "0" and all(0 <= int(r[0]) < 10000 for r in rows)
    assert header.index("PID") == 11 and header.index("COMM") == 19 and header.index("FUNC") == 36

    t, pid, info = run("-a", json_mode=False)
    header, *lines = t.stdout.splitlines()
    assert header.split() == ["TIME(ms)", "PID", "TID", "COMM", "FUNC"]
    rows = sorted(line.split()[1:] for line in lines)
    assert rows == sorted([[str(pid), str(tid), PYTHON_COMM, "gettid"] for tid in info["ids"]]
                          + [[str(pid), str(info["clone"]), PYTHON_COMM, "[unknown]"]])


@pytest.mark.parametrize("bad", [["--libc", "/no/such/libc.so.6"], ["--libc", "/etc/passwd"],
                                 ["--libc", "/bin/true"], ["-p", "x"]])
def test_bad_arguments_exit_2(bad):
    r = run_tool("threadsnoop", *bad)
    assert r.returncode == 2 and "usage:" in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()[-1]) < 200
