"""The kernel's BTF cut down to what some BPF objects' CO-RE relocations
read: what every tool (startup.py), and snoop for all its objects at once,
loads against, made once per boot and kept (for_objects()).

libbpf reads the kernel's whole BTF again for every object it loads (about
6 MB and 100,000 types) and searches all of it for each type a relocation
names: for snoop all, most of the time libbpf spends in user space. Given
this BTF instead (bpf_object_open_opts.btf_custom_path), it does that work
on a few hundred types. The objects' relocations come from their .BTF.ext
sections; what each needs of the kernel's types follows libbpf's own rules
(relo_core.c), as bpftool gen min_core_btf does:

- a field relocation (offset, size, existence, signedness, bitfield
  shifts): the kernel's type of the root's name (less any ___flavor), and
  every member named on the access path, found by name (through anonymous
  members), with its offset, its bitfield size and its type. The types of
  the path are kept with the members the paths name; one at the end of a
  path as it is (an int, an enum with its values, a struct or union with
  its size), a pointer as a pointer to void (a path never goes through one);
- an enum value relocation: the enum, every value;
- a type's size: the type, with its size;
- a type's existence: the type as libbpf compares it (relo_core.c's
  compatibility: kinds, a function prototype's parameters in number and
  kind, through pointers and typedefs; structs and unions by kind alone,
  so kept without members). biosnoop asks so which arguments a raw
  tracepoint's prototype has.

Other relocations (type ids, type matches) are not made here: Unsupported
says so, and the objects load against the kernel's own BTF.
A root is matched to the kernel's first type of its name (the kernel's BTF
is deduplicated: same-named types that differ are rare, and not among the
core structs these tools read); should that ever leave a relocation
unresolved, snoop loads that object again without this BTF.
"""
import ctypes
import os
import struct

from . import libbpf
from .btf import (ARRAY, ENUM, ENUM64, FUNC_PROTO, INT, PTR, STRUCT, TYPEDEF, UNION, TypeInfo,
                  _Enum, _Enum64, _Members, _Param)
from .errors import SnoopError

FWD, FLOAT = 7, 16
# enum bpf_core_relo_kind
FIELD_RELOS = range(0, 6)           # byte offset, byte size, exists, signed, lshift, rshift
TYPE_EXISTS, TYPE_SIZE, ENUMVAL_EXISTS, ENUMVAL_VALUE = 8, 9, 10, 11


class Unsupported(Exception):
    """A relocation this module does not make a BTF for."""


def relocations(path):
    """[(root type's name, its kind, [access indexes], relocation kind, root
    type)] of the CO-RE relocations in the BPF object at path (each path
    once: the field relocations of one path need the same types), with the
    object's TypeInfo: (relocations, info)."""
    lib = libbpf.load()
    ext = ctypes.c_void_p()
    btf = lib.btf__parse_elf(path.encode(), ctypes.byref(ext))
    if not btf:
        raise SnoopError("cannot read the BTF of " + path, hint="rebuild it with clang -g")
    info = TypeInfo(btf, _Freed(lib, btf, ext))
    if not ext:
        return [], info
    size = ctypes.c_uint32()
    raw = ctypes.string_at(lib.btf_ext__get_raw_data(ext, ctypes.byref(size)), size.value)
    return list(_core_relos(raw, info)), info


def _core_relos(raw, info):
    # struct btf_ext_header: magic, version, flags, hdr_len, then (offset,
    # length) of func info, line info and (hdr_len >= 32) CO-RE relocations
    hdr_len = struct.unpack_from("=I", raw, 4)[0]
    if hdr_len < 32:
        return
    off, length = struct.unpack_from("=II", raw, 24)
    pos = hdr_len + off
    end = pos + length
    rec_size = struct.unpack_from("=I", raw, pos)[0]
    pos += 4
    seen = set()        # a path read by several programs: once
    while pos < end:
        _sec, count = struct.unpack_from("=II", raw, pos)
        pos += 8
        for _ in range(count):
            # struct bpf_core_relo { insn_off, type_id, access_str_off, kind }
            _insn, tid, access, kind = struct.unpack_from("=IIII", raw, pos)
            pos += rec_size
            key = (tid, access, kind in FIELD_RELOS or kind)
            if key in seen:
                continue
            seen.add(key)
            # a type's existence is asked of the type named (a typedef's
            # too); the rest of what it stands for
            root = tid if kind == TYPE_EXISTS else info.strip(tid)
            yield (info.name(info._type(root).contents.name_off), info.kind(root),
                   [int(i) for i in info.name(access).split(":")], kind, root)


