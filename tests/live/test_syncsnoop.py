"""syncsnoop, live: real sync-family calls by a held child, asserted field by field."""
import errno
import os
import subprocess
import sys
import time

import pytest

from helpers import Tracer

MS_SYNC = 4
COMM = os.path.basename(sys.executable)[:15]

# The child waits for a line on stdin, then runs CODE with a temp file open
# as `fd` at `path`; its pid is known before it does anything.
PRELUDE = """\
import ctypes, mmap, os, sys, tempfile
sys.stdin.readline()
d = tempfile.mkdtemp()
path = os.path.join(d, "data")
fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
os.write(fd, b"x" * 8192)
libc = ctypes.CDLL(None, use_errno=True)
try:
%s
finally:
    os.close(fd); os.unlink(path); os.rmdir(d)
    print(path)
"""


def held(code, env=None):
    body = "\n".join("    " + line for line in code.splitlines())
    return subprocess.Popen([sys.executable, "-c", PRELUDE % body], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def run(code, *args, json_mode=True, env=None):
    """Trace the child's code with args (and --pid child unless a filter is
    given); return (tracer, child pid, temp file path)."""
    child = held(code, env)
    if not any(a in args for a in ("--pid", "-p", "--comm", "--uid", "-u")):
        args += ("--pid", str(child.pid))
    with Tracer("syncsnoop", *args, json_mode=json_mode) as t:
        out, err = child.communicate("go\n", timeout=10)
    assert child.returncode == 0, err
    return t, child.pid, out.strip()


def mine(t, pid):
    return [e for e in t.events if e["pid"] == pid]


def test_fd_calls_exact_fields_and_failed_call_error():
    t, pid, path = run("os.fsync(fd)\nos.fdatasync(fd)\n"
                       "assert libc.sync_file_range(fd, 4096, 100, 2) == 0\n"
                       "os.syncfs(fd) if hasattr(os, 'syncfs') else libc.syncfs(fd)\n"
                       "try:\n    os.fsync(999)\nexcept OSError:\n    pass")
    *evs, bad = mine(t, pid)
    assert [e["call"] for e in evs] == ["fsync", "fdatasync", "sync_file_range", "syncfs"]
    for e in evs:
        assert (e["file"], e["fd"], e["ret"], e["err"]) == (path, 3, 0, 0)
        assert (e["pid"], e["tid"], e["comm"], e["uid"]) == (pid, pid, COMM, os.getuid())
        assert isinstance(e["lat_ms"], float) and 0 <= e["lat_ms"] < 10000
    assert (evs[2]["offset"], evs[2]["nbytes"], evs[2]["flags"]) == (4096, 100, 2)
    assert (bad["call"], bad["fd"], bad["file"]) == ("fsync", 999, None)
    assert (bad["ret"], bad["err"]) == (-errno.EBADF, errno.EBADF)
    assert t.returncode == 0


def test_msync_shows_mapped_file_sync_shows_none():
    t, pid, path = run("m = mmap.mmap(fd, 8192)\nm[0] = 65\nm.flush(4096, 4096)\n"
                       "a = mmap.mmap(-1, 4096, flags=mmap.MAP_PRIVATE)\na.flush()\n"
                       "m.close(); a.close()\nos.sync()")
    [ms, anon, sync] = mine(t, pid)
    assert (ms["call"], ms["file"], ms["len"], ms["err"]) == ("msync", path, 4096, 0)
    assert ms["addr"] % 4096 == 0 and ms["flags"] == MS_SYNC
    assert (anon["call"], anon["file"]) == ("msync", None)
    assert (sync["call"], sync["file"], sync["err"]) == ("sync", None, 0)
    assert "fd" not in sync and sync["lat_ms"] >= 0


def test_msync_of_a_file_on_overlayfs_shows_the_path_the_task_opened(tmp_path):
    # Since 6.6 the file overlayfs maps is its upper layer's (a backing
    # file, in a private mount): the path is the overlay's all the same
    layers = tmp_path / "layers"
    merged = tmp_path / "merged"
    layers.mkdir()
    merged.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "layers", str(layers)], check=True)
    try:
        for d in ("lower", "upper", "work"):
            (layers / d).mkdir()
        subprocess.run(["mount", "-t", "overlay", "snoop", "-o", "lowerdir={0}/lower,upperdir="
                        "{0}/upper,workdir={0}/work".format(layers), str(merged)], check=True)
        try:
            t, pid, path = run("m = mmap.mmap(fd, 8192)\nm[0] = 65\nm.flush(0, 4096)\nm.close()",
                               env=dict(os.environ, TMPDIR=str(merged)))
        finally:
            subprocess.run(["umount", str(merged)], check=True)
    finally:
        subprocess.run(["umount", str(layers)], check=True)
    assert path.startswith(str(merged) + "/")
    [ms] = mine(t, pid)
    assert (ms["call"], ms["file"], ms["len"], ms["err"]) == ("msync", path, 4096, 0)


