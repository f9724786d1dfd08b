"""Layouts, enums and constants read from the BTF in a compiled BPF object.

The kernel program is the one definition of an event: the layout of its
``struct event``, the offsets of its ``.rodata`` knobs, its enums (a tool's
calls, kinds, flags) and its limits come from the object's own type
information, never from a second definition kept by hand in Python. A Layout
makes the function that turns raw event bytes into a driver's values, with
one struct.Struct call; nested structs are flattened into the parent's
names, and a field typed as an enum comes out as its enumerator's name.
"""
import ctypes
import re
import struct

from . import codegen, libbpf
from .errors import SnoopError

INT, PTR, ARRAY, STRUCT, UNION, ENUM = 1, 2, 3, 4, 5, 6
TYPEDEF, VOLATILE, CONST, RESTRICT, FUNC_PROTO = 8, 9, 10, 11, 13
VAR, DATASEC, TYPE_TAG, ENUM64 = 14, 15, 18, 19
_MODIFIERS = (TYPEDEF, VOLATILE, CONST, RESTRICT, TYPE_TAG)
INT_SIGNED, INT_CHAR, INT_BOOL = 1, 2, 4

_INT_CODES = {(1, False): "B", (1, True): "b", (2, False): "H", (2, True): "h",
              (4, False): "I", (4, True): "i", (8, False): "Q", (8, True): "q"}


class _Members(ctypes.Structure):
    # struct btf_member { __u32 name_off; __u32 type; __u32 offset; }  (also btf_var_secinfo)
    _fields_ = [("a", ctypes.c_uint32), ("b", ctypes.c_uint32), ("c", ctypes.c_uint32)]


class _Param(ctypes.Structure):
    # struct btf_param { __u32 name_off; __u32 type; }
    _fields_ = [("a", ctypes.c_uint32), ("b", ctypes.c_uint32)]


class _Array(ctypes.Structure):
    # struct btf_array { __u32 type; __u32 index_type; __u32 nelems; }
    _fields_ = [("type", ctypes.c_uint32), ("index_type", ctypes.c_uint32),
                ("nelems", ctypes.c_uint32)]


class _Enum(ctypes.Structure):
    # struct btf_enum { __u32 name_off; __s32 val; }
    _fields_ = [("name_off", ctypes.c_uint32), ("val", ctypes.c_int32)]


class _Enum64(ctypes.Structure):
    # struct btf_enum64 { __u32 name_off; __u32 val_lo32; __u32 val_hi32; }
    _fields_ = [("name_off", ctypes.c_uint32), ("lo", ctypes.c_uint32), ("hi", ctypes.c_uint32)]


# The variables SNOOP_KEEP() declares (snoop.bpf.h): each keeps its type in
# the object's BTF, an enum of a tool's flags or constants among them.
KEEP_PREFIX = "snoop_keep"


def short_name(enumerator):
    """What user space calls an enumerator: its name after its prefix,
    lowercased (CALL_OPENAT -> "openat", RECLAIM_MEMCG -> "memcg")."""
    return enumerator.partition("_")[2].lower() or enumerator.lower()


