"""What every tool gets from the shared library, shown live on opensnoop
and execsnoop: the common filters both ways, both transports, exact loss
accounting, --duration, --summary, pipes, signals, bad input, no root."""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest
from pathlib import Path

from helpers import PYTHON, PYTHON_COMM, ROOT, TOOLS, TOOLS_DIR, Tracer, held_child, release, run_tool

OPEN = PYTHON + " -c 'import os, sys; os.close(os.open(sys.argv[1], os.O_RDONLY))' "


@pytest.fixture
def open_dir():
    """A directory every user can read (pytest's tmp_path is root's alone)."""
    d = tempfile.mkdtemp(prefix="snooptools-")
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d)


@pytest.fixture
def target(open_dir):
    path = os.path.join(open_dir, "target")
    with open(path, "w") as f:
        f.write("x")
    os.chmod(path, 0o644)
    return path


def traced(target, *filters, before=None, opener=OPEN, **child_kw):
    """Paths of target opened by a held child, as seen with these filters."""
    child = held_child(opener + target, **child_kw)
    if before:
        before(child)
    with Tracer("opensnoop", "--path", target, *[f(child) if callable(f) else f for f in filters]) as t:
        rc, _, err = release(child)
    assert rc == 0, err
    return [(e["pid"], e["path"]) for e in t.events]


def test_pid_filter_both_ways(target):
    assert traced(target, "--pid", lambda c: "%d,1" % c.pid) != []
    assert traced(target, "--pid", "1") == []


def test_tid_filter_both_ways(target):
    assert traced(target, "--tid", lambda c: str(c.pid)) != []
    assert traced(target, "--tid", "1") == []


def test_uid_filter_both_ways(target):
    # cat, not python: nobody may not reach this interpreter (a venv under /root)
    nobody = {"user": 65534, "group": 65534, "extra_groups": [], "opener": "cat "}
    assert traced(target, "--uid", "65534", **nobody) != []
    assert traced(target, "--uid", "nobody", **nobody) != []
    assert traced(target, "--uid", "0", **nobody) == []


def test_comm_filter_both_ways(target):
    assert traced(target, "--comm", PYTHON_COMM) != []
    assert traced(target, "--comm", "python4") == []


def cgroup2_root():
    with open("/proc/self/mounts") as f:
        for line in f:
            dev, mnt, fstype = line.split()[:3]
            if fstype == "cgroup2":
                return mnt
    pytest.fail("no cgroup2 hierarchy mounted")


def test_cgroup_filter_both_ways(target):
    base = os.path.join(cgroup2_root(), "snooptools-test-%d" % os.getpid())
    inside, other = base + "/in", base + "/other"
    for d in (base, inside, other):
        os.makedirs(d, exist_ok=True)

    def move(child):
        with open(inside + "/cgroup.procs", "w") as f:
            f.write(str(child.pid))
    try:
        assert traced(target, "--cgroup", base, before=move) != []       # below it
        assert traced(target, "--cgroup", inside, before=move) != []
        assert traced(target, "--cgroup", other, before=move) == []
    finally:
        for d in (inside, other, base):
            for _ in range(50):
                try:
                    os.rmdir(d)
                    break
                except OSError:
                    time.sleep(0.05)


FLOOD = PYTHON + """ -c '
import os, sys
p, n = sys.argv[1], int(sys.argv[2])
for _ in range(n):
    os.close(os.open(p, os.O_RDONLY))
' """


@pytest.mark.parametrize("buffer", ["ring", "perf"])
def test_lost_events_are_counted_exactly(target, buffer):
    n = 5000
    child = held_child(FLOOD + "%s %d" % (target, n))
    with Tracer("opensnoop", "-b", "1", "--pid", str(child.pid), "--path", target,
                "--summary", env={"SNOOPTOOLS_BUFFER": buffer}) as t:
        os.kill(t.proc.pid, signal.SIGSTOP)     # a reader that cannot keep up at all
        try:
            rc, _, err = release(child, timeout=60)
        finally:
            os.kill(t.proc.pid, signal.SIGCONT)
        assert rc == 0, err
    seen = len([e for e in t.events if e["path"] == target])
    lost = sum(int(m) for m in re.findall(r"^(\d+) events lost$", t.stderr, re.M))
    assert lost > 0, "the flood did not overflow a one-page buffer"
    assert seen + lost == n
    assert "%d events, %d lost" % (seen, lost) in t.stderr      # --summary with --json


