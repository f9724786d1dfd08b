"""Containers: which one a task runs in, and the cgroups of the ones asked for.

Every event carries the cgroup v2 id of its task (struct task_head in
snoop.bpf.h). Here, in user space and on the host alone (no engine's API, no
CLI), that id becomes the container's keys, once per cgroup (Resolver):

    cgroup id -> cgroup path     a cgroup v2 id is its directory's inode
                                 number: open_by_handle_at() opens it by id
                                 (a walk of the hierarchy where that fails)
    path -> runtime, id, name    each runtime's naming of its cgroups
                                 (parse_path: podman, docker, containerd's
                                 CRI, CRI-O, Kubernetes pods, LXC,
                                 systemd-nspawn and libvirt machines)
    id -> name, pod, namespace   the runtime's own files where readable: the
                                 engine's container records (docker's
                                 config.v2.json, containers/storage's
                                 containers.json), the OCI bundle's
                                 config.json annotations (found through the
                                 OCI runtime's state: runc, crun, containerd)

--container NAME|ID, --all-containers and --host-only pick cgroups the same
way, from a walk of the hierarchy (Selection), and keep the kernel's set of
them (container_cgroups in snoop.bpf.h) up to date while tracing.

Imported at start by the tools that tell containers apart: what only a
cgroup's first event needs (json, glob, the patterns) is made on first use.
"""
import functools
import os
import re
import time

from .errors import UsageError

# One path component each: (pattern, runtime, what the group is). The
# runtimes' own documentation names these:
#   podman (libpod): libpod-<id>.scope under machine.slice or a user's
#       slice (systemd cgroup manager), /libpod_parent/libpod-<id> (cgroupfs);
#       libpod-conmon-<id>.scope is its monitor, not the container
#   docker: docker-<id>.scope (systemd driver), /docker/<id> (cgroupfs)
#   containerd's CRI plugin: cri-containerd-<id>.scope (systemd driver);
#       nerdctl, containerd's own CLI: nerdctl-<id>.scope (systemd driver)
#   CRI-O: crio-<id>.scope (crio-conmon-<id>.scope is its monitor)
#   Kubernetes, cgroupfs driver: /kubepods[/<qos>]/pod<uid>/<id>
#   LXC 4+: lxc.payload.<name> (lxc.monitor.<name> is its monitor), and the
#       older /lxc/<name>
#   systemd-machined (systemd-nspawn, libvirt): machine-<name>.scope, the
#       name escaped as systemd does (\x2d for "-")
_HEX64 = r"[0-9a-f]{64}"


@functools.lru_cache(maxsize=None)
def _patterns():
    """(components, bare id, pod, libvirt) compiled, once."""
    components = [
        (re.compile(r"libpod-(%s)(?:\.scope)?$" % _HEX64), "podman", "id"),
        (re.compile(r"docker-(%s)\.scope$" % _HEX64), "docker", "id"),
        (re.compile(r"cri-containerd-(%s)\.scope$" % _HEX64), "containerd", "id"),
        (re.compile(r"nerdctl-(%s)\.scope$" % _HEX64), "containerd", "id"),
        (re.compile(r"crio-(%s)(?:\.scope)?$" % _HEX64), "cri-o", "id"),
        (re.compile(r"lxc\.payload\.(.+)$"), "lxc", "name"),
        (re.compile(r"machine-(.+)\.scope$"), "systemd-nspawn", "name"),
    ]
    # a Kubernetes pod's slice (systemd driver: its uid's dashes made
    # underscores) or directory (cgroupfs driver)
    pod = re.compile(r"(?:kubepods(?:-[a-z]+)?-pod([0-9a-f_]{36})\.slice|pod([0-9a-f-]{36}))$")
    return (components, re.compile(r"(%s)$" % _HEX64), pod,
            re.compile(r"(qemu|lxc)-\d+-(.+)$"))


def _unescape(name):
    """A systemd unit name's \\xNN escapes undone."""
    return re.sub(r"\\x([0-9a-fA-F]{2})", lambda m: chr(int(m.group(1), 16)), name)


