"""ELF files as uprobe tools need them: where a library's function lies in
its file (to attach a uprobe there), and which function an offset in a
mapped file falls in (to name an address a program reported).

ELF32 and ELF64 of either byte order. Only the headers and the sections
asked for are read; a symbol table is unpacked with one struct.iter_unpack.
"""
import bisect
import os
import struct

PT_LOAD = 1
SHT_SYMTAB, SHT_DYNSYM, SHT_GNU_VERSYM = 2, 11, 0x6fffffff
SHN_UNDEF = 0
STT_FUNC, STT_GNU_IFUNC = 2, 10
STB_GLOBAL = 1
VERSYM_HIDDEN = 0x8000      # a non-default version: name@VER, not name@@VER

# (header after e_ident, program header, section header, symbol) by ELF class,
# with the index of each field we use
_FORMATS = {
    1: ("HHIIIIIHHHHHH", "IIIIIIII", "IIIIIIIIII", "IIIBBH"),
    2: ("HHIQQQIHHHHHH", "IIQQQQQQ", "IIQQQQIIQQ", "IBBHQQ"),
}


class ElfError(ValueError):
    """The file is not an ELF file this module can read."""


class Elf:
    def __init__(self, path):
        self.path = path
        with open(path, "rb") as f:
            ident = f.read(16)
            if len(ident) < 16 or ident[:4] != b"\x7fELF" or ident[4] not in _FORMATS \
                    or ident[5] not in (1, 2):
                raise ElfError("not an ELF file")
            self._bits = ident[4]
            self._order = "<" if ident[5] == 1 else ">"
            ehdr, phdr, shdr, sym = _FORMATS[self._bits]
            self._sym = struct.Struct(self._order + sym)
            h = self._unpack(f, ehdr)
            phoff, shoff, phentsize, phnum, shentsize, shnum = h[4], h[5], h[8], h[9], h[10], h[11]
            self.loads = []             # (file offset, vaddr, file size) of each PT_LOAD
            for i in range(phnum):
                f.seek(phoff + i * phentsize)
                p = self._unpack(f, phdr)
                if p[0] == PT_LOAD:
                    if self._bits == 2:
                        self.loads.append((p[2], p[3], p[5]))
                    else:
                        self.loads.append((p[1], p[2], p[4]))
            self.sections = []          # (type, file offset, size, link, entry size)
            if shoff:
                if shnum == 0:          # extended numbering: the count is in section 0
                    f.seek(shoff)
                    shnum = self._unpack(f, shdr)[5]
                for i in range(shnum):
                    f.seek(shoff + i * shentsize)
                    s = self._unpack(f, shdr)
                    self.sections.append((s[1], s[4], s[5], s[6], s[9]))

    def _unpack(self, f, fmt):
        st = struct.Struct(self._order + fmt)
        data = f.read(st.size)
        if len(data) < st.size:
            raise ElfError("truncated ELF headers")
        return st.unpack(data)

    def _read(self, index):
        _, off, size, _, _ = self.sections[index]
        with open(self.path, "rb") as f:
            f.seek(off)
            data = f.read(size)
        if len(data) < size:
            raise ElfError("truncated section %d" % index)
        return data

    def _table(self, sh_type):
        """The index of the first section of sh_type, or None."""
        for i, s in enumerate(self.sections):
            if s[0] == sh_type and s[2]:
                return i
        return None

    def _symbols(self, index):
        """(name bytes, value, size, info, shndx) of each symbol of a table."""
        data, strtab = self._read(index), self._read(self.sections[index][3])
        size = self._sym.size
        data = data[:len(data) - len(data) % size]
        for s in self._sym.iter_unpack(data):
            if self._bits == 2:
                name, info, _, shndx, value, sz = s
            else:
                name, value, sz, info, _, shndx = s
            yield strtab[name:strtab.find(b"\0", name)], value, sz, info, shndx

    # -- offsets -----------------------------------------------------------------
    def vaddr_to_offset(self, vaddr):
        for off, va, size in self.loads:
            if va <= vaddr < va + size:
                return vaddr - va + off
        return None

    def offset_to_vaddr(self, offset):
        for off, va, size in self.loads:
            if off <= offset < off + size:
                return offset - off + va
        return None

    # -- symbols -------------------------------------------------------------------
    def dynamic_function(self, name):
        """The address of the function the dynamic linker binds name to in
        this file, or None. Versioned duplicates (glibc's pthread_create@
        GLIBC_2.2.5 and pthread_create@@GLIBC_2.34) resolve to the default
        version, whose address new callers get."""
        dynsym = self._table(SHT_DYNSYM)
        if dynsym is None:
            return None
        versym = next((i for i, s in enumerate(self.sections)
                       if s[0] == SHT_GNU_VERSYM and s[3] == dynsym), None)
        versions = ()
        if versym is not None:
            data = self._read(versym)
            versions = struct.unpack("%s%dH" % (self._order, len(data) // 2), data)
        want, found = name.encode(), None
        for i, (sname, value, _, info, shndx) in enumerate(self._symbols(dynsym)):
            if sname != want or shndx == SHN_UNDEF or info & 0xf not in (STT_FUNC, STT_GNU_IFUNC):
                continue
            if i >= len(versions) or not versions[i] & VERSYM_HIDDEN:
                return value
            found = value if found is None else found
        return found

    def functions(self):
        """A FunctionTable of the full symbol table, or of the dynamic one
        when the file is stripped."""
        index = self._table(SHT_SYMTAB)
        if index is None:
            index = self._table(SHT_DYNSYM)
        return FunctionTable(() if index is None else self._symbols(index))


class FunctionTable:
    """The defined functions of a file, looked up by address."""

    def __init__(self, symbols):
        best = {}
        for name, value, size, info, shndx in symbols:
            if shndx == SHN_UNDEF or not value or info & 0xf not in (STT_FUNC, STT_GNU_IFUNC):
                continue
            # of aliases at one address, prefer a global name
            rank = (info >> 4 == STB_GLOBAL, size)
            old = best.get(value)
            if old is None or rank > old[0]:
                best[value] = (rank, size, name)
        self._starts = sorted(best)
        self._entries = [best[v][1:] for v in self._starts]

    def __len__(self):
        return len(self._starts)

    def name_at(self, vaddr):
        """"name" or "name+0x1f" for the function holding vaddr, or None."""
        i = bisect.bisect_right(self._starts, vaddr) - 1
        if i < 0:
            return None
        start = self._starts[i]
        size, name = self._entries[i]
        off = vaddr - start
        if off and off >= size:
            return None
        name = name.decode("utf-8", "replace")
        return "%s+%#x" % (name, off) if off else name


class Symbolizer:
    """Names offsets in mapped files, keeping the functions of the last few
    files read, by inode."""

    def __init__(self, keep=64):
        self._keep = keep
        self._files = {}

    def name(self, path, dev, ino, file_off, pid=None):
        """The function at file_off in the file path (device dev, inode ino,
        as mapped by process pid), or None when it cannot be told."""
        key = (dev, ino)
        entry = self._files.get(key)
        if entry is None:
            entry = self._load(path, ino, pid)
            if entry is None:           # not cached: a later event may reach it
                return None
            if len(self._files) >= self._keep:
                del self._files[next(iter(self._files))]
            self._files[key] = entry
        elf, funcs = entry
        vaddr = elf.offset_to_vaddr(file_off) if elf else None
        return None if vaddr is None else funcs.name_at(vaddr)

    @staticmethod
    def _load(path, ino, pid):
        # The path is as the process saw it: it may be in another mount
        # namespace (a container), which its /proc/PID/root reaches while it
        # lives. The inode tells the right file from a namesake (the device
        # cannot: btrfs subvolumes stat with another device than the kernel's).
        candidates = [path] + (["/proc/%d/root%s" % (pid, path)] if pid else [])
        for candidate in candidates:
            try:
                if os.stat(candidate).st_ino != ino:
                    continue
                elf = Elf(candidate)
                return elf, elf.functions()
            except ElfError:
                return None, None       # cached: it will not become ELF
            except OSError:
                continue
        return None
