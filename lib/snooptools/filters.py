"""The common filters, written once: --pid, --tid, --uid, --comm, --cgroup,
--tree and --exec (a process tree followed in the kernel: tree.py),
BCC's --cgroupmap and --mntnsmap (a BPF hash map the user pins and fills),
and --container, --all-containers, --host-only (containers.py finds their
cgroups; refresher() keeps the kernel's set of them up to date while
tracing); BCC's -n NAME of the tools that have it (add_name); and the
argument types that turn what a user names into what the kernel side
filters on (a port, an open flag, a mount namespace, a tty, a disk).

add_arguments() puts them on a tool's parser (with that tool's BCC short
letters) and check() refuses what cannot go together; apply() writes the
matching .rodata knobs before load, fill() fills the filter maps after load
and follow() starts following --tree's tree once every probe is attached.
Every one is checked in the kernel, in should_trace() of
bpf/include/snoop.bpf.h, before anything is copied.
"""
import argparse
import os
import struct
import time

from . import kernel, tree
from .abi import PTS_MAJORS
from .bpfobject import map_type_name, open_pinned_map
from .errors import SnoopError, UsageError

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


def port_list(text):
    """PORT[,PORT...] -> a list of ports."""
    out = []
    for part in text.split(","):
        if not part.isdigit() or int(part) > 65535:
            raise argparse.ArgumentTypeError("invalid port %r: a number 0 to 65535" % part)
        out.append(int(part))
    return out


def open_flag(text):
    """An O_* flag name (the O_ is optional) -> its value (opensnoop -f)."""
    name = text.upper()
    if not name.startswith("O_"):
        name = "O_" + name
    value = getattr(os, name, None)
    if not isinstance(value, int) or name == "O_RDONLY":
        why = "O_RDONLY is 0 and matches nothing" if name == "O_RDONLY" else "unknown open flag"
        raise argparse.ArgumentTypeError("invalid flag %r: %s" % (text, why))
    return value


class TtyDevice:
    """A tty: its path, device number and (a pts) filesystem, kernel dev_t's."""

    def __init__(self, path, rdev, fs):
        self.path, self.rdev, self.fs = path, rdev, fs


def tty_ranges():
    """(major, first minor, last minor) of every tty driver, from
    /proc/tty/drivers; None when it cannot be read."""
    try:
        with open("/proc/tty/drivers") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    out = []
    for line in lines:
        fields = line.split()        # name, /dev/node, major, minor[-minor], type
        if len(fields) < 5 or not fields[-3].isdigit():
            continue
        first, _, last = fields[-2].partition("-")
        out.append((int(fields[-3]), int(first), int(last or first)))
    return out


def tty(text):
    """A tty by path, or a pts by number (3 is /dev/pts/3) -> its TtyDevice:
    the device number and, for a pts, its devpts instance, as the kernel
    holds them (ttysnoop's target)."""
    import stat
    path = "/dev/pts/" + text if text.isdigit() else text
    try:
        st = os.stat(path)
    except OSError as e:
        raise argparse.ArgumentTypeError("%s: %s" % (path, e.strerror)) from None
    major, minor = os.major(st.st_rdev), os.minor(st.st_rdev)
    ranges = tty_ranges()
    if not stat.S_ISCHR(st.st_mode) or (
            ranges is not None and not any(m == major and lo <= minor <= hi
                                           for m, lo, hi in ranges)):
        raise argparse.ArgumentTypeError("%s is not a tty" % path)
    # pts numbers repeat in every devpts instance (each container has its
    # own): a pts is also matched on its filesystem
    fs = kernel.kernel_dev(os.major(st.st_dev), os.minor(st.st_dev)) \
        if major in PTS_MAJORS else 0
    return TtyDevice(path, kernel.kernel_dev(major, minor), fs)