class Container:
    """What a cgroup path says of the container it is (or is in): runtime,
    id (LXC's and machined's containers have none but their name), name
    where the path has it, the Kubernetes pod's uid, and cgroup, the
    container's own directory (relative to the hierarchy's root)."""

    __slots__ = ("runtime", "id", "name", "pod", "namespace", "pod_uid", "cgroup")

    def __init__(self, runtime, id=None, name=None, pod_uid=None, cgroup=None):
        self.runtime, self.id, self.name = runtime, id, name
        self.pod = self.namespace = None
        self.pod_uid, self.cgroup = pod_uid, cgroup

    def keys(self):
        """The event's keys, as JSON has them (only those known)."""
        out = {"container_id": self.id or self.name, "container_runtime": self.runtime}
        for key in ("name", "pod", "namespace", "pod_uid"):
            value = getattr(self, key)
            if value:
                out["container_name" if key == "name" else key] = value
        return out

    def label(self):
        """How the CONTAINER column shows it: its name, else its short id."""
        return self.name or (self.id or "")[:12]

    def __repr__(self):
        return "Container(%s)" % ", ".join("%s=%r" % (k, getattr(self, k)) for k in self.__slots__
                                           if getattr(self, k))


def parse_path(path):
    """The Container a cgroup v2 path (relative to the hierarchy's root, or
    absolute within it) belongs to, from the runtimes' naming alone; None
    for a cgroup of no container. Nested containers: the innermost."""
    parts = [p for p in path.split("/") if p]
    found, pod_uid = None, None
    for i, part in enumerate(parts):
        pod = _patterns()[2].match(part)
        if pod and (pod.group(1) or "kubepods" in parts[:i]):
            pod_uid = (pod.group(1) or pod.group(2)).replace("_", "-")
            continue
        here = _component(part, parts[i - 1] if i else "", pod_uid)
        if here is not None:
            here.cgroup = "/" + "/".join(parts[:i + 1])
            found = here
    return found


def _component(part, parent, pod_uid):
    components, bare_id, _, libvirt = _patterns()
    for pattern, runtime, group in components:
        m = pattern.match(part)
        if not m:
            continue
        if group == "id":
            return Container(runtime, m.group(1), pod_uid=pod_uid)
        name = m.group(1)
        if runtime == "systemd-nspawn":
            name = _unescape(name)
            virt = libvirt.match(name)
            if virt:
                return Container("libvirt-" + virt.group(1), name=virt.group(2))
        return Container(runtime, name=name)
    if parent == "lxc" and not part.startswith("lxc."):
        return Container("lxc", name=part)
    if bare_id.match(part):
        if parent == "docker":
            return Container("docker", part)
        if pod_uid:
            # which CRI runtime is up to its files (describe())
            return Container("cri", part, pod_uid=pod_uid)
    return None


# -- the runtimes' own records -------------------------------------------------

# docker's data roots: root's, then rootless users' (globs)
DOCKER_ROOTS = ("/var/lib/docker", "/home/*/.local/share/docker")
# containers/storage's stores (podman, CRI-O, buildah): root's and the
# runtime ones
STORAGE_ROOTS = ("/var/lib/containers/storage", "/run/containers/storage")
# where OCI runtimes keep a container's state, which names its bundle
# (root's, then rootless users'; globs)
OCI_STATES = ("/run/runc/%s/state.json", "/run/crun/%s/status",
              "/run/docker/runtime-runc/moby/%s/state.json",
              "/run/containerd/runc/k8s.io/%s/state.json",
              "/run/containerd/runc/default/%s/state.json",
              "/run/user/*/runc/%s/state.json", "/run/user/*/crun/%s/status",
              "/run/user/*/docker/runtime-runc/moby/%s/state.json")
CONTAINERD_TASKS = "/run/containerd/io.containerd.runtime.v2.task"

# OCI annotations that name the container, its pod and namespace, by runtime
_NAME_KEYS = ("io.kubernetes.cri.container-name", "io.kubernetes.container.name", "nerdctl/name")
_POD_KEYS = ("io.kubernetes.cri.sandbox-name", "io.kubernetes.pod.name")
_NS_KEYS = ("io.kubernetes.cri.sandbox-namespace", "io.kubernetes.pod.namespace")
_UID_KEYS = ("io.kubernetes.cri.sandbox-uid", "io.kubernetes.pod.uid")


def _glob(pattern):
    import glob
    return glob.glob(pattern)


