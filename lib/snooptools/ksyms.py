"""Kernel addresses to symbol names, from /proc/kallsyms.

The table is read once, on first use (it is large: a tool that never shows
a stack never pays for it), kept as sorted addresses and their names, and
searched with bisect. Where kallsyms cannot be read, or shows every address
as zero (kernel.kptr_restrict), addresses are shown as hex, and the reason
is handed once to the warn callback.
"""
import bisect

KALLSYMS = "/proc/kallsyms"
TEXT_TYPES = frozenset((b"t", b"T", b"w", b"W"))    # code, where return addresses point
UNKNOWN = "[unknown]"               # as BCC's ksym() shows an address no symbol covers
# The tracing machinery a BPF program's stack starts in (the program itself,
# the raw tracepoint's runner, a trampoline): not the traced kernel's path.
MACHINERY = ("bpf_prog_", "bpf_trace_run", "__bpf_trace_", "bpf_trampoline_")


class KernelSymbols:
    def __init__(self, path=KALLSYMS, warn=None):
        self.path = path
        self.warn = warn
        self._addrs = None          # sorted start addresses
        self._names = None          # the name starting at each
        self.unreadable = None      # why addresses are shown as hex, or None

    def _load(self):
        try:
            with open(self.path, "rb") as f:
                data = f.read()
        except OSError as e:
            self._unusable("cannot read %s (%s)" % (self.path, e.strerror))
            return
        best = {}       # address -> (global, name): of aliases, the first global one
        zeros = 0
        for line in data.splitlines():
            # "ffffffff81000000 T _text" or "ffffffffc0a01000 t fn\t[module]"
            fields = line.split(None, 3)
            if len(fields) < 3 or fields[1] not in TEXT_TYPES:
                continue
            try:
                addr = int(fields[0], 16)
            except ValueError:
                continue
            if not addr:
                zeros += 1
                continue
            is_global = fields[1].isupper()
            old = best.get(addr)
            if old is None or is_global and not old[0]:
                best[addr] = (is_global, fields[2])
        if not best:
            self._unusable("%s shows %s" % (self.path, "every address as 0 (kernel.kptr_restrict)"
                                            if zeros else "no kernel code symbols"))
            return
        self._addrs = sorted(best)
        self._names = [best[a][1].decode("utf-8", "replace") for a in self._addrs]

    def _unusable(self, why):
        self._addrs, self._names = [], []
        self.unreadable = why
        if self.warn:
            self.warn("kernel stacks are shown as addresses: %s" % why)

    def resolve(self, addr):
        """(name, offset) of the symbol addr is in, or None."""
        if self._addrs is None:
            self._load()
        i = bisect.bisect_right(self._addrs, addr) - 1
        if i < 0:
            return None
        return self._names[i], addr - self._addrs[i]

    def stack(self, addrs):
        """The frames of a stack taken by a BPF program, innermost first, as
        name(), from the first frame outside the tracing machinery."""
        names = [self.name(a) for a in addrs]
        for i, name in enumerate(names):
            if not name.startswith(MACHINERY):
                return names[i:]
        return names

    def name(self, addr):
        """addr as BCC's ksym(addr, show_offset=True) shows it: "name+0xoff",
        or "[unknown]"; "0x..." where kallsyms cannot be used."""
        found = self.resolve(addr)
        if found:
            return "%s+0x%x" % found
        return "0x%x" % addr if self.unreadable else UNKNOWN
