"""sofdsnoop, live: a held child passes fds to itself over a Unix socketpair
(sendmsg/recvmsg through Python's socket module, sendmmsg/recvmmsg through
libc with ctypes) and reports what it sent and received; the events must
match it exactly, fd numbers and names on both sides."""
import errno
import json
import os
import socket
import subprocess

import pytest

from helpers import PYTHON, PYTHON_COMM, Tracer, run_tool
from snooptools.output import escape

# The child waits for a line on stdin, then runs CODE, which fills `out`
# (printed as JSON at the end). `a` and `b` are the two ends of a datagram
# socketpair, `path` a temp file open as `tmp`, `null` /dev/null.
PRELUDE = """\
import ctypes, json, os, socket, struct, sys, tempfile
sys.stdin.readline()
a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
d = tempfile.mkdtemp()
path = os.path.join(d, "passed")
tmp = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
null = os.open("/dev/null", os.O_RDONLY)
out = {"a": a.fileno(), "b": b.fileno(), "a_ino": os.fstat(a.fileno()).st_ino,
       "b_ino": os.fstat(b.fileno()).st_ino, "tmp": tmp, "null": null, "path": path}
try:
%s
finally:
    os.unlink(path); os.rmdir(d)
print(json.dumps(out))
"""

# sendmmsg()/recvmmsg() through libc: Python's socket module has neither.
MMSG = """\
class iovec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]
class msghdr(ctypes.Structure):
    _fields_ = [("name", ctypes.c_void_p), ("namelen", ctypes.c_uint32),
                ("iov", ctypes.POINTER(iovec)), ("iovlen", ctypes.c_size_t),
                ("control", ctypes.c_void_p), ("controllen", ctypes.c_size_t),
                ("flags", ctypes.c_int)]
class mmsghdr(ctypes.Structure):
    _fields_ = [("hdr", msghdr), ("len", ctypes.c_uint)]
libc = ctypes.CDLL(None, use_errno=True)
keep = []
def vector(controls):
    vec = (mmsghdr * len(controls))()
    for m, control in zip(vec, controls):
        data = ctypes.create_string_buffer(8)
        iov = iovec(ctypes.addressof(data), 8)
        c = ctypes.create_string_buffer(control, socket.CMSG_SPACE(64))
        keep.extend((data, iov, c))
        m.hdr.iov, m.hdr.iovlen = ctypes.pointer(iov), 1
        m.hdr.control, m.hdr.controllen = ctypes.addressof(c), len(control) or len(c)
    return vec
def rights(fds):
    return struct.pack("=QiI%di" % len(fds), 16 + 4 * len(fds), socket.SOL_SOCKET,
                       socket.SCM_RIGHTS, *fds)
def received(m):
    c = ctypes.string_at(m.hdr.control, m.hdr.controllen)
    return list(struct.unpack_from("=%di" % ((struct.unpack_from("=Q", c)[0] - 16) // 4), c, 16))
"""


