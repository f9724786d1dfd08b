"""Start-up: the object opened, configured for this kernel and the command
line, loaded and attached, trying a tool's variants in turn where no
tracepoint carries its events. Features are probed, never versions.

What the kernel made the tool choose (its programs' kinds, a variant, the
optional events it lacks, where an entry keeps what its exit reports, how
current's task is read, the buffer) is one line on stderr with
SNOOPTOOLS_SHOW_CHOICES=1 (tests/live/test_choices.py, make kernels), e.g.
    opensnoop: tracepoint, variant exit, starts task, current btf, buffer ring
"""
import errno
import os

from . import filters, kernel, libbpf, output, transport
from .bpfobject import BPFObject, object_path
from .errors import SnoopError, UsageError


class Refused(Exception):
    """This kernel cannot run a variant of the tool."""

    def __init__(self, why):
        super().__init__(why)
        self.why = why


def start(tool, args, ring=None, tag=0, core_btf=None):
    """Open, configure, load and attach tool's object, trying each variant
    in turn: a variant the kernel refuses (at load or attach) gives way to
    the next. Returns (object, transport factory); sets tool.variant to the
    one running and tool.clock to the clock of its events.

    ring, a transport.SharedRing: the object writes its events there, each
    with tag as its head's tool_id (snoop), and no factory is returned.
    core_btf: the BTF to relocate against (BPFObject), made for several
    objects at once (snoop)."""
    refused, denied, btf_matters = [], False, False
    variants = tool.variants or ((None, ()),)
    forced = os.environ.get("SNOOPTOOLS_VARIANT")
    if tool.variants and forced:        # tests prove each variant by name
        variants = [v for v in variants if v[0] == forced]
        if not variants:
            raise SnoopError("no variant %r" % forced, "%s has %s" % (
                tool.name, ", ".join(v for v, _ in tool.variants)))
    for variant, programs in variants:
        tool.variant = variant          # configure() and attach() may ask
        obj = BPFObject(object_path(tool.name), core_btf)
        try:
            select_programs(tool, obj)
            for other, progs in tool.variants:
                for name in progs if other != variant else ():
                    obj.set_autoload(name, False)
            if variant == "kprobe" and not kernel.has_kprobes():
                raise Refused("not built into this kernel")
            if variant == "find_vma" and not kernel.tracing_helper(kernel.BPF_FUNC_FIND_VMA):
                raise Refused("no bpf_find_vma() for tracing programs")
            make_transport = transport.choose(obj, tool.ring_bytes, tool.perf_pages, ring)
            if tag:
                obj.set_rodata(this_tool=tag)
            features = use_kernel_features(obj)
            filters.apply(obj, args)
            tool.configure(obj, args)
            obj.load()
            filters.fill(obj, args)
            tool.after_load(obj, args)
            # "since tracing started" counts from the first attach, so no
            # event (not even the tool's own start-up) has a negative time
            tool.clock = output.Clock()
            tool.attach(obj, args)
            filters.follow(obj, args)
            if os.environ.get("SNOOPTOOLS_SHOW_CHOICES"):
                from .loop import say
                buffer = "ring" if ring is not None or transport.use_ring() else "perf"
                say("%s: %s" % (tool.name, ", ".join(
                    choices(tool, obj) + features + ["buffer " + buffer])))
        except (Refused, libbpf.LibbpfError) as e:
            obj.close()
            denied = denied or getattr(e, "errno", None) == errno.EACCES
            btf_matters = btf_matters or getattr(e, "errno", None) not in (None, errno.EPERM)
            if variant is None:
                failure = denied and kernel.perf_events_restricted() or e
                failure.btf_matters = btf_matters
                raise failure
            why = e.why if isinstance(e, Refused) else \
                "refused by the kernel (%s)" % os.strerror(e.errno)
            refused.append("%s: %s" % (variant, why))
            continue
        except BaseException:
            obj.close()
            raise
        return obj, make_transport
    e = denied and kernel.perf_events_restricted() or \
        SnoopError("cannot trace on this kernel", "; ".join(refused), tool.no_variant_hint)
    e.btf_matters = btf_matters
    raise e


def cut_btf(names):
    """The kernel's BTF cut down to what the objects of the tools named
    need (corebtf.for_objects: kept for later starts on this boot), or None
    (a relocation corebtf does not serve, or SNOOPTOOLS_CORE_BTF=kernel).
    Against it an object loads in ~7 ms instead of ~45 ms: libbpf reads
    and searches the kernel's whole BTF (6 MB) for every object otherwise."""
    if not kernel.prefer("SNOOPTOOLS_CORE_BTF", "cut", "kernel", lambda: True,
                         "cut-down BTF"):
        return None
    from . import corebtf
    try:
        return corebtf.for_objects([object_path(name) for name in names])
    except (corebtf.Unsupported, SnoopError):
        return None                 # each object as it would load alone


