"""What the numbers of the kernel's user ABI mean, as data: the flag tables
and command names of the calls the tools decode, beside the one decoder of
a flag word.

A flag table is a tuple of entries in the order their names print:
(name, bits) is set when all its bits are; (name, value, mask) when the
word's bits under mask are value: a field within the word (MS_MGC_VAL's
magic, MOUNT_ATTR__ATIME's three bits, SHM_HUGE_*'s log2 page size).
"""
import errno
import sys

from .output import escape


def flag_names(value, table):
    """The names of table's entries set in value, in table order, and the
    bits no entry covers."""
    names = []
    for entry in table:
        bits = entry[1]
        mask = entry[2] if len(entry) > 2 else bits
        if bits and value & mask == bits:
            names.append(entry[0])
            value &= ~mask
    return names, value


def flags_text(value, table, rest="0x%x"):
    """BCC's decoding of a flag word: the names set, joined by |, then the
    bits left over (formatted by rest); rest alone when no name is set."""
    names, left = flag_names(value, table)
    if left or not names:
        names.append(rest % left)
    return "|".join(names)


def c_int(v):
    """A register's low 32 bits as the C int the kernel reads from it."""
    v &= 0xffffffff
    return v - (1 << 32) if v & 0x80000000 else v


def c_uint(v):
    return v & 0xffffffff


def c_string(s, truncated=False):
    """s as a C string literal, non-printable characters escaped; strace's
    ... after the quote when it was cut short."""
    return '"%s"%s' % (escape(s.replace("\\", "\\\\").replace('"', '\\"')),
                       "..." if truncated else "")


def ret_text(ret):
    """A call's result as strace shows it: -ENOENT for an errno."""
    if ret < 0 and -ret in errno.errorcode:
        return "-" + errno.errorcode[-ret]
    return str(ret)


def dfd_text(fd):
    """A directory descriptor argument: AT_FDCWD, or its number."""
    return "AT_FDCWD" if fd == AT_FDCWD else str(fd)


def size_name(log2):
    """2**log2 bytes as the kernel's constants name sizes: 2MB, 1GB."""
    for unit in ("B", "KB", "MB", "GB", "TB", "PB", "EB"):
        if log2 < 10:
            return "%d%s" % (1 << log2, unit)
        log2 -= 10
    return "2^%d" % log2


# -- signals ------------------------------------------------------------------------
def signal_name(sig):
    """9 -> "KILL", 36 -> "RTMIN+2", as BCC shows them; "?" for none."""
    import signal
    try:
        return signal.Signals(sig).name[3:]
    except ValueError:
        if signal.SIGRTMIN < sig < signal.SIGRTMAX:
            return "RTMIN+%d" % (sig - signal.SIGRTMIN)
        return "?"


def signal_number(text):
    """A signal by number or name (KILL, SIGKILL, sigterm, RTMIN+2), or None."""
    import re
    import signal
    name = text.strip().upper()
    if name.isdigit():
        return int(name)
    if not name.startswith("SIG"):
        name = "SIG" + name
    m = re.fullmatch(r"(SIGRTMIN|SIGRTMAX)([+-]\d+)?", name)
    if m:
        return getattr(signal, m[1]) + int(m[2] or 0)
    if name in signal.Signals.__members__:
        return signal.Signals[name].value
    return None


# -- files -----------------------------------------------------------------------------
# Files on no mount, by their superblock's magic (<linux/magic.h>), named as
# readlink(2) of /proc/PID/fd/N names them: (prefix, the inode number's or
# the dentry name's) socket:[INO], pipe:[INO], anon_inode:NAME
NO_MOUNT_NAMES = {0x534F434B: ("socket", True), 0x50495045: ("pipe", True),
                  0x09041934: ("anon_inode", False)}
PTS_MAJORS = range(136, 144)    # UNIX98_PTY_SLAVE_MAJOR: /dev/pts/N


# -- block I/O ----------------------------------------------------------------------
# blk_status_t -> the errno blk_status_to_errno() makes of it (EIO for others)
BLK_STATUS_ERRNO = {1: "EOPNOTSUPP", 2: "ETIMEDOUT", 3: "ENOSPC", 4: "ENOLINK", 5: "EREMOTEIO",
                    6: "EBADE", 7: "ENODATA", 8: "EILSEQ", 9: "ENOMEM", 10: "EIO", 11: "EREMCHG",
                    12: "EAGAIN", 13: "EBUSY", 16: "ENODEV"}
# the operations (the kernel's enum req_op, which biosnoop's object keeps)
# as blktrace's rwbs spells them
REQ_OP_LETTERS = {"REQ_OP_READ": "R", "REQ_OP_WRITE": "W", "REQ_OP_FLUSH": "F",
                  "REQ_OP_DISCARD": "D", "REQ_OP_SECURE_ERASE": "DE"}


