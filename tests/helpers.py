"""Shared by the tests: where things are, and Tracer, which runs a tool the
way a script would (--json), waits for its Tracing line and collects what
it printed."""
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOOLS_DIR = ROOT / "tools"
COMMANDS = ["snoop"]       # in tools/, with no object of their own: they run the tools
TOOLS = sorted(p.name for p in TOOLS_DIR.iterdir()
               if p.is_file() and not p.name.startswith("_") and p.name not in COMMANDS)
sys.path.insert(0, str(ROOT / "lib"))


# Children run this interpreter by its path, so their comm is known: the
# basename as exec'd (a venv's "python", pyenv's "python3.11", ...).
PYTHON = sys.executable
PYTHON_COMM = os.path.basename(PYTHON)[:15]
# Under QEMU's emulation (tests/vm/guest sets the slowdown) a tool is ~10x
# slower than here: the waits for it to start, to stop and to run scale.
SLOWDOWN = float(os.environ.get("SNOOPTOOLS_TEST_SLOWDOWN", "1"))
READY_SECONDS = 20 * SLOWDOWN       # to print its Tracing line
STOP_SECONDS = 20 * SLOWDOWN        # to drain and exit after a signal


class Collect(io.StringIO):
    """A sink that keeps the text it is given (what the writers of
    output.py hand sink.Sink.write()), for tests of what they write."""

    fd = -1     # no terminal

    def write(self, data, entries=(), sep=0):
        return super().write(data)


def can_run_live():
    return os.geteuid() == 0 and os.path.exists("/sys/kernel/btf/vmlinux")


def fentry_allowed():
    """Whether this kernel loads fentry programs: dcsnoop's, loaded alone."""
    from snooptools import libbpf, transport
    from snooptools.bpfobject import BPFObject
    from snooptools.startup import use_kernel_features
    if not hasattr(fentry_allowed, "answer"):
        with BPFObject(str(ROOT / "build" / "bpf" / "dcsnoop.bpf.o")) as obj:
            for prog, section, _ in obj.programs():
                obj.set_autoload(prog, section.startswith(("fentry", "fexit")))
            transport.choose(obj)
            use_kernel_features(obj)        # a map type some kernels lack, shrunk
            try:
                obj.load()
                fentry_allowed.answer = True
            except libbpf.LibbpfError:
                fentry_allowed.answer = False
    return fentry_allowed.answer


def command_env(tool, env=None):
    """The environment a tool runs in: env, else this one. snoop refuses a
    perf buffer (one per CPU keeps no one order: test_snoop's
    test_no_perf_buffer), so where this whole run forces one on the tools
    (SNOOPTOOLS_BUFFER=perf, the 6.12 VM leg), snoop runs on its ring all
    the same, unless env (a test's own) asks for the buffer."""
    if env is None:
        env = dict(os.environ)
        if os.path.basename(tool) in COMMANDS:
            env.pop("SNOOPTOOLS_BUFFER", None)
    return env


def run_tool(tool, *args, timeout=30 * SLOWDOWN, env=None, **kw):
    return subprocess.run([sys.executable, str(TOOLS_DIR / tool), *args], capture_output=True,
                          text=True, timeout=timeout, env=command_env(tool, env), **kw)