def start_cut(tool, args, core, ring=None, tag=0):
    """start(), against core (cut_btf()'s) where there is one. An object
    that cannot start against it is started again against the kernel's own
    BTF: should a kernel have two types of a name these relocations need,
    libbpf picks the right one from there (corebtf.py). Not where every
    variant was refused for what the BTF cannot change: a kind of program
    the kernel refuses (EPERM: fentry here) or lacks (kprobes), a helper
    it lacks (snoop all's dcsnoop took ~50 ms more to say so)."""
    if core is not None:
        try:
            return start(tool, args, ring, tag, core.path)
        except SnoopError as e:
            if isinstance(e, UsageError) or not getattr(e, "btf_matters", True):
                raise
    return start(tool, args, ring, tag)


def select_programs(tool, obj):
    """Disable programs whose tracepoint this kernel lacks, if optional
    (their events: tool.missing)."""
    tool.missing = []
    for name, section, _ in obj.programs():
        probe = kernel.section_probe(section)
        if probe is None or probe[1]:
            continue
        if name not in tool.optional_programs:
            raise SnoopError("%s is missing on this kernel" % probe[0],
                             "%s cannot trace without it" % tool.name)
        obj.set_autoload(name, False)
        event = section.rpartition("/")[2]
        if event not in tool.missing:
            tool.missing.append(event)


# programs' kinds by their ELF section's first part, as choices() names them
PROGRAM_KINDS = {"tracepoint": "tracepoint", "tp": "tracepoint", "raw_tp": "raw tracepoint",
                 "raw_tracepoint": "raw tracepoint", "tp_btf": "BTF tracepoint",
                 "fentry": "fentry", "fexit": "fentry", "kprobe": "kprobe",
                 "kretprobe": "kprobe", "uprobe": "uprobe", "uretprobe": "uprobe"}


def choices(tool, obj):
    """What the loaded object runs: the kinds of its programs, the variant,
    and the events left out because this kernel lacks them."""
    kinds = []
    for _, section, prog in obj.programs():
        kind = PROGRAM_KINDS.get(section.partition("/")[0], section)
        if kind not in kinds and libbpf.load().bpf_program__autoload(prog):
            kinds.append(kind)
    said = ["+".join(kinds)]
    if tool.variant and tool.variant not in kinds:
        said.append("variant " + tool.variant)
    if tool.missing:
        said.append("without " + " ".join(tool.missing))
    return said


def vma_variants(*programs):
    """The variants of a tool whose programs find the mapping of an address
    (fs.bpf.h): each program with bpf_find_vma(), or its twin, named
    <program>_rbtree, that walks the VMA tree of kernels without it."""
    return (("find_vma", programs), ("rbtree", tuple(p + "_rbtree" for p in programs)))


def attach(tool, obj):
    """Every program of obj to its own event, and the programs of
    tool.also_attach to the more tracepoints they serve, where this kernel
    has them (and the program is its variant's)."""
    obj.attach()
    for name, tracepoints in tool.also_attach.items():
        if not libbpf.load().bpf_program__autoload(obj.program(name)):
            continue        # another variant's
        for tp in tracepoints:
            if kernel.tracepoint_exists(*tp.split("/", 1)):
                obj.attach_tracepoint(name, tp)


def use_kernel_features(obj):
    """Turn on what this kernel lets the programs do faster (snoop.bpf.h):
    read current's task_struct directly, and keep what an entry saw for its
    exit (SNOOP_STARTS) in task-local storage rather than a hash by thread
    id (the unused map shrinks to one slot). Returns what it chose, as
    choices() says it."""
    task_btf = kernel.tracing_helper(kernel.BPF_FUNC_GET_CURRENT_TASK_BTF)
    obj.set_rodata(task_btf=task_btf)
    said = ["current " + ("btf" if task_btf else "helpers")]
    if not obj.has_map("starts_task"):
        return said
    # the storage is found from current's task_struct
    task = kernel.prefer("SNOOPTOOLS_STARTS", "task", "hash",
                         lambda: task_btf and kernel.tracing_helper(kernel.BPF_FUNC_TASK_STORAGE_GET),
                         "task-local storage for tracing programs")
    obj.set_rodata(use_task_storage=task)
    obj.stub_map("starts" if task else "starts_task")
    return ["starts " + ("task" if task else "hash")] + said