# -- sockets: <linux/socket.h>, <linux/in.h> ------------------------------------
AF_UNSPEC, AF_INET, AF_INET6 = 0, 2, 10
# the protocols an AF_INET or AF_INET6 socket can have
INET_PROTOCOLS = {1: "ICMP", 6: "TCP", 17: "UDP", 33: "DCCP", 58: "ICMPV6", 132: "SCTP",
                  136: "UDPLITE", 255: "RAW", 262: "MPTCP"}


def inet_ntop(family, raw):
    """An AF_INET or AF_INET6 address in raw bytes, as text."""
    import socket
    return socket.inet_ntop(socket.AF_INET, raw[:4]) if family == AF_INET else \
        socket.inet_ntop(socket.AF_INET6, raw[:16])


def inet_sockaddr(sa, sock_family):
    """(address, port) of a struct sockaddr_in or sockaddr_in6 in raw bytes
    (what a caller passed for a socket of sock_family), each None when it
    is too short to hold them or is of another family."""
    port = int.from_bytes(sa[2:4], "big") if len(sa) >= 4 else None
    family = int.from_bytes(sa[:2], sys.byteorder) if len(sa) >= 2 else None
    if family == AF_UNSPEC and sock_family == AF_INET:
        family = AF_INET            # what inet_bind() accepts for INADDR_ANY
    if family == AF_INET and len(sa) >= 8:
        return inet_ntop(AF_INET, sa[4:8]), port
    if family == AF_INET6 and len(sa) >= 24:
        return inet_ntop(AF_INET6, sa[8:24]), port
    return None, port


# -- System V shared memory: <linux/ipc.h>, <linux/shm.h> ---------------------
SHM_HUGE_SHIFT, SHM_HUGE_MASK = 26, 0x3f
SHMGET_FLAGS = (
    ("IPC_CREAT", 0o1000), ("IPC_EXCL", 0o2000), ("SHM_HUGETLB", 0o4000),
    ("SHM_NORESERVE", 0o10000),
) + tuple(("SHM_HUGE_" + size_name(n), n << SHM_HUGE_SHIFT, SHM_HUGE_MASK << SHM_HUGE_SHIFT)
          for n in range(1, SHM_HUGE_MASK + 1))        # SHM_HUGE_2MB, SHM_HUGE_1GB, ...
SHMAT_FLAGS = (("SHM_RDONLY", 0o10000), ("SHM_RND", 0o20000), ("SHM_REMAP", 0o40000),
               ("SHM_EXEC", 0o100000))
SHMCTL_CMDS = {0: "IPC_RMID", 1: "IPC_SET", 2: "IPC_STAT", 3: "IPC_INFO", 11: "SHM_LOCK",
               12: "SHM_UNLOCK", 13: "SHM_STAT", 14: "SHM_INFO", 15: "SHM_STAT_ANY"}
IPC_64 = 0x100      # shmctl's cmd: the 64-bit struct shmid64_ds


# -- mounts: <linux/mount.h>, <linux/fcntl.h> -----------------------------------
MS_FLAGS = (
    ("MS_MGC_VAL", 0xc0ed0000, 0xffff0000),     # the old magic in the top half
    ("MS_RDONLY", 1), ("MS_NOSUID", 2), ("MS_NODEV", 4), ("MS_NOEXEC", 8),
    ("MS_SYNCHRONOUS", 16), ("MS_REMOUNT", 32), ("MS_MANDLOCK", 64), ("MS_DIRSYNC", 128),
    ("MS_NOSYMFOLLOW", 256), ("MS_NOATIME", 1024), ("MS_NODIRATIME", 2048), ("MS_BIND", 4096),
    ("MS_MOVE", 8192), ("MS_REC", 16384), ("MS_SILENT", 32768), ("MS_POSIXACL", 1 << 16),
    ("MS_UNBINDABLE", 1 << 17), ("MS_PRIVATE", 1 << 18), ("MS_SLAVE", 1 << 19),
    ("MS_SHARED", 1 << 20), ("MS_RELATIME", 1 << 21), ("MS_KERNMOUNT", 1 << 22),
    ("MS_I_VERSION", 1 << 23), ("MS_STRICTATIME", 1 << 24), ("MS_LAZYTIME", 1 << 25),
    ("MS_SUBMOUNT", 1 << 26), ("MS_NOREMOTELOCK", 1 << 27), ("MS_NOSEC", 1 << 28),
    ("MS_BORN", 1 << 29), ("MS_ACTIVE", 1 << 30), ("MS_NOUSER", 1 << 31),
)
UMOUNT_FLAGS = (("MNT_FORCE", 1), ("MNT_DETACH", 2), ("MNT_EXPIRE", 4), ("UMOUNT_NOFOLLOW", 8))
FSOPEN_FLAGS = (("FSOPEN_CLOEXEC", 1),)
FSMOUNT_FLAGS = (("FSMOUNT_CLOEXEC", 1),)
FSPICK_FLAGS = (("FSPICK_CLOEXEC", 1), ("FSPICK_SYMLINK_NOFOLLOW", 2),
                ("FSPICK_NO_AUTOMOUNT", 4), ("FSPICK_EMPTY_PATH", 8))