def block_device(text):
    """-d: a disk or partition by name (vda, nvme0n1p2) or device path
    (/dev/mapper/root) -> (kernel dev_t, is a partition)."""
    import stat
    if "/" in text:
        try:
            st = os.stat(text)
        except OSError as e:
            raise argparse.ArgumentTypeError("disk %r: %s" % (text, e.strerror)) from None
        if not stat.S_ISBLK(st.st_mode):
            raise argparse.ArgumentTypeError("disk %r: not a block device" % text)
        sysdir = "/sys/dev/block/%d:%d" % (os.major(st.st_rdev), os.minor(st.st_rdev))
    else:
        sysdir = "/sys/class/block/" + text
    try:
        with open(sysdir + "/dev") as f:
            major, minor = f.read().split(":")
    except (OSError, ValueError):
        raise argparse.ArgumentTypeError(
            "unknown disk %r: not in /sys/class/block" % text) from None
    return kernel.kernel_dev(int(major), int(minor)), os.path.exists(sysdir + "/partition")


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
    return _mount(path)[1] == "cgroup2"


def _mount(path):
    """(mount point, file system type) of the mount that holds absolute path
    path; (None, None) when the mount table cannot be read."""
    best, fstype = None, None
    try:
        with open("/proc/self/mounts") as f:
            for line in f:
                fields = line.split()
                mnt = fields[1]
                if (path == mnt or path.startswith(mnt.rstrip("/") + "/")) and \
                        len(mnt) >= len(best or ""):
                    best, fstype = mnt, fields[2]
    except OSError:
        pass
    return best, fstype


def mount_namespace(text):
    """--mntns: an inode number, or a namespace file such as /proc/PID/ns/mnt."""
    import re
    if text.isdigit() and 0 < int(text) < 1 << 32:
        return int(text)
    try:
        link = os.readlink(text)
    except OSError:
        link = None             # a bind-mounted namespace file is no symlink
    if link is not None and not link.startswith("/"):
        m = re.fullmatch(r"mnt:\[(\d+)\]", link)
        if not m:
            raise argparse.ArgumentTypeError("%s is %s, not a mount namespace" % (text, link))
        return int(m[1])
    try:
        return os.stat(text).st_ino
    except OSError as e:
        raise argparse.ArgumentTypeError("invalid mount namespace %r: not an inode number, "
                                         "and %s" % (text, e.strerror.lower())) from None


BPFFS = "/sys/fs/bpf"


def pinned(text):
    """A file in a BPF filesystem (bpffs): where a map is pinned. Whether a
    suitable map is pinned there is checked before load (pinned_key_map)."""
    path = os.path.abspath(text)
    if not os.path.exists(path):
        raise argparse.ArgumentTypeError("%s: no such file%s" % (text, _bpffs_hint()))
    if os.path.isdir(path):
        raise argparse.ArgumentTypeError("%s: a directory, not a pinned map" % text)
    if _mount(path)[1] != "bpf":
        raise argparse.ArgumentTypeError("%s: not in a BPF filesystem, where maps are pinned%s"
                                         % (text, _bpffs_hint()))
    return path


def _bpffs_hint():
    if _mount(BPFFS) == (BPFFS, "bpf"):
        return ""
    return " (no BPF filesystem is mounted at %s: mount -t bpf bpf %s)" % (BPFFS, BPFFS)


# The map types whose lookup answers "is this key in the set"
HASH_MAPS = {1: "hash", 5: "percpu_hash", 9: "lru_hash", 10: "lru_percpu_hash"}
# --cgroupmap and --mntnsmap: (knob, map in snoop.bpf.h) by option
MAP_FILTERS = {"cgroupmap": ("filter_cgroupmap", "cgroupmap"),
               "mntnsmap": ("filter_mntnsmap", "mntnsmap")}


def pinned_key_map(path, option):
    """An fd of the hash map pinned at path, keyed by a u64 (as BCC's
    --cgroupmap and --mntnsmap maps are; any value size); UsageError if
    there is none. The caller closes the fd."""
    try:
        fd, info = open_pinned_map(path)
    except SnoopError as e:
        raise UsageError("%s %s: %s" % (option, path, e.why or e)) from None
    if info.type not in HASH_MAPS or info.key_size != 8:
        os.close(fd)
        raise UsageError("%s %s: map type %s, key size %d: not a hash map keyed by a u64 "
                         "(make one: bpftool map create FILE type hash key 8 value 8 "
                         "entries 128)" % (option, path, map_type_name(info.type),
                                           info.key_size))
    return fd