def _paths(pattern):
    """The paths a pattern names: itself, or (with a *) what it matches."""
    return _glob(pattern) if "*" in pattern else (pattern,)


def _read_json(path):
    try:
        with open(path, "rb") as f:
            import json
            return json.load(f)
    except (OSError, ValueError):
        return None


class Records:
    """The runtimes' records of their containers, read from their files
    (each store's file parsed once while unchanged). roots: where to look,
    for tests; the defaults are the runtimes' own."""

    def __init__(self, docker=DOCKER_ROOTS, storage=STORAGE_ROOTS, oci_states=OCI_STATES,
                 tasks=CONTAINERD_TASKS, proc="/proc"):
        self.docker, self.storage, self.oci_states, self.tasks = docker, storage, oci_states, tasks
        self.proc = proc
        self._stores = {}       # containers.json path -> (mtime, {id: names})

    def describe(self, c):
        """Fill in c's name, pod and namespace (and a CRI container's
        runtime) from what the runtime wrote about it, where readable."""
        if not c.id:
            return c
        if c.runtime == "docker" and self._docker(c):
            return c
        bundle, monitor_name = self._bundle(c.id)
        if bundle:
            self._annotations(c, os.path.join(bundle, "config.json"))
            store = os.path.dirname(os.path.dirname(bundle))
            if not c.name and os.path.basename(bundle) == "userdata":
                c.name = self._store_name(os.path.join(store, "containers.json"), c.id)
        if not c.name and c.runtime == "podman":
            c.name = monitor_name
        if not c.name:
            for root in self.storage:
                for store in _glob(os.path.join(root, "*-containers", "containers.json")):
                    c.name = self._store_name(store, c.id)
                    if c.name:
                        break
        return c

    def _docker(self, c):
        """Whether docker has a record of c (then c is described from it)."""
        config = self._docker_config(c.id)
        if config is None:
            return False
        c.name = (config.get("Name") or "").lstrip("/") or None
        labels = (config.get("Config") or {}).get("Labels") or {}
        self._kube(c, labels)
        return True

    def _docker_config(self, cid):
        for root in self.docker:
            for path in _paths(os.path.join(root, "containers", cid, "config.v2.json")):
                config = _read_json(path)
                if isinstance(config, dict):
                    return config
        return None

    def _bundle(self, cid):
        """(The OCI bundle directory of container cid, the name its monitor
        was given): from its runtime's state, else from the command line of
        its conmon (podman's and CRI-O's monitor, which names both, whatever
        --root the runtime keeps its state in)."""
        for pattern in self.oci_states:
            for path in _paths(pattern % cid):
                state = _read_json(path)
                if not isinstance(state, dict):
                    continue
                if state.get("bundle"):                 # crun
                    return state["bundle"], None
                for label in (state.get("config") or {}).get("labels") or ():     # runc
                    if label.startswith("bundle="):
                        return label[len("bundle="):], None
        for bundle in _glob(os.path.join(self.tasks, "*", cid)):     # containerd's shims
            return bundle, None
        return self._conmon(cid)

    def _conmon(self, cid):
        """(bundle, name) from the command line of cid's conmon (-c ID -b
        BUNDLE -n NAME); (None, None) if it has none."""
        try:
            pids = [p for p in os.listdir(self.proc) if p.isdigit()]
        except OSError:
            return None, None
        for pid in pids:
            try:
                with open(os.path.join(self.proc, pid, "comm"), "rb") as f:
                    if f.read().strip() != b"conmon":
                        continue
                with open(os.path.join(self.proc, pid, "cmdline"), "rb") as f:
                    argv = f.read().decode("utf-8", "replace").split("\0")
            except OSError:
                continue
            opts = dict(zip(argv, argv[1:]))
            if opts.get("-c") == cid or opts.get("--cid") == cid:
                return (opts.get("-b") or opts.get("--bundle"),
                        opts.get("-n") or opts.get("--name"))
        return None, None

    def _annotations(self, c, path):
        config = _read_json(path)
        notes = config.get("annotations") if isinstance(config, dict) else None
        if not isinstance(notes, dict):
            return
        if c.runtime == "cri":
            if any(k.startswith("io.kubernetes.cri.") for k in notes):
                c.runtime = "containerd"
            elif any(k.startswith("io.kubernetes.cri-o.") for k in notes):
                c.runtime = "cri-o"
        self._kube(c, notes)

    @staticmethod
    def _kube(c, notes):
        for attr, keys in (("name", _NAME_KEYS), ("pod", _POD_KEYS), ("namespace", _NS_KEYS),
                           ("pod_uid", _UID_KEYS)):
            for key in keys:
                if notes.get(key) and not getattr(c, attr):
                    setattr(c, attr, notes[key])

    def _store_name(self, path, cid):
        try:
            mtime = os.stat(path).st_mtime_ns
        except OSError:
            return None
        cached = self._stores.get(path)
        if cached is None or cached[0] != mtime:
            entries = _read_json(path)
            names = {}
            for e in entries if isinstance(entries, list) else ():
                if isinstance(e, dict) and e.get("id"):
                    names[e["id"]] = (e.get("names") or [None])[0]
            cached = self._stores[path] = (mtime, names)
        return cached[1].get(cid)


