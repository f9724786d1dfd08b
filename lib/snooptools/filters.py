"""The common filters, written once: --pid, --tid, --uid, --comm, --cgroup.

add_arguments() puts them on a tool's parser (with that tool's BCC short
letters); apply() writes the matching .rodata knobs before load and fill()
fills the filter maps after load. Every one is checked in the kernel, in
should_trace() of bpf/include/snoop.bpf.h, before anything is copied.
"""
import argparse
import os
import struct

COMM_LEN = 16


def id_list(text):
    """PID[,PID...] -> a list of positive ints."""
    out = []
    for part in text.split(","):
        try:
            n = int(part)
        except ValueError:
            raise argparse.ArgumentTypeError("invalid id %r: expected a number" % part) from None
        if n <= 0 or n >= 1 << 32:
            raise argparse.ArgumentTypeError("invalid id %r: out of range" % part)
        out.append(n)
    return out


def user(text):
    """A uid, or a user name resolved to its uid."""
    if text.isdigit():
        n = int(text)
        if n >= (1 << 32) - 1:
            raise argparse.ArgumentTypeError("invalid uid %r: out of range" % text)
        return n
    import pwd
    try:
        return pwd.getpwnam(text).pw_uid
    except KeyError:
        raise argparse.ArgumentTypeError("unknown user %r" % text) from None


def comm(text):
    if not text or len(text.encode()) >= COMM_LEN:
        raise argparse.ArgumentTypeError(
            "invalid comm %r: task names are 1 to %d bytes" % (text, COMM_LEN - 1))
    return text


def cgroup(text):
    """A directory of a cgroup v2 hierarchy."""
    path = os.path.abspath(text)
    if not os.path.isdir(path):
        raise argparse.ArgumentTypeError("cgroup %r: no such directory" % text)
    if not _on_cgroup2(path):
        raise argparse.ArgumentTypeError("cgroup %r: not in a cgroup v2 hierarchy" % text)
    return path


def _on_cgroup2(path):
    best = ""
    fstype = None
    try:
        with open("/proc/self/mounts") as f:
            for line in f:
                fields = line.split()
                mnt = fields[1]
                if (path == mnt or path.startswith(mnt.rstrip("/") + "/")) and len(mnt) >= len(best):
                    best, fstype = mnt, fields[2]
    except OSError:
        return False
    return fstype == "cgroup2"


def add_arguments(parser, pid=None, tid=None, uid=None, comm_=None, uid_help=None):
    """Add the common filters; pid, tid, uid, comm_ are the tool's BCC short flags."""
    g = parser.add_argument_group("filters (applied in the kernel)")
    g.add_argument(*_flags(pid, "--pid"), type=id_list, metavar="PID[,PID...]",
                   help="only these processes (thread group ids)")
    g.add_argument(*_flags(tid, "--tid"), type=id_list, metavar="TID[,TID...]",
                   help="only these threads")
    g.add_argument(*_flags(uid, "--uid"), type=user, metavar="UID|USER",
                   help=uid_help or "only this user")
    g.add_argument(*_flags(comm_, "--comm"), type=comm, metavar="NAME",
                   help="only tasks whose name (comm) is exactly NAME")
    g.add_argument("--cgroup", type=cgroup, metavar="PATH",
                   help="only tasks in this cgroup v2 directory or below it")
    return g


def _flags(short, long):
    return (short, long) if short else (long,)


def apply(obj, args):
    """Write the filter knobs of args into obj's .rodata (before load)."""
    knobs = {}
    if args.pid and len(args.pid) == 1:
        knobs["filter_pid"] = args.pid[0]       # compared in the kernel, no map
    elif args.pid:
        knobs["filter_pids"] = True
    if args.tid:
        knobs["filter_tids"] = True
    if args.uid is not None:
        knobs["filter_uid"] = args.uid
    if args.comm:
        knobs["filter_comm"] = args.comm.encode()
    if args.cgroup:
        knobs["filter_cgroup"] = True
    if knobs:
        obj.set_rodata(**knobs)


def fill(obj, args):
    """Fill the filter maps (after load)."""
    pids = args.pid if args.pid and len(args.pid) > 1 else None
    for ids, name in ((pids, "pid_filter"), (args.tid, "tid_filter")):
        for n in ids or ():
            obj.update(name, struct.pack("=I", n), b"\1")
    if args.cgroup:
        fd = os.open(args.cgroup, os.O_RDONLY | os.O_DIRECTORY)
        try:
            obj.update("cgroup_filter", struct.pack("=I", 0), struct.pack("=I", fd))
        finally:
            os.close(fd)
