"""What this kernel and this process can do: privileges, BTF, tracefs,
tracepoints, program and map types. Probe features, never versions."""
import ctypes
import errno
import functools
import os

from .errors import SnoopError

BTF_PATH = "/sys/kernel/btf/vmlinux"
TRACEFS = ("/sys/kernel/tracing", "/sys/kernel/debug/tracing")
CAP_SYS_ADMIN, CAP_PERFMON, CAP_BPF = 21, 38, 39
PERF_EVENT_PARANOID = "/proc/sys/kernel/perf_event_paranoid"

BPF_MAP_TYPE_RINGBUF = 27
BPF_PROG_TYPE_TRACEPOINT = 5
BPF_FUNC_TASK_STORAGE_GET = 156
BPF_FUNC_GET_CURRENT_TASK_BTF = 158
BPF_FUNC_TASK_PT_REGS = 175
BPF_FUNC_FIND_VMA = 180


MINORBITS = 20      # the kernel's own dev_t: major << 20 | minor (not stat()'s)


def kernel_dev(major, minor):
    """A device number as the kernel holds it (inode i_rdev, sb s_dev)."""
    return major << MINORBITS | minor


def dev_text(dev):
    """A kernel dev_t as MAJ:MIN."""
    return "%d:%d" % (dev >> MINORBITS, dev & ((1 << MINORBITS) - 1))