# -- cgroup ids and paths -----------------------------------------------------

def cgroup2_root():
    """Where the whole cgroup v2 hierarchy is mounted (/sys/fs/cgroup, or
    /sys/fs/cgroup/unified on a hybrid host), not a mount of a part of it;
    None if nowhere."""
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                # id parent major:minor root mount-point options ... - type source ...
                fields = line.split()
                fstype = fields[fields.index("-") + 1]
                if fstype == "cgroup2" and fields[3] == "/":
                    return fields[4].replace("\\040", " ")
    except (OSError, ValueError, IndexError):
        pass
    return None


def walk(root):
    """(path relative to root, cgroup id) of every cgroup under root,
    root's own included ("/"). A cgroup v2 id is its directory's inode."""
    out = []
    try:
        out.append(("/", os.stat(root).st_ino))
    except OSError:
        return out
    stack = [("", root)]
    while stack:
        rel, path = stack.pop()
        try:
            entries = list(os.scandir(path))
        except OSError:
            continue        # removed meanwhile
        for e in entries:
            try:
                if e.is_dir(follow_symlinks=False):
                    here = rel + "/" + e.name
                    out.append((here, e.inode()))
                    stack.append((here, e.path))
            except OSError:
                pass
    return out


class _ByHandle:
    """open_by_handle_at(2) of a cgroup by its id: a cgroup v2 id is a
    kernfs file handle (FILEID_KERNFS), so a cgroup's path is found without
    a walk. Needs CAP_DAC_READ_SEARCH, which tracing needs anyway."""

    FILEID_KERNFS = 0xfe

    def __init__(self, root):
        import ctypes

        class Handle(ctypes.Structure):
            # struct file_handle { unsigned int handle_bytes; int handle_type;
            #                      unsigned char f_handle[]; }, here a u64 id
            _fields_ = [("handle_bytes", ctypes.c_uint), ("handle_type", ctypes.c_int),
                        ("f_handle", ctypes.c_uint64)]
        self._ctypes, self._handle = ctypes, Handle
        libc = ctypes.CDLL(None, use_errno=True)
        # int open_by_handle_at(int mount_fd, struct file_handle *handle, int flags);
        self._open = libc.open_by_handle_at
        self._open.argtypes = [ctypes.c_int, ctypes.POINTER(Handle), ctypes.c_int]
        self._open.restype = ctypes.c_int
        self.root = root
        self._mount_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)

    def path(self, cgroup_id):
        h = self._handle(8, self.FILEID_KERNFS, cgroup_id)
        fd = self._open(self._mount_fd, self._ctypes.byref(h), os.O_RDONLY | os.O_CLOEXEC)
        if fd < 0:
            return None
        try:
            path = os.readlink("/proc/self/fd/%d" % fd)
        except OSError:
            return None
        finally:
            os.close(fd)
        if path == self.root:
            return "/"
        return path[len(self.root):] if path.startswith(self.root + "/") else None


