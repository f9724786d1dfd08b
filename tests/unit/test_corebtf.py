"""corebtf without root: the CO-RE relocations read from an object's
.BTF.ext, and the names libbpf matches them by. (That the cut-down BTF
relocates every object as the kernel's does is proven live, in
test_snoop.py: it needs the kernel's BTF and a load.)"""
from helpers import ROOT

from snooptools import corebtf
from snooptools.btf import ARRAY, STRUCT


def test_a_flavour_is_matched_by_its_essential_name():
    assert corebtf.essential("inet_sock___pre_6_6") == "inet_sock"
    assert corebtf.essential("task_struct") == "task_struct"


def paths(relos, info):
    """(root, relocation kind, member names) of each relocation."""
    out = set()
    for name, kind, access, relo, root in relos:
        names, t = [], info.strip(root)
        for i in access[1:]:
            if info.kind(t) == ARRAY:
                t = info.strip(info.array(t)[0])
                continue
            member, mtype, _, _ = corebtf._members(info, t)[i]
            names.append(member)
            t = info.strip(mtype)
        out.add((name, kind, relo, tuple(names)))
    return out


def test_the_relocations_of_an_object():
    relos, info = corebtf.relocations(str(ROOT / "build" / "bpf" / "exitsnoop.bpf.o"))
    got = paths(relos, info)
    # what exitsnoop.bpf.c and snoop.bpf.h read of the kernel's structs
    # (BPF_CORE_READ: byte offsets, relocation kind 0; bpf_core_field_exists: 2)
    assert {("task_struct", STRUCT, 0, ("exit_code",)),
            ("pid", STRUCT, 0, ("level",)),
            ("signal_struct", STRUCT, 0, ("live", "counter")),
            ("trace_event_raw_sched_process_exit", STRUCT, 2, ("group_dead",)),
            ("task_struct", STRUCT, 0, ("comm",))} <= got
    assert all(relo in corebtf.FIELD_RELOS for _, _, relo, _ in got)
