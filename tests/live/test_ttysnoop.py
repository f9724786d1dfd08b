"""ttysnoop, live: a held child writes to a pty this test opened, through
every write-family call, and to another pty; the mirror is asserted byte for
byte and the JSON events field by field."""
import errno
import os
import select
import signal
import subprocess
import tempfile
import time

import pytest

from helpers import PYTHON, PYTHON_COMM, TOOLS_DIR, Tracer, run_tool

CLEAR = b"\x1b[H\x1b[2J"

# The child gets the target pty's slave as fd `tty` and another pty's slave
# as fd `other`, waits for a line on stdin, then runs the test's code.
PRELUDE = """\
import ctypes, os, sys
tty, other = int(sys.argv[1]), int(sys.argv[2])
libc = ctypes.CDLL(None, use_errno=True)
sys.stdin.readline()
"""

HELLO = b"hello snoop\n"
WRITES = """\
os.write(tty, b"hello snoop\\n")
os.writev(tty, [b"hello ", b"snoop\\n"])
os.pwritev(tty, [b"pw", b"v2\\n"], -1)          # pwritev2 at the current position
os.write(other, b"elsewhere\\n")
os.write(1, b"to a pipe\\n")
try:
    os.pwrite(tty, b"x", 0)                     # a tty cannot seek: ESPIPE
except OSError:
    pass
x = ctypes.create_string_buffer(b"x")
libc.pwritev(tty, (ctypes.c_size_t * 2)(ctypes.addressof(x), 1), 1, ctypes.c_long(0))
"""
ESPIPE = errno.ESPIPE


class Ptys:
    """Two pty pairs, held open for a test: the target and another."""

    def __enter__(self):
        self.master, self.slave = os.openpty()
        self.other_master, self.other = os.openpty()
        self.path = os.ttyname(self.slave)
        return self

    def __exit__(self, *exc):
        for fd in (self.master, self.slave, self.other_master, self.other):
            os.close(fd)

    def child(self, code):
        return subprocess.Popen([PYTHON, "-c", PRELUDE + code, str(self.slave), str(self.other)],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, pass_fds=(self.slave, self.other))


def traced(code, *args, pid_filter=True):
    """JSON events of code run by a held child (filtered to it unless
    pid_filter is False), the child's pid and its stdout."""
    with Ptys() as p:
        child = p.child(code)
        if pid_filter:
            args += ("--pid", str(child.pid))
        with Tracer("ttysnoop", *args, p.path) as t:
            out, err = child.communicate(b"go\n", timeout=10)
        assert child.returncode == 0, err
    assert t.returncode == 0, t.stderr
    assert " lost" not in t.stderr, t.stderr
    return t.events, child.pid, out


def brief(events):
    return [(e["call"], e["data"], e["ret"], e["err"]) for e in events]


EXPECTED = [("write", "hello snoop\n", 12, 0), ("writev", "hello snoop\n", 12, 0),
            ("pwritev2", "pwv2\n", 5, 0), ("pwrite64", "", -ESPIPE, ESPIPE),
            ("pwritev", "", -ESPIPE, ESPIPE)]


def test_every_call_exact_fields():
    events, pid, out = traced(WRITES + "print(tty)\n")
    assert brief(events) == EXPECTED
    for e in events:
        assert (e["pid"], e["tid"], e["uid"], e["comm"]) == (pid, pid, os.getuid(), PYTHON_COMM)
        assert e["fd"] == int(out.split()[-1]) and "truncated" not in e
        assert abs(e["ts"] - events[0]["ts"]) < 10


def test_only_the_target_tty_without_a_pid_filter():
    events, pid, _ = traced(WRITES, pid_filter=False)
    assert brief(events) == EXPECTED and {e["pid"] for e in events} == {pid}


def test_pid_filter_excludes():
    events, _, _ = traced(WRITES, "--pid", str(os.getpid()), pid_filter=False)
    assert events == []


