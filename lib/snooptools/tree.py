"""--tree PID and --exec CMD: the processes of one tree, followed in the
kernel (snoop.bpf.h: the tree_tgids map, the tree_fork and tree_exit
programs, the filter_tree knob of should_trace()).

Before load, configure() switches the programs on and sizes the map. After
every probe is attached, follow() attaches them (the exit program last, so
that the tool's own programs at sched_process_exit still see an exiting
process as followed), then seeds the map: PID and the descendants it
already has, from the parents /proc names. Attached first and walked
after, no process made meanwhile is missed: one made before the walk is
found by it, one made after by tree_fork.
"""
import argparse
import errno
import os
import struct

from . import libbpf
from .errors import SnoopError, UsageError

MAP, MISSES = "tree_tgids", "tree_misses"
FORK, EXIT = "tree_fork", "tree_exit"
DEFAULT_MAX = 32768     # processes followed at once; SNOOPTOOLS_TREE_MAX sets it
MAX_ENV = "SNOOPTOOLS_TREE_MAX"


def root(text):
    """--tree's PID: a running process (a thread group id)."""
    if not text.isdigit() or not 0 < int(text) < 1 << 22:
        raise argparse.ArgumentTypeError("invalid pid %r: expected a process id" % text)
    pid = int(text)
    tgid = _tgid(pid)
    if tgid is None:
        raise argparse.ArgumentTypeError("pid %d: no such process" % pid)
    if tgid != pid:
        raise argparse.ArgumentTypeError("pid %d: a thread of process %d; give the process"
                                         % (pid, tgid))
    return pid


def _tgid(pid):
    try:
        with open("/proc/%d/status" % pid, "rb") as f:
            for line in f:
                if line.startswith(b"Tgid:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def max_entries():
    text = os.environ.get(MAX_ENV)
    if text is None:
        return DEFAULT_MAX
    if not text.isdigit() or int(text) < 1:
        raise SnoopError("%s=%s: not a number of processes" % (MAX_ENV, text))
    return int(text)


def configure(obj, pid):
    """Before load: follow a tree (pid set), or pay nothing for one (None)."""
    if pid is None:
        obj.resize(MAP, 1)
        return
    obj.resize(MAP, max_entries())
    obj.set_rodata(filter_tree=True)
    for name in (FORK, EXIT):
        obj.set_autoload(name, True)
    obj.defer_attach(FORK, EXIT)


def follow(obj, pid, walk=True):
    """After the tool's programs are attached: follow pid's tree from now
    on (walk=False: pid is known to have no children, a command held
    before its exec). Returns how many of its processes did not fit in
    the map. UsageError when pid is gone."""
    obj.attach_program(FORK)
    obj.attach_program(EXIT)
    found = descendants(pid) if walk else {pid: _stat(pid)}
    missed = 0
    for tgid in found:
        try:
            obj.update(MAP, struct.pack("=I", tgid), b"\1")
        except libbpf.LibbpfError as e:
            if e.errno != errno.E2BIG:
                raise
            missed += 1
    # one that ended before it was put in the map had its exit already:
    # take it out, or its tgid, once reused, would be followed
    for tgid, stat in found.items():
        now = _stat(tgid)
        if now is None or now[2] != stat[2] or _dead(now):
            obj.delete(MAP, struct.pack("=I", tgid))
            if tgid == pid:
                raise UsageError("--tree %d: the process has exited" % pid)
    return missed


def misses(obj):
    """The processes tree_fork could not put in the map (it was full)."""
    return obj.percpu_sum(MISSES)


def descendants(pid):
    """{tgid: its _stat()} of pid and every process below it, as /proc
    tells their parents, but this one (a tool started from the tree, a
    shell's, traces its tree, not itself). A process whose parent exited
    before this walk was reparented (to init, or a subreaper) and is not
    found."""
    children, stats = {}, {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            stat = _stat(int(name))
            if stat is not None:
                stats[int(name)] = stat
                children.setdefault(stat[1], []).append(int(name))
    if pid not in stats:
        raise UsageError("--tree %d: the process has exited" % pid)
    out, todo, me = {}, [pid], os.getpid()
    while todo:
        tgid = todo.pop()
        if tgid not in out and tgid != me:
            out[tgid] = stats[tgid]
            todo.extend(children.get(tgid, ()))
    return out


def _stat(pid):
    """(state, ppid, start time, threads) of process pid, from
    /proc/PID/stat; None when it is gone."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            data = f.read()
    except OSError:
        return None
    # after the comm, which may hold spaces and parentheses
    fields = data[data.rindex(b")") + 2:].split()
    return fields[0], int(fields[1]), int(fields[19]), int(fields[17])


def _dead(stat):
    """A zombie with no thread left: its exit has run (a zombie leader
    whose other threads run on is not)."""
    return stat[0] in (b"Z", b"X") and stat[3] <= 1