class Resolver:
    """cgroup id -> the keys of its container (an empty dict for a cgroup
    of no container), each id resolved once: an event's cost is then one
    dict lookup (in cache, which the decoder reads directly). A container
    seen before its runtime wrote its name is looked at again, at most every
    RETRY_SECONDS and TRIES times, until its name is there."""

    RETRY_SECONDS = 1.0
    TRIES = 10
    WALK_SECONDS = 1.0          # the hierarchy is walked at most this often
    MAX_CACHED = 1 << 16

    def __init__(self, root=None, records=None):
        self.root = root if root is not None else cgroup2_root()
        self.records = records or Records()
        self.cache = {}             # id -> keys, final
        self.labels = {}            # id -> its CONTAINER column's text
        self._pending = {}          # id -> (keys, when to look again, tries)
        self._by_handle = None
        self._paths, self._walked = {}, None    # id -> path, from a walk

    def __call__(self, cgroup_id):
        keys = self.cache.get(cgroup_id)
        if keys is not None:
            return keys
        pending = self._pending.get(cgroup_id)
        if pending and time.monotonic() < pending[1]:
            return pending[0]
        return self.resolve(cgroup_id)

    def container(self, cgroup_id):
        """The Container of cgroup cgroup_id, described; None if none."""
        path = self.path(cgroup_id)
        c = parse_path(path) if path else None
        return self.records.describe(c) if c else None

    def resolve(self, cgroup_id):
        c = self.container(cgroup_id)
        keys = c.keys() if c else {}
        if len(self.cache) >= self.MAX_CACHED:
            self.cache.clear()
            self.labels.clear()
        tries = self._pending.get(cgroup_id, (None, 0, 0))[2] + 1
        if c and not c.name and tries < self.TRIES:
            self._pending[cgroup_id] = (keys, time.monotonic() + self.RETRY_SECONDS, tries)
        else:
            self._pending.pop(cgroup_id, None)
            self.cache[cgroup_id] = keys
        self.labels[cgroup_id] = c.label() if c else "-"
        return keys

    def label(self, cgroup_id):
        """The CONTAINER column's text of an event in cgroup cgroup_id."""
        text = self.labels.get(cgroup_id)
        if text is None or cgroup_id in self._pending:
            self(cgroup_id)
            text = self.labels[cgroup_id]
        return text

    def path(self, cgroup_id):
        """The path of cgroup cgroup_id relative to the hierarchy's root;
        None if it is gone (or there is no cgroup v2 hierarchy)."""
        if not self.root:
            return None
        if self._by_handle is None:
            try:
                self._by_handle = _ByHandle(self.root)
            except (OSError, AttributeError):
                self._by_handle = False
        if self._by_handle:
            path = self._by_handle.path(cgroup_id)
            if path is not None:
                return path
        now = time.monotonic()
        if cgroup_id not in self._paths and (self._walked is None or
                                             now - self._walked >= self.WALK_SECONDS):
            self._paths = {cid: rel for rel, cid in walk(self.root)}
            self._walked = now
        return self._paths.get(cgroup_id)


# -- --container, --all-containers, --host-only ---------------------------------

def _by_id(c, spec):
    """Does spec name container c by its id, or 3 or more characters of its
    start (as docker and podman take them)?"""
    return bool(c.id) and (spec == c.id or len(spec) >= 3 and c.id.startswith(spec))