def test_failed_filter_both_ways():
    code = "os.fsync(fd)\ntry:\n    os.fsync(998)\nexcept OSError:\n    pass"
    t, pid, _ = run(code, "-x")
    assert [(e["fd"], e["err"]) for e in mine(t, pid)] == [(998, errno.EBADF)]


def test_call_and_min_latency_filters_both_ways():
    code = "os.fsync(fd)\nos.fdatasync(fd)"
    t, pid, _ = run(code, "-c", "fdatasync", "-m", "0.0001")
    assert [e["call"] for e in mine(t, pid)] == ["fdatasync"]
    t, pid, _ = run(code, "--call", "msync")
    assert mine(t, pid) == []
    t, pid, _ = run(code, "--min-ms", "60000")
    assert mine(t, pid) == []


def test_pid_and_comm_filters_both_ways():
    code = "os.fsync(fd)"
    t, pid, _ = run(code, "--pid", str(os.getpid()))
    assert mine(t, pid) == []
    t, pid, _ = run(code, "--comm", COMM)
    assert [e["call"] for e in mine(t, pid)] == ["fsync"]
    t, pid, _ = run(code, "--comm", "no-such-comm", "--pid", "1")
    assert mine(t, pid) == []


def test_text_columns():
    # BCC's columns: seconds since boot, COMM, CALL (and no pid to tell
    # whose: the events are filtered to the child)
    t, pid, path = run("os.fdatasync(fd)\nos.sync()", json_mode=False)
    header, *lines = t.stdout.splitlines()
    assert header == "%-18s %-16s %s" % ("TIME(s)", "COMM", "CALL")
    assert [line[19:] for line in lines] == ["%-16s %s" % (COMM, call)
                                             for call in ("fdatasync", "sync")]
    now = time.clock_gettime(time.CLOCK_MONOTONIC)     # bpf_ktime_get_ns()'s clock
    for line in lines:
        assert line[18] == " " and len(line[:18].rstrip().split(".")[1]) == 9
        assert 0 < now - float(line[:18]) < 60
    # -e: our columns after BCC's
    t, pid, path = run("os.fdatasync(fd)\nos.sync()", "-e", json_mode=False)
    header, *lines = t.stdout.splitlines()
    assert header == "%-18s %-16s %-16s %-7s %9s %3s %s" % ("TIME(s)", "COMM", "CALL", "PID",
                                                             "LAT(ms)", "ERR", "FILE")
    rows = [line.split() for line in lines]
    assert [r[1:4] + r[5:] for r in rows] == [[COMM, "fdatasync", str(pid), "0", path],
                                              [COMM, "sync", str(pid), "0", "-"]]
    for r in rows:
        float(r[0]), float(r[4])
        assert len(r[0].split(".")[1]) == 9 and len(r[4].split(".")[1]) == 3


@pytest.mark.parametrize("bad", [["-c", "open"], ["-m", "x"], ["-m", "-1"]])
def test_bad_arguments_exit_2(bad):
    from helpers import run_tool
    r = run_tool("syncsnoop", *bad)
    assert r.returncode == 2 and "usage:" in r.stderr
