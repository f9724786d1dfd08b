"""One BPF object's lifecycle: open -> configure -> load -> attach -> close.

Each step's failure raises an error naming the step. Links and the object
are closed exactly once, in reverse order, by close() or the context manager.
"""
import ctypes
import errno
import functools
import os
import struct

from . import btf, kernel, libbpf
from .errors import SnoopError

BPF_MAP_TYPE_ARRAY = 2

_HERE = os.path.dirname(os.path.abspath(__file__))
# A checkout keeps objects in build/bpf, an install in bpf/, both beside lib/.
OBJECT_DIRS = [os.path.join(_HERE, "..", "..", "build", "bpf"), os.path.join(_HERE, "..", "..", "bpf")]


def object_path(tool):
    env = os.environ.get("SNOOPTOOLS_BPF_DIR")
    for d in ([env] if env else []) + OBJECT_DIRS:
        path = os.path.normpath(os.path.join(d, tool + ".bpf.o"))
        if os.path.isfile(path):
            return path
    raise SnoopError("BPF object %s.bpf.o not found" % tool, "it has not been built",
                     "run make in the snooptools checkout")


@functools.cache
def object_types(tool):
    """The BTF types of tool's object, read without opening it (btf.py
    parse_object): what is needed before the start, such as the names of
    its calls or a limit its help states. Where the object cannot be read
    the tool cannot run: it says why and exits 1 (as at its start; this may
    be asked while its parser is built, before Tool.main's error boundary)."""
    try:
        return btf.parse_object(object_path(tool))
    except SnoopError as e:
        raise SystemExit("%s: %s" % (tool, e)) from None


@functools.cache
def constants(tool):
    """{NAME: value} of the limits and flags tool's object keeps in its BTF
    (SNOOP_KEEP() in snoop.bpf.h)."""
    return object_types(tool).constants()


def constant(tool, name):
    """One of them, by name."""
    try:
        return constants(tool)[name]
    except KeyError:
        raise SystemExit("%s: its BPF object has no constant %s: rebuild it (make)"
                         % (tool, name)) from None


class Later:
    """A value from a tool's object named by a help text (argparse's
    %(name)s, set as an attribute of the option's action): read only when
    the help is printed, so that a tool's other starts read nothing before
    its own checks (who runs it, whether its object is built)."""

    def __init__(self, read):
        self._read = read

    def __str__(self):
        return str(self._read())


def open_pinned_map(path):
    """(fd, MapInfo) of the BPF map pinned at path; the caller closes fd.
    LibbpfError when nothing can be opened there, SnoopError when what is
    pinned there is no map (a program, a link)."""
    fd = libbpf.call("bpf_obj_get", os.fsencode(path), what="opening " + path)
    try:
        # a program's or link's fd would fill bpf_map_info with its own info
        kind = os.readlink("/proc/self/fd/%d" % fd).removeprefix("anon_inode:")
        if kind != "bpf-map":
            kind = {"bpf-prog": "program", "bpf_link": "link"}.get(kind, kind)
            raise SnoopError("opening " + path, "a %s is pinned there, not a map" % kind)
        info = libbpf.MapInfo()
        size = ctypes.c_uint32(ctypes.sizeof(info))
        libbpf.call("bpf_obj_get_info_by_fd", fd, ctypes.byref(info), ctypes.byref(size),
                    what="reading the map at " + path)
    except BaseException:
        os.close(fd)
        raise
    return fd, info


def map_type_name(map_type):
    """libbpf's name of a map type ("hash", "array" ...), or its number."""
    name = libbpf.load().libbpf_bpf_map_type_str(map_type)
    return name.decode() if name else str(map_type)