def essential(name):
    """A type's name less its ___flavor (inet_sock___pre_6_6: inet_sock)."""
    i = name.find("___")
    return name if i < 0 else name[:i]


class Needs:
    """What the relocations need of the kernel's types: each type kept, and
    of a struct or union, the members kept (by index)."""

    def __init__(self, kernel):
        self.k = kernel
        self.types = {}         # kernel type id -> set of member indexes (or None)
        self.whole = set()      # pointers, typedefs, prototypes kept as they are (exists())
        self.found = {}         # (name, kind) -> the kernel's type (a search each)
        self._members = {}      # (info, type) -> _members(): big structs recur
        self._index = {}        # kernel type -> index()

    def members(self, info, tid):
        key = (id(info), tid)
        got = self._members.get(key)
        if got is None:
            got = self._members[key] = _members(info, tid)
        return got

    def add_relocation(self, local, name, kind, access, relo, root):
        target = self.candidate(name, kind)
        if target is None:
            return              # none in this kernel: libbpf finds none either
        if relo in FIELD_RELOS:
            self.field(local, root, target, access)
        elif relo in (ENUMVAL_EXISTS, ENUMVAL_VALUE, TYPE_SIZE):
            self.keep(target)
        elif relo == TYPE_EXISTS:
            self.exists(target)
        else:
            raise Unsupported("relocation kind %d" % relo)

    def candidate(self, name, kind):
        key = (essential(name), kind)
        if key not in self.found:
            if kind not in (STRUCT, UNION, ENUM, ENUM64, INT, TYPEDEF):
                raise Unsupported("a relocation of a type of kind %d" % kind)
            kinds = (ENUM, ENUM64) if kind in (ENUM, ENUM64) else (kind,)
            self.found[key] = next(filter(None, (self.k.find(key[0], k) for k in kinds)), None)
        return self.found[key]

    def keep(self, tid):
        """Keep kernel type tid (its modifiers and typedefs skipped), and
        what it stands on; the id kept."""
        tid = self.k.strip(tid)
        kind = self.k.kind(tid)
        if kind in (STRUCT, UNION):
            self.types.setdefault(tid, set())
        elif kind == ARRAY:
            self.types[tid] = None
            self.keep(self.k.array(tid)[0])
        elif kind in (INT, PTR, ENUM, ENUM64, FLOAT):
            self.types[tid] = None
        else:
            raise Unsupported("a member of kind %d" % kind)
        return tid

    def exists(self, tid):
        """Keep kernel type tid as a type-existence relocation compares it:
        through typedefs, pointers and function prototypes, to the kind of
        each struct, union, enum or int at their ends."""
        if tid == 0 or tid in self.types:
            return
        kind = self.k.kind(tid)
        if kind in (TYPEDEF, PTR):
            self.types[tid] = None
            self.whole.add(tid)
            self.exists(self.k.strip(self.k.pointee(tid)))
        elif kind == FUNC_PROTO:
            self.types[tid] = None
            self.whole.add(tid)
            self.exists(self.k.strip(self.k.pointee(tid)))
            for _, ptype in self.k.params(tid):
                self.exists(self.k.strip(ptype))
        elif kind == FWD:
            self.types[tid] = None
        else:
            self.keep(tid)

    def field(self, local, local_root, target, access):
        """Walk access (after its first index, the root's) in the local type
        and the kernel's at once: members by name, arrays by index."""
        lt, kt = local.strip(local_root), self.keep(target)
        for index in access[1:]:
            if local.kind(lt) == ARRAY:
                lt = local.strip(local.array(lt)[0])
                if self.k.kind(kt) != ARRAY:
                    return          # no match here: libbpf finds none either
                kt = self.keep(self.k.array(kt)[0])
                continue
            name, ltype = _member(local, lt, index)
            lt = local.strip(ltype)
            if not name:
                continue            # an anonymous member: matched through, by name
            found = self.member(kt, name)
            if found is None:
                return
            kt = found

    def member(self, tid, name):
        """Keep the member name of kernel struct or union tid, looked for
        through its anonymous members as libbpf does; its type's id."""
        if self.k.kind(tid) not in (STRUCT, UNION):
            return None
        names, anonymous = self.index(tid)
        i = names.get(name)
        if i is not None:
            self.types.setdefault(tid, set()).add(i)
            return self.keep(self.members(self.k, tid)[i][1])
        for i, inner_type in anonymous:
            inner = self.member(inner_type, name)
            if inner is not None:
                self.types.setdefault(tid, set()).add(i)
                self.keep(inner_type)
                return inner
        return None

    def index(self, tid):
        """({name: index} of kernel struct tid's named members, [(index,
        type)] of its anonymous struct and union members), made once."""
        got = self._index.get(tid)
        if got is None:
            names, anonymous = {}, []
            for i, (mname, mtype, _, _) in enumerate(self.members(self.k, tid)):
                if mname:
                    names.setdefault(mname, i)
                elif self.k.kind(self.k.strip(mtype)) in (STRUCT, UNION):
                    anonymous.append((i, self.k.strip(mtype)))
            got = self._index[tid] = (names, anonymous)
        return got