def names(text):
    """NAME|ID[,NAME|ID...] -> a list of container names or ids."""
    out = [part.strip() for part in text.split(",")]
    if not all(out):
        raise argparse.ArgumentTypeError("invalid container list %r: an empty name" % text)
    return out


def add_container_arguments(parser):
    g = parser.add_argument_group("containers (filters applied in the kernel)")
    # one of --container, --all-containers and --host-only (checked in
    # container_selection(): argparse's exclusive group writes a usage line
    # the man page check cannot read)
    g.add_argument("--container", type=names, metavar="NAME|ID[,...]",
                   help="only tasks in these containers (a name, an id or the start of one; "
                        "podman, docker, containerd, CRI-O, LXC, systemd-nspawn)")
    g.add_argument("--all-containers", action="store_true",
                   help="only tasks in a container")
    g.add_argument("--host-only", action="store_true",
                   help="only tasks in no container")
    g.add_argument("--containers", action="store_true",
                   help="show a CONTAINER column: the container's name, or its short id "
                        "(as --container and --all-containers do; --json always has the "
                        "container's keys)")
    return g


def add_arguments(parser, pid=None, tid=None, uid=None, comm_=None, uid_help=None, maps=False):
    """Add the common filters; pid, tid, uid, comm_ are the tool's BCC short
    flags; maps: also BCC's --cgroupmap and --mntnsmap (the tools that had them)."""
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
    g.add_argument("--tree", type=tree.root, metavar="PID",
                   help="only this process and its descendants: those it has, and "
                        "those made while tracing (followed in the kernel)")
    g.add_argument("--exec", nargs=argparse.REMAINDER, metavar="CMD",
                   help="run CMD (with its arguments; last on the line) and trace only "
                        "it and its descendants; stop when it exits")
    if maps:
        g.add_argument("--cgroupmap", type=pinned, metavar="MAPPATH",
                       help="only tasks whose cgroup v2 id is a key of the BPF hash map "
                            "pinned at MAPPATH (u64 keys; as in BCC)")
        g.add_argument("--mntnsmap", type=pinned, metavar="MAPPATH",
                       help="only tasks whose mount namespace's inode number is a key of "
                            "the BPF hash map pinned at MAPPATH (u64 keys; as in BCC)")
    else:
        parser.set_defaults(cgroupmap=None, mntnsmap=None)
    add_container_arguments(parser)
    return g


def add_name(parser):
    """BCC's -n/--name NAME: only tasks whose comm contains NAME. Matched in
    the kernel where the tool's event has its comm (snoop.bpf.h
    name_wanted(): the exit of a syscall tool, drsnoop's end)."""
    parser.add_argument("-n", "--name", dest="name_contains", metavar="NAME",
                        help="only process names (comm) containing NAME")


def _flags(short, long):
    return (short, long) if short else (long,)


def check(args, error):
    """Refuse combinations of the common filters that mean nothing:
    error(message) does (the parser's error(), exit 2). --tree with --pid
    is both (the processes of the tree among those pids), as every two
    filters are."""
    if args.exec is not None:
        if not args.exec:
            error("--exec needs a command")
        for option, value in (("--pid", args.pid), ("--tree", args.tree)):
            if value:
                error("--exec and %s cannot be used together" % option)


def tree_root(args):
    """The pid whose tree is followed (--tree's, or --exec's command once
    started), or None."""
    return getattr(args, "tree", None)


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
    tree.configure(obj, tree_root(args))
    name = getattr(args, "name_contains", None)
    if name:
        name = os.fsencode(name)[:COMM_LEN]     # 16 bytes: in no comm
        knobs.update(filter_name=name, filter_name_len=len(name))
    for option, (knob, name) in MAP_FILTERS.items():
        path = getattr(args, option)
        if path:
            # the programs look keys up in the user's map itself, so that
            # what is added to it or taken out of it applies at once
            fd = pinned_key_map(path, "--" + option)
            try:
                obj.reuse_map(name, fd)
            finally:
                os.close(fd)
            knobs[knob] = True
    selection = container_selection(args)
    if selection is not None:
        knobs["filter_containers"] = CONTAINERS_EXCLUDED if args.host_only else CONTAINERS_ONLY
    if knobs:
        obj.set_rodata(**knobs)


