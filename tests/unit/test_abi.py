"""The kernel ABI's decoding tables (snooptools/abi.py) and their one flag
decoder, as the tools print them."""
from snooptools import abi
from test_layout import tool_module


def test_flag_words():
    table = (("A", 1), ("B", 2), ("FIELD_3", 0x30, 0xf0))
    assert abi.flags_text(3, table) == "A|B"
    assert abi.flags_text(0x35, table) == "A|FIELD_3|0x4"     # bits, a field, the rest
    assert abi.flags_text(0x20, table) == "0x20"              # a field value without a name
    assert abi.flags_text(0, table) == "0x0"
    assert abi.flags_text(0o1604, table, "0%o") == "0%o" % 0o1604
    assert abi.flag_names(0x37, table) == (["A", "B", "FIELD_3"], 4)


def test_shmsnoop_arguments():
    text = tool_module("shmsnoop").args_text
    rec = dict(call="shmget", key=0x1234, size=4096, shmflg=0o1000 | 0o600 | 21 << 26, err=0)
    assert text(rec) == "key: 0x1234, size: 4096, shmflg: 0x54000380 (IPC_CREAT|SHM_HUGE_2MB|0600)"
    rec = dict(call="shmat", shmid=-1, shmaddr=0, shmflg=0, err=22)
    assert text(rec) == "shmid: 0xffffffff, shmaddr: 0x0, shmflg: 0x0, err: 22 (EINVAL)"
    rec = dict(call="shmctl", shmid=5, cmd=2 | 0x100, buf=0x10, err=0)
    assert text(rec) == "shmid: 0x5, cmd: 258 (IPC_STAT|IPC_64), buf: 0x10"
    assert abi.size_name(30) == "1GB" and abi.size_name(16) == "64KB"


def test_mount_flag_words_as_bcc_and_strace_print_them():
    assert abi.flags_text(0xc0ed0000 | 1 | 1 << 31, abi.MS_FLAGS) == "MS_MGC_VAL|MS_RDONLY"
    assert abi.flags_text(1 << 31 | 2, abi.MS_FLAGS) == "MS_NOSUID|MS_NOUSER"
    assert abi.flags_text(0x10 | 0x1, abi.MOUNT_ATTR_FLAGS) == "MOUNT_ATTR_NOATIME|MOUNT_ATTR_RDONLY"
    assert abi.flags_text(0x70, abi.MOUNT_ATTR_FLAGS) == "MOUNT_ATTR__ATIME"
    assert abi.flags_text(0x30, abi.MOUNT_ATTR_FLAGS) == "0x30"    # no such atime setting
    assert abi.flags_text(0o2000001 | 0x8000, abi.OPEN_TREE_FLAGS) == \
        "OPEN_TREE_CLONE|OPEN_TREE_CLOEXEC|AT_RECURSIVE"
    assert (abi.dfd_text(-100), abi.ret_text(-2), abi.ret_text(3)) == ("AT_FDCWD", "-ENOENT", "3")
    assert abi.c_string('a"\\\n', truncated=True) == '"a\\"\\\\\\n"...'


def test_signals():
    assert [abi.signal_number(t) for t in ("9", "kill", "SIGTERM", "RTMIN+2", "sigrtmax-1",
                                           "NOPE", "-1")] == [9, 9, 15, 36, 63, None, None]
    assert [abi.signal_name(n) for n in (9, 36, 0, 99)] == ["KILL", "RTMIN+2", "?", "?"]