class Selection:
    """The cgroups of the containers the command line names (or of every
    container), found by a walk of the hierarchy: each container's own
    cgroup and every one below it. refresh() walks again and returns the
    ids not seen before (containers started, restarted or recreated under
    the same name since, and new cgroups inside the chosen ones). A
    container's records are read only when a name must be compared (once
    per container): a selection by id, or of every container, reads none."""

    def __init__(self, specs=None, root=None, records=None):
        self.specs = specs          # None: every container
        self.root = root if root is not None else cgroup2_root()
        self.records = records or Records()
        self.ids = set()
        self._seen = {}             # container cgroup path -> Container
        self._described = {}        # ... -> how often its records were read
        self._names = set(specs or ())     # the specs that are names, not ids (check())
        self._chosen_dirs = []      # the cgroups of the chosen containers, at the last walk

    def containers(self):
        """{container cgroup path: Container} and [(path, id)] of every cgroup."""
        cgroups = walk(self.root) if self.root else []
        found = {}
        for rel, _ in cgroups:
            c = self._seen.get(rel) or parse_path(rel)
            if c is not None and c.cgroup == rel:
                found[rel] = self._seen[rel] = c
        return found, cgroups

    DESCRIBE_TRIES = 10

    def _describe(self, c):
        """c with its name read from its runtime's records: once, or, while
        they do not name it yet (a container being made), at each refresh,
        up to DESCRIBE_TRIES times."""
        tries = self._described.get(c.cgroup, 0)
        if tries == 0 or c.name is None and tries < self.DESCRIBE_TRIES:
            self.records.describe(c)
            self._described[c.cgroup] = tries + 1
        return c

    def _populated(self, rel):
        """Whether any task is in cgroup rel or below it: a runtime may
        leave a removed container's empty cgroup behind."""
        try:
            with open(self.root + rel + "/cgroup.events") as f:
                return "populated 1" in f.read()
        except OSError:
            return True         # not cgroup v2's files: say it is

    def matches(self, c):
        if self.specs is None:
            return True
        return any(_by_id(c, spec) or spec in self._names and spec == self._describe(c).name
                   for spec in self.specs)

    def check(self, found):
        """UsageError unless each spec names exactly one container."""
        for spec in self.specs or ():
            hits = {c.id for c in found.values() if _by_id(c, spec)}
            named = not hits
            if not named:
                self._names.discard(spec)
            else:
                hits = {c.cgroup for c in found.values() if spec == self._describe(c).name}
            if not hits:
                listed = sorted({self._describe(c).label() for c in found.values()
                                 if self._populated(c.cgroup)})
                raise UsageError("--container %s: no such container (%s)" % (
                    spec, "running: " + ", ".join(listed) if listed else
                    "no container is running on this host"))
            if len(hits) > 1:
                raise UsageError("--container %s: %d containers %s: give its id" % (
                    spec, len(hits), "have that name" if named else "have ids beginning so"))

    def refresh(self, walked=None):
        """The cgroup ids of the selected containers not returned before."""
        found, cgroups = walked or self.containers()
        chosen = [rel for rel, c in found.items() if self.matches(c)]
        new = set()
        for rel, cid in cgroups:
            if cid not in self.ids and any(rel == top or rel.startswith(top + "/")
                                           for top in chosen):
                new.add(cid)
        self.ids |= new
        self._chosen_dirs = [rel for rel, _ in cgroups
                             if any(rel == top or rel.startswith(top + "/") for top in chosen)]
        for rel in list(self._seen):
            if rel not in found:        # gone: a new one there is described afresh
                del self._seen[rel]
                self._described.pop(rel, None)
        return new

    # where runtimes make their containers' cgroups, watched (Watch) even
    # before a container is there
    PARENTS = ("/machine.slice", "/system.slice", "/libpod_parent", "/docker", "/lxc",
               "/kubepods", "/kubepods.slice")

    def watch_dirs(self):
        """The directories where a cgroup of a chosen container may appear
        next: every directory above a container's cgroup, the runtimes'
        usual parents, and every cgroup of the chosen containers (for the
        cgroups made inside them)."""
        dirs = {"/"} | {p for p in self.PARENTS if os.path.isdir(self.root + p)}
        for rel, c in self._seen.items():
            parts = rel.split("/")
            dirs.update("/".join(parts[:i]) or "/" for i in range(2, len(parts)))
        dirs.update(self._chosen_dirs)
        return [self.root + d if d != "/" else self.root for d in dirs]

    def start(self):
        """The first refresh, checking every spec against what runs."""
        walked = self.containers()
        self.check(walked[0])
        return self.refresh(walked)


class Watch:
    """inotify(7) on cgroup directories: a cgroup made in one of them (a
    container started, a cgroup made inside one) is seen at the tool's next
    poll, instead of at its next periodic walk of the hierarchy."""

    IN_CREATE = 0x100

    def __init__(self):
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        # int inotify_init1(int flags);
        # int inotify_add_watch(int fd, const char *pathname, uint32_t mask);
        self._add = libc.inotify_add_watch
        self._add.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
        self._add.restype = ctypes.c_int
        self.fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if self.fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1")

    def watch(self, dirs):
        """Watch each of dirs (again: a directory removed and made anew is
        a new one to the kernel; watching one twice costs nothing more)."""
        for d in dirs:
            self._add(self.fd, os.fsencode(d), self.IN_CREATE)

    def fired(self):
        """Whether a cgroup was made in a watched directory since last asked."""
        seen = False
        while True:
            try:
                if not os.read(self.fd, 65536):
                    return seen
            except BlockingIOError:
                return seen
            except OSError:
                return seen
            seen = True

    def close(self):
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
