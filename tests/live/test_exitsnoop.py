"""exitsnoop, live: real exits of held children, asserted field by field."""
import os
import re
import resource
import shlex
import sys
import time

from helpers import Tracer, held_child, release

HOLD = 0.3      # seconds a child is kept alive before it runs its command


def exits(t, pid):
    return [e for e in t.events if e["pid"] == pid]


def run_held(tracer_args, command, json_mode=True, **kw):
    """Start command held, trace it with --pid, release it after HOLD seconds;
    the child's stdout is kept in child.out."""
    child = held_child(command, **kw)
    started = time.monotonic()
    with Tracer("exitsnoop", "--pid", str(child.pid), *tracer_args, json_mode=json_mode) as t:
        time.sleep(max(0, HOLD - (time.monotonic() - started)))
        _, child.out, _ = release(child)
    return child, t


def python(code):
    return "%s -c %s" % (shlex.quote(sys.executable), shlex.quote(code))


def test_exit_code_exact_fields():
    child, t = run_held((), "/bin/sh -c 'exit 3'")
    assert child.returncode == 3
    [e] = exits(t, child.pid)
    assert (e["exit_code"], e["sig"], e["core"], e["exit"]) == (3, 0, False, "code 3")
    assert (e["tid"], e["ppid"], e["uid"], e["comm"]) == (child.pid, os.getpid(), os.getuid(), "sh")
    assert HOLD <= e["age"] < 30
    assert abs(e["ts"] - time.time()) < 30
    assert t.returncode == 0


def test_killed_by_signal():
    child, t = run_held((), python("import os; os.kill(os.getpid(), 9)"))
    assert child.returncode == -9
    [e] = exits(t, child.pid)
    assert (e["exit_code"], e["sig"], e["core"], e["exit"]) == (0, 9, False, "signal 9 (KILL)")
    assert e["tid"] == child.pid and e["ppid"] == os.getpid()


def _core_limit(n):
    return lambda: resource.setrlimit(resource.RLIMIT_CORE, (n, n))


def test_core_dump_flag(tmp_path):
    cmd = "/bin/sh -c 'kill -ABRT $$'"
    child, t = run_held((), cmd, cwd=tmp_path, preexec_fn=_core_limit(0))
    [e] = exits(t, child.pid)
    assert (e["sig"], e["core"], e["exit"]) == (6, False, "signal 6 (ABRT)")

    with open("/proc/sys/kernel/core_pattern") as f:
        pattern = f.read().strip()
    child, t = run_held((), cmd, cwd=tmp_path, preexec_fn=_core_limit(resource.RLIM_INFINITY))
    [e] = exits(t, child.pid)
    assert e["sig"] == 6
    if not pattern.startswith("|") and "/" not in pattern:      # a core file in cwd
        assert e["core"] is True and e["exit"] == "signal 6 (ABRT), core dumped"


def test_failed_only_in_kernel():
    ok, bad = held_child("/bin/true"), held_child("/bin/sh -c 'exit 7'")
    with Tracer("exitsnoop", "-x", "--pid", "%d,%d" % (ok.pid, bad.pid)) as t:
        release(ok)
        release(bad)
    assert exits(t, ok.pid) == []
    assert [e["exit_code"] for e in exits(t, bad.pid)] == [7]


THREAD = """
import threading
t = threading.Thread(target=lambda: print(threading.get_native_id(), flush=True))
t.start(); t.join()
"""


def test_per_thread_and_default():
    child, t = run_held(("--per-thread",), python(THREAD))
    tid = int(child.out)
    events = exits(t, child.pid)
    assert sorted(e["tid"] for e in events) == sorted([child.pid, tid])
    [thread] = [e for e in events if e["tid"] == tid]
    assert (thread["exit_code"], thread["sig"], thread["ppid"]) == (0, 0, os.getpid())
    assert thread["age"] < HOLD                  # a thread's own age with --per-thread
    # The two events' order is not asserted: a joined thread wakes its
    # joiner (exit_mm clears its tid) before its sched_process_exit fires,
    # so under load the process's own exit can come first.
    [main] = [e for e in events if e["tid"] == child.pid]
    assert (main["exit_code"], main["sig"], main["ppid"]) == (0, 0, os.getpid())

    child, t = run_held((), python(THREAD))
    [e] = exits(t, child.pid)
    assert e["tid"] == child.pid and e["exit"] == "0"


LEADER_FIRST = """
import ctypes, os, threading, time
def later():
    time.sleep(0.2)
    os._exit(5)
threading.Thread(target=later).start()
ctypes.CDLL(None).pthread_exit(None)
"""


def test_process_exit_is_its_last_thread():
    # The leader leaves first with pthread_exit(); the process ends (code 5)
    # when the other thread exits: one event, for that thread, with code 5.
    child, t = run_held((), python(LEADER_FIRST))
    assert child.returncode == 5
    [e] = exits(t, child.pid)
    assert e["tid"] != child.pid and (e["exit_code"], e["sig"]) == (5, 0)
    assert HOLD <= e["age"] < 30                 # the process's age, not the thread's


def test_text_columns_utc_and_label():
    child, t = run_held(("--utc", "--label"), "/bin/sh -c 'exit 3'", json_mode=False)
    header, *lines = t.stdout.splitlines()
    # BCC's: TIME-UTC %-13s and LABEL %-6s with no space after them
    assert header == "%-13s%-6s%-16s %-7s %-7s %-7s %-7s %s" % (
        "TIME-UTC", "LABEL", "PCOMM", "PID", "PPID", "TID", "AGE(s)", "EXIT_CODE")
    [line] = lines
    assert line[12] == " " and line[13:19] == "exit  "
    f = line.split()
    assert re.fullmatch(r"\d\d:\d\d:\d\d\.\d\d\d", f[0])
    assert abs(time.strptime(f[0][:8], "%H:%M:%S").tm_hour - time.gmtime().tm_hour) in (0, 1, 23)
    assert f[1:6] == ["exit", "sh", str(child.pid), str(os.getpid()), str(child.pid)]
    assert float(f[6]) >= HOLD and f[7:] == ["code", "3"]

    child, t = run_held(("--label", "bye"), "/bin/true", json_mode=False)
    header, line = t.stdout.splitlines()
    assert header.split()[:2] == ["LABEL", "PCOMM"] and line.split()[0] == "bye"
    assert line.split()[-1] == "0"
    # an empty label is BCC's "exit"
    child, t = run_held(("--label=",), "/bin/true", json_mode=False)
    header, line = t.stdout.splitlines()
    assert header.startswith("LABEL PCOMM") and line.startswith("exit  true ")
