"""shmsnoop, live: a held child runs a System V segment's whole life through
libc (shmget, shmat, shmdt, shmctl) plus one failing call, asserted field by
field, in order."""
import errno
import os
import shlex
import sys

from helpers import Tracer, held_child, release

COMM = os.path.basename(sys.executable)[:15]     # the child's comm
IPC_PRIVATE, IPC_CREAT, IPC_RMID, IPC_STAT, SHM_RDONLY = 0, 0o1000, 0, 2, 0o10000

# Prints "shmid addr buf" (the attach address, the IPC_STAT buffer) at the end.
CHILD = r"""
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
libc.shmget.argtypes = [ctypes.c_int, ctypes.c_size_t, ctypes.c_int]
libc.shmat.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_int]
libc.shmat.restype = ctypes.c_void_p
libc.shmdt.argtypes = [ctypes.c_void_p]
libc.shmctl.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_void_p]
buf = ctypes.create_string_buffer(256)
shmid = libc.shmget(0, 4096, 0o1000 | 0o600)
addr = libc.shmat(shmid, None, 0o10000)
libc.shmctl(shmid, 2, buf)
libc.shmdt(addr)
libc.shmctl(shmid, 0, None)
libc.shmctl(-1, 0, None)
print(shmid, addr, ctypes.addressof(buf))
"""


def shm_child():
    return held_child("%s -c %s" % (shlex.quote(sys.executable), shlex.quote(CHILD)))


def run_child(child):
    rc, out, err = release(child)
    assert rc == 0, err
    return [int(x) for x in out.split()]


def strip(e):
    """An event's own fields, without the time stamp."""
    return {k: v for k, v in e.items() if k not in ("ts", "cgroup_id")}


def test_segment_life_exact_fields_in_order():
    child = shm_child()
    with Tracer("shmsnoop", "--pid", str(child.pid)) as t:
        shmid, addr, buf = run_child(child)
    task = {"pid": child.pid, "tid": child.pid, "uid": os.getuid(), "comm": COMM}
    assert [strip(e) for e in t.events] == [
        dict(task, call="shmget", ret=shmid, err=0, key=IPC_PRIVATE, size=4096,
             shmflg=IPC_CREAT | 0o600),
        dict(task, call="shmat", ret=addr, err=0, shmid=shmid, shmaddr=0, shmflg=SHM_RDONLY),
        dict(task, call="shmctl", ret=0, err=0, shmid=shmid, cmd=IPC_STAT, buf=buf),
        dict(task, call="shmdt", ret=0, err=0, shmaddr=addr),
        dict(task, call="shmctl", ret=0, err=0, shmid=shmid, cmd=IPC_RMID, buf=0),
        dict(task, call="shmctl", ret=-errno.EINVAL, err=errno.EINVAL, shmid=-1, cmd=IPC_RMID,
             buf=0),
    ]
    assert t.returncode == 0


def test_text_mode_bcc_columns_and_decoded_args():
    child = shm_child()
    with Tracer("shmsnoop", "-p", str(child.pid), json_mode=False) as t:
        shmid, addr, buf = run_child(child)
    header, *lines = t.stdout.splitlines()
    assert header.split() == ["PID", "COMM", "SYS", "RET", "ARGs"]
    prefix = "%-6d %-16s " % (child.pid, COMM)
    assert lines == [prefix + s for s in (
        "SHMGET %16x key: 0x0, size: 4096, shmflg: 0x380 (IPC_CREAT|0600)" % shmid,
        " SHMAT %16x shmid: 0x%x, shmaddr: 0x0, shmflg: 0x1000 (SHM_RDONLY)" % (addr, shmid),
        "SHMCTL %16x shmid: 0x%x, cmd: 2 (IPC_STAT), buf: 0x%x" % (0, shmid, buf),
        " SHMDT %16x shmaddr: 0x%x" % (0, addr),
        "SHMCTL %16x shmid: 0x%x, cmd: 0 (IPC_RMID), buf: 0x0" % (0, shmid),
        "SHMCTL ffffffffffffffea shmid: 0xffffffff, cmd: 0 (IPC_RMID), buf: 0x0, "
        "err: 22 (EINVAL)",
    )]


def test_pid_filter_excludes_other_processes():
    child = shm_child()
    with Tracer("shmsnoop", "-p", str(os.getpid())) as t:
        run_child(child)
    assert [e for e in t.events if e["pid"] == child.pid] == []


def test_tid_filter_and_tid_column():
    child = shm_child()
    with Tracer("shmsnoop", "-t", str(child.pid), json_mode=False) as t:
        run_child(child)
    header, *lines = t.stdout.splitlines()
    assert header.split()[0] == "TID"
    assert [line.split()[:3] for line in lines][:2] == [
        [str(child.pid), COMM, "SHMGET"], [str(child.pid), COMM, "SHMAT"]]
    assert len(lines) == 6


def test_name_substring_filter_both_ways():
    child = shm_child()
    with Tracer("shmsnoop", "--pid", str(child.pid), "-n", COMM[1:4]) as t:
        run_child(child)
    assert [e["call"] for e in t.events] == ["shmget", "shmat", "shmctl", "shmdt", "shmctl",
                                             "shmctl"]
    child = shm_child()
    with Tracer("shmsnoop", "--pid", str(child.pid), "-n", "nomatch") as t:
        run_child(child)
    assert t.events == []
