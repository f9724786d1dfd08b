"""Kernel addresses to symbol names, from /proc/kallsyms.

The table is read once, on first use or at load() (it is large: a tool
that never shows a stack never pays for it), kept as sorted addresses and
where their names are, and searched with bisect. Where kallsyms cannot be
read, or shows every address as zero (kernel.kptr_restrict), addresses are
shown as hex, and the reason is handed once to the warn callback.
"""
import array
import bisect
import re

KALLSYMS = "/proc/kallsyms"
UNKNOWN = "[unknown]"               # as BCC's ksym() shows an address no symbol covers
# The tracing machinery a BPF program's stack starts in (the program itself,
# the raw tracepoint's runner, a trampoline): not the traced kernel's path.
MACHINERY = ("bpf_prog_", "bpf_trace_run", "__bpf_trace_", "bpf_trampoline_")


# "ffffffff81000000 T _text" or "ffffffffc0a01000 t fn\t[module]": a code
# symbol's address, whether it is local, and where its name starts. (After
# a newline, not at ^: a third faster to search.)
TEXT_LINE = re.compile(rb"\n([0-9a-f]+) (?:[TW]|([tw])) ")
NAME = re.compile(rb"\S+")
ORDER_BITS = 24     # a line's place among those of its address, below the address


class KernelSymbols:
    def __init__(self, path=KALLSYMS, warn=None):
        self.path = path
        self.warn = warn
        self._addrs = None          # sorted start addresses (array of u64)
        self._names = None          # where in _text the name of each starts
        self._text = b""            # the kallsyms read
        self.unreadable = None      # why addresses are shown as hex, or None

    def load(self):
        """Read the table now (once), not at the first address to name."""
        if self._addrs is None:
            self._load()

    def _load(self):
        # The table is kept as the file's bytes and two arrays into them
        # (the names are decoded as they are shown): a kernel's 120,000 code
        # symbols as Python strings and tuples took 42 MB at the peak; so
        # they take 19.
        try:
            with open(self.path, "rb") as f:
                text = b"\n" + f.read()
        except OSError as e:
            self._unusable("cannot read %s (%s)" % (self.path, e.strerror))
            return
        # of aliases, the first global one (else the first): sorted by
        # address, then global before local, then by place in the file
        keys, starts = [], []
        for i, m in enumerate(TEXT_LINE.finditer(text)):
            keys.append((int(m[1], 16) << 1 | (m[2] is not None)) << ORDER_BITS | i)
            starts.append(m.end())
        keys.sort()
        addrs, names = array.array("Q"), array.array("I")     # u64, u32 (the file is MBs)
        last = None
        for key in keys:
            addr = key >> (ORDER_BITS + 1)
            if addr and addr != last:
                addrs.append(addr)
                names.append(starts[key & ((1 << ORDER_BITS) - 1)])
                last = addr
        if not addrs:
            self._unusable("%s shows %s" % (self.path, "every address as 0 (kernel.kptr_restrict)"
                                            if keys else "no kernel code symbols"))
            return
        self._addrs, self._names, self._text = addrs, names, text

    def _unusable(self, why):
        self._addrs, self._names = array.array("Q"), array.array("I")
        self.unreadable = why
        if self.warn:
            self.warn("kernel stacks are shown as addresses: %s" % why)

    def resolve(self, addr):
        """(name, offset) of the symbol addr is in, or None."""
        self.load()
        i = bisect.bisect_right(self._addrs, addr) - 1
        if i < 0:
            return None
        name = NAME.match(self._text, self._names[i]).group()
        return name.decode("utf-8", "replace"), addr - self._addrs[i]

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
