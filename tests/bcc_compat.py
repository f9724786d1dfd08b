"""BCC's documented command lines, and the header line BCC prints for each.

One Row per command line that BCC documents for the 16 tools (iovisor/bcc
master, read at commit 6d0a964c2cda): the examples block of tools/<t>.py
(which tools/<t>_example.txt repeats in its usage message), the runs shown
in tools/<t>_example.txt, and the EXAMPLES of man/man8/<t>.8. A line that
several of them show is one row; `doc` says where it is shown.

`header` is the line BCC prints before the first event, worked out from the
format strings of tools/<t>.py (where an example file shows an older
header, the source wins: it is what BCC prints today). Trailing blanks are
not part of it (BCC pads its last column; nobody can see it). Two headers
depend on the host, and are templates filled from it by str.format:
killsnoop's PID and TPID columns are one wider than the digits of
/proc/sys/kernel/pid_max ({pid_w}), and exitsnoop -t's first column is
TIME-<time zone name> ({time_tz}). None: BCC prints no header (ttysnoop).

In `args`, {pts} and {ptsnum} stand for a pts the test makes (BCC's
examples use /dev/pts/2), {disk} for a disk of this host (BCC's sdc),
{user} for a user name (root), {cgroupmap} and {mntnsmap} for pinned BPF
hash maps of BCC's layout (docs/special_filtering.md). PIDs such as 181
are BCC's own: filtering on a pid that does not exist is still accepted.

Fields that say how a row is run and what it proves:
- at_exit: BCC prints this header when tracing ends (bindsnoop --count).
- refused: BCC itself refuses the line (a wrong example of BCC's); so do we.
- kernel: what the tool needs from the kernel beyond tracepoints (dcsnoop:
  fentry or kprobes). Where this kernel lacks it, the tool exits 1 with one
  line saying so, and its header can only be checked where it runs.
- why: where we deliberately differ from BCC, or cannot do what it does;
  the tool's man page says so too.
"""
import os
import time


class Row:
    def __init__(self, tool, args, header, doc, why="", at_exit=False,
                 refused=False, kernel=None):
        self.tool, self.args, self.header, self.doc = tool, args, header, doc
        self.why, self.at_exit = why, at_exit
        self.refused, self.kernel = refused, kernel

    @property
    def id(self):
        return ("%s %s" % (self.tool, self.args)).strip()

    def __repr__(self):
        return "Row(%r)" % self.id

    def expected(self):
        """The header BCC prints on this host (None: none)."""
        return None if self.header is None else self.header.format(**host_facts()).rstrip()


def host_facts():
    """What BCC's host-dependent headers are made of, on this host."""
    with open("/proc/sys/kernel/pid_max") as f:
        pid_w = len(f.read().strip()) + 1
    return {"pid_w": pid_w, "PID": "PID", "TPID": "TPID",
            "time_tz": "TIME-" + time.strftime("%Z")}


def a_disk():
    """{disk}: a disk of this host, for BCC's biosnoop -d sdc."""
    names = sorted(os.listdir("/sys/block"))
    disks = [n for n in names if not n.startswith(("loop", "ram", "zram"))]
    return (disks or names)[0]


# BCC's headers, one per column set (names say which options make it)
BIND = "     PID COMM         PROT ADDR            PORT   OPTS IF"
BIND_T = "TIME(s)        PID COMM         PROT ADDR            PORT   OPTS IF"
BIND_W = "       PID COMM         PROT ADDR                                    PORT   OPTS IF"
BIND_U = "   UID      PID COMM         PROT ADDR            PORT   OPTS IF"
BIND_E = " RC      PID COMM         PROT ADDR            PORT   OPTS IF"
BIND_COUNT = "LADDR                                           LPORT     BINDS"
BIO = "TIME(s)     COMM           PID     DISK      T SECTOR     BYTES  LAT(ms)"
BIO_Q = "TIME(s)     COMM           PID     DISK      T SECTOR     BYTES  QUE(ms) LAT(ms)"
BIO_P = "TIME(s)     COMM           PID     DISK      T SECTOR     BYTES  P LAT(ms)"
COMPACT = "COMM           PID    NODE ZONE         ORDER MODE      LAT(ms)           STATUS"
COMPACT_T = ("TIME(s)        COMM           PID    NODE ZONE         ORDER MODE      LAT(ms)"
             "           STATUS")
COMPACT_E = ("COMM           PID    NODE ZONE         ORDER MODE    FRAGIDX  MIN      LOW      "
             "HIGH     FREE       LAT(ms)           STATUS")
