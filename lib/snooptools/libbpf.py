"""A typed, checked ctypes binding to libbpf.so.1.

Only what the suite uses is bound. The floor is Debian bookworm's libbpf
1.1.2: nothing newer is required, and newer symbols are looked up with
``optional()``. Every handle has its own opaque pointer type, every prototype
sits beside its wrapper with the C declaration as a comment, and a failing
call raises LibbpfError carrying the function name and errno.
"""
import ctypes
import os
import threading

from .errors import LibbpfError, SnoopError  # noqa: F401 (LibbpfError re-exported)

SONAME = "libbpf.so.1"


class _Opaque(ctypes.c_void_p):
    """A handle type: a distinct pointer type per C struct."""


class Object(_Opaque): pass          # struct bpf_object *
class Program(_Opaque): pass         # struct bpf_program *
class Map(_Opaque): pass             # struct bpf_map *
class Link(_Opaque): pass            # struct bpf_link *
class BTF(_Opaque): pass             # struct btf *
class PerfBuffer(_Opaque): pass      # struct perf_buffer *


class BtfType(ctypes.Structure):
    # struct btf_type { __u32 name_off; __u32 info; union { __u32 size; __u32 type; }; }
    _fields_ = [("name_off", ctypes.c_uint32), ("info", ctypes.c_uint32),
                ("size_or_type", ctypes.c_uint32)]


class UprobeOpts(ctypes.Structure):
    # struct bpf_uprobe_opts (libbpf 1.1 layout; sz tells libbpf which fields exist)
    _fields_ = [("sz", ctypes.c_size_t), ("ref_ctr_offset", ctypes.c_size_t),
                ("bpf_cookie", ctypes.c_uint64), ("retprobe", ctypes.c_bool),
                ("func_name", ctypes.c_char_p)]


class OpenOpts(ctypes.Structure):
    # struct bpf_object_open_opts (libbpf 1.1 layout; sz tells libbpf which fields exist)
    _fields_ = [("sz", ctypes.c_size_t), ("object_name", ctypes.c_char_p),
                ("relaxed_maps", ctypes.c_bool), ("pin_root_path", ctypes.c_char_p),
                ("_attach_prog_fd", ctypes.c_uint32), ("kconfig", ctypes.c_char_p),
                ("btf_custom_path", ctypes.c_char_p)]


class MapInfo(ctypes.Structure):
    # struct bpf_map_info { __u32 type; __u32 id; __u32 key_size; __u32 value_size;
    #         __u32 max_entries; __u32 map_flags; char name[BPF_OBJ_NAME_LEN]; ... }:
    # its leading fields (the kernel fills as much as info_len asks for)
    _fields_ = [("type", ctypes.c_uint32), ("id", ctypes.c_uint32),
                ("key_size", ctypes.c_uint32), ("value_size", ctypes.c_uint32),
                ("max_entries", ctypes.c_uint32), ("map_flags", ctypes.c_uint32),
                ("name", ctypes.c_char * 16)]


LIBBPF_INFO = 1         # enum libbpf_print_level: WARN 0, INFO 1, DEBUG 2
# typedef int (*libbpf_print_fn_t)(enum libbpf_print_level, const char *, va_list);
PRINT_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)
# typedef void (*perf_buffer_sample_fn)(void *ctx, int cpu, void *data, __u32 size);
SAMPLE_FN = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_uint32)
# typedef void (*perf_buffer_lost_fn)(void *ctx, int cpu, __u64 cnt);
LOST_FN = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int, ctypes.c_uint64)

_lib = None
_here = threading.local()   # .log: this thread's recent libbpf messages, for error text
_verbose = False
_print_cb = None        # kept alive for as long as libbpf may call it


def _proto(name, restype, *argtypes):
    fn = getattr(_lib, name)
    fn.restype, fn.argtypes = restype, list(argtypes)
    return fn


def load():
    """Load libbpf once; a clear SnoopError when it is missing or too old."""
    global _lib
    if _lib is not None:
        return _lib
    try:
        lib = ctypes.CDLL(SONAME, use_errno=True)
    except OSError:
        raise SnoopError("cannot load " + SONAME, "libbpf is not installed",
                         "install it: apt-get install libbpf1") from None
    _lib = lib
    major = _proto("libbpf_major_version", ctypes.c_uint32)()
    minor = _proto("libbpf_minor_version", ctypes.c_uint32)()
    if major < 1:
        _lib = None
        raise SnoopError(SONAME + " is too old", "found %d.%d, need 1.0 or newer" % (major, minor),
                         "upgrade libbpf1")
    _bind()
    return _lib


def version():
    load()
    return "%d.%d" % (_lib.libbpf_major_version(), _lib.libbpf_minor_version())


def optional(name):
    """A symbol newer than the 1.1 floor, or None when this libbpf lacks it."""
    load()
    return getattr(_lib, name, None)


