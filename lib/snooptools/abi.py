"""What the numbers of the kernel's user ABI mean, as data: the flag tables
and command names of the calls the tools decode, beside the one decoder of
a flag word.

A flag table is a tuple of entries in the order their names print:
(name, bits) is set when all its bits are; (name, value, mask) when the
word's bits under mask are value: a field within the word (MS_MGC_VAL's
magic, MOUNT_ATTR__ATIME's three bits, SHM_HUGE_*'s log2 page size).
"""


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


def size_name(log2):
    """2**log2 bytes as the kernel's constants name sizes: 2MB, 1GB."""
    for unit in ("B", "KB", "MB", "GB", "TB", "PB", "EB"):
        if log2 < 10:
            return "%d%s" % (1 << log2, unit)
        log2 -= 10
    return "2^%d" % log2


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