class BPFObject:
    def __init__(self, path, core_btf=None):
        """The object at path; core_btf: the path of the kernel's BTF (or of
        the part of it the object's CO-RE relocations need: corebtf.py)
        for libbpf to relocate against, instead of reading the kernel's."""
        self.path = path
        self.core_btf = core_btf
        self.name = os.path.basename(path).removesuffix(".bpf.o")
        self._lib = libbpf.load()
        opts = None
        if core_btf:
            opts = ctypes.byref(libbpf.OpenOpts(sz=ctypes.sizeof(libbpf.OpenOpts),
                                                btf_custom_path=core_btf.encode()))
        self._obj = libbpf.call("bpf_object__open_file", path.encode(), opts,
                                what="opening " + path, hint="rebuild it with make")
        self._links = []
        self._maps = {}
        self._deferred = set()      # programs attach() passes by
        self.loaded = False
        self.types = btf.TypeInfo(self._lib.bpf_object__btf(self._obj))
        self._rodata = self.types.datasec(".rodata")

    # -- lifecycle -----------------------------------------------------------
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        links, self._links = self._links, []
        if len(links) > 1:
            # Detaching waits for RCU grace periods (~70 ms per tracepoint
            # here); in parallel threads those waits overlap.
            import threading
            threads = [threading.Thread(target=self._lib.bpf_link__destroy, args=(link,))
                       for link in links]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        elif links:
            self._lib.bpf_link__destroy(links[0])
        obj, self._obj = self._obj, None
        if obj:
            self._lib.bpf_object__close(obj)

    # -- before load ---------------------------------------------------------
    def set_rodata(self, **values):
        """Write const volatile knobs by name (before load)."""
        if self.loaded:
            raise SnoopError("internal: rodata written after load")
        size = ctypes.c_size_t()
        base = self._lib.bpf_map__initial_value(self.map(".rodata"), ctypes.byref(size))
        for name, value in values.items():
            if name not in self._rodata:
                raise SnoopError("internal: %s has no knob %s" % (self.name, name))
            off, vsize, tid = self._rodata[name]
            data = self._encode(tid, vsize, value)
            ctypes.memmove(base + off, data, len(data))

    def _encode(self, tid, size, value):
        arr = self.types.array(tid)
        if arr:
            elem, count = arr
            if isinstance(value, str):
                value = value.encode()
            if isinstance(value, bytes):
                if len(value) > size:
                    raise SnoopError("internal: value too long for a %d-byte knob" % size)
                return value.ljust(size, b"\0")
            code = btf._code(self.types.int_info(elem))
            value = list(value)[:count]
            return struct.pack("=%d%s" % (count, code), *(value + [0] * (count - len(value))))
        info = self.types.int_info(tid)
        return struct.pack("=" + btf._code(info), value)

    def map(self, name):
        m = self._maps.get(name)
        if m is None:
            m = self._lib.bpf_object__find_map_by_name(self._obj, name.encode())
            if not m:
                raise SnoopError("internal: %s has no map %s" % (self.name, name))
            self._maps[name] = m
        return m

    def resize(self, name, entries):
        libbpf.call("bpf_map__set_max_entries", self.map(name), entries,
                    what="sizing map " + name)

    def stub_map(self, name):
        """Make map name a one-slot array: for a map that only programs'
        branches this run never takes refer to (the kernel may not even
        have its type). A value size the map's BTF gives is kept: the
        kernel checks it against that type."""
        m = self.map(name)
        value_size = self._lib.bpf_map__value_size(m) or 4
        for fn, arg in (("bpf_map__set_type", BPF_MAP_TYPE_ARRAY), ("bpf_map__set_map_flags", 0),
                        ("bpf_map__set_key_size", 4), ("bpf_map__set_value_size", value_size),
                        ("bpf_map__set_max_entries", 1)):
            libbpf.call(fn, m, arg, what="reshaping map " + name)

    def reuse_map(self, name, fd):
        """Make map name the existing map fd (before load): the programs use
        it instead of a map of their own. fd stays the caller's to close."""
        libbpf.call("bpf_map__reuse_fd", self.map(name), fd, what="using a map for " + name)

    def has_map(self, name):
        return bool(self._maps.get(name) or
                    self._lib.bpf_object__find_map_by_name(self._obj, name.encode()))

    def programs(self):
        """[(name, section, handle)] of every program in the object."""
        out, prog = [], None
        while True:
            prog = self._lib.bpf_object__next_program(self._obj, prog)
            if not prog:
                return out
            out.append((self._lib.bpf_program__name(prog).decode(),
                        self._lib.bpf_program__section_name(prog).decode(), prog))

    def set_autoload(self, name, on):
        libbpf.call("bpf_program__set_autoload", self.program(name), on)

    def layout(self, struct_name="event"):
        return btf.Layout.from_btf(self.types, struct_name)

    # -- load and attach -------------------------------------------------------
    def load(self):
        try:
            libbpf.call("bpf_object__load", self._obj, what="loading " + os.path.basename(self.path))
        except libbpf.LibbpfError as e:
            if e.errno == 1:  # EPERM
                kernel.check_privileges()
                e.hint = "the kernel refused a program: run with -v for libbpf's log"
            else:
                e.hint = "run with -v for libbpf's log"
            raise
        self.loaded = True

    def attach(self):
        """Attach every loaded program whose section libbpf can attach itself
        (a uprobe section without a target is the driver's to attach), but
        those left to attach_program() (defer_attach())."""
        for name, section, prog in self.programs():
            if section in ("uprobe", "uretprobe") or not self._lib.bpf_program__autoload(prog) \
                    or name in self._deferred:
                continue
            self._attach(name, section, prog)

    def defer_attach(self, *names):
        """Leave programs names out of attach(): their owner attaches them,
        with attach_program(), when its turn comes (programs at one
        tracepoint run in the order they were attached)."""
        self._deferred.update(names)

    def attach_program(self, name):
        """Attach one program where its section says (libbpf's way)."""
        for pname, section, prog in self.programs():
            if pname == name:
                return self._attach(name, section, prog)
        raise SnoopError("internal: %s has no program %s" % (self.name, name))

    def _attach(self, name, section, prog):
        self._links.append(libbpf.call(
            "bpf_program__attach", prog, what="attaching %s (%s)" % (name, section)))

    def attach_tracepoint(self, name, tracepoint):
        """Attach program name to one more tracepoint ("category/event"): one
        verified program can serve every syscall whose context it shares."""
        cat, _, event = tracepoint.partition("/")
        self._links.append(libbpf.call(
            "bpf_program__attach_tracepoint", self.program(name), cat.encode(), event.encode(),
            what="attaching %s to tracepoint %s" % (name, tracepoint)))

    def attach_kprobe(self, name, func, retprobe=False):
        self._links.append(libbpf.call(
            "bpf_program__attach_kprobe", self.program(name), retprobe, func.encode(),
            what="attaching %s to %s" % (name, func)))

    def program(self, name):
        for pname, _, prog in self.programs():
            if pname == name:
                return prog
        raise SnoopError("internal: %s has no program %s" % (self.name, name))

    def attach_uprobe(self, name, binary, offset, retprobe=False, pid=-1):
        prog = self.program(name)
        opts = libbpf.UprobeOpts(sz=ctypes.sizeof(libbpf.UprobeOpts), retprobe=retprobe)
        self._links.append(libbpf.call(
            "bpf_program__attach_uprobe_opts", prog, pid, binary.encode(), offset,
            ctypes.byref(opts), what="attaching uprobe %s to %s+%#x" % (name, binary, offset)))

    # -- maps after load ------------------------------------------------------
    def map_fd(self, name):
        return self._lib.bpf_map__fd(self.map(name))

    def update(self, name, key, value):
        """Store bytes value under bytes key in map name."""
        kbuf, vbuf = ctypes.create_string_buffer(key, len(key)), ctypes.create_string_buffer(value, len(value))
        libbpf.call("bpf_map_update_elem", self.map_fd(name), kbuf, vbuf, 0,
                    what="filling map " + name)

    def delete(self, name, key):
        """Take bytes key out of map name (nothing when it is not there)."""
        kbuf = ctypes.create_string_buffer(key, len(key))
        try:
            libbpf.call("bpf_map_delete_elem", self.map_fd(name), kbuf,
                        what="emptying map " + name)
        except libbpf.LibbpfError as e:
            if e.errno != errno.ENOENT:
                raise

    def lookup(self, name, key, value_size):
        """The bytes under bytes key in map name, or None when it has none."""
        kbuf, vbuf = ctypes.create_string_buffer(key, len(key)), ctypes.create_string_buffer(value_size)
        try:
            libbpf.call("bpf_map_lookup_elem", self.map_fd(name), kbuf, vbuf,
                        what="reading map " + name)
        except libbpf.LibbpfError as e:
            if e.errno == errno.ENOENT:
                return None
            raise
        return vbuf.raw

    def stack(self, name, stack_id):
        """The addresses of stack stack_id in stack trace map name, innermost
        first; [] when it holds no such stack."""
        size = self._lib.bpf_map__value_size(self.map(name))
        raw = self.lookup(name, struct.pack("=I", stack_id), size) if stack_id >= 0 else None
        if raw is None:
            return []
        addrs = struct.unpack("=%dQ" % (size // 8), raw)
        return list(addrs[:addrs.index(0)] if 0 in addrs else addrs)

    def percpu_sum(self, name, key=0):
        """Sum of a per-CPU u64 array slot over every possible CPU."""
        ncpu = self._lib.libbpf_num_possible_cpus()
        values = (ctypes.c_uint64 * ncpu)()
        k = ctypes.c_uint32(key)
        libbpf.call("bpf_map_lookup_elem", self.map_fd(name), ctypes.byref(k), values,
                    what="reading map " + name)
        return sum(values)
