"""statsnoop, live: every stat-family call this kernel has, made by a held
child through libc's syscall(), asserted field by field."""
import errno
import platform
import subprocess
import sys

import pytest

from helpers import PYTHON_COMM, Tracer

AT_FDCWD, AT_EMPTY_PATH, AT_SYMLINK_NOFOLLOW = -100, 0x1000, 0x100

# The child waits for a line on stdin, then runs CODE in a temp dir holding
# a file `path` (open as `fd`) and a symlink `link` to it; it prints the
# dir. `sys_` calls a syscall by its x86_64 number with a scratch buffer.
PRELUDE = """\
import ctypes, os, sys, tempfile
sys.stdin.readline()
d = os.path.realpath(tempfile.mkdtemp())
path = os.path.join(d, "data")
link = os.path.join(d, "link")
fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
os.symlink(path, link)
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
buf = ctypes.create_string_buffer(4096)
def sys_(nr, *args):
    return libc.syscall(nr, *[a.encode() if isinstance(a, str) else a for a in args])
try:
%s
finally:
    os.close(fd); os.unlink(link); os.unlink(path); os.rmdir(d)
    print(d)
"""

NEWSTAT, NEWFSTAT, NEWLSTAT, STATX = 4, 5, 6, 332


def run(code, *args, json_mode=True):
    body = "\n".join("    " + line for line in code.splitlines())
    child = subprocess.Popen([sys.executable, "-c", PRELUDE % body], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if "-p" not in args:
        args += ("-p", str(child.pid))
    with Tracer("statsnoop", *args, json_mode=json_mode) as t:
        out, err = child.communicate("go\n", timeout=10)
    assert child.returncode == 0, err
    return t, child.pid, out.strip()


def mine(t, pid, d):
    """The child's events about its temp dir (not its interpreter's start-up)."""
    return [e for e in t.events if e["pid"] == pid and (e["path"] or "").startswith(d + "/")]


@pytest.mark.skipif(platform.machine() != "x86_64", reason="syscall numbers are x86_64's")
def test_every_call_exact_fields():
    t, pid, d = run(
        "os.stat(path)\n"
        "os.lstat(link)\n"
        "os.fstat(fd)\n"
        "assert sys_(NEWSTAT, path, buf) == 0\n"
        "assert sys_(NEWLSTAT, link, buf) == 0\n"
        "assert sys_(NEWFSTAT, fd, buf) == 0\n"
        "assert sys_(STATX, AT_FDCWD, path, 0, 0xfff, buf) == 0\n"
        "os.statvfs(path)\n"
        "os.fstatvfs(fd)\n"
        "os.path.exists(path + '.missing')\n"
        .replace("NEWSTAT", str(NEWSTAT)).replace("NEWLSTAT", str(NEWLSTAT))
        .replace("NEWFSTAT", str(NEWFSTAT)).replace("STATX", str(STATX))
        .replace("AT_FDCWD", str(AT_FDCWD)))
    path, link = d + "/data", d + "/link"
    got = [(e["call"], e["path"], e["ret"], e["err"]) for e in mine(t, pid, d)]
    assert got == [
        ("newfstatat", path, 0, 0),
        ("newfstatat", link, 0, 0),
        ("newfstatat", path, 0, 0),     # fstat(): the file behind the fd
        ("newstat", path, 0, 0),
        ("newlstat", link, 0, 0),
        ("newfstat", path, 0, 0),
        ("statx", path, 0, 0),
        ("statfs", path, 0, 0),
        ("fstatfs", path, 0, 0),
        ("newfstatat", path + ".missing", -errno.ENOENT, errno.ENOENT),
    ]
    evs = mine(t, pid, d)
    assert {e["comm"] for e in evs} == {PYTHON_COMM}
    assert [e.get("dirfd") for e in evs[:3]] == [AT_FDCWD, AT_FDCWD, evs[5]["fd"]]
    assert [e.get("flags") for e in evs[:3]] == [0, AT_SYMLINK_NOFOLLOW, AT_EMPTY_PATH]
    assert evs[2]["path_from_fd"] and evs[5]["path_from_fd"] and evs[8]["path_from_fd"]
    assert "path_from_fd" not in evs[0]
    assert evs[5]["fd"] == evs[8]["fd"] >= 3


def test_relative_path_shown_as_passed_and_bad_fd_has_no_path():
    t, pid, d = run("os.chdir(d)\nos.stat('data')\n"
                    "try:\n    os.fstat(999)\nexcept OSError:\n    pass")
    evs = [e for e in t.events if e["pid"] == pid]
    rel = [e for e in evs if e["path"] == "data"]
    assert [(e["call"], e["ret"], e.get("dirfd")) for e in rel] == [("newfstatat", 0, AT_FDCWD)]
    bad = [e for e in evs if e.get("dirfd") == 999]
    assert [(e["path"], e["err"]) for e in bad] == [(None, errno.EBADF)]


def test_failed_only():
    t, pid, d = run("os.stat(path)\nos.path.exists(path + '.missing')", "-x")
    assert [(e["path"], e["err"]) for e in mine(t, pid, d)] == [(d + "/data.missing", errno.ENOENT)]
    assert all(e["ret"] < 0 for e in t.events)


def test_pid_filter_excludes_the_child():
    other = subprocess.Popen(["sleep", "30"])
    try:
        t, pid, d = run("os.stat(path)", "-p", str(other.pid))
    finally:
        other.kill()
        other.wait()
    assert [e for e in t.events if e["pid"] == pid] == []


def test_text_columns_with_syscall_and_timestamp():
    t, pid, d = run("os.path.exists(path + '.missing')", "-s", "-t", json_mode=False)
    lines = t.stdout.splitlines()
    assert lines[0].split() == ["TIME(s)", "PID", "COMM", "FD", "ERR", "SYSCALL", "PATH"]
    row = next(line for line in lines[1:] if d + "/data.missing" in line)
    ts, rpid, comm, fd, err, call, path = row.split()
    assert (rpid, comm, fd, err, call, path) == (
        str(pid), PYTHON_COMM, "-1", str(errno.ENOENT), "newfstatat", d + "/data.missing")
    assert 0 <= float(ts) < 30 and len(ts.split(".")[1]) == 9
