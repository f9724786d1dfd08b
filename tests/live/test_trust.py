"""Trust at first contact: what a new user meets on a host unlike the
developers' warm one. Tools of every kind on a cold host (no tracefs, no
debugfs), as a user with capabilities instead of root, in the C locale,
from an installed copy started through a symlink; and stdout's integrity
when its reader stalls and the tool is stopped, or the disk is full."""
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

import pytest

from helpers import PYTHON, PYTHON_COMM, ROOT, Tracer, held_child, release

# one tool of every kind: syscall, sched, block, uprobe, tty
COLD_TIER = ["tests/live/test_execsnoop.py", "tests/live/test_exitsnoop.py",
             "tests/live/test_biosnoop.py", "tests/live/test_threadsnoop.py",
             "tests/live/test_ttysnoop.py"]

# unmount every tracefs and debugfs (deepest first), prove none is left, run
COLD = """set -e
for m in $(awk '$3 == "tracefs" || $3 == "debugfs" {print $2}' /proc/self/mounts | sort -r); do
    umount "$m"
done
! awk '{print $3}' /proc/self/mounts | grep -qxE 'tracefs|debugfs'
exec "$@"
"""


def cold(*argv, **kw):
    """argv run in a mount namespace of its own with tracefs and debugfs
    unmounted, as on a fresh boot, a container or a minimal VM."""
    return subprocess.run(["unshare", "--mount", "--propagation", "private",
                           "sh", "-c", COLD, "cold", *argv], cwd=ROOT, capture_output=True,
                          text=True, **kw)


@pytest.mark.time_limit(900)
def test_tools_of_every_kind_pass_their_live_tests_on_a_cold_host():
    r = cold(PYTHON, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--no-header",
             *COLD_TIER, timeout=850)
    summary = r.stdout.strip().splitlines()[-1] if r.stdout.strip() else ""
    assert r.returncode == 0 and re.fullmatch(r"\d+ passed in [\d.]+s( \([\d:]+\))?", summary), \
        r.stdout[-4000:] + r.stderr[-2000:]


def test_cold_host_tracefs_is_mounted_by_the_tool_in_its_namespace():
    r = cold("sh", "-c", 'tools/opensnoop --pid 1 --duration 0.2 >/dev/null && '
             'awk \'$3 == "tracefs" {print $2}\' /proc/self/mounts', timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "/sys/kernel/tracing\n"
    assert r.stderr == "Tracing open() calls... Ctrl-C to end.\n"


def test_cold_host_without_cap_sys_admin_one_line_with_the_command():
    r = cold("setpriv", "--bounding-set=-sys_admin", "--inh-caps=-sys_admin",
             "tools/opensnoop", "--pid", "1", timeout=60)
    assert r.returncode == 1
    assert r.stdout == ""
    assert r.stderr == ("opensnoop: tracefs is not mounted, and mounting it on /sys/kernel/tracing "
                        "failed: Operation not permitted (as root: mount -t tracefs tracefs "
                        "/sys/kernel/tracing)\n")


CAPS = "+bpf,+perfmon,+dac_read_search"
AS_NOBODY = ("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
             "--bounding-set=-all," + CAPS, "--inh-caps=-all," + CAPS, "--ambient-caps=" + CAPS)


PARANOID = "/proc/sys/kernel/perf_event_paranoid"


@pytest.fixture
def perf_paranoid():
    """Set kernel.perf_event_paranoid for the test; the host's value after."""
    with open(PARANOID) as f:
        saved = f.read()

    def set_level(level):
        with open(PARANOID, "w") as f:
            f.write(str(level))
    yield set_level
    set_level(saved.strip())


def opens_traced_as_nobody(tmp_path):
    """opensnoop as uid 65534 with CAP_BPF, CAP_PERFMON, CAP_DAC_READ_SEARCH
    only, sees a held child's open() exactly."""
    target = tmp_path / "as-nobody"
    target.write_text("x")
    child = held_child("cat " + str(target))
    with Tracer("opensnoop", "--pid", str(child.pid), launcher=AS_NOBODY) as t:
        with open("/proc/%d/status" % t.proc.pid) as f:
            status = dict(line.split(":", 1) for line in f)
        assert status["Uid"].split()[:2] == ["65534", "65534"]
        assert int(status["CapEff"], 16) == (1 << 39) | (1 << 38) | (1 << 2)
        assert release(child)[0] == 0
    assert t.returncode == 0, t.stderr
    ev, = [e for e in t.events if e["path"] == str(target)]
    assert (ev["pid"], ev["comm"], ev["uid"], ev["err"]) == (child.pid, "cat", 0, 0)
    assert ev["fd"] >= 3


def test_a_user_with_cap_bpf_perfmon_and_dac_read_search_not_root(tmp_path, perf_paranoid):
    """CAP_BPF and CAP_PERFMON load and attach; tracefs's files are root's
    (mode 0700), so reading a tracepoint's id takes CAP_DAC_READ_SEARCH.
    At perf_event_paranoid 2, the upstream default (Debian's is 3)."""
    perf_paranoid(2)
    opens_traced_as_nobody(tmp_path)


def test_paranoid_3_on_a_kernel_that_keeps_perf_events_to_cap_sys_admin(tmp_path,
                                                                       perf_paranoid):
    """Debian's kernels read perf_event_paranoid 3 as "no perf event without
    CAP_SYS_ADMIN", so CAP_PERFMON cannot attach to a tracepoint, and one
    line says which setting refuses it; upstream's read 3 as 2."""
    perf_paranoid(3)
    with open("/proc/version") as f:
        if "Debian" not in f.read():
            opens_traced_as_nobody(tmp_path)
            return
    r = subprocess.run([*AS_NOBODY, PYTHON, str(ROOT / "tools/opensnoop"), "--pid", "1"],
                       capture_output=True, text=True, timeout=120)
    assert (r.returncode, r.stdout) == (1, "")
    assert r.stderr == ("opensnoop: perf events refused: kernel.perf_event_paranoid is 3, "
                        "which this kernel may read as CAP_SYS_ADMIN only (as root: sysctl "
                        "kernel.perf_event_paranoid=2, or run it with sudo)\n")


def test_without_cap_dac_read_search_one_line_says_what_to_add():
    caps = "+bpf,+perfmon"
    r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                        "--bounding-set=-all," + caps, "--inh-caps=-all," + caps,
                        "--ambient-caps=" + caps, str(ROOT / "tools/opensnoop"), "--pid", "1"],
                       capture_output=True, text=True, timeout=60)
    assert (r.returncode, r.stdout) == (1, "")
    assert r.stderr == ("opensnoop: cannot read tracefs at /sys/kernel/tracing: Permission "
                        "denied (its files are root's: run as root, or add CAP_DAC_READ_SEARCH)\n")


