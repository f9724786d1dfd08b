"""killsnoop, live: a held child sends signals through every traced call to
a sleeping target and to a dead pid; events asserted field by field."""
import errno
import os
import signal
import subprocess
import sys

from helpers import PYTHON_COMM, Tracer, release

# Run by the held child: wait for a line on stdin, then signal argv[1] (alive)
# and argv[2] (dead) through each call. Signals whose default action is to
# ignore them (WINCH, URG) leave the target asleep.
SENDER = r"""
import ctypes, os, signal, sys
libc = ctypes.CDLL(None, use_errno=True)
t, dead = int(sys.argv[1]), int(sys.argv[2])
sys.stdin.readline()
os.kill(t, 0)
os.kill(t, signal.SIGWINCH)
libc.syscall(200, t, signal.SIGWINCH)                 # tkill
libc.syscall(234, t, t, signal.SIGURG)                # tgkill
libc.sigqueue(t, signal.SIGWINCH, ctypes.c_void_p(0)) # rt_sigqueueinfo
fd = os.pidfd_open(t)
signal.pidfd_send_signal(fd, signal.SIGWINCH)
try:
    os.kill(dead, signal.SIGWINCH)
except ProcessLookupError:
    pass
try:
    signal.pidfd_send_signal(0, signal.SIGWINCH)      # stdin is no pidfd
except OSError:
    pass
print(fd)
"""

WINCH, URG = int(signal.SIGWINCH), int(signal.SIGURG)


def run(*args, json_mode=True):
    """Trace one run of SENDER filtered to the sender; return (tracer,
    sender pid, target pid, dead pid, pidfd number). In args, "{t}" and
    "{dead}" stand for the target and the dead pid."""
    target = subprocess.Popen(["sleep", "30"])
    gone = subprocess.Popen(["true"])
    gone.wait()
    child = subprocess.Popen([sys.executable, "-c", SENDER, str(target.pid), str(gone.pid)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    args = [a.format(t=target.pid, dead=gone.pid) for a in args]
    try:
        with Tracer("killsnoop", "--pid", str(child.pid), *args, json_mode=json_mode) as t:
            rc, out, err = release(child)
        assert rc == 0, err
    finally:
        target.kill()
        target.wait()
    return t, child.pid, target.pid, gone.pid, int(out)


def brief(t, pid):
    """(call, sig, tpid, ret, tcomm) of the sender's events, in order."""
    return [(e["call"], e["sig"], e["tpid"], e["ret"], e["tcomm"])
            for e in t.events if e["pid"] == pid]


def expected(tp, dead):
    return [
        ("kill", 0, tp, 0, "sleep"),
        ("kill", WINCH, tp, 0, "sleep"),
        ("tkill", WINCH, tp, 0, "sleep"),
        ("tgkill", URG, tp, 0, "sleep"),
        ("rt_sigqueueinfo", WINCH, tp, 0, "sleep"),
        ("pidfd_send_signal", WINCH, tp, 0, "sleep"),
        ("kill", WINCH, dead, -errno.ESRCH, ""),
        ("pidfd_send_signal", WINCH, None, -errno.EBADF, ""),
    ]


def test_every_call_exact_fields():
    t, pid, tp, dead, fd = run()
    assert brief(t, pid) == expected(tp, dead)
    events = [e for e in t.events if e["pid"] == pid]
    for e in events:
        assert (e["comm"], e["tid"], e["uid"]) == (PYTHON_COMM, pid, os.getuid())
        assert e["err"] == -e["ret"]
    assert events[3]["tgid"] == tp
    assert "tgid" not in events[0]
    assert (events[5]["pidfd"], events[7]["pidfd"]) == (fd, 0)
    assert t.returncode == 0


def test_failed_only():
    t, pid, tp, dead, _ = run("-x")
    assert brief(t, pid) == expected(tp, dead)[6:]


def test_target_pid_filter_both_ways():
    t, pid, tp, dead, _ = run("-T", "{t}")
    assert brief(t, pid) == expected(tp, dead)[:6]      # the pidfd is resolved in the kernel
    t, pid, tp, dead, _ = run("-T", "{dead}")
    assert brief(t, pid) == expected(tp, dead)[6:7]


def test_signal_filter_by_name_and_number():
    t, pid, tp, dead, _ = run("-s", "URG,0")
    assert brief(t, pid) == [expected(tp, dead)[i] for i in (0, 3)]
    t, pid, tp, dead, _ = run("-s", "SIGUSR2,%d" % signal.SIGTERM)
    assert brief(t, pid) == []


def test_text_mode_columns():
    # BCC's columns: PID and TPID are one wider than the digits of pid_max
    with open("/proc/sys/kernel/pid_max") as f:
        w = len(f.read().strip()) + 1
    t, pid, tp, dead, _ = run("-s", "WINCH", "-T", "{dead}", json_mode=False)
    header, line = t.stdout.splitlines()
    assert header == "%-9s %-*s %-16s %-4s %-*s %s" % ("TIME", w, "PID", "COMM", "SIG", w,
                                                       "TPID", "RESULT")
    assert line[9] == " " and line[10:] == "%-*d %-16s %-4d %-*d %d" % (
        w, pid, PYTHON_COMM, WINCH, w, dead, -3)
    # -e: the target's name too
    t, pid, tp, dead, _ = run("-e", "-s", "URG", json_mode=False)
    header, line = t.stdout.splitlines()
    assert header.endswith(" TPID%s RESULT TCOMM" % (" " * (w - 4)))
    assert line[10:] == "%-*d %-16s %-4d %-*d %-6d %s" % (w, pid, PYTHON_COMM, URG, w, tp, 0,
                                                          "sleep")


def test_bad_signal_is_a_usage_error():
    from helpers import run_tool
    r = run_tool("killsnoop", "-s", "NOSUCH")
    assert r.returncode == 2 and "invalid signal 'NOSUCH'" in r.stderr
