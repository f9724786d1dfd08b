"""Every built object passes the verifier, with its optional code enabled
(rodata knobs that are off let the verifier skip code, so turn them on)."""

import pytest

from helpers import ROOT, fentry_allowed
from snooptools import kernel, transport, tree
from snooptools.bpfobject import BPFObject

OBJECTS = sorted(p.name.removesuffix(".bpf.o") for p in (ROOT / "build" / "bpf").glob("*.bpf.o"))


# all-knobs but task_btf: the code that reads current's task_struct through
# helpers (the filters' current_mntns() too), where bpf_get_current_task_btf
# is missing
@pytest.mark.parametrize("everything_on", [False, True, "task_btf"],
                         ids=["defaults", "all-knobs", "all-but-task-btf"])
@pytest.mark.parametrize("name", OBJECTS)
def test_object_loads(name, everything_on):
    kernel.tracefs()
    with BPFObject(str(ROOT / "build" / "bpf" / (name + ".bpf.o"))) as obj:
        for prog, section, _ in obj.programs():
            probe = kernel.section_probe(section)
            if probe is not None and not probe[1]:
                obj.set_autoload(prog, False)
            elif section.startswith(("fentry", "fexit")) and not fentry_allowed():
                obj.set_autoload(prog, False)       # the variant is refused here
            # kprobe programs load (and are verified) even where kprobes
            # cannot be attached: they share their type with uprobes
        transport.choose(obj)
        if everything_on:
            for prog in (tree.FORK, tree.EXIT):     # loaded only with --tree, --exec
                obj.set_autoload(prog, True)
            knobs = {}
            for var, (_, size, tid) in obj._rodata.items():
                info = obj.types.int_info(tid)
                if info and info[3] and var != everything_on:      # bool
                    knobs[var] = True
            obj.set_rodata(**knobs)
        obj.load()
        assert obj.loaded