def _bind():
    c = ctypes
    # struct bpf_object *bpf_object__open_file(const char *path, const struct bpf_object_open_opts *opts);
    _proto("bpf_object__open_file", Object, c.c_char_p, c.c_void_p)
    # int bpf_object__load(struct bpf_object *obj);
    _proto("bpf_object__load", c.c_int, Object)
    # void bpf_object__close(struct bpf_object *obj);
    _proto("bpf_object__close", None, Object)
    # struct btf *bpf_object__btf(const struct bpf_object *obj);
    _proto("bpf_object__btf", BTF, Object)
    # struct bpf_map *bpf_object__find_map_by_name(const struct bpf_object *obj, const char *name);
    _proto("bpf_object__find_map_by_name", Map, Object, c.c_char_p)
    # struct bpf_program *bpf_object__next_program(const struct bpf_object *obj, struct bpf_program *prog);
    _proto("bpf_object__next_program", Program, Object, Program)
    # const char *bpf_program__name(const struct bpf_program *prog);
    _proto("bpf_program__name", c.c_char_p, Program)
    # const char *bpf_program__section_name(const struct bpf_program *prog);
    _proto("bpf_program__section_name", c.c_char_p, Program)
    # int bpf_program__set_autoload(struct bpf_program *prog, bool autoload);
    _proto("bpf_program__set_autoload", c.c_int, Program, c.c_bool)
    # bool bpf_program__autoload(const struct bpf_program *prog);
    _proto("bpf_program__autoload", c.c_bool, Program)
    # struct bpf_link *bpf_program__attach(const struct bpf_program *prog);
    _proto("bpf_program__attach", Link, Program)
    # struct bpf_link *bpf_program__attach_tracepoint(const struct bpf_program *prog,
    #         const char *tp_category, const char *tp_name);
    _proto("bpf_program__attach_tracepoint", Link, Program, c.c_char_p, c.c_char_p)
    # struct bpf_link *bpf_program__attach_kprobe(const struct bpf_program *prog, bool retprobe,
    #         const char *func_name);
    _proto("bpf_program__attach_kprobe", Link, Program, c.c_bool, c.c_char_p)
    # struct bpf_link *bpf_program__attach_uprobe_opts(const struct bpf_program *prog, pid_t pid,
    #         const char *binary_path, size_t func_offset, const struct bpf_uprobe_opts *opts);
    _proto("bpf_program__attach_uprobe_opts", Link, Program, c.c_int, c.c_char_p, c.c_size_t,
           c.POINTER(UprobeOpts))
    # int bpf_link__destroy(struct bpf_link *link);
    _proto("bpf_link__destroy", c.c_int, Link)
    # int bpf_map__fd(const struct bpf_map *map);
    _proto("bpf_map__fd", c.c_int, Map)
    # int bpf_map__set_max_entries(struct bpf_map *map, __u32 max_entries);
    _proto("bpf_map__set_max_entries", c.c_int, Map, c.c_uint32)
    # __u32 bpf_map__max_entries(const struct bpf_map *map);
    _proto("bpf_map__max_entries", c.c_uint32, Map)
    # int bpf_map__set_map_flags(struct bpf_map *map, __u32 flags);
    _proto("bpf_map__set_map_flags", c.c_int, Map, c.c_uint32)
    # __u32 bpf_map__value_size(const struct bpf_map *map);
    _proto("bpf_map__value_size", c.c_uint32, Map)
    # int bpf_map__set_type(struct bpf_map *map, enum bpf_map_type type);
    _proto("bpf_map__set_type", c.c_int, Map, c.c_int)
    # int bpf_map__set_key_size(struct bpf_map *map, __u32 size);
    _proto("bpf_map__set_key_size", c.c_int, Map, c.c_uint32)
    # int bpf_map__set_value_size(struct bpf_map *map, __u32 size);
    _proto("bpf_map__set_value_size", c.c_int, Map, c.c_uint32)
    # void *bpf_map__initial_value(struct bpf_map *map, size_t *psize);
    _proto("bpf_map__initial_value", c.c_void_p, Map, c.POINTER(c.c_size_t))
    # int bpf_map__reuse_fd(struct bpf_map *map, int fd);
    _proto("bpf_map__reuse_fd", c.c_int, Map, c.c_int)
    # int bpf_map_create(enum bpf_map_type map_type, const char *map_name, __u32 key_size,
    #         __u32 value_size, __u32 max_entries, const struct bpf_map_create_opts *opts);
    _proto("bpf_map_create", c.c_int, c.c_int, c.c_char_p, c.c_uint32, c.c_uint32, c.c_uint32,
           c.c_void_p)
    # int bpf_obj_get(const char *pathname);
    _proto("bpf_obj_get", c.c_int, c.c_char_p)
    # int bpf_obj_get_info_by_fd(int bpf_fd, void *info, __u32 *info_len);
    _proto("bpf_obj_get_info_by_fd", c.c_int, c.c_int, c.c_void_p, c.POINTER(c.c_uint32))
    # const char *libbpf_bpf_map_type_str(enum bpf_map_type t);
    _proto("libbpf_bpf_map_type_str", c.c_char_p, c.c_int)
    # int bpf_map_update_elem(int fd, const void *key, const void *value, __u64 flags);
    _proto("bpf_map_update_elem", c.c_int, c.c_int, c.c_void_p, c.c_void_p, c.c_uint64)
    # int bpf_map_lookup_elem(int fd, const void *key, void *value);
    _proto("bpf_map_lookup_elem", c.c_int, c.c_int, c.c_void_p, c.c_void_p)
    # int bpf_map_delete_elem(int fd, const void *key);
    _proto("bpf_map_delete_elem", c.c_int, c.c_int, c.c_void_p)
    # __s32 btf__find_by_name_kind(const struct btf *btf, const char *type_name, __u32 kind);
    _proto("btf__find_by_name_kind", c.c_int32, BTF, c.c_char_p, c.c_uint32)
    # const struct btf_type *btf__type_by_id(const struct btf *btf, __u32 id);
    _proto("btf__type_by_id", c.POINTER(BtfType), BTF, c.c_uint32)
    # struct btf *btf__parse_elf(const char *path, struct btf_ext **btf_ext);
    _proto("btf__parse_elf", BTF, c.c_char_p, c.c_void_p)
    # void btf__free(struct btf *btf);
    _proto("btf__free", None, BTF)
    # struct btf *btf__parse(const char *path, struct btf_ext **btf_ext);
    _proto("btf__parse", BTF, c.c_char_p, c.c_void_p)
    # struct btf *btf__load_vmlinux_btf(void);
    _proto("btf__load_vmlinux_btf", BTF)
    # const void *btf_ext__get_raw_data(const struct btf_ext *btf_ext, __u32 *size);
    _proto("btf_ext__get_raw_data", c.c_void_p, c.c_void_p, c.POINTER(c.c_uint32))
    # void btf_ext__free(struct btf_ext *btf_ext);
    _proto("btf_ext__free", None, c.c_void_p)
    # struct btf *btf__new_empty(void);
    _proto("btf__new_empty", BTF)
    # int btf__add_int(struct btf *btf, const char *name, size_t byte_sz, int encoding);
    _proto("btf__add_int", c.c_int, BTF, c.c_char_p, c.c_size_t, c.c_int)
    # int btf__add_float(struct btf *btf, const char *name, size_t byte_sz);
    _proto("btf__add_float", c.c_int, BTF, c.c_char_p, c.c_size_t)
    # int btf__add_ptr(struct btf *btf, int ref_type_id);
    _proto("btf__add_ptr", c.c_int, BTF, c.c_int)
    # int btf__add_typedef(struct btf *btf, const char *name, int ref_type_id);
    _proto("btf__add_typedef", c.c_int, BTF, c.c_char_p, c.c_int)
    # int btf__add_fwd(struct btf *btf, const char *name, enum btf_fwd_kind fwd_kind);
    _proto("btf__add_fwd", c.c_int, BTF, c.c_char_p, c.c_int)
    # int btf__add_func_proto(struct btf *btf, int ret_type_id);
    _proto("btf__add_func_proto", c.c_int, BTF, c.c_int)
    # int btf__add_func_param(struct btf *btf, const char *name, int type_id);
    _proto("btf__add_func_param", c.c_int, BTF, c.c_char_p, c.c_int)
    # int btf__add_array(struct btf *btf, int index_type_id, int elem_type_id, __u32 nr_elems);
    _proto("btf__add_array", c.c_int, BTF, c.c_int, c.c_int, c.c_uint32)
    # int btf__add_struct(struct btf *btf, const char *name, __u32 sz);
    _proto("btf__add_struct", c.c_int, BTF, c.c_char_p, c.c_uint32)
    # int btf__add_union(struct btf *btf, const char *name, __u32 sz);
    _proto("btf__add_union", c.c_int, BTF, c.c_char_p, c.c_uint32)
    # int btf__add_field(struct btf *btf, const char *name, int field_type_id,
    #         __u32 bit_offset, __u32 bit_size);
    _proto("btf__add_field", c.c_int, BTF, c.c_char_p, c.c_int, c.c_uint32, c.c_uint32)
    # int btf__add_enum(struct btf *btf, const char *name, __u32 bytes_sz);
    _proto("btf__add_enum", c.c_int, BTF, c.c_char_p, c.c_uint32)
    # int btf__add_enum_value(struct btf *btf, const char *name, __s64 value);
    _proto("btf__add_enum_value", c.c_int, BTF, c.c_char_p, c.c_int64)
    # int btf__add_enum64(struct btf *btf, const char *name, __u32 byte_sz, bool is_signed);
    _proto("btf__add_enum64", c.c_int, BTF, c.c_char_p, c.c_uint32, c.c_bool)
    # int btf__add_enum64_value(struct btf *btf, const char *name, __u64 value);
    _proto("btf__add_enum64_value", c.c_int, BTF, c.c_char_p, c.c_uint64)
    # const void *btf__raw_data(const struct btf *btf, __u32 *size);
    _proto("btf__raw_data", c.c_void_p, BTF, c.POINTER(c.c_uint32))
    # const char *btf__name_by_offset(const struct btf *btf, __u32 offset);
    _proto("btf__name_by_offset", c.c_char_p, BTF, c.c_uint32)
    # struct btf *btf__load_vmlinux_btf(void);
    _proto("btf__load_vmlinux_btf", BTF)
    # void btf__free(struct btf *btf);
    _proto("btf__free", None, BTF)
    # int libbpf_num_possible_cpus(void);
    _proto("libbpf_num_possible_cpus", c.c_int)
    # int libbpf_probe_bpf_map_type(enum bpf_map_type map_type, const void *opts);
    _proto("libbpf_probe_bpf_map_type", c.c_int, c.c_int, c.c_void_p)
    # int libbpf_probe_bpf_helper(enum bpf_prog_type prog_type, enum bpf_func_id helper_id,
    #         const void *opts);
    _proto("libbpf_probe_bpf_helper", c.c_int, c.c_int, c.c_int, c.c_void_p)
    # int libbpf_probe_bpf_prog_type(enum bpf_prog_type prog_type, const void *opts);
    _proto("libbpf_probe_bpf_prog_type", c.c_int, c.c_int, c.c_void_p)
    # struct perf_buffer *perf_buffer__new(int map_fd, size_t page_cnt, perf_buffer_sample_fn sample_cb,
    #         perf_buffer_lost_fn lost_cb, void *ctx, const struct perf_buffer_opts *opts);
    _proto("perf_buffer__new", PerfBuffer, c.c_int, c.c_size_t, SAMPLE_FN, LOST_FN, c.c_void_p,
           c.c_void_p)
    # int perf_buffer__poll(struct perf_buffer *pb, int timeout_ms);
    _proto("perf_buffer__poll", c.c_int, PerfBuffer, c.c_int)
    # void perf_buffer__free(struct perf_buffer *pb);
    _proto("perf_buffer__free", None, PerfBuffer)
    # libbpf_print_fn_t libbpf_set_print(libbpf_print_fn_t fn);
    _proto("libbpf_set_print", c.c_void_p, PRINT_FN)
    _install_print()