class Tracer:
    """with Tracer("opensnoop", "--pid", "42") as t: ...trigger...; then
    t.events (parsed JSON) and t.stderr after the block; t.stop() early."""

    def __init__(self, tool, *args, json_mode=True, env=None, ready_timeout=READY_SECONDS,
                 launcher=(PYTHON,)):
        # --json first: a trailing --exec CMD takes everything after it.
        # launcher: what runs the tool (() for its own first line); a tool
        # given as a path is run from there, not from tools/
        path = tool if os.sep in tool else str(TOOLS_DIR / tool)
        self.argv = [*launcher, path] + (["--json"] if json_mode else []) + list(args)
        self.json_mode = json_mode
        # PYTHONFAULTHANDLER: a tool that does not stop is asked where it
        # is (stop()), its Python threads' stacks as well as the kernel's
        self.env = dict(command_env(tool), PYTHONFAULTHANDLER="1", **(env or {}))
        self.ready_timeout = ready_timeout
        self.stderr_lines = []
        self._ready = threading.Event()
        self._output = threading.Event()

    def __enter__(self):
        self.proc = subprocess.Popen(self.argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, env=self.env, errors="replace")
        self._stdout = []
        self._readers = [threading.Thread(target=f, daemon=True)
                         for f in (self._read_stderr, self._read_stdout)]
        for r in self._readers:
            r.start()
        if not self._ready.wait(self.ready_timeout):
            where = waiting_in(self.proc.pid)
            self.proc.kill()
            raise AssertionError("no Tracing line from %s within %g s (%s); stderr: %s"
                                 % (self.argv, self.ready_timeout, where,
                                    "".join(self.stderr_lines)))
        if self.proc.poll() is not None:
            raise AssertionError("%s exited early: %s" % (self.argv, "".join(self.stderr_lines)))
        return self

    def _read_stderr(self):
        for line in self.proc.stderr:
            self.stderr_lines.append(line)
            if line.startswith("Tracing"):
                self._ready.set()
        self._ready.set()

    def _read_stdout(self):
        for line in self.proc.stdout:
            self._stdout.append(line)
            self._output.set()
        self._output.set()

    def wait_output(self, timeout=10):
        """Wait until stdout has a line (a text mode's header) or is closed;
        True if a line came."""
        self._output.wait(timeout)
        return bool(self._stdout)

    def stop(self, sig=signal.SIGINT):
        if self.proc.poll() is None:
            time.sleep(0.15)            # longer than one poll interval: let it drain
            self.proc.send_signal(sig)
        try:
            self.returncode = self.proc.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            where = waiting_in(self.proc.pid)
            self.proc.send_signal(signal.SIGABRT)   # its threads' stacks on stderr
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            for r in self._readers:
                r.join(timeout=10)
            raise AssertionError("%s did not exit within %g s of its signal (%s); stderr: %s"
                                 % (self.argv, STOP_SECONDS, where,
                                    "".join(self.stderr_lines))) from None
        for r in self._readers:
            r.join(timeout=10)
        return self.returncode

    def __exit__(self, *exc):
        self.stop()

    @property
    def stdout(self):
        return "".join(self._stdout)

    @property
    def stderr(self):
        return "".join(self.stderr_lines)

    @property
    def events(self):
        assert self.json_mode
        return [json.loads(line) for line in self._stdout if line.strip()]


def cgroup2_root():
    """Where the cgroup v2 hierarchy is mounted (/sys/fs/cgroup/unified on a
    hybrid host)."""
    with open("/proc/self/mounts") as f:
        for line in f:
            _, mnt, fstype = line.split()[:3]
            if fstype == "cgroup2":
                return mnt
    raise AssertionError("no cgroup2 hierarchy mounted")


def own_cgroup_id():
    """The cgroup v2 id of this process's cgroup (its directory's inode)."""
    with open("/proc/self/cgroup") as f:
        path = next(line.split(":", 2)[2].strip() for line in f if line.startswith("0::"))
    return os.stat(cgroup2_root() + path).st_ino


def waiting_in(pid):
    """Where a process is: its state, wait channel and kernel stack."""
    def read(name):
        try:
            with open("/proc/%d/%s" % (pid, name)) as f:
                return f.read().strip()
        except OSError as e:
            return "(%s)" % e.strerror
    state = read("stat").rpartition(")")[2].split()[:1]
    return "state %s, in %s, kernel stack: %s" % (
        "".join(state), read("wchan"), read("stack").replace("\n", " < "))


def held_child(argv_after_read, **kw):
    """A child shell that waits for a line on stdin and then execs the given
    command line: its pid is known (to filter on) before it does anything."""
    return subprocess.Popen(["/bin/sh", "-c", "read _; exec " + argv_after_read],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


def release(child, timeout=10 * SLOWDOWN):
    out, err = child.communicate("go\n", timeout=timeout)
    return child.returncode, out, err
