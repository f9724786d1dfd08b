"""The ELF reader: function offsets for uprobes, checked against the dynamic
linker's own answers in this process, and names for addresses."""
import ctypes
import os
import sys

import pytest

from snooptools.elf import STB_GLOBAL, STT_FUNC, Elf, ElfError, FunctionTable, Symbolizer

GLOBAL_FUNC = STB_GLOBAL << 4 | STT_FUNC
LOCAL_FUNC = STT_FUNC


def libc_mapping():
    """(path, load base) of the C library this process runs on."""
    for line in open("/proc/self/maps"):
        fields = line.split()
        if len(fields) == 6 and os.path.basename(fields[5]).startswith("libc.so") \
                and int(fields[2], 16) == 0:
            return fields[5], int(fields[0].split("-")[0], 16)
    pytest.skip("no glibc libc.so mapped")


@pytest.mark.parametrize("name", ["pthread_cond_init", "sched_setaffinity", "glob",
                                  "pthread_cond_wait", "realpath", "pthread_create"])
def test_dynamic_function_is_what_the_dynamic_linker_binds(name):
    # Each has an old version at another address (pthread_cond_init@GLIBC_2.2.5)
    # beside the default (pthread_cond_init@@GLIBC_2.3.2), listed before it or
    # after it: dlsym returns the default, and so must we.
    path, base = libc_mapping()
    elf = Elf(path)
    try:
        addr = ctypes.cast(getattr(ctypes.CDLL(path), name), ctypes.c_void_p).value
    except AttributeError:
        pytest.skip("%s is not in this libc" % name)
    first_vaddr = min(va for _, va, _ in elf.loads)
    assert elf.dynamic_function(name) == addr - base + first_vaddr
    assert elf.offset_to_vaddr(elf.vaddr_to_offset(elf.dynamic_function(name))) \
        == elf.dynamic_function(name)


def test_missing_and_undefined_functions():
    path, _ = libc_mapping()
    assert Elf(path).dynamic_function("no_such_function_anywhere") is None
    # the interpreter imports pthread_create (undefined there), it does not define it
    exe = Elf(os.path.realpath(sys.executable))
    assert exe.dynamic_function("pthread_create") is None


def test_not_elf(tmp_path):
    bad = tmp_path / "bad"
    bad.write_bytes(b"#!/bin/sh\n")
    with pytest.raises(ElfError, match="not an ELF file"):
        Elf(str(bad))


def test_function_table_names_addresses():
    table = FunctionTable([
        (b"local_alias", 0x1000, 0x20, LOCAL_FUNC, 1),
        (b"start", 0x1000, 0x20, GLOBAL_FUNC, 1),
        (b"empty", 0x2000, 0, GLOBAL_FUNC, 1),
        (b"undefined", 0x3000, 0x10, GLOBAL_FUNC, 0),
        (b"data", 0x4000, 0x10, 1 << 4 | 1, 1),
    ])
    assert len(table) == 2
    assert table.name_at(0x1000) == "start"
    assert table.name_at(0x101f) == "start+0x1f"
    assert table.name_at(0x1020) is None
    assert table.name_at(0x2000) == "empty"
    assert table.name_at(0x2001) is None
    assert table.name_at(0x3000) is None and table.name_at(0x4000) is None
    assert table.name_at(0xfff) is None


def test_symbolizer_names_a_libc_function_and_checks_the_inode():
    path, _ = libc_mapping()
    elf = Elf(path)
    offset = elf.vaddr_to_offset(elf.dynamic_function("pthread_create"))
    st = os.stat(path)
    sym = Symbolizer()
    assert sym.name(path, 1, st.st_ino, offset) == "pthread_create"
    assert sym.name(path, 2, st.st_ino + 1, offset) is None     # another file by that name
    assert sym.name("/no/such/file", 3, 1, 0) is None