def held(code):
    body = "\n".join("    " + line for line in code.splitlines())
    return subprocess.Popen([PYTHON, "-c", PRELUDE % body], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def run(code, *args, json_mode=True):
    """Trace the child's code with args (and --pid child unless a pid or tid
    filter is given); return (tracer, child pid, what the child reported)."""
    child = held(code)
    if not any(a in args for a in ("--pid", "-p", "--tid", "-t")):
        args += ("--pid", str(child.pid))
    with Tracer("sofdsnoop", *args, json_mode=json_mode) as t:
        out, err = child.communicate("go\n", timeout=10)
    assert child.returncode == 0, err
    assert t.returncode == 0, t.stderr
    return t, child.pid, json.loads(out)


def mine(t, pid):
    return [{k: v for k, v in e.items() if k not in ("ts", "cgroup_id")} for e in t.events
            if e["pid"] == pid]


SEND_RECV = """\
out["sent"] = socket.send_fds(a, [b"hello"], [tmp, null])
msg, fds, flags, _ = socket.recv_fds(b, 16, 4)
out["got"] = fds
a.sendmsg([b"no fds"]); b.recvmsg(16, 64)
"""


def test_fds_passed_over_a_socketpair_exact_fields():
    t, pid, c = run(SEND_RECV)
    task = {"pid": pid, "tid": pid, "uid": os.getuid(), "comm": PYTHON_COMM}
    names = [c["path"], "/dev/null"]
    assert c["sent"] == 5 and len(c["got"]) == 2
    assert set(c["got"]).isdisjoint((c["tmp"], c["null"]))     # the receiver's new fds
    # the message without fds is not reported
    assert mine(t, pid) == [
        dict(task, action="SEND", call="sendmsg", sock_fd=c["a"], sock="socket:[%d]" % c["a_ino"],
             fds=[c["tmp"], c["null"]], names=names, ret=c["sent"], err=0),
        dict(task, action="RECV", call="recvmsg", sock_fd=c["b"], sock="socket:[%d]" % c["b_ino"],
             fds=c["got"], names=names, ret=len(b"hello"), err=0, ctrunc=False),
    ]


def test_sendmmsg_recvmmsg_each_message_and_pipe_names():
    t, pid, c = run(MMSG + """\
r, w = os.pipe()
out.update(r=r, w=w, pipe_ino=os.fstat(r).st_ino)
out["sent"] = libc.sendmmsg(a.fileno(), vector([rights([null]), rights([r, w, tmp])]), 2, 0)
rvec = vector([b"", b""])
out["recvd"] = libc.recvmmsg(b.fileno(), rvec, 2, 0, None)
out["got"] = [received(m) for m in rvec]
""")
    assert (c["sent"], c["recvd"]) == (2, 2)
    pipe = "pipe:[%d]" % c["pipe_ino"]
    got = [(e["action"], e["call"], e["index"], e["sock_fd"], e["fds"], e["names"], e["ret"])
           for e in mine(t, pid)]
    assert got == [
        ("SEND", "sendmmsg", 0, c["a"], [c["null"]], ["/dev/null"], 2),
        ("SEND", "sendmmsg", 1, c["a"], [c["r"], c["w"], c["tmp"]], [pipe, pipe, c["path"]], 2),
        ("RECV", "recvmmsg", 0, c["b"], c["got"][0], ["/dev/null"], 2),
        ("RECV", "recvmmsg", 1, c["b"], c["got"][1], [pipe, pipe, c["path"]], 2),
    ]


TROUBLE = """\
socket.send_fds(a, [b"x"], [tmp, null])
_, out["got"], out["flags"], _ = socket.recv_fds(b, 16, 1)
socket.send_fds(a, [b"x"], [null])
_, out["none"], _, _ = b.recvmsg(16, 0)
try:
    socket.send_fds(a, [b"x"], [tmp, 999])
except OSError as e:
    out["errno"] = e.errno
many = [os.dup(null) for _ in range(20)]
out["many"] = many
socket.send_fds(a, [b"x"], many)
"""


def test_dropped_fds_failed_send_and_more_fds_than_collected():
    t, pid, c = run(TROUBLE)
    assert c["flags"] & socket.MSG_CTRUNC and len(c["got"]) == 1
    assert c["errno"] == errno.EBADF and c["none"] == []
    keys = ("action", "fds", "names", "ret", "err", "ctrunc", "fds_truncated")
    assert [tuple(e.get(k) for k in keys) for e in mine(t, pid)] == [
        ("SEND", [c["tmp"], c["null"]], [c["path"], "/dev/null"], 1, 0, None, None),
        ("RECV", c["got"], [c["path"]], 1, 0, True, None),        # room for one fd
        ("SEND", [c["null"]], ["/dev/null"], 1, 0, None, None),
        ("RECV", [], [], 1, 0, True, None),                       # no room at all
        ("SEND", [c["tmp"], 999], [c["path"], None], -errno.EBADF, errno.EBADF, None, None),
        ("SEND", c["many"][:16], ["/dev/null"] * 16, 1, 0, None, True),
    ]


def test_text_mode_marks_what_went_wrong():
    t, pid, c = run(TROUBLE, json_mode=False)
    rows = [line.split(None, 5)[4:] for line in t.stdout.splitlines()[1:]]
    assert rows == [
        [str(c["tmp"]), c["path"]], [str(c["null"]), "/dev/null"],
        [str(c["got"][0]), c["path"] + " [MSG_CTRUNC]"],
        [str(c["null"]), "/dev/null"],
        ["-", "- [MSG_CTRUNC]"],
        [str(c["tmp"]), c["path"] + " [EBADF]"], ["999", "N/A [EBADF]"],
    ] + [[str(fd), "/dev/null [TRUNCATED]"] for fd in c["many"][:16]]


def test_pid_and_tid_filters_both_ways():
    t, pid, _ = run(SEND_RECV, "--pid", str(os.getpid()))
    assert mine(t, pid) == []
    t, pid, _ = run(SEND_RECV, "-t", "1")
    assert mine(t, pid) == []
    child = held(SEND_RECV)
    with Tracer("sofdsnoop", "-t", str(child.pid)) as t:
        child.communicate("go\n", timeout=10)
    assert [e["action"] for e in mine(t, child.pid)] == ["SEND", "RECV"]


def test_name_substring_filter_both_ways():
    t, pid, _ = run(SEND_RECV, "-n", PYTHON_COMM[1:4])
    assert [e["action"] for e in mine(t, pid)] == ["SEND", "RECV"]
    t, pid, _ = run(SEND_RECV, "-n", "nomatch")
    assert mine(t, pid) == []


def test_text_mode_one_line_per_fd():
    t, pid, c = run(SEND_RECV, "-T", json_mode=False)
    header, *lines = t.stdout.splitlines()
    # BCC's: TIME(s) is %-14s with no space after it
    assert header == "%-14s%-6s %-6s %-16s %-25s %-5s %s" % ("TIME(s)", "ACTION", "TID", "COMM",
                                                             "SOCKET", "FD", "NAME")
    rows = [line[14:] for line in lines]
    sock = {"SEND": "%d:socket:[%d]" % (c["a"], c["a_ino"]),
            "RECV": "%d:socket:[%d]" % (c["b"], c["b_ino"])}
    want = [(action, fd, name) for action, fds in (("SEND", [c["tmp"], c["null"]]),
                                                   ("RECV", c["got"]))
            for fd, name in zip(fds, [c["path"], "/dev/null"])]
    assert rows == ["%-6s %-6d %-16s %-25s %-5d %s" % (action, pid, PYTHON_COMM, sock[action], fd,
                                                       name) for action, fd, name in want]
    for line in lines:
        float(line[:14])
        assert len(line[:14].strip().split(".")[1]) == 9


ODD_NAME = """\
odd = os.open(os.path.join(d.encode(), b"odd\\xff\\x1bname"), os.O_RDWR | os.O_CREAT, 0o600)
out["odd"] = os.fsdecode(os.path.join(d.encode(), b"odd\\xff\\x1bname"))
socket.send_fds(a, [b"x"], [odd])
os.unlink(out["odd"])
"""


def test_undecodable_and_control_characters_in_names():
    t, pid, c = run(ODD_NAME)
    [e] = mine(t, pid)
    assert e["names"] == [c["odd"].encode("utf-8", "surrogateescape").decode("utf-8", "replace")]
    assert "\ufffd\x1bname" in e["names"][0]
    t, pid, c = run(ODD_NAME, json_mode=False)
    [line] = t.stdout.splitlines()[1:]
    assert line.endswith(" " + escape(c["odd"])) and line.endswith("odd\\xff\\ename")


@pytest.mark.parametrize("bad", [["-p", "x"], ["-t", "0"], ["-d", "0"], ["--bogus"]])
def test_bad_arguments_exit_2(bad):
    r = run_tool("sofdsnoop", *bad)
    assert r.returncode == 2 and r.stderr.startswith("usage: sofdsnoop")
    assert "Traceback" not in r.stderr
