"""threadsnoop's record() from synthetic events: the fallbacks that live
threads rarely show."""
import os

from snooptools.elf import Elf, Symbolizer
from test_layout import layout, tool_module
from test_layout import record as tool_record


def record(argv, **fields):
    t = tool_module("threadsnoop").ThreadSnoop()
    args, _ = t.parse(argv)
    t.symbols = Symbolizer()                     # what configure() sets
    return tool_record(t, layout("threadsnoop"), **fields)


def libc():
    for line in open("/proc/self/maps"):
        path = line.split()[-1]
        if os.path.basename(path).startswith("libc.so"):
            return path


def test_func_named_from_its_file_or_shown_in_hex():
    path = libc()
    elf = Elf(path)
    off = elf.vaddr_to_offset(elf.dynamic_function("pthread_create"))
    named = dict(func=0x7f0000001234, file_off=off, ino=os.stat(path).st_ino, dev=1,
                 path_len=len(path) + 1, path=path.encode() + b"\0")
    rec = record([], pid=9, **named)
    assert (rec["func"], rec["func_addr"]) == ("pthread_create", 0x7f0000001234)
    assert rec["module"] == path
    assert "new_tid" not in rec
    # a path the kernel could not build in full is not trusted
    rec = record([], path_truncated=1, **named)
    assert (rec["func"], rec["module"]) == ("0x7f0000001234", path)
    # a file that is gone
    rec = record([], **dict(named, path=b"/no/such/lib.so\0", path_len=16))
    assert (rec["func"], rec["module"]) == ("0x7f0000001234", "/no/such/lib.so")


def test_all_without_start_routine():
    rec = record(["-a"], pid=9, new_tid=10)
    assert (rec["func"], rec["func_addr"], rec["module"], rec["new_tid"]) == (None, None, None, 10)