def effective_caps():
    """This process's effective capabilities, as a bit mask."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("CapEff:"):
                    return int(line.split()[1], 16)
    except OSError:
        pass
    return 0


def check_privileges():
    """Root, or CAP_BPF and CAP_PERFMON in the effective set."""
    if os.geteuid() == 0:
        return
    caps = effective_caps()
    if not (caps >> CAP_BPF & 1 and caps >> CAP_PERFMON & 1):
        raise SnoopError("permission denied", "tracing needs root, or CAP_BPF, CAP_PERFMON "
                         "and CAP_DAC_READ_SEARCH (for tracefs)", "run it with sudo")


def perf_events_restricted():
    """A refused perf event explained: kernel.perf_event_paranoid above 2,
    which Debian's and Android's kernels read as "CAP_SYS_ADMIN only" (an
    upstream kernel reads it as 2), and this process without CAP_SYS_ADMIN.
    The SnoopError to raise, or None."""
    if effective_caps() >> CAP_SYS_ADMIN & 1:
        return None
    try:
        with open(PERF_EVENT_PARANOID) as f:
            level = int(f.read())
    except (OSError, ValueError):
        return None
    if level <= 2:
        return None
    return SnoopError("perf events refused", "kernel.perf_event_paranoid is %d, which this "
                      "kernel may read as CAP_SYS_ADMIN only" % level,
                      "as root: sysctl kernel.perf_event_paranoid=2, or run it with sudo")


def check_btf():
    if not os.path.exists(BTF_PATH):
        raise SnoopError("no kernel BTF at " + BTF_PATH,
                         "this kernel was built without CONFIG_DEBUG_INFO_BTF",
                         "snooptools needs a BTF-enabled kernel (most distributions since 2020)")


_tracefs = None


def tracefs():
    """The tracefs mount point, mounting tracefs where a cold host has none
    (a fresh boot, a container, a minimal VM: neither tracefs nor debugfs,
    whose tracing directory would mount it on first use)."""
    global _tracefs
    if _tracefs:
        return _tracefs
    for path in TRACEFS:
        try:
            os.stat(path + "/events")
        except PermissionError:
            raise SnoopError("cannot read tracefs at " + path, os.strerror(errno.EACCES),
                             "its files are root's: run as root, or add CAP_DAC_READ_SEARCH"
                             ) from None
        except OSError:
            continue
        _tracefs = path
        return path
    target = TRACEFS[0]
    err = mount("tracefs", target, "tracefs")
    if err:
        raise SnoopError("tracefs is not mounted, and mounting it on %s failed" % target,
                         os.strerror(err), "as root: mount -t tracefs tracefs " + target)
    _tracefs = target
    return target


def mount(source, target, fstype, flags=0):
    """mount(2); 0, or the errno of its failure."""
    libc = ctypes.CDLL(None, use_errno=True)
    # int mount(const char *source, const char *target, const char *filesystemtype,
    #           unsigned long mountflags, const void *data);
    libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p,
                           ctypes.c_ulong, ctypes.c_void_p]
    libc.mount.restype = ctypes.c_int
    if libc.mount(source.encode(), target.encode(), fstype.encode(), flags, None) != 0:
        return ctypes.get_errno()
    return 0


def tracepoint_exists(category, name):
    return os.path.isdir("%s/events/%s/%s" % (tracefs(), category, name))


def raw_tracepoint_exists(name):
    """A raw tracepoint exists if some category has an event of that name."""
    events = tracefs() + "/events"
    try:
        return any(os.path.isdir("%s/%s/%s" % (events, cat, name)) for cat in os.listdir(events))
    except OSError:
        return False


def section_probe(section):
    """(description, exists) for a program's ELF section, or None when the
    section is not a tracepoint kind this module checks."""
    kind, _, rest = section.partition("/")
    if kind in ("tracepoint", "tp"):
        cat, _, name = rest.partition("/")
        return "tracepoint %s:%s" % (cat, name), tracepoint_exists(cat, name)
    if kind in ("raw_tp", "raw_tracepoint"):
        return "raw tracepoint " + rest, raw_tracepoint_exists(rest)
    return None


def has_kprobes():
    """kprobes can be attached: the kprobe PMU, or legacy kprobe_events."""
    return (os.path.isdir("/sys/bus/event_source/devices/kprobe")
            or os.path.exists(tracefs() + "/kprobe_events"))


def kernel_function(name):
    """The kallsyms name of kernel function name: itself, or a compiler's
    clone of it (name.constprop.0, name.isra.0), or None."""
    clone = name + "."
    try:
        with open("/proc/kallsyms") as f:
            for line in f:
                sym = line.split(None, 3)[2]
                if sym == name or sym.startswith(clone):
                    return sym
    except OSError:
        pass
    return None


def has_ringbuf():
    from . import libbpf
    return libbpf.load().libbpf_probe_bpf_map_type(BPF_MAP_TYPE_RINGBUF, None) == 1


def prefer(env, best, fallback, available, missing):
    """Whether to take the best of two ways of doing something: where this
    kernel has it (available()), unless environment variable env names the
    way to take (tests prove both on one kernel)."""
    forced = os.environ.get(env, "")
    if forced not in ("", best, fallback):
        raise SnoopError("%s=%s" % (env, forced), "must be %s or %s" % (best, fallback))
    use = forced != fallback and available()
    if forced == best and not use:
        raise SnoopError("no %s on this kernel" % missing, "%s=%s asked for it" % (env, best))
    return use


def raw_tracepoint_args(name, btf_path=None):
    """The C types of raw tracepoint name's arguments, from the kernel's BTF
    (its typedef btf_trace_<name>), e.g. ('struct request *', 'int',
    'unsigned int'); None where the kernel's BTF has no such tracepoint.
    Arguments come and go between kernels, and a raw tracepoint program reads
    them by position. Reading the kernel's BTF costs ~10 ms; btf_path, the
    cut-down BTF an object relocates against (corebtf.py), holds the
    prototype where the object asks CO-RE whether it exists, in far less."""
    from . import btf, libbpf
    lib = libbpf.load()
    if btf_path:
        vmlinux = libbpf.call("btf__parse", btf_path.encode(), None,
                              what="reading " + btf_path)
    else:
        vmlinux = libbpf.call("btf__load_vmlinux_btf", what="reading the kernel's BTF")
    try:
        types = btf.TypeInfo(vmlinux)
        tid = types.find("btf_trace_" + name, btf.TYPEDEF)
        if tid is None:
            return None
        proto = types.strip(types.pointee(types.strip(tid)))
        # after the first, void *__data
        return tuple(types.c_name(t) for _, t in types.params(proto)[1:])
    finally:
        lib.btf__free(vmlinux)


@functools.cache
def tracing_helper(func_id):
    """Tracepoint programs may call helper func_id (the probe loads one, so
    each is probed once per run, however many ask)."""
    from . import libbpf
    return libbpf.load().libbpf_probe_bpf_helper(BPF_PROG_TYPE_TRACEPOINT, func_id, None) == 1


def online_cpus():
    return os.cpu_count() or 1