def test_c_locale_prints_a_non_ascii_file_name(tmp_path):
    """In the C locale Python writes UTF-8 (PEP 540): the name's own bytes,
    as BCC prints them, and an undecodable byte escaped."""
    name = "caf\u00e9-\u540d-".encode() + b"\xff"
    os.close(os.open(bytes(tmp_path) + b"/" + name, os.O_CREAT | os.O_WRONLY, 0o644))
    child = held_child("cat caf*", cwd=str(tmp_path))
    with Tracer("opensnoop", "--pid", str(child.pid), json_mode=False,
                env={"LC_ALL": "C", "LANG": "C"}, launcher=()) as t:
        assert release(child)[0] == 0
    assert t.returncode == 0, t.stderr
    header, *lines = t.stdout.splitlines()
    assert header.split() == ["PID", "COMM", "FD", "ERR", "PATH"]
    line, = [x for x in lines if x.split()[1] == "cat" and "caf" in x]
    pid, comm, fd, err, path = line.split(None, 4)
    assert (int(pid), comm, err, path) == (child.pid, "cat", "0", "caf\u00e9-\u540d-\\xff")


def test_an_installed_copy_started_through_a_symlink_elsewhere(tmp_path):
    dest = tmp_path / "root"
    r = subprocess.run(["make", "-s", "install", "DESTDIR=%s" % dest, "PREFIX=/usr"],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    installed = dest / "usr/share/tools/execsnoop"
    # the first line names the interpreter the library was compiled with
    first = installed.read_text().splitlines()[0]
    assert first.startswith("#!/") and os.path.realpath(first[2:]) == os.path.realpath(
        sys._base_executable)
    elsewhere = tmp_path / "bin"
    elsewhere.mkdir()
    (elsewhere / "es").symlink_to(installed)
    child = held_child("/bin/echo installed copy")
    with Tracer(str(elsewhere / "es"), "--pid", str(child.pid), launcher=()) as t:
        assert t.proc.args[0] == str(elsewhere / "es")
        assert release(child)[0] == 0
    assert t.returncode == 0, t.stderr
    ev, = t.events
    assert (ev["pid"], ev["ppid"], ev["comm"], ev["args"], ev["ret"]) == (
        child.pid, os.getpid(), "echo", ["/bin/echo", "installed", "copy"], 0)


# -- stdout's integrity ----------------------------------------------------

N = 20000
LOOP = ("import os, sys\nsys.stdin.readline()\nfor _ in range(%d):\n"
        "    os.close(os.open('/dev/null', os.O_RDONLY))\n" % N)


def stalled(mode, signals, resume_after=None):
    """opensnoop with stdout on a pipe that nobody reads, a loop of N
    opens, then signals; then the pipe read to its end (or, resume_after
    seconds after the signal, read while the tool still waits). Returns
    (exit status, seconds to exit, lines, stderr)."""
    loop = subprocess.Popen([PYTHON, "-c", LOOP], stdin=subprocess.PIPE)
    r, w = os.pipe()
    tool = subprocess.Popen([str(ROOT / "tools/opensnoop"), "--pid", str(loop.pid), *mode],
                            stdout=w, stderr=subprocess.PIPE, text=True)
    os.close(w)
    try:
        assert tool.stderr.readline().startswith("Tracing")
        loop.communicate(b"go\n", timeout=60)
        time.sleep(0.5)                         # the last events drained into a full pipe
        data = []
        reader = threading.Thread(target=lambda: data.append(_read_to_end(r)))
        t0 = time.monotonic()
        for sig in signals:
            tool.send_signal(sig)
            time.sleep(0.3)
        if resume_after is not None:
            time.sleep(resume_after)
            reader.start()
        status = tool.wait(timeout=60)
        took = time.monotonic() - t0
        err = tool.stderr.read()
        if resume_after is None:
            reader.start()
        reader.join(30)
    finally:
        tool.kill()
        loop.kill()
        tool.wait()
        loop.wait()
        os.close(r)
    return status, took, data[0].decode().splitlines(keepends=True), err


def _read_to_end(fd):
    chunks = []
    while chunk := os.read(fd, 1 << 16):
        chunks.append(chunk)
    return b"".join(chunks)


def accounted(lines, err, json_mode):
    """(events written, every line whole and exact; events the kernel lost;
    events not written), the last two as stderr reports them."""
    assert all(line.endswith("\n") for line in lines)
    if json_mode:
        events = [json.loads(line) for line in lines]
        assert all((e["path"], e["comm"], e["fd"], e["err"]) == ("/dev/null", PYTHON_COMM, 3, 0)
                   for e in events)
    else:
        assert lines[0].split() == ["PID", "COMM", "FD", "ERR", "PATH"]
        events = [line.split()[1:] for line in lines[1:]]
        assert all(e == [PYTHON_COMM, "3", "0", "/dev/null"] for e in events)
    lost = sum(int(n) for n in re.findall(r"^(\d+) events lost$", err, re.M))
    unwritten = sum(int(n) for n in re.findall(r"^(\d+) events not written: ", err, re.M))
    return len(events), lost, unwritten


@pytest.mark.parametrize("mode,sig", [(["--json"], signal.SIGINT), ([], signal.SIGTERM),
                                      (["--json"], signal.SIGHUP)],
                         ids=["json-SIGINT", "text-SIGTERM", "json-SIGHUP"])
def test_stopped_while_stdout_stalls_every_event_written_whole_or_counted(mode, sig):
    status, took, lines, err = stalled(mode, [sig])
    written, lost, unwritten = accounted(lines, err, bool(mode))
    assert status == 0 and took < 30
    assert written > 0 and unwritten > 0 and written + lost + unwritten == N, err
    assert ("%d events not written: stdout's reader did not take them within 5 s of the stop\n"
            % unwritten) in err


def test_a_second_signal_ends_the_wait_at_once_with_the_same_report():
    status, took, lines, err = stalled(["--json"], [signal.SIGINT, signal.SIGINT])
    written, lost, unwritten = accounted(lines, err, True)
    assert status == 0 and took < 4
    assert written + lost + unwritten == N
    assert "%d events not written: stopped by a second signal\n" % unwritten in err


def test_a_reader_that_comes_back_within_the_wait_gets_every_event():
    status, took, lines, err = stalled(["--json"], [signal.SIGINT], resume_after=1)
    assert status == 0
    assert accounted(lines, err, True) == (N, 0, 0), err


def test_a_full_disk_is_one_line_and_exit_1():
    with open("/dev/full", "w") as full:
        r = subprocess.run([str(ROOT / "tools/execsnoop"), "--pid", "1"], stdout=full,
                           stderr=subprocess.PIPE, text=True, timeout=60)
    assert r.returncode == 1
    assert r.stderr == ("Tracing exec() calls... Ctrl-C to end.\n"
                        "execsnoop: cannot write to stdout: No space left on device\n")