DC = "TIME(s)     PID     COMM             T FILE"
DR = "COMM           PID     LAT(ms) PAGES"
DR_T = "TIME(s)       COMM           PID     LAT(ms) PAGES"
DR_U = "UID   COMM           PID     LAT(ms) PAGES"
DR_TID = "COMM           TID     LAT(ms) PAGES"
DR_V = "COMM           PID     LAT(ms) PAGES  FREE(KB)"
EXEC = "COMM             PID     PPID    RET ARGS"
EXEC_T = "TIME     COMM             PID     PPID    RET ARGS"
EXEC_TS = "TIME(s) COMM             PID     PPID    RET ARGS"
EXEC_U = "UID   COMM             PID     PPID    RET ARGS"
EXEC_C = "COMM             PID     PPID    CPU  RET ARGS"
EXEC_M = "COMM             PID     PCOMM            PPID    RET ARGS"
EXEC_TTS = "TIME     TIME(s) COMM             PID     PPID    RET ARGS"
EXIT = "PCOMM            PID     PPID    TID     AGE(s)  EXIT_CODE"
EXIT_T = "{time_tz:<13}PCOMM            PID     PPID    TID     AGE(s)  EXIT_CODE"
EXIT_LABEL = "LABEL PCOMM            PID     PPID    TID     AGE(s)  EXIT_CODE"
EXIT_T_LABEL = "{time_tz:<13}LABEL PCOMM            PID     PPID    TID     AGE(s)  EXIT_CODE"
KILL = "TIME      {PID:<{pid_w}} COMM             SIG  {TPID:<{pid_w}} RESULT"
MOUNT = "COMM             PID     TID     MNT_NS      CALL"
MOUNT_P = "COMM             PID     TID     PCOMM            PPID    MNT_NS      CALL"
OPEN = "PID    COMM               FD ERR PATH"
OPEN_T = "TIME(s)       PID    COMM               FD ERR PATH"
OPEN_U = "UID   PID    COMM               FD ERR PATH"
OPEN_TID = "TID    COMM               FD ERR PATH"
OPEN_E = "PID    COMM               FD ERR FLAGS    MODE PATH"
SHM = "PID    COMM                SYS              RET ARGs"
SHM_T = "TIME(s)       PID    COMM                SYS              RET ARGs"
SHM_TID = "TID    COMM                SYS              RET ARGs"
SOFD = "ACTION TID    COMM             SOCKET                    FD    NAME"
SOFD_T = "TIME(s)       ACTION TID    COMM             SOCKET                    FD    NAME"
STAT = "PID     COMM               FD ERR PATH"
STAT_T = "TIME(s)       PID     COMM               FD ERR PATH"
STAT_S = "PID     COMM               FD ERR SYSCALL      PATH"
SYNC = "TIME(s)            COMM             CALL"
THREAD = "TIME(ms)   PID     COMM             FUNC"


DCACHE = ("no tracepoint covers dcache lookups: dcsnoop needs fentry or kprobes, and on a "
          "kernel with neither it says so and exits 1")