def test_size_and_count_limit_each_write():
    code = "os.write(tty, bytes(range(48, 148)))\n" \
           "os.writev(tty, [b'a' * 12, b'b' * 12, b'c' * 12])\nos.write(tty, b'd' * 30)\n"
    events, _, _ = traced(code, "-s", "10", "-c", "3")
    assert [(e["data"], e["ret"], e.get("truncated")) for e in events] == [
        (bytes(range(48, 78)).decode(), 100, True), ("a" * 12 + "b" * 12 + "c" * 6, 36, True),
        ("d" * 30, 30, None)]
    # by default 256 x 16 bytes of a write, and the first 16 iovec segments
    code = "os.write(tty, b'%04d' % 7 * 1250)\n" \
           "os.writev(tty, [b'%c' % (65 + i) for i in range(20)])\n"
    events, _, _ = traced(code)
    assert [(e["data"], e["ret"], e.get("truncated")) for e in events] == [
        ("0007" * 1024, 5000, True), ("ABCDEFGHIJKLMNOP", 20, True)]
    # BCC's -s 1024 (x 16) is 16 KiB of a write: taken, and cut at the 8 KiB
    # the kernel side copies
    code = "os.write(tty, b'%05d' % 3 * 2000)\n"
    events, _, _ = traced(code, "-s", "1024")
    assert [(e["data"], e["ret"], e.get("truncated")) for e in events] == [
        (("00003" * 2000)[:8192], 10000, True)]


def test_partial_and_refused_writes_show_what_was_written():
    # Nobody reads the master: a non-blocking write of more than a pty holds
    # writes part of it; then one-byte writes go in while the pty moves data
    # along, until one is refused (EAGAIN).
    code = """\
fd = os.open(os.ttyname(tty), os.O_WRONLY | os.O_NOCTTY | os.O_NONBLOCK)
done, more = os.write(fd, b"%07d" % 1 * (1 << 17)), 0
while True:
    try:
        more += os.write(fd, b"x")
    except BlockingIOError:
        break
print(done, more)
"""
    events, _, out = traced(code)
    done, more = map(int, out.split())
    assert 4096 < done < 7 << 17
    assert [(e["data"], e["ret"], e["err"], e.get("truncated")) for e in events] == \
        [(("%07d" % 1 * 586)[:4096], done, 0, True)] + [("x", 1, 0, None)] * more + \
        [("", -errno.EAGAIN, errno.EAGAIN, None)]


def test_writes_through_dev_tty_are_the_ttys():
    code = """\
os.setsid()
os.close(os.open(os.ttyname(tty), os.O_RDWR))  # now the controlling tty
fd = os.open("/dev/tty", os.O_WRONLY)
os.write(fd, b"via /dev/tty\\n")
print(fd)
"""
    events, pid, out = traced(code)
    assert [(e["data"], e["pid"], e["fd"]) for e in events] == [("via /dev/tty\n", pid, int(out))]


def test_a_pts_of_another_devpts_instance_is_not_the_target():
    """A container's pts has the same number, hence the same device number:
    only the devpts instance tells them apart, directly and via /dev/tty."""
    code = """\
import subprocess
n = int(os.ttyname(tty).rsplit("/", 1)[1])
inner = '''
import os, sys
ptys = [os.openpty() for _ in range(%d + 1)]
s = ptys[-1][1]
os.write(s, b"other instance\\\\n")
if os.fork() == 0:
    os.setsid()
    os.close(os.open(os.ttyname(s), os.O_RDWR))
    os.write(os.open("/dev/tty", os.O_WRONLY), b"other /dev/tty\\\\n")
    os._exit(0)
os.wait()
print(os.ttyname(s))
''' % n
script = ("mount -t devpts -o newinstance,ptmxmode=0666 devpts /dev/pts && "
          "mount --bind /dev/pts/ptmx /dev/ptmx && exec %s -c \\"$0\\"" % sys.executable)
r = subprocess.run(["unshare", "--mount", "sh", "-c", script, inner],
                   capture_output=True, check=True)
assert r.stdout.decode().strip() == os.ttyname(tty), r
os.write(tty, b"this instance\\n")
"""
    events, pid, _ = traced(code, pid_filter=False)
    assert [(e["data"], e["pid"]) for e in events] == [("this instance\n", pid)]