class TypeInfo:
    """Reads types out of one struct btf *."""

    def __init__(self, btf, owner=None):
        self.btf = btf
        self.lib = libbpf.load()
        self._owner = owner         # what keeps btf alive (parse_object's free)

    def _type(self, tid):
        t = self.lib.btf__type_by_id(self.btf, tid)
        if not t:
            raise SnoopError("BTF type %d missing from the BPF object" % tid)
        return t

    def kind(self, tid):
        return (self._type(tid).contents.info >> 24) & 0x1f

    def name(self, off):
        return self.lib.btf__name_by_offset(self.btf, off).decode()

    def strip(self, tid):
        """Skip typedefs and qualifiers."""
        while self.kind(tid) in _MODIFIERS:
            tid = self._type(tid).contents.size_or_type
        return tid

    def _trailer(self, tid, ctype, count):
        t = self._type(tid)
        addr = ctypes.addressof(t.contents) + ctypes.sizeof(libbpf.BtfType)
        return (ctype * count).from_address(addr)

    def find(self, name, kind):
        tid = self.lib.btf__find_by_name_kind(self.btf, name.encode(), kind)
        return tid if tid > 0 else None

    def members(self, tid):
        """(name, type id, byte offset) of a struct's members."""
        t = self._type(tid).contents
        vlen, kflag = t.info & 0xffff, t.info >> 31
        out = []
        for m in self._trailer(tid, _Members, vlen):
            bits = m.c & 0xffffff if kflag else m.c
            if kflag and m.c >> 24:
                raise SnoopError("bitfield %s in a BPF event is not supported" % self.name(m.a))
            out.append((self.name(m.a), m.b, bits // 8))
        return out

    def pointee(self, tid):
        """What a pointer (or typedef, or qualifier) refers to."""
        return self._type(tid).contents.size_or_type

    def params(self, tid):
        """(name, type id) of a function prototype's parameters."""
        if self.kind(tid) != FUNC_PROTO:
            raise SnoopError("BTF type %d is not a function prototype" % tid)
        vlen = self._type(tid).contents.info & 0xffff
        return [(self.name(p.a), p.b) for p in self._trailer(tid, _Param, vlen)]

    def c_name(self, tid):
        """A type as C spells it, qualifiers left out: 'struct request *',
        'blk_status_t', 'unsigned int'."""
        if tid == 0:
            return "void"
        kind = self.kind(tid)
        if kind in (VOLATILE, CONST, RESTRICT, TYPE_TAG):
            return self.c_name(self.pointee(tid))
        if kind == PTR:
            return self.c_name(self.pointee(tid)) + " *"
        name = self.name(self._type(tid).contents.name_off) or "(anonymous)"
        return {STRUCT: "struct ", UNION: "union ", ENUM: "enum "}.get(kind, "") + name

    def size(self, tid):
        tid = self.strip(tid)
        k = self.kind(tid)
        t = self._type(tid).contents
        if k in (INT, STRUCT, UNION, ENUM, ENUM64, DATASEC):
            return t.size_or_type
        if k == PTR:
            return 8
        if k == ARRAY:
            a = self._trailer(tid, _Array, 1)[0]
            return a.nelems * self.size(a.type)
        raise SnoopError("BTF kind %d has no size" % k)

    def int_info(self, tid):
        """(size, signed, char, bool) of an integer or enum type."""
        tid = self.strip(tid)
        k, t = self.kind(tid), self._type(tid).contents
        if k == INT:
            enc = (self._trailer(tid, ctypes.c_uint32, 1)[0] >> 24) & 0xf
            return t.size_or_type, bool(enc & INT_SIGNED), bool(enc & INT_CHAR) or \
                (t.size_or_type == 1 and self.name(t.name_off) == "char"), bool(enc & INT_BOOL)
        if k in (ENUM, ENUM64):
            return t.size_or_type, bool(t.info >> 31), False, False
        if k == PTR:
            return 8, False, False, False
        return None

    def array(self, tid):
        """(element type id, count) of an array type, else None."""
        tid = self.strip(tid)
        if self.kind(tid) != ARRAY:
            return None
        a = self._trailer(tid, _Array, 1)[0]
        return a.type, a.nelems

    def enumerators(self, tid):
        """{NAME: value} of an enum type, in its order; None for another kind."""
        tid = self.strip(tid)
        k, t = self.kind(tid), self._type(tid).contents
        vlen, signed = t.info & 0xffff, bool(t.info >> 31)
        if k == ENUM:
            return {self.name(e.name_off): e.val if signed else e.val & 0xffffffff
                    for e in self._trailer(tid, _Enum, vlen)}
        if k == ENUM64:
            out = {}
            for e in self._trailer(tid, _Enum64, vlen):
                v = e.hi << 32 | e.lo
                out[self.name(e.name_off)] = v - (1 << 64) if signed and v >> 63 else v
            return out
        return None

    def enum(self, name):
        """{NAME: value} of enum name (a tool's enum call, enum exec_flag)."""
        tid = self.find(name, ENUM) or self.find(name, ENUM64)
        if tid is None:
            raise SnoopError("enum %s not found in the BPF object's BTF" % name,
                             hint="rebuild it (make)")
        return self.enumerators(tid)

    def constants(self):
        """{NAME: value} of the enumerators of every enum the object keeps
        with SNOOP_KEEP() (snoop.bpf.h): its flags and its limits, such as
        enum { DATA_MAX = 8192 }."""
        out = {}
        for section in (".bss", ".data"):
            for var, (_, _, tid) in self.datasec(section).items():
                tid = self.strip(tid)
                if var.startswith(KEEP_PREFIX) and self.kind(tid) == PTR:
                    out.update(self.enumerators(self._type(tid).contents.size_or_type) or {})
        return out

    def datasec(self, name):
        """{variable: (offset, size, type id)} of a data section like .rodata."""
        tid = self.find(name, DATASEC)
        if tid is None:
            return {}
        t = self._type(tid).contents
        out = {}
        for v in self._trailer(tid, _Members, t.info & 0xffff):
            var = self._type(v.a).contents
            out[self.name(var.name_off)] = (v.b, v.c, var.size_or_type)
        return out


class Layout:
    """How one BPF struct's bytes become values: function() makes a
    driver's decoder, unpack() a dict of every field.

    Char arrays come out as bytes (decode them with output.kstr), other
    arrays as tuples, integers, bools and pointers as ints, and a field
    typed as an enum as the short name of its value (short_name: CALL_OPENAT
    is "openat"), or the number where the enum has no name for it: the one
    place where enum values become names.
    """

    def __init__(self, names, fmt, groups, size, tail=None, tail_off=0, enums=None):
        self.names = names
        self.struct = struct.Struct(fmt)
        self.groups = groups            # {name: count} for non-char arrays
        self.enums = enums or {}        # {name: {value: short name}} of enum fields
        self.size = size
        # A struct that ends in a char array (a path, argv, data) is sent
        # only as long as its contents: that last member is sliced from the
        # record as it came, not unpacked from a padded copy.
        self.tail, self.tail_off = tail, tail_off
        names = self.names + ([tail] if tail else [])
        decode = self.function("return {%s}" % ", ".join("%r: f_%s" % (n, n) for n in names), {})
        self.unpack = lambda data: decode(data, 0, len(data))

    def function(self, body, scope):
        """handle(data, start, end), made for this struct: its fields from
        data[start:end] in locals named f_<field>, then body (Python source,
        with scope as its globals). Only the fields body names are made, and
        all in straight-line code: one struct call, no dict, no loop (this
        runs per event). A record shorter than the struct is padded with
        zeros, except its tail, which is only what was sent."""
        used = set(re.findall(r"\bf_(\w+)", body))
        lines, values, i = [], [], 0
        for name in self.names:
            n = self.groups.get(name, 1)
            here = ["v%d" % j for j in range(i, i + n)]
            values.extend(here)
            if name in used and name in self.enums:
                lines.append("f_%s = enum_%s.get(%s, %s)" % (name, name, here[0], here[0]))
            elif name in used:
                lines.append("f_%s = %s" % (name, here[0] if n == 1 else
                                            "(%s,)" % ", ".join(here)))
            i += n
        if self.tail in used:
            lines.append("f_%s = bytes(data[start + %d:end])" % (self.tail, self.tail_off))
        if values:
            lines.insert(0, "%s, = unpack_from(data, start)" % ", ".join(values))
        source = ("def handle(data, start, end):\n"
                  "    if end - start < size:\n"
                  "        data, start, end = bytes(data[start:end]).ljust(size, b'\\0'), 0, size\n"
                  "%s") % "".join("    %s\n" % line for line in lines + body.splitlines())
        scope = dict(scope, size=self.struct.size, unpack_from=self.struct.unpack_from,
                     **{"enum_" + k: v for k, v in self.enums.items()})
        names = self.names + [self.tail] if self.tail else self.names
        return codegen.function("handle", source, scope, "decoder of " + " ".join(names))

    @classmethod
    def from_btf(cls, info, type_name):
        tid = info.find(type_name, STRUCT)
        if tid is None:
            raise SnoopError("struct %s not found in the BPF object's BTF" % type_name,
                             hint="rebuild it with clang -g")
        fields = []
        cls._walk(info, tid, 0, fields)
        fields.sort(key=lambda f: f[1])
        fmt, names, groups, pos = "=", [], {}, 0
        enums = {f[0]: f[4] for f in fields if f[4] is not None}
        for name, off, code, count, _ in fields:
            if off < pos:
                raise SnoopError("overlapping field %s in struct %s" % (name, type_name))
            if off > pos:
                fmt += "%dx" % (off - pos)
            if code == "s":
                fmt += "%ds" % count
                pos = off + count
            else:
                fmt += (str(count) if count > 1 else "") + code
                pos = off + count * struct.calcsize("=" + code)
                if count > 1:
                    groups[name] = count
            names.append(name)
        size = info.size(tid)
        if fields and fields[-1][2] == "s":
            tail, tail_off = fields[-1][0], fields[-1][1]
            fmt = fmt[:fmt.rindex("%ds" % fields[-1][3])]
            return cls(names[:-1], fmt, groups, size, tail, tail_off, enums)
        if size > pos:
            fmt += "%dx" % (size - pos)
        return cls(names, fmt, groups, size, enums=enums)

    @staticmethod
    def _walk(info, tid, base, fields):
        for name, mtid, off in info.members(info.strip(tid)):
            mtid = info.strip(mtid)
            kind = info.kind(mtid)
            if kind == STRUCT:
                Layout._walk(info, mtid, base + off, fields)
                continue
            arr = info.array(mtid)
            if arr:
                elem, count = arr
                ii = info.int_info(elem)
                if ii is None:
                    raise SnoopError("unsupported array member %s in a BPF event" % name)
                if ii[0] == 1 and not ii[3]:        # char and u8 arrays are bytes
                    fields.append((name, base + off, "s", count, None))
                else:
                    fields.append((name, base + off, _code(ii), count, None))
                continue
            ii = info.int_info(mtid)
            if ii is None:
                raise SnoopError("unsupported member %s (BTF kind %d) in a BPF event" % (name, kind))
            values = info.enumerators(mtid)
            names = None if values is None else {v: short_name(n) for n, v in values.items()}
            fields.append((name, base + off, _code(ii), 1, names))


def _code(int_info):
    size, signed, _char, is_bool = int_info
    if is_bool:
        return "?"
    return _INT_CODES[(size, signed)]


def parse_object(path):
    """The TypeInfo of the BTF in the BPF object at path, read without
    opening the object (cheap: what a tool's parser needs before its start,
    such as the names of its calls or a limit its help states)."""
    lib = libbpf.load()
    btf = lib.btf__parse_elf(path.encode(), None)
    if not btf:
        raise SnoopError("cannot read the BTF of " + path, hint="rebuild it with clang -g")
    return TypeInfo(btf, _Freed(lib, btf))


class _Freed:
    """Frees a parsed struct btf * with its TypeInfo."""

    def __init__(self, lib, btf):
        self.lib, self.btf = lib, btf

    def __del__(self):
        self.lib.btf__free(self.btf)