ROWS = [
    # bindsnoop
    Row("bindsnoop", "", BIND, "usage, example, man"),
    Row("bindsnoop", "-t", BIND_T, "usage, example, man"),
    Row("bindsnoop", "-w", BIND_W, "usage"),
    Row("bindsnoop", "-p 181", BIND, "usage, man"),
    Row("bindsnoop", "-P 80", BIND, "usage, man"),
    Row("bindsnoop", "-P 80,81", BIND, "usage, man"),
    Row("bindsnoop", "-U", BIND_U, "usage, example, man"),
    Row("bindsnoop", "-Uu 0", BIND_U, "example"),
    Row("bindsnoop", "-u 1000", BIND, "usage, man"),
    Row("bindsnoop", "-E", BIND_E, "usage, man"),
    Row("bindsnoop", "--count", BIND_COUNT, "usage, example, man", at_exit=True),
    Row("bindsnoop", "--cgroupmap {cgroupmap}", BIND, "usage, example"),
    Row("bindsnoop", "--mntnsmap {mntnsmap}", BIND, "usage"),
    # biosnoop
    Row("biosnoop", "", BIO, "usage, example, man"),
    Row("biosnoop", "-Q", BIO_Q, "usage, example"),
    Row("biosnoop", "-d {disk}", BIO, "usage"),
    Row("biosnoop", "-P", BIO_P, "usage"),
    # compactsnoop
    Row("compactsnoop", "", COMPACT, "usage, example, man"),
    Row("compactsnoop", "-T", COMPACT_T, "usage"),
    Row("compactsnoop", "-Tp 24376", COMPACT_T, "example"),
    Row("compactsnoop", "-d 10", COMPACT, "usage, man"),
    Row("compactsnoop", "-d 2", COMPACT, "example"),
    Row("compactsnoop", "-K", COMPACT, "usage"),
    Row("compactsnoop", "-e", COMPACT_E, "usage, example"),
    Row("compactsnoop", "-K -e", COMPACT_E, "example"),
    # dcsnoop
    Row("dcsnoop", "", DC, "usage, example, man", why=DCACHE, kernel="dcache"),
    Row("dcsnoop", "-a", DC, "usage, man", why=DCACHE, kernel="dcache"),
    # drsnoop
    Row("drsnoop", "", DR, "usage, example, man"),
    Row("drsnoop", "-T", DR_T, "usage, man"),
    Row("drsnoop", "-Tp 17491", DR_T, "example"),
    Row("drsnoop", "-U", DR_U, "usage, example, man"),
    Row("drsnoop", "-Uu 1000", DR_U, "example"),
    Row("drsnoop", "-P 181", None, "usage", refused=True,
        why="BCC's usage shows -P 181 for a PID, but its parser has -p (as its man page "
            "and usage message say): BCC refuses the line, and so do we"),
    Row("drsnoop", "-p 181", DR, "man, usage message"),
    Row("drsnoop", "-t 123", DR_TID, "usage"),
    Row("drsnoop", "-u 1000", DR, "usage, man"),
    Row("drsnoop", "-d 10", DR, "usage, man"),
    Row("drsnoop", "-d 2", DR, "example"),
    Row("drsnoop", "-n main", DR, "usage"),
    Row("drsnoop", "-n mond", DR, "example, man"),
    Row("drsnoop", "-v", DR_V, "example"),
    # execsnoop
    Row("execsnoop", "", EXEC, "usage, example, man"),
    Row("execsnoop", "-x", EXEC, "usage, example, man"),
    Row("execsnoop", "-T", EXEC_T, "usage"),
    Row("execsnoop", "-P 181", EXEC, "usage"),
    Row("execsnoop", "-U", EXEC_U, "usage, example, man"),
    Row("execsnoop", "-C", EXEC_C, "usage"),
    Row("execsnoop", "-M", EXEC_M, "usage"),
    Row("execsnoop", "-u 1000", EXEC, "usage, man"),
    Row("execsnoop", "-u {user}", EXEC, "usage"),
    Row("execsnoop", "-Uu 1000", EXEC_U, "example"),
    Row("execsnoop", "-Uu root", EXEC_U, "man"),
    Row("execsnoop", "-t", EXEC_TS, "usage, man"),
    Row("execsnoop", "-q", EXEC, "usage, man"),
    Row("execsnoop", "-n main", EXEC, "usage"),
    Row("execsnoop", "-n mount", EXEC, "man"),
    Row("execsnoop", "-Ttn mount", EXEC_TTS, "example"),
    Row("execsnoop", "-l tpkg", EXEC, "usage"),
    Row("execsnoop", "-l testpkg", EXEC, "example, man"),
    Row("execsnoop", "--cgroupmap {cgroupmap}", EXEC, "usage, example, man"),
    Row("execsnoop", "--mntnsmap {mntnsmap}", EXEC, "usage"),
    # exitsnoop
    Row("exitsnoop", "", EXIT, "usage, example, man"),
    Row("exitsnoop", "-x", EXIT, "usage, man"),
    Row("exitsnoop", "-t", EXIT_T, "usage, man"),
    Row("exitsnoop", "--utc", EXIT_T.replace("{time_tz:<13}", "TIME-UTC     "), "usage"),
    Row("exitsnoop", "-p 181", EXIT, "usage, man"),
    Row("exitsnoop", "--label=exit", EXIT_LABEL, "usage"),
    Row("exitsnoop", "--label EXIT", EXIT_LABEL, "man"),
    Row("exitsnoop", "-t --utc -x --label=",
        EXIT_T_LABEL.replace("{time_tz:<13}", "TIME-UTC     "), "example"),
    Row("exitsnoop", "--per-thread", EXIT, "usage, man"),
    # killsnoop
    Row("killsnoop", "", KILL, "usage, example, man"),
    Row("killsnoop", "-x", KILL, "usage, man"),
    Row("killsnoop", "-p 181", KILL, "usage, man"),
    Row("killsnoop", "-T 189", KILL, "usage, man"),
    Row("killsnoop", "-s 9", KILL, "usage, man"),
    Row("killsnoop", "-s 9,15", KILL, "usage"),
    # mountsnoop
    Row("mountsnoop", "", MOUNT, "example"),
    Row("mountsnoop", "-P", MOUNT_P, "example"),
    # opensnoop
    Row("opensnoop", "", OPEN, "usage, example, man"),
    Row("opensnoop", "-T", OPEN_T, "usage, man"),
    Row("opensnoop", "-Tp 1956", OPEN_T, "example"),
    Row("opensnoop", "-U", OPEN_U, "usage, example, man"),
    Row("opensnoop", "-Uu 1000", OPEN_U, "example"),
    Row("opensnoop", "-x", OPEN, "usage, example, man"),
    Row("opensnoop", "-p 181", OPEN, "usage, man"),
    Row("opensnoop", "-t 123", OPEN_TID, "usage"),
    Row("opensnoop", "-u 1000", OPEN, "usage, man"),
    Row("opensnoop", "-d 10", OPEN, "usage, man"),
    Row("opensnoop", "-d 2", OPEN, "example"),
    Row("opensnoop", "-n main", OPEN, "usage"),
    Row("opensnoop", "-n ed", OPEN, "example, man"),
    Row("opensnoop", "-e", OPEN_E, "usage, example, man"),
    Row("opensnoop", "-f O_WRONLY -f O_RDWR", OPEN, "usage, man"),
    Row("opensnoop", "-e -f O_WRONLY -f O_RDWR", OPEN_E, "example"),
    Row("opensnoop", "-F", OPEN, "usage"),
    Row("opensnoop", "--cgroupmap {cgroupmap}", OPEN, "usage, example, man"),
    Row("opensnoop", "--mntnsmap {mntnsmap}", OPEN, "usage"),
    # shmsnoop
    Row("shmsnoop", "", SHM, "usage, example, man"),
    Row("shmsnoop", "-T", SHM_T, "usage, man"),
    Row("shmsnoop", "-T -n server", SHM_T, "example"),
    Row("shmsnoop", "-p 181", SHM, "usage"),
    Row("shmsnoop", "-p 19855", SHM, "example"),
    Row("shmsnoop", "-t 123", SHM_TID, "usage"),
    Row("shmsnoop", "-d 10", SHM, "usage"),
    Row("shmsnoop", "-n main", SHM, "usage"),
    Row("shmsnoop", "-n server", SHM, "man"),
    # sofdsnoop
    Row("sofdsnoop", "", SOFD, "usage, example, man"),
    Row("sofdsnoop", "-T", SOFD_T, "usage, man"),
    Row("sofdsnoop", "-T -n Web", SOFD_T, "example"),
    Row("sofdsnoop", "-p 181", SOFD, "usage, man"),
    Row("sofdsnoop", "-p 2576 -T", SOFD_T, "example"),
    Row("sofdsnoop", "-t 123", SOFD, "usage, man"),
    Row("sofdsnoop", "-d 10", SOFD, "usage, man"),
    Row("sofdsnoop", "-n main", SOFD, "usage, man"),
    # statsnoop
    Row("statsnoop", "", STAT, "usage, example, man"),
    Row("statsnoop", "-t", STAT_T, "usage, man"),
    Row("statsnoop", "-s", STAT_S, "usage"),
    Row("statsnoop", "-x", STAT, "usage, man"),
    Row("statsnoop", "-p 181", STAT, "usage, man"),
    # syncsnoop
    Row("syncsnoop", "", SYNC, "example, man"),
    # threadsnoop
    Row("threadsnoop", "", THREAD, "usage, example, man"),
    # ttysnoop: no header; -C keeps the screen
    Row("ttysnoop", "{pts}", None, "usage, man"),
    Row("ttysnoop", "{ptsnum}", None, "usage, example, man"),
    Row("ttysnoop", "/dev/console", None, "usage, example, man"),
    Row("ttysnoop", "/dev/tty0", None, "usage, man"),
    Row("ttysnoop", "{pts} -s 1024", None, "usage",
        why="at most 8192 bytes of each write are shown (the kernel side's copy), where "
            "BCC's -s 1024 with its 16 chunks shows up to 16384"),
    Row("ttysnoop", "{pts} -c 2", None, "usage"),
]