def test_summary_table_text_mode(target):
    child = held_child(FLOOD + "%s 5" % target)
    with Tracer("opensnoop", "--pid", str(child.pid), "--path", target, "--summary",
                json_mode=False) as t:
        release(child)
    out = t.stdout
    assert "5 events, 0 lost" in out
    assert re.search(r"^%s\s+%d\s+5$" % (re.escape(PYTHON_COMM), child.pid), out, re.M)
    assert re.search(r"^%s\s+5$" % re.escape(target), out, re.M)


def test_duration_ends_cleanly():
    start = time.monotonic()
    r = run_tool("execsnoop", "--duration", "0.5", "--pid", "1")
    assert r.returncode == 0, r.stderr
    assert 0.5 <= time.monotonic() - start < 10
    assert r.stdout.split() == ["COMM", "PID", "PPID", "RET", "ARGS"]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signals_end_cleanly(sig):
    with Tracer("execsnoop", "--pid", "1") as t:
        t.stop(sig)
    assert t.returncode == 0
    assert "Traceback" not in t.stderr


def test_sigint_ends_it_even_when_started_ignoring_sigint():
    # what `tool &` in a shell script gets: SIGINT ignored from the start
    p = subprocess.Popen([sys.executable, str(TOOLS_DIR / "execsnoop"), "--pid", "1"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    assert p.stderr.readline().startswith("Tracing")
    p.send_signal(signal.SIGINT)
    assert p.wait(timeout=10) == 0
    assert "Traceback" not in p.stderr.read()


def test_closed_pipe_ends_cleanly():
    tool = subprocess.Popen([sys.executable, str(TOOLS_DIR / "execsnoop")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    head = subprocess.Popen(["head", "-n", "2"], stdin=tool.stdout, stdout=subprocess.PIPE,
                            text=True)
    tool.stdout.close()
    assert tool.stderr.readline().startswith("Tracing")
    deadline = time.monotonic() + 20
    while tool.poll() is None and time.monotonic() < deadline:
        subprocess.run(["/bin/true"])
        time.sleep(0.02)
    out = head.communicate(timeout=10)[0]
    assert tool.wait(timeout=10) == 0
    assert "Traceback" not in tool.stderr.read()
    assert out.splitlines()[0].split() == ["COMM", "PID", "PPID", "RET", "ARGS"]
    assert len(out.splitlines()) == 2


@pytest.mark.parametrize("tool,args,message", [
    ("execsnoop", ["--pid", "abc"], "invalid id 'abc'"),
    ("execsnoop", ["--bogus"], "unrecognized arguments: --bogus"),
    ("execsnoop", ["--cgroup", "/nonexistent/cg"], "no such directory"),
    ("execsnoop", ["--cgroup", "/tmp"], "not in a cgroup v2 hierarchy"),
    ("execsnoop", ["--duration", "-1"], "invalid duration"),
    ("execsnoop", ["--max-args", "0"], "invalid count"),
    ("execsnoop", ["-u", "no-such-user-x"], "unknown user"),
    ("execsnoop", ["--comm", "a-name-longer-than-15"], "invalid comm"),
    ("opensnoop", ["-f", "O_BOGUS"], "unknown open flag"),
    ("opensnoop", ["--exec"], "--exec needs a command"),
    ("opensnoop", ["-p", "5", "--exec", "true"], "cannot be used together"),
])
def test_bad_arguments_exit_2(tool, args, message):
    r = run_tool(tool, *args)
    assert r.returncode == 2
    assert message in r.stderr and r.stderr.startswith("usage: " + tool)
    assert "Traceback" not in r.stderr


def test_not_root_says_so(open_dir):
    """Run as nobody from a world-readable copy of the tool and library."""
    tmp_path = Path(open_dir)
    python = shutil.which("python3", path="/usr/bin:/usr/local/bin") or sys.executable
    for d in ("tools", "lib"):
        shutil.copytree(ROOT / d, tmp_path / d, ignore=shutil.ignore_patterns("__pycache__"))
    for dirpath, dirnames, filenames in os.walk(tmp_path):
        os.chmod(dirpath, 0o755)
        for f in filenames:
            os.chmod(os.path.join(dirpath, f), 0o755)
    required = {"ttysnoop": ["/dev/ptmx"]}      # a tool's positional argument
    for tool in TOOLS:
        r = subprocess.run([python, str(tmp_path / "tools" / tool), *required.get(tool, [])],
                           capture_output=True,
                           text=True, user=65534, group=65534, extra_groups=[], timeout=30)
        assert r.returncode == 1, (tool, r.stderr)
        assert r.stderr == ("%s: permission denied: tracing needs root, or CAP_BPF, "
                            "CAP_PERFMON and CAP_DAC_READ_SEARCH (for tracefs) (run it with "
                            "sudo)\n" % tool)
