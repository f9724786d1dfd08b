"""Every built object passes the verifier, with its optional code enabled
(rodata knobs that are off let the verifier skip code, so turn them on) as
far as this kernel lets it: the knobs of kernel features are on where the
kernel has the feature (use_kernel_features, transport.choose), opensnoop's
exit-only code runs where the kernel lets tracing programs read a task's
registers, and of each pair of programs that find a mapping, the one this
kernel runs."""
import pytest

from helpers import ROOT, fentry_allowed
from snooptools import kernel, transport, tree
from snooptools.bpfobject import BPFObject
from snooptools.startup import use_kernel_features

OBJECTS = sorted(p.name.removesuffix(".bpf.o") for p in (ROOT / "build" / "bpf").glob("*.bpf.o"))
FEATURE_KNOBS = ("task_btf", "use_task_storage", "use_ringbuf")


def find_vma():
    return kernel.tracing_helper(kernel.BPF_FUNC_FIND_VMA)


def exit_only():
    return (kernel.tracing_helper(kernel.BPF_FUNC_TASK_PT_REGS)
            and kernel.tracing_helper(kernel.BPF_FUNC_GET_CURRENT_TASK_BTF))


# all-knobs but task_btf: the code that reads current's task_struct through
# helpers (the filters' current_mntns() too), where bpf_get_current_task_btf
# is missing
@pytest.mark.parametrize("everything_on", [False, True, "task_btf"],
                         ids=["defaults", "all-knobs", "all-but-task-btf"])
@pytest.mark.parametrize("name", OBJECTS)
def test_object_loads(name, everything_on):
    kernel.tracefs()
    with BPFObject(str(ROOT / "build" / "bpf" / (name + ".bpf.o"))) as obj:
        names = [prog for prog, _, _ in obj.programs()]
        for prog, section, _ in obj.programs():
            probe = kernel.section_probe(section)
            if probe is not None and not probe[1]:
                obj.set_autoload(prog, False)
            elif section.startswith(("fentry", "fexit")) and not fentry_allowed():
                obj.set_autoload(prog, False)       # the variant is refused here
            elif prog.endswith("_rbtree") or prog + "_rbtree" in names:
                # the VMA lookup's variants: bpf_find_vma() where the kernel
                # has it, else the walk of the VMA tree that only kernels
                # without it have
                obj.set_autoload(prog, prog.endswith("_rbtree") != find_vma())
            # kprobe programs load (and are verified) even where kprobes
            # cannot be attached: they share their type with uprobes
        transport.choose(obj)
        use_kernel_features(obj)
        if everything_on:
            for prog in (tree.FORK, tree.EXIT):     # loaded only with --tree, --exec
                obj.set_autoload(prog, True)
            knobs = {}
            for var, (_, size, tid) in obj._rodata.items():
                info = obj.types.int_info(tid)
                if info and info[3] and var not in FEATURE_KNOBS:     # bool
                    knobs[var] = var != "exit_only" or exit_only()
            if everything_on == "task_btf":
                knobs.update(task_btf=False, use_task_storage=False)
            obj.set_rodata(**knobs)
        obj.load()
        assert obj.loaded
