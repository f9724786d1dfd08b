"""biosnoop, live: direct (O_DIRECT) I/O by a held child to a file on a real
disk, asserted field by field (the sector is where the filesystem put the
file: FIEMAP), and to loop devices: one with a partition, one that fails
writes with ENOSPC."""
import contextlib
import errno
import json
import os
import subprocess
import sys
import tempfile
import time

import pytest

from helpers import PYTHON, PYTHON_COMM, ROOT, TOOLS_DIR, Tracer, run_tool
from snooptools import kernel

CHUNK = 1 << 16


def block_dir():
    """A writable directory on a block device: (dir, disk, partition, the
    partition's first sector on the disk)."""
    for d in ("/var/tmp", "/tmp", str(ROOT)):
        dev = os.stat(d).st_dev
        sysdir = os.path.realpath("/sys/dev/block/%d:%d" % (os.major(dev), os.minor(dev)))
        if os.path.isdir(sysdir):
            part = os.path.basename(sysdir)
            if os.path.exists(sysdir + "/partition"):
                with open(sysdir + "/start") as f:
                    return d, os.path.basename(os.path.dirname(sysdir)), part, int(f.read())
            return d, part, part, 0
    pytest.fail("no directory on a block device to write to")


DIR, DISK, PART, PART_START = block_dir()
PART_DEV = "%d:%d" % (os.major(os.stat(DIR).st_dev), os.minor(os.stat(DIR).st_dev))

# The child makes a 1 MiB file of allocated blocks (before tracing), waits
# for a line on stdin, runs the test's code and prints what it reports.
# write(off) / read(off) are one O_DIRECT 64 KiB transfer at that offset;
# sector(off) is where the filesystem keeps that offset, in disk sectors.
PRELUDE = """\
import fcntl, json, mmap, os, struct, sys, tempfile, time
d = tempfile.mkdtemp(dir=%(dir)r)
path = os.path.join(d, "data")
fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_DIRECT, 0o600)
os.posix_fallocate(fd, 0, 1 << 20)
os.fsync(fd)
buf = mmap.mmap(-1, %(chunk)d)       # page aligned, as O_DIRECT wants
buf.write(b"b" * %(chunk)d)

def sector(off):
    req = struct.pack("=QQIIII", off, 1, 1, 0, 1, 0) + bytes(56)   # FIEMAP_FLAG_SYNC, 1 extent
    res = fcntl.ioctl(fd, 0xC020660B, req)                        # FS_IOC_FIEMAP
    logical, physical = struct.unpack_from("=QQ", res, 32)
    return (physical + off - logical) // 512 + %(start)d

def write(off):
    assert os.pwrite(fd, buf, off) == %(chunk)d

def read(off):
    assert os.preadv(fd, [buf], off) == %(chunk)d

out = {}
sys.stdin.readline()
try:
%(body)s
finally:
    os.close(fd); os.unlink(path); os.rmdir(d)
    print(json.dumps(out))
"""