def mirror(code, *args, to=None):
    """Run ttysnoop in text mode while a held child runs code; return what
    the tool printed, as bytes, and its stderr. Its stdout is a file, or
    with to="screen" a pty, read back from its master."""
    with Ptys() as p, Ptys() as screen, tempfile.TemporaryFile() as f:
        stdout = screen.slave if to == "screen" else f
        child = p.child(code)
        tool = subprocess.Popen([PYTHON, str(TOOLS_DIR / "ttysnoop"), *args, p.path],
                                stdout=stdout, stderr=subprocess.PIPE)
        err = []
        for line in tool.stderr:
            err.append(line)
            if line.startswith(b"Tracing"):
                break
        assert child.communicate(b"go\n", timeout=10)[1] == b""
        tool.send_signal(signal.SIGINT)
        err.extend(tool.stderr)
        assert tool.wait(timeout=20) == 0, err
        f.seek(0)
        return read_all(screen.master) if to == "screen" else f.read(), b"".join(err)


def read_all(fd):
    os.set_blocking(fd, False)
    chunks = []
    while True:
        try:
            chunks.append(os.read(fd, 65536))
        except BlockingIOError:
            return b"".join(chunks)


def test_text_mode_mirrors_the_exact_bytes():
    raw = b"\x1b[1mbold\x1b[0m\r\n\xff\xfe not utf-8 \x00 nul\ttab\n"
    code = "os.write(tty, %r)\nos.writev(tty, [b'hello ', b'snoop\\n'])\n" \
           "os.write(other, b'elsewhere\\n')\nlibc.pwrite(tty, b'x', 1, ctypes.c_long(0))\n" % raw
    out, err = mirror(code)
    assert out == raw + HELLO
    assert err.startswith(b"Tracing writes to /dev/pts/") and err.endswith(b"... Ctrl-C to end.\n")


def test_screen_cleared_first_unless_noclear():
    assert mirror("os.write(tty, b'x')\n", to="screen")[0] == CLEAR + b"x"
    assert mirror("os.write(tty, b'x')\n", "-C", to="screen")[0] == b"x"


def read_until(fd, end, timeout=10):
    """What the pty master gives until it ends with end."""
    deadline, got = time.monotonic() + timeout, b""
    while not got.endswith(end):
        assert time.monotonic() < deadline, got[-200:]
        if select.select([fd], [], [], 0.5)[0]:
            got += os.read(fd, 65536)
    return got


def test_snooping_its_own_terminal_shows_each_write_once():
    # The tool's own writes to the tty it watches are left out, or each
    # would be mirrored again, forever.
    with Ptys() as p:
        child = p.child("os.write(tty, b'once\\n')\nsys.stdin.readline()\n"
                        "os.write(tty, b'done\\n')\n")
        tool = subprocess.Popen([PYTHON, str(TOOLS_DIR / "ttysnoop"), "-C", p.path],
                                stdout=p.slave, stderr=subprocess.PIPE)
        try:
            assert tool.stderr.readline().startswith(b"Tracing")
            child.stdin.write(b"go\n")
            child.stdin.flush()
            seen = read_until(p.master, b"once\r\n" * 2)
            child.communicate(b"go\n", timeout=10)
            seen += read_until(p.master, b"done\r\n" * 2)
            tool.send_signal(signal.SIGINT)
            assert tool.wait(timeout=20) == 0
        finally:
            tool.kill()
        assert seen + read_all(p.master) == b"once\r\n" * 2 + b"done\r\n" * 2


@pytest.mark.parametrize("bad,message", [
    (["/etc/passwd"], "/etc/passwd is not a tty"),
    (["9999"], "/dev/pts/9999: No such file or directory"),
    (["/dev/null"], "/dev/null is not a tty"),
    (["-s", "0", "/dev/ptmx"], "invalid number '0'"),
    (["--time", "/dev/ptmx"], "the mirror has none"),
])
def test_bad_arguments_exit_2(bad, message):
    r = run_tool("ttysnoop", *bad)
    errors = [line for line in r.stderr.splitlines() if line.startswith("ttysnoop: ")]
    assert r.returncode == 2 and r.stderr.startswith("usage: ttysnoop")
    assert len(errors) == 1 and errors[0].startswith("ttysnoop: error: ")
    assert message in errors[0] and "Traceback" not in r.stderr