MOVE_MOUNT_FLAGS = (
    ("MOVE_MOUNT_F_SYMLINKS", 0x1), ("MOVE_MOUNT_F_AUTOMOUNTS", 0x2),
    ("MOVE_MOUNT_F_EMPTY_PATH", 0x4), ("MOVE_MOUNT_T_SYMLINKS", 0x10),
    ("MOVE_MOUNT_T_AUTOMOUNTS", 0x20), ("MOVE_MOUNT_T_EMPTY_PATH", 0x40),
    ("MOVE_MOUNT_SET_GROUP", 0x100), ("MOVE_MOUNT_BENEATH", 0x200),
)
AT_FLAGS = (("AT_SYMLINK_NOFOLLOW", 0x100), ("AT_NO_AUTOMOUNT", 0x800),
            ("AT_EMPTY_PATH", 0x1000), ("AT_RECURSIVE", 0x8000))
OPEN_TREE_FLAGS = (("OPEN_TREE_CLONE", 1), ("OPEN_TREE_CLOEXEC", 0o2000000)) + AT_FLAGS
MOUNT_ATTR_FLAGS = (
    # the atime setting is a 3-bit field, not bits (MOUNT_ATTR_RELATIME is 0)
    ("MOUNT_ATTR_NOATIME", 0x10, 0x70), ("MOUNT_ATTR_STRICTATIME", 0x20, 0x70),
    ("MOUNT_ATTR__ATIME", 0x70, 0x70),
    ("MOUNT_ATTR_RDONLY", 0x1), ("MOUNT_ATTR_NOSUID", 0x2), ("MOUNT_ATTR_NODEV", 0x4),
    ("MOUNT_ATTR_NOEXEC", 0x8), ("MOUNT_ATTR_NODIRATIME", 0x80), ("MOUNT_ATTR_IDMAP", 0x100000),
    ("MOUNT_ATTR_NOSYMFOLLOW", 0x200000),
)
# struct mount_attr's fields, in order, and the tables of the flag words
MOUNT_ATTR = (("attr_set", MOUNT_ATTR_FLAGS), ("attr_clr", MOUNT_ATTR_FLAGS),
              ("propagation", MS_FLAGS), ("userns_fd", None))
AT_FDCWD = -100

# The mount calls' arguments, in order: (JSON key, a flag table or a kind).
# (fsconfig's commands are the kernel's enum fsconfig_command, which
# mountsnoop.bpf.c keeps in its object's BTF.)
# The tracepoints of umount2() are named umount, and BCC prints it so.
STR, FD, DFD, SIZE, CMD, VALUE, AUX, ATTR = "str", "fd", "dfd", "size", "cmd", "value", "aux", "attr"
MOUNT_CALLS = {
    "mount": (("source", STR), ("target", STR), ("fstype", STR), ("flags", MS_FLAGS),
              ("data", STR)),
    "umount": (("target", STR), ("flags", UMOUNT_FLAGS)),
    "fsopen": (("fstype", STR), ("flags", FSOPEN_FLAGS)),
    "fsconfig": (("fd", FD), ("cmd", CMD), ("key", STR), ("value", VALUE), ("aux", AUX)),
    "fsmount": (("fd", FD), ("flags", FSMOUNT_FLAGS), ("attr_flags", MOUNT_ATTR_FLAGS)),
    "move_mount": (("from_dfd", DFD), ("source", STR), ("to_dfd", DFD), ("target", STR),
                   ("flags", MOVE_MOUNT_FLAGS)),
    "fspick": (("dfd", DFD), ("target", STR), ("flags", FSPICK_FLAGS)),
    "open_tree": (("dfd", DFD), ("source", STR), ("flags", OPEN_TREE_FLAGS)),
    "open_tree_attr": (("dfd", DFD), ("source", STR), ("flags", OPEN_TREE_FLAGS),
                       ("attr", ATTR), ("size", SIZE)),
    "mount_setattr": (("dfd", DFD), ("target", STR), ("flags", AT_FLAGS), ("attr", ATTR),
                      ("size", SIZE)),
}