def held(body):
    code = PRELUDE % dict(dir=DIR, start=PART_START, chunk=CHUNK,
                          body="\n".join("    " + ln for ln in body.splitlines()))
    return subprocess.Popen([PYTHON, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def run(body, *args, json_mode=True, tracer=None):
    """Trace the child's body with args (and --pid child); return (tracer,
    child pid, what the child reported)."""
    child = held(body)
    t = tracer or Tracer("biosnoop", *args, "--pid", str(child.pid), json_mode=json_mode)
    if tracer:
        t.argv += list(args) + ["--pid", str(child.pid)]
    with t:
        out, err = child.communicate("go\n", timeout=30)
    assert child.returncode == 0, err
    return t, child.pid, json.loads(out)


def mine(t, pid):
    return [e for e in t.events if e["pid"] == pid]


def at(events, sector, op="W"):
    """The events of the 64 KiB transfer starting at sector (the block
    layer may split it, never reorder it). Other I/O by the child: the
    filesystem's metadata, and discards when the file is deleted."""
    evs = [e for e in events if sector <= e["sector"] < sector + CHUNK // 512 and e["rw"][0] == op]
    assert evs and evs[0]["sector"] == sector, events
    assert sum(e["bytes"] for e in evs) == CHUNK
    return evs


WRITE_READ = """\
out["sector"] = sector(0)
out["before"] = time.time()
write(0)
out["between"] = time.time()
read(0)
out["after"] = time.time()
"""


def test_direct_write_and_read_exact_fields():
    t, pid, got = run(WRITE_READ, "-Q")
    evs = mine(t, pid)
    for e in at(evs, got["sector"]) + at(evs, got["sector"], "R"):
        assert (e["pid"], e["tid"], e["comm"], e["uid"]) == (pid, pid, PYTHON_COMM, os.getuid())
        assert (e["disk"], e["part"], e["err"]) == (DISK, PART, 0)
        # block_io_start (6.5+) names the submitter; before it, the request
        # is claimed where it is inserted or, issued directly, at issue
        assert e["pid_from"] in (("submit",) if kernel.raw_tracepoint_exists("block_io_start")
                                 else ("insert", "issue"))
        assert e["dev"] == PART_DEV
        assert 0 < e["lat_ms"] < 10000 and 0 <= e["queue_ms"] < 10000
        assert "pattern" not in e
    w, r = at(evs, got["sector"])[0], at(evs, got["sector"], "R")[0]
    # after the operation, modifiers (sync, FUA, ...) as the kernel chose them
    assert set(w["rw"][1:] + r["rw"][1:]) <= set("FASM")
    # ts is the completion; minus LAT is the issue, minus QUE the start
    slack = 0.005
    assert got["before"] - slack <= w["ts"] - (w["lat_ms"] + w["queue_ms"]) / 1e3
    assert w["ts"] <= got["between"] + slack
    assert got["between"] - slack <= r["ts"] - (r["lat_ms"] + r["queue_ms"]) / 1e3
    assert r["ts"] <= got["after"] + slack
    assert t.returncode == 0


def test_no_queue_column_unless_asked():
    t, pid, got = run('out["sector"] = sector(0)\nwrite(0)')
    [w] = at(mine(t, pid), got["sector"])
    assert "queue_ms" not in w and "pattern" not in w and w["bytes"] == CHUNK


def other_disk():
    others = sorted(set(os.listdir("/sys/block")) - {DISK})
    if not others:
        pytest.fail("no second block device to filter on")
    return others[0]


def test_disk_filter_both_ways():
    code = 'out["sector"] = sector(0)\nwrite(0)'
    for spelling in (DISK, "/dev/" + DISK):
        t, pid, got = run(code, "-d", spelling)
        assert [e["disk"] for e in at(mine(t, pid), got["sector"])] == [DISK]
    t, pid, _ = run(code, "--disk", other_disk())
    assert mine(t, pid) == []


def test_min_latency_filter_both_ways():
    code = 'out["sector"] = sector(0)\nwrite(0)'
    t, pid, got = run(code, "-m", "0.0001")
    assert [e["bytes"] for e in at(mine(t, pid), got["sector"])] == [CHUNK]
    t, pid, _ = run(code, "--min-ms", "10000")
    assert mine(t, pid) == []


def test_pattern_sequential_and_random():
    # B continues A on the disk: sequential, unless other I/O went to the
    # disk between them (the first round converts the extents with metadata
    # writes, and other processes share the disk), so a few rounds. C and A
    # are far from what precedes them: random (A may be the first I/O seen).
    code = """\
a, b, c = sector(0), sector(%d), sector(512 << 10)
assert b == a + %d, "the file's blocks are not contiguous"
out.update(a=a, b=b, c=c)
for _ in range(5):
    write(0); write(%d); write(512 << 10)
""" % (CHUNK, CHUNK // 512, CHUNK)
    t, pid, got = run(code, "-P")
    evs = mine(t, pid)
    pats = {k: [e["pattern"] for e in evs if e["sector"] == got[k] and e["rw"][0] == "W"]
            for k in "abc"}
    assert len(pats["b"]) == 5 and "sequential" in pats["b"], pats
    assert pats["c"] == ["random"] * 5, pats
    assert pats["a"][0] in ("random", None) and pats["a"][1:] == ["random"] * 4, pats


def test_attribution_falls_back_without_block_io_start():
    # As on a kernel before 6.5: the tool believes block_io_start is missing.
    wrapper = (
        "import sys; sys.path.insert(0, %r)\n"
        "from snooptools import kernel\n"
        "has = kernel.raw_tracepoint_exists\n"
        "kernel.raw_tracepoint_exists = lambda name: name != 'block_io_start' and has(name)\n"
        "import importlib.machinery as m, importlib.util as u\n"
        "loader = m.SourceFileLoader('biosnoop', %r)\n"
        "tool = u.module_from_spec(u.spec_from_loader('biosnoop', loader))\n"
        "loader.exec_module(tool)\n"
        "tool.BioSnoop.main()\n"
        % (str(ROOT / "lib"), str(TOOLS_DIR / "biosnoop")))
    t = Tracer("biosnoop")
    t.argv = [sys.executable, "-c", wrapper, "--json", "-Q"]
    t, pid, got = run('out["sector"] = sector(0)\nwrite(0)', tracer=t)
    for e in at(mine(t, pid), got["sector"]):
        assert (e["comm"], e["disk"]) == (PYTHON_COMM, DISK)
        assert e["pid_from"] in ("insert", "issue") and e["queue_ms"] >= 0


def test_text_columns():
    t, pid, got = run('out["sector"] = sector(0)\nwrite(0)', "-Q", "-P", "-e", json_mode=False)
    header, *lines = t.stdout.splitlines()
    # BCC's header (BYTES %-7s, P %-1s, QUE(ms) %7s, LAT(ms) %7s), then -e's
    assert header == ("TIME(s)     COMM           PID     DISK      T SECTOR     BYTES  P QUE(ms) "
                      "LAT(ms) DEV     FLAGS ERR")
    rows = [ln.split() for ln in lines if ln.split()[2] == str(pid)]
    [row] = [r for r in rows if r[5] == str(got["sector"]) and r[4] == "W"]
    assert row[1:7] == [PYTHON_COMM[:14], str(pid), DISK, "W", str(got["sector"]), str(CHUNK)]
    assert row[7] in ("S", "R", "?") and row[11][0] == "W" and row[12] == "0"
    assert len(row[0].split(".")[1]) == 6 and len(row[8].split(".")[1]) == 2
    float(row[9])


@contextlib.contextmanager
def loop_device(directory):
    """An 8 MiB loop device over a sparse file in directory."""
    img = os.path.join(directory, "biosnoop.img")
    with open(img, "wb") as f:
        f.truncate(8 << 20)
    dev = subprocess.run(["losetup", "-f", "-P", "--show", img], capture_output=True,
                         text=True, check=True).stdout.strip()
    try:
        yield dev
    finally:
        subprocess.run(["losetup", "-d", dev], check=True)
        os.unlink(img)


@pytest.fixture
def loop_partition():
    """A loop device with one partition 1 MiB in (added with BLKPG: this
    kernel may parse no partition table): (disk, partition, first sector).
    The partition is held open meanwhile: a rescan of a disk that has no
    partition table would drop it (6.12 did, between two of a test's runs),
    and the kernel rescans no disk while one of its partitions is open."""
    with loop_device("/var/tmp") as dev:
        disk = os.path.basename(dev)
        fd = open_partition(dev)
        try:
            yield disk, disk + "p1", 2048
        finally:
            os.close(fd)


def open_partition(dev):
    """An fd of partition 1 of loop device dev, 1 MiB in, 4 MiB long, added
    with BLKPG; added again if a rescan dropped it before it was open."""
    import ctypes
    import fcntl
    import struct
    # struct blkpg_partition: start and length in bytes, number, names
    part = struct.pack("qqi64s64s4x", 1 << 20, 4 << 20, 1, b"", b"")
    pbuf = ctypes.create_string_buffer(part, len(part))
    for _ in range(20):
        if not os.path.exists("/sys/class/block/%sp1" % os.path.basename(dev)):
            fd = os.open(dev, os.O_RDONLY)
            try:
                fcntl.ioctl(fd, 0x1269, struct.pack("iiiP", 1, 0, len(part),  # BLKPG, ADD
                                                    ctypes.addressof(pbuf)))
            finally:
                os.close(fd)
        try:
            return os.open(dev + "p1", os.O_RDONLY)
        except OSError as e:        # ENOENT, ENXIO
            gone = e
            time.sleep(0.1)     # a drop under way: its node goes before its sysfs entry
    raise gone


@pytest.fixture
def full_loop():
    """A loop device whose (sparse) backing file lives on a full tmpfs: every
    write to it fails with ENOSPC. Its name. The tmpfs is filled first: with
    room for part of a write, the backing file takes a short write, which
    the loop driver of recent kernels completes as a success."""
    d = tempfile.mkdtemp(dir="/var/tmp", prefix="biosnoop-")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", d], check=True)
    try:
        with open(os.path.join(d, "filler"), "wb", buffering=0) as f:
            with pytest.raises(OSError) as full:
                while True:
                    f.write(bytes(4096))
            assert full.value.errno == errno.ENOSPC
        with loop_device(d) as dev:
            yield os.path.basename(dev)
    finally:
        subprocess.run(["umount", d], check=True)
        os.rmdir(d)


# The child writes CHUNK bytes at OFFSET of each device named, with O_DIRECT,
# and prints the errno of each write (0: it succeeded).
DEV_IO = """\
import mmap, os, sys
buf = mmap.mmap(-1, int(sys.argv[1]))
buf.write(b"b" * len(buf))
sys.stdin.readline()
for path in sys.argv[2:]:
    fd = os.open(path, os.O_WRONLY | os.O_DIRECT)
    try:
        os.pwrite(fd, buf, 1 << 20)
        print(0)
    except OSError as e:
        print(e.errno)
    os.close(fd)
"""


def dev_writes(size, devices, *args):
    """(events of the child, errnos of its writes) for O_DIRECT writes of
    size bytes 1 MiB into each device, traced with args."""
    child = subprocess.Popen([PYTHON, "-c", DEV_IO, str(size)] + ["/dev/" + d for d in devices],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
    with Tracer("biosnoop", "--pid", str(child.pid), *args) as t:
        out, err = child.communicate("go\n", timeout=30)
    assert child.returncode == 0, err
    return mine(t, child.pid), [int(n) for n in out.split()]


def bios_name_their_device():
    """Since 5.12 a bio names the block device it was sent to (bi_bdev), a
    partition or its whole disk; before, a request's partition is the one its
    sector is in, as the kernel's own statistics count it."""
    from snooptools import btf
    from snooptools.corebtf import kernel_btf
    types = kernel_btf()
    return "bi_bdev" in [name for name, _, _ in types.members(types.find("bio", btf.STRUCT))]


def test_partition_filter_both_ways(loop_partition):
    disk, part, start = loop_partition
    devs = []
    for name in (part, disk):
        with open("/sys/class/block/%s/dev" % name) as f:
            devs.append(f.read().strip())

    def writes(*args):
        evs, errs = dev_writes(CHUNK, [part, disk], *args)
        assert errs == [0, 0]
        return [(e["disk"], e["part"], e["dev"], e["sector"], e["bytes"], e["rw"][0]) for e in evs]

    # 1 MiB into each; the sector is the disk's: the partition starts 1 MiB in
    on_part = (disk, part, devs[0], start + 2048, CHUNK, "W")
    on_disk = (disk, disk, devs[1], 2048, CHUNK, "W")
    parts = [on_part]
    if not bios_name_their_device() and 2048 >= start:
        # the disk's write lies in the partition: before 5.12, the partition's
        on_disk = (disk, part, devs[0], 2048, CHUNK, "W")
        parts.append(on_disk)
    assert writes("-d", part) == parts
    assert writes("-d", "/dev/" + part) == parts
    assert writes("-d", disk) == [on_part, on_disk]
    assert writes("-d", DISK) == []


def test_failed_io_shows_its_error(full_loop):
    evs, errs = dev_writes(1 << 20, [full_loop], "-d", full_loop)
    # the loop driver passes its backing file's ENOSPC on; before 6.2 it made
    # every such error EIO. The writer and the tool see the same one.
    assert errs in ([errno.ENOSPC], [errno.EIO])
    assert {e["disk"] for e in evs} == {full_loop} and sum(e["bytes"] for e in evs) == 1 << 20
    assert errs[0] in [e["err"] for e in evs]
    assert {e["err"] for e in evs} <= {0, errs[0]}


@pytest.mark.parametrize("bad", [["-d", "nosuchdisk"], ["-d", "/etc/passwd"],
                                 ["-d", "/nonexistent"], ["-m", "x"], ["-m", "-1"]])
def test_bad_arguments_exit_2(bad):
    r = run_tool("biosnoop", *bad)
    assert r.returncode == 2 and "usage:" in r.stderr and "Traceback" not in r.stderr