def container_column(args):
    """Whether text lines show the CONTAINER column: --containers, or a
    filter that keeps the tasks of some containers (each line says whose)."""
    return bool(getattr(args, "containers", False) or getattr(args, "container", None) or
                getattr(args, "all_containers", False))


# filter_containers in snoop.bpf.h
CONTAINERS_ONLY, CONTAINERS_EXCLUDED = 1, 2
REFRESH_SECONDS = 0.5


def container_selection(args):
    """The containers.Selection of --container, --all-containers or
    --host-only (made once: start-up may try several variants); None
    without them. UsageError for a container that is not there."""
    chosen = [flag for flag, on in (("--container", getattr(args, "container", None)),
                                    ("--all-containers", getattr(args, "all_containers", False)),
                                    ("--host-only", getattr(args, "host_only", False))) if on]
    if not chosen:
        return None
    if len(chosen) > 1:
        raise UsageError("%s and %s cannot be used together" % tuple(chosen[:2]))
    selection = getattr(args, "_container_selection", None)
    if selection is None:
        from . import containers
        root = containers.cgroup2_root()
        if root is None:
            raise SnoopError("no cgroup v2 hierarchy is mounted",
                             "containers are told apart by their cgroup v2 ids "
                             "(mount -t cgroup2 none /sys/fs/cgroup/unified)")
        selection = containers.Selection(args.container or None, root)
        selection.start()
        args._container_selection = selection
    return selection


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
    selection = container_selection(args)
    if selection is not None:
        _add_cgroups(obj, selection.ids, selection.ids)


def follow(obj, args):
    """Once every probe of obj is attached: follow the tree of --tree (or
    of --exec's command, held before its exec: no child to look for)."""
    pid = tree_root(args)
    if pid is not None:
        args._tree_unseeded = tree.follow(obj, pid, walk=not getattr(args, "exec", None))


def tree_misses(obj, args):
    """The processes of the followed tree left out for want of room in the
    kernel's map (at the start or since); None without --tree or --exec."""
    if tree_root(args) is None:
        return None
    return tree.misses(obj) + getattr(args, "_tree_unseeded", 0)


CONTAINER_BITS_WORDS = 1024     # as in snoop.bpf.h


def _add_cgroups(obj, new, every):
    """new ids into container_cgroups, then container_bits made of every id."""
    if not new:
        return
    for cid in new:
        obj.update("container_cgroups", struct.pack("=Q", cid), b"\1")
    words = [0] * CONTAINER_BITS_WORDS
    for cid in every:
        words[(cid >> 6) % CONTAINER_BITS_WORDS] |= 1 << (cid & 63)
    obj.update("container_bits", struct.pack("=I", 0),
               struct.pack("=%dQ" % CONTAINER_BITS_WORDS, *words))


def refresher(obj, args):
    """refresh(now), to call at every poll while tracing: the cgroups of the
    chosen containers that appeared since (a container started, restarted or
    recreated under its name; a cgroup made inside one) go into the kernel's
    set, at the first poll after inotify saw the cgroup made in a directory
    where containers' cgroups appear (containers.Watch), or at the next walk
    of the hierarchy (every REFRESH_SECONDS). Their events before that are
    not shown: with --container they are missed, with --host-only shown as
    the host's. None without a container filter."""
    selection = container_selection(args)
    if selection is None:
        return None
    from . import containers
    try:
        watch = containers.Watch()
        watch.watch(selection.watch_dirs())
    except OSError:
        watch = None            # no inotify: the periodic walk alone
    due = [time.monotonic() + REFRESH_SECONDS]

    def refresh(now):
        if now >= due[0] or watch is not None and watch.fired():
            _add_cgroups(obj, selection.refresh(), selection.ids)
            if watch is not None:
                watch.watch(selection.watch_dirs())
            due[0] = now + REFRESH_SECONDS
    return refresh