def _member(info, tid, index):
    """(name, type) of member index of a struct or union (no other decoded)."""
    m = info._trailer(tid, _Members, index + 1)[index]
    return info.name(m.a), m.b


def _members(info, tid):
    """(name, type, bit offset, bitfield size) of a struct's members."""
    t = info._type(tid).contents
    vlen, kflag = t.info & 0xffff, t.info >> 31
    return [(info.name(m.a), m.b, m.c & 0xffffff if kflag else m.c, m.c >> 24 if kflag else 0)
            for m in info._trailer(tid, _Members, vlen)]


class Writer:
    """A new BTF of the types Needs kept. Ids are given in one pass, then
    the types written in that same order (a struct's fields must follow it,
    and may name types written after it)."""

    def __init__(self, needs):
        self.k, self.needs = needs.k, needs
        self.lib = libbpf.load()
        order = sorted(needs.types)
        self.ids = {tid: i + 1 for i, tid in enumerate(order)}
        self.index_int = len(order) + 1          # an array's index type
        self.void_ptr = len(order) + 2
        self.btf = self.lib.btf__new_empty()
        if not self.btf:
            raise SnoopError("btf__new_empty() failed")
        for tid in order:
            self.write(tid)
        self.check(self.lib.btf__add_int(self.btf, b"int", 4, 1), self.index_int)
        self.check(self.lib.btf__add_ptr(self.btf, 0), self.void_ptr)

    def ref(self, tid):
        tid = self.k.strip(tid)
        return self.void_ptr if self.k.kind(tid) == PTR else self.ids[tid]

    def whole_ref(self, tid, given=False):
        """The id of what a pointer, typedef or prototype kept whole (exists())
        refers to (given: tid itself): 0 for void, or where it is not kept so."""
        if tid not in self.needs.whole and not given:
            return 0
        ref = self.k.strip(tid if given else self.k.pointee(tid))
        return self.ids.get(ref, 0)

    def check(self, got, want):
        if got != want:
            raise SnoopError("writing the kernel's BTF for CO-RE", "libbpf said %d" % got)

    def write(self, tid):
        k, lib, b = self.k, self.lib, self.btf
        t = k._type(tid).contents
        kind, name = k.kind(tid), k.name(t.name_off).encode()
        if kind in (STRUCT, UNION):
            add = lib.btf__add_struct if kind == STRUCT else lib.btf__add_union
            self.check(add(b, name, t.size_or_type), self.ids[tid])
            members = self.needs.members(k, tid)
            for i in sorted(self.needs.types[tid]):
                mname, mtype, bit_off, bits = members[i]
                if lib.btf__add_field(b, mname.encode(), self.ref(mtype), bit_off, bits) < 0:
                    raise SnoopError("writing the kernel's BTF for CO-RE", "a field of " + name)
        elif kind == INT:
            encoding = (k._trailer(tid, ctypes.c_uint32, 1)[0] >> 24) & 0xf
            self.check(lib.btf__add_int(b, name, t.size_or_type, encoding), self.ids[tid])
        elif kind == PTR:
            self.check(lib.btf__add_ptr(b, self.whole_ref(tid)), self.ids[tid])
        elif kind == TYPEDEF:
            self.check(lib.btf__add_typedef(b, name, self.whole_ref(tid)), self.ids[tid])
        elif kind == FUNC_PROTO:
            self.check(lib.btf__add_func_proto(b, self.whole_ref(tid)), self.ids[tid])
            for pname, ptype in k.params(tid):
                if lib.btf__add_func_param(b, pname.encode(), self.whole_ref(ptype, True)) < 0:
                    raise SnoopError("writing the kernel's BTF for CO-RE", "a parameter")
        elif kind == FWD:
            self.check(lib.btf__add_fwd(b, name, t.info >> 31), self.ids[tid])
        elif kind == ARRAY:
            elem, count = k.array(tid)
            self.check(lib.btf__add_array(b, self.index_int, self.ref(elem), count),
                       self.ids[tid])
        elif kind == FLOAT:
            self.check(lib.btf__add_float(b, name, t.size_or_type), self.ids[tid])
        else:
            self.enum(tid, t, kind, name)

    def enum(self, tid, t, kind, name):
        k, lib, b = self.k, self.lib, self.btf
        vlen, signed = t.info & 0xffff, bool(t.info >> 31)
        if kind == ENUM:
            self.check(lib.btf__add_enum(b, name, t.size_or_type), self.ids[tid])
            for e in k._trailer(tid, _Enum, vlen):
                value = e.val if signed else e.val & 0xffffffff
                lib.btf__add_enum_value(b, k.name(e.name_off).encode(), value)
        else:
            self.check(lib.btf__add_enum64(b, name, t.size_or_type, signed), self.ids[tid])
            for e in k._trailer(tid, _Enum64, vlen):
                lib.btf__add_enum64_value(b, k.name(e.name_off).encode(), e.hi << 32 | e.lo)

    def raw(self):
        size = ctypes.c_uint32()
        data = ctypes.string_at(self.lib.btf__raw_data(self.btf, ctypes.byref(size)), size.value)
        self.lib.btf__free(self.btf)
        return data