def _install_print():
    """Route libbpf's log: to stderr with -v, else keep the tail of its
    warnings for errors, in the thread that made them (snoop loads objects
    in several). Debug lines, most of what a load says (a few hundred per
    object), return at once: formatting them cost snoop all ~50 ms."""
    global _print_cb
    vsnprintf = ctypes.CDLL(None).vsnprintf
    vsnprintf.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p, ctypes.c_void_p]

    def log(level, fmt, args):
        if level > LIBBPF_INFO and not _verbose:
            return 0
        buf = thread_buffer()
        vsnprintf(buf, len(buf), fmt, args)
        if _verbose:
            os.write(2, buf.value)
        else:
            kept = thread_log()
            kept.append(buf.value.decode("utf-8", "replace").rstrip())
            del kept[:-20]
        return 0

    _print_cb = PRINT_FN(log)
    _lib.libbpf_set_print(_print_cb)


def thread_buffer():
    """This thread's buffer for a message (a verifier's log is one)."""
    try:
        return _here.buf
    except AttributeError:
        _here.buf = ctypes.create_string_buffer(1 << 20)
        return _here.buf


def thread_log():
    """This thread's recent libbpf warnings."""
    try:
        return _here.log
    except AttributeError:
        _here.log = []
        return _here.log


def set_verbose(on):
    global _verbose
    _verbose = on


def last_log():
    """The last libbpf message worth showing a user, or ''."""
    for line in reversed(thread_log()):
        if line.strip():
            return line.removeprefix("libbpf: ").strip()
    return ""


def call(name, *args, what=None, hint=""):
    """Call libbpf's name(*args); raise LibbpfError on NULL or a negative int."""
    del thread_log()[:]
    ret = getattr(_lib, name)(*args)
    if (isinstance(ret, _Opaque) and not ret) or (isinstance(ret, int) and ret < 0):
        err = ctypes.get_errno() or (-ret if isinstance(ret, int) else 0)
        raise LibbpfError(name, err, what=what, hint=hint, log=last_log())
    return ret


def lib():
    return load()
