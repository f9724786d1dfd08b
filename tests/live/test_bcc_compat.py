"""BCC compatibility, live: every command line BCC documents for its 16 snoop
tools (tests/bcc_compat.py) is run as tools/<tool> <args>, in text mode.
The tool must accept it and, once tracing, print BCC's header line, exactly
(trailing blanks aside); then it is stopped with SIGINT and must exit 0.

Rows that BCC itself refuses must be refused (exit 2, a usage message).
dcsnoop's rows run where the kernel offers fentry or kprobes; elsewhere the
tool must say in one line that it cannot trace (exit 1), not refuse the
line."""
import ctypes
import os
import shlex
import subprocess
import tempfile

import pytest

from bcc_compat import ROWS, a_disk
from helpers import Tracer, fentry_allowed, run_tool
from snooptools import kernel


class PinnedMaps:
    """BCC's --cgroupmap and --mntnsmap maps (docs/special_filtering.md: a
    hash of u64 cgroup id -> u64, of u64 mount namespace inode -> u32),
    pinned on a bpffs of our own."""

    def __init__(self):
        self.dir = tempfile.mkdtemp()
        subprocess.run(["mount", "-t", "bpf", "bpf", self.dir], check=True)
        lib = ctypes.CDLL("libbpf.so.1", use_errno=True)
        lib.bpf_map_create.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32,
                                       ctypes.c_uint32, ctypes.c_uint32, ctypes.c_void_p]
        lib.bpf_obj_pin.argtypes = [ctypes.c_int, ctypes.c_char_p]
        self.paths = {}
        for name, value_size in (("cgroupmap", 8), ("mntnsmap", 4)):
            fd = lib.bpf_map_create(1, name.encode(), 8, value_size, 128, None)   # BPF_MAP_TYPE_HASH
            assert fd >= 0, os.strerror(ctypes.get_errno())
            path = os.path.join(self.dir, name)
            assert lib.bpf_obj_pin(fd, path.encode()) == 0, os.strerror(ctypes.get_errno())
            os.close(fd)
            self.paths[name] = path

    def close(self):
        subprocess.run(["umount", self.dir], check=True)
        os.rmdir(self.dir)


@pytest.fixture(scope="module")
def places():
    """What a row's {placeholders} stand for on this host."""
    master, slave = os.openpty()
    pts = os.ttyname(slave)
    maps = PinnedMaps()
    try:
        yield dict(maps.paths, pts=pts, ptsnum=pts.rsplit("/", 1)[1], disk=a_disk(),
                   user="root")
    finally:
        maps.close()
        os.close(master)
        os.close(slave)


def dcache_traceable():
    return fentry_allowed() or kernel.has_kprobes()


class Outcome:
    """What one run of a row showed: accepted (the command line was taken
    and the tool traced, or said the kernel cannot), and the header line."""

    def __init__(self, accepted, header=None, detail=""):
        self.accepted, self.header, self.detail = accepted, header, detail


def run_row(row, places):
    argv = shlex.split(row.args.format(**places))
    if row.refused or (row.kernel == "dcache" and not dcache_traceable()):
        r = run_tool(row.tool, *argv)
        if row.refused:
            # refused as BCC refuses it: a usage message, exit 2
            ok = r.returncode == 2 and r.stderr.startswith("usage: %s " % row.tool)
            return Outcome(ok, None, r.stderr)
        # the line is taken; the kernel cannot trace, and one line says so
        ok = (r.returncode == 1 and r.stdout == "" and r.stderr.count("\n") == 1 and
              r.stderr.startswith("%s: cannot trace on this kernel: " % row.tool))
        return Outcome(ok, None, r.stderr)
    try:
        t = Tracer(row.tool, *argv, json_mode=False).__enter__()
    except AssertionError as e:         # no Tracing line: refused, or failed
        return Outcome(False, None, str(e))
    if not row.at_exit and row.header is not None:
        t.wait_output()
    status = t.stop()
    lines = [line for line in t.stdout.splitlines() if line.strip()]
    header = lines[0].rstrip() if lines else None
    return Outcome(status == 0, header, t.stderr)


@pytest.mark.parametrize("row", ROWS, ids=lambda r: r.id)
def test_bcc_command_line(row, places):
    out = run_row(row, places)
    assert out.accepted, out.detail
    if row.kernel == "dcache" and not dcache_traceable():
        return          # the header is checked where the kernel lets dcsnoop run
    assert out.header == row.expected()


def test_placeholders_are_made_for_every_row(places):
    for row in ROWS:
        shlex.split(row.args.format(**places))