def kernel_btf():
    """The kernel's BTF, as libbpf reads it for CO-RE."""
    lib = libbpf.load()
    btf = lib.btf__load_vmlinux_btf()
    if not btf:
        raise SnoopError("cannot read the kernel's BTF", os.strerror(ctypes.get_errno()))
    return TypeInfo(btf, _Freed(lib, btf))


def make(paths):
    """The raw BTF (bytes) that the CO-RE relocations of the BPF objects at
    paths need of the kernel's types; Unsupported where one needs more."""
    needs = Needs(kernel_btf())
    for path in paths:
        relos, local = relocations(path)
        for name, kind, access, relo, root in relos:
            needs.add_relocation(local, name, kind, access, relo, root)
    return Writer(needs).raw()


CACHE_DIR = "/run/snooptools/btf"     # tmpfs: gone with the boot it was made on


def for_objects(paths):
    """The BTF make(paths) gives, as a file (.path while open, close()):
    kept in CACHE_DIR for the next start of the same objects on this boot
    of this kernel (made once: ~16 ms for one object, which then loads in
    ~7 ms against it instead of ~45 ms against the kernel's whole BTF), or
    in memory where that directory cannot be written. Unsupported where an
    object needs a relocation make() does not serve."""
    path = os.path.join(CACHE_DIR, _cache_key(paths) + ".btf")
    if os.path.exists(path):
        return Kept(path)
    data = make(paths)
    try:
        os.makedirs(CACHE_DIR, mode=0o700, exist_ok=True)
        tmp = "%s.%d" % (path, os.getpid())
        with open(tmp, "wb") as f:
            f.write(data)
        os.rename(tmp, path)            # whole, or not there: never a part
    except OSError:
        return File(data)
    return Kept(path)


def _cache_key(paths):
    """What a kept BTF was made from: this boot, this kernel, this module
    and each object's file (a rebuilt or reinstalled one is another), in 64
    bits (zlib's two checksums: hashlib's import alone, OpenSSL's, costs
    more than the start-up this cache saves)."""
    import zlib
    with open("/proc/sys/kernel/random/boot_id", "rb") as f:
        text = f.read() + " ".join(os.uname()).encode()
    for path in (__file__, *paths):
        st = os.stat(path)
        text += ("%s %d %d %d\n" % (os.path.realpath(path), st.st_ino, st.st_size,
                                     st.st_mtime_ns)).encode()
    return "%08x%08x" % (zlib.crc32(text), zlib.adler32(text))


class Kept:
    """A BTF file kept in CACHE_DIR."""

    def __init__(self, path):
        self.path = path

    def close(self):
        pass


class File:
    """A BTF in an anonymous memory file; .path opens it (for
    btf_custom_path) while the File is open."""

    def __init__(self, data):
        self.fd = os.memfd_create("snoop-core-btf", os.MFD_CLOEXEC)
        os.write(self.fd, data)
        self.path = "/proc/self/fd/%d" % self.fd
        self.size = len(data)

    def close(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


class _Freed:
    """Frees a struct btf * (and a struct btf_ext *) with its TypeInfo."""

    def __init__(self, lib, btf, ext=None):
        self.lib, self.btf, self.ext = lib, btf, ext

    def __del__(self):
        self.lib.btf__free(self.btf)
        if self.ext:
            self.lib.btf_ext__free(self.ext)
