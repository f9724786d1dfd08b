"""containers.py without a kernel: the cgroup path parser fed each runtime's
paths (as the runtimes' documentation lays them out), the runtimes' records
read from fake files, the resolver's cache and the --container selection
over a fake hierarchy."""
import json
import os
import struct

import pytest

from helpers import ROOT  # noqa: F401  (puts lib/ on sys.path)
from snooptools import containers
from snooptools.containers import Records, Resolver, Selection, parse_path
from snooptools.errors import UsageError

A = "a" * 60 + "0001"
B = "b" * 60 + "0002"
UID = "0f2a4b6c-1d3e-4f50-9a8b-7c6d5e4f3a2b"


def found(path):
    c = parse_path(path)
    return c and (c.runtime, c.id, c.name, c.pod_uid, c.cgroup)


@pytest.mark.parametrize("path,expected", [
    # podman: systemd cgroup manager (rootful, rootless, in a pod), cgroupfs
    ("/machine.slice/libpod-%s.scope" % A,
     ("podman", A, None, None, "/machine.slice/libpod-%s.scope" % A)),
    ("/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-%s.scope" % A,
     ("podman", A, None, None,
      "/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-%s.scope" % A)),
    ("/machine.slice/machine-libpod_pod_%s.slice/libpod-%s.scope" % (B, A),
     ("podman", A, None, None, "/machine.slice/machine-libpod_pod_%s.slice/libpod-%s.scope"
      % (B, A))),
    ("/libpod_parent/libpod-%s" % A, ("podman", A, None, None, "/libpod_parent/libpod-%s" % A)),
    # a cgroup inside the container (systemd running in it): the container's
    ("/machine.slice/libpod-%s.scope/container/init.scope" % A,
     ("podman", A, None, None, "/machine.slice/libpod-%s.scope" % A)),
    # docker: systemd and cgroupfs drivers
    ("/system.slice/docker-%s.scope" % A, ("docker", A, None, None,
                                           "/system.slice/docker-%s.scope" % A)),
    ("/docker/%s" % A, ("docker", A, None, None, "/docker/%s" % A)),
    # containerd's CRI plugin, systemd driver, each QoS class
    ("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod%s.slice/"
     "cri-containerd-%s.scope" % (UID.replace("-", "_"), A),
     ("containerd", A, None, UID, "/kubepods.slice/kubepods-burstable.slice/"
      "kubepods-burstable-pod%s.slice/cri-containerd-%s.scope" % (UID.replace("-", "_"), A))),
    ("/kubepods.slice/kubepods-pod%s.slice/cri-containerd-%s.scope" % (UID.replace("-", "_"), A),
     ("containerd", A, None, UID, "/kubepods.slice/kubepods-pod%s.slice/cri-containerd-%s.scope"
      % (UID.replace("-", "_"), A))),
    # nerdctl (containerd's CLI), systemd driver
    ("/system.slice/nerdctl-%s.scope" % A, ("containerd", A, None, None,
                                            "/system.slice/nerdctl-%s.scope" % A)),
    # CRI-O
    ("/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod%s.slice/crio-%s.scope"
     % (UID.replace("-", "_"), A),
     ("cri-o", A, None, UID, "/kubepods.slice/kubepods-besteffort.slice/"
      "kubepods-besteffort-pod%s.slice/crio-%s.scope" % (UID.replace("-", "_"), A))),
    # Kubernetes with the cgroupfs driver: which CRI runtime, its files say
    ("/kubepods/burstable/pod%s/%s" % (UID, A),
     ("cri", A, None, UID, "/kubepods/burstable/pod%s/%s" % (UID, A))),
    ("/kubepods/pod%s/%s" % (UID, A), ("cri", A, None, UID, "/kubepods/pod%s/%s" % (UID, A))),
    # LXC 4+, and the older layout; nested cgroups of the container's own
    ("/lxc.payload.web", ("lxc", None, "web", None, "/lxc.payload.web")),
    ("/lxc.payload.web/system.slice/cron.service", ("lxc", None, "web", None, "/lxc.payload.web")),
    ("/lxc/web", ("lxc", None, "web", None, "/lxc/web")),
    # systemd-machined: systemd-nspawn (the name unescaped), libvirt
    ("/machine.slice/machine-web\\x2d1.scope",
     ("systemd-nspawn", None, "web-1", None, "/machine.slice/machine-web\\x2d1.scope")),
    ("/machine.slice/machine-qemu\\x2d1\\x2dvm1.scope",
     ("libvirt-qemu", None, "vm1", None, "/machine.slice/machine-qemu\\x2d1\\x2dvm1.scope")),
    # a container in a container: the innermost
    ("/machine.slice/libpod-%s.scope/docker/%s" % (A, B),
     ("docker", B, None, None, "/machine.slice/libpod-%s.scope/docker/%s" % (A, B))),
])
def test_each_runtimes_paths(path, expected):
    assert found(path) == expected


@pytest.mark.parametrize("path", [
    "/", "/init.scope", "/system.slice/sshd.service", "/user.slice/user-0.slice/session-4.scope",
    "/system.slice/docker.service", "/system.slice/containerd.service",
    # the runtimes' monitors are not the container
    "/machine.slice/libpod-conmon-%s.scope" % A, "/libpod_parent/conmon",
    "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod%s.slice/"
    "crio-conmon-%s.scope" % (UID.replace("-", "_"), A),
    "/lxc.monitor.web", "/lxc.pivot",
    # a pod's own slice, a bare id outside docker/ and pods, a short id
    "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod%s.slice"
    % UID.replace("-", "_"),
    "/system.slice/%s" % A, "/docker/abc123",
    # a podman pod's slice is a slice, not a machine scope
    "/machine.slice/machine-libpod_pod_%s.slice" % B,
])
def test_cgroups_of_no_container(path):
    assert parse_path(path) is None


def test_keys_and_label():
    c = containers.Container("podman", A, "web")
    assert c.keys() == {"container_id": A, "container_runtime": "podman", "container_name": "web"}
    assert c.label() == "web"
    assert containers.Container("docker", A).label() == A[:12]
    lxc = containers.Container("lxc", name="web")
    assert lxc.keys() == {"container_id": "web", "container_runtime": "lxc",
                          "container_name": "web"}
    c = containers.Container("containerd", A, "app", pod_uid=UID)
    c.pod, c.namespace = "web-7d9f", "shop"
    assert list(c.keys()) == ["container_id", "container_runtime", "container_name", "pod",
                              "namespace", "pod_uid"]


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(data, f)


@pytest.fixture
def records(tmp_path):
    t = str(tmp_path)
    return Records(docker=(t + "/docker", t + "/home/*/.local/share/docker"),
                   storage=(t + "/storage",),
                   oci_states=(t + "/run/runc/%s/state.json", t + "/run/crun/%s/status",
                               t + "/run/user/*/runc/%s/state.json"),
                   tasks=t + "/containerd", proc=t + "/proc")


def test_docker_config_names_it_and_its_pod(records, tmp_path):
    write("%s/docker/containers/%s/config.v2.json" % (tmp_path, A),
          {"Name": "/web", "Config": {"Labels": {"io.kubernetes.pod.name": "shop-1",
                                                 "io.kubernetes.pod.namespace": "prod"}}})
    c = records.describe(containers.Container("docker", A))
    assert (c.name, c.pod, c.namespace) == ("web", "shop-1", "prod")


def test_rootless_docker_config(records, tmp_path):
    write("%s/home/u/.local/share/docker/containers/%s/config.v2.json" % (tmp_path, A),
          {"Name": "/mine"})
    assert records.describe(containers.Container("docker", A)).name == "mine"


def test_podman_names_through_runc_state_and_its_store(records, tmp_path):
    store = "%s/elsewhere/vfs-containers" % tmp_path        # a --root of its own
    write("%s/run/runc/%s/state.json" % (tmp_path, A),
          {"config": {"labels": ["io.container.manager=libpod",
                                 "bundle=%s/%s/userdata" % (store, A)]}})
    write("%s/%s/userdata/config.json" % (store, A),
          {"annotations": {"io.container.manager": "libpod"}})
    write(store + "/containers.json", [{"id": B, "names": ["other"]},
                                       {"id": A, "names": ["web"]}])
    assert records.describe(containers.Container("podman", A)).name == "web"


def test_rootless_runc_state(records, tmp_path):
    store = "%s/home/u/.local/share/containers/storage/overlay-containers" % tmp_path
    write("%s/run/user/1000/runc/%s/state.json" % (tmp_path, A),
          {"config": {"labels": ["bundle=%s/%s/userdata" % (store, A)]}})
    write(store + "/containers.json", [{"id": A, "names": ["mine"]}])
    assert records.describe(containers.Container("podman", A)).name == "mine"


def test_conmon_names_the_bundle_when_the_runtime_state_is_elsewhere(records, tmp_path):
    store = "%s/elsewhere/vfs-containers" % tmp_path
    write(store + "/containers.json", [{"id": A, "names": ["web"]}])
    for pid, comm, argv in ((10, "bash", ["bash", "-c", A]),
                            (11, "conmon", ["/usr/bin/conmon", "--api-version", "1", "-c", B,
                                            "-b", "/nowhere", "-n", "other"]),
                            (12, "conmon", ["/usr/bin/conmon", "--api-version", "1", "-c", A,
                                            "-u", A, "-r", "/usr/bin/runc",
                                            "-b", "%s/%s/userdata" % (store, A), "-n", "web"])):
        d = tmp_path / "proc" / str(pid)
        d.mkdir(parents=True)
        (d / "comm").write_text(comm + "\n")
        (d / "cmdline").write_bytes(b"\0".join(a.encode() for a in argv) + b"\0")
    assert records.describe(containers.Container("podman", A)).name == "web"
    os.unlink("%s/containers.json" % store)         # the monitor's -n then
    records._stores.clear()
    assert records.describe(containers.Container("podman", A)).name == "web"
    assert records.describe(containers.Container("podman", "c" * 64)).name is None


def test_podman_names_in_the_default_store_without_runtime_state(records, tmp_path):
    write("%s/storage/overlay-containers/containers.json" % tmp_path,
          [{"id": A, "names": ["web"]}])
    assert records.describe(containers.Container("podman", A)).name == "web"


def test_store_is_read_again_when_it_changes(records, tmp_path):
    path = "%s/storage/overlay-containers/containers.json" % tmp_path
    write(path, [{"id": A, "names": ["web"]}])
    assert records.describe(containers.Container("podman", A)).name == "web"
    write(path, [{"id": A, "names": ["web"]}, {"id": B, "names": ["db"]}])
    os.utime(path, ns=(1, 1))           # a different mtime, whatever the clock's resolution
    assert records.describe(containers.Container("podman", B)).name == "db"


def test_containerd_cri_annotations(records, tmp_path):
    write("%s/containerd/k8s.io/%s/config.json" % (tmp_path, A), {"annotations": {
        "io.kubernetes.cri.container-type": "container",
        "io.kubernetes.cri.container-name": "app",
        "io.kubernetes.cri.sandbox-name": "shop-7d9f",
        "io.kubernetes.cri.sandbox-namespace": "prod",
        "io.kubernetes.cri.sandbox-uid": UID}})
    c = records.describe(parse_path("/kubepods/pod%s/%s" % (UID, A)))
    assert (c.runtime, c.name, c.pod, c.namespace, c.pod_uid) == \
        ("containerd", "app", "shop-7d9f", "prod", UID)


def test_crio_annotations_through_crun_state(records, tmp_path):
    bundle = "%s/crio/%s/userdata" % (tmp_path, A)
    write("%s/run/crun/%s/status" % (tmp_path, A), {"id": A, "bundle": bundle})
    write(bundle + "/config.json", {"annotations": {
        "io.kubernetes.cri-o.ContainerType": "container",
        "io.kubernetes.container.name": "app", "io.kubernetes.pod.name": "shop-7d9f",
        "io.kubernetes.pod.namespace": "prod"}})
    c = records.describe(parse_path("/kubepods/burstable/pod%s/%s" % (UID, A)))
    assert (c.runtime, c.name, c.pod, c.namespace) == ("cri-o", "app", "shop-7d9f", "prod")


def test_unreadable_or_broken_records_leave_the_name_unknown(records, tmp_path):
    write("%s/docker/containers/%s/config.v2.json" % (tmp_path, B), [])    # not an object
    (tmp_path / "run" / "runc" / A).mkdir(parents=True)
    (tmp_path / "run" / "runc" / A / "state.json").write_text("{not json")
    assert records.describe(containers.Container("podman", A)).name is None
    assert records.describe(containers.Container("docker", B)).name is None


@pytest.fixture
def hierarchy(tmp_path, records):
    """A fake cgroup hierarchy (directories: their inodes are their ids),
    with two podman containers whose names the default store knows."""
    root = tmp_path / "cgroup"
    for cid in (A, B):
        (root / "libpod_parent" / ("libpod-" + cid)).mkdir(parents=True)
    (root / "libpod_parent" / ("libpod-" + A) / "inner").mkdir()
    (root / "system.slice" / "sshd.service").mkdir(parents=True)
    write("%s/storage/overlay-containers/containers.json" % tmp_path,
          [{"id": A, "names": ["web"]}, {"id": B, "names": ["db"]}])
    return root


def ino(path):
    return os.stat(path).st_ino


def test_resolver_resolves_each_cgroup_once(hierarchy, records, monkeypatch):
    r = Resolver(str(hierarchy), records)
    web = ino(hierarchy / "libpod_parent" / ("libpod-" + A))
    inner = ino(hierarchy / "libpod_parent" / ("libpod-" + A) / "inner")
    sshd = ino(hierarchy / "system.slice" / "sshd.service")
    assert r(web) == {"container_id": A, "container_runtime": "podman", "container_name": "web"}
    assert r(inner) == r(web)
    assert r(sshd) == {}
    assert r.label(web) == "web" and r.label(sshd) == "-"
    calls = []
    monkeypatch.setattr(r, "container", lambda cid: calls.append(cid))
    assert r.cache[web]["container_name"] == "web"      # what the decoder reads per event
    r(web), r(sshd), r.label(web)
    assert calls == []


def test_resolver_looks_again_for_a_name_not_yet_written(hierarchy, records, tmp_path,
                                                         monkeypatch):
    (hierarchy / "libpod_parent" / ("libpod-" + "c" * 64)).mkdir()
    cid = ino(hierarchy / "libpod_parent" / ("libpod-" + "c" * 64))
    r = Resolver(str(hierarchy), records)
    assert r(cid) == {"container_id": "c" * 64, "container_runtime": "podman"}
    assert r.label(cid) == "c" * 12
    assert cid not in r.cache               # not final: looked at again
    write("%s/storage/overlay-containers/containers.json" % tmp_path,
          [{"id": "c" * 64, "names": ["late"]}])
    now = [containers.time.monotonic()]
    monkeypatch.setattr(containers.time, "monotonic", lambda: now[0])
    assert "container_name" not in r(cid)    # not before RETRY_SECONDS
    now[0] += Resolver.RETRY_SECONDS
    assert r(cid)["container_name"] == "late"
    assert r.cache[cid]["container_name"] == "late" and r.label(cid) == "late"


def test_selection_by_name_and_id(hierarchy, records):
    s = Selection(["web"], str(hierarchy), records)
    web = hierarchy / "libpod_parent" / ("libpod-" + A)
    assert s.start() == {ino(web), ino(web / "inner")}
    assert Selection([B[:12]], str(hierarchy), records).start() == \
        {ino(hierarchy / "libpod_parent" / ("libpod-" + B))}
    assert len(Selection(None, str(hierarchy), records).start()) == 3      # every container's


def test_selection_reads_records_only_to_compare_names(hierarchy, records, monkeypatch):
    read = []
    describe = records.describe
    monkeypatch.setattr(records, "describe", lambda c: read.append(c.id) or describe(c))
    Selection([A[:12]], str(hierarchy), records).start()
    Selection(None, str(hierarchy), records).start()
    assert read == []
    Selection(["db"], str(hierarchy), records).start()
    assert sorted(read) == [A, B]


def test_bits_of_the_kernel_filter():
    from snooptools import filters

    class Obj:
        def __init__(self):
            self.maps = {}

        def update(self, name, key, value):
            self.maps.setdefault(name, {})[key] = value
    obj = Obj()
    filters._add_cgroups(obj, {65, 70000}, {1, 65, 70000})
    assert sorted(obj.maps["container_cgroups"]) == [struct.pack("=Q", 65),
                                                     struct.pack("=Q", 70000)]
    words = struct.unpack("=1024Q", obj.maps["container_bits"][struct.pack("=I", 0)])
    assert {i: w for i, w in enumerate(words) if w} == {
        0: 1 << 1, 1: 1 << 1, (70000 >> 6) % 1024: 1 << (70000 & 63)}


def test_selection_refresh_adds_new_cgroups_only(hierarchy, records):
    s = Selection(["web"], str(hierarchy), records)
    s.start()
    assert s.refresh() == set()
    new = hierarchy / "libpod_parent" / ("libpod-" + A) / "later"
    new.mkdir()
    assert s.refresh() == {ino(new)}


def test_selection_refuses_unknown_and_ambiguous(hierarchy, records):
    with pytest.raises(UsageError) as e:
        Selection(["nosuch"], str(hierarchy), records).start()
    assert str(e.value) == "--container nosuch: no such container (running: db, web)"
    # a removed container's cgroup left behind, empty, is not listed as running
    (hierarchy / "libpod_parent" / ("libpod-" + B) / "cgroup.events").write_text(
        "populated 0\nfrozen 0\n")
    with pytest.raises(UsageError) as e:
        Selection(["nosuch"], str(hierarchy), records).start()
    assert str(e.value) == "--container nosuch: no such container (running: web)"
    (hierarchy / "libpod_parent" / ("libpod-" + "a" * 64)).mkdir()
    with pytest.raises(UsageError) as e:
        Selection(["aaaa"], str(hierarchy), records).start()
    assert str(e.value) == "--container aaaa: 2 containers have ids beginning so: give its id"
    empty = hierarchy.parent / "empty"
    empty.mkdir()
    with pytest.raises(UsageError) as e:
        Selection(["web"], str(empty), records).start()
    assert str(e.value) == "--container web: no such container (no container is running " \
                           "on this host)"


def test_the_decoder_adds_cgroup_id_vpid_and_the_containers_keys(monkeypatch):
    """Every record has cgroup_id, vpid where it differs from pid, and in
    --json the container's keys, from the resolver's cache (asked once per
    cgroup)."""
    import argparse
    from snooptools import loop, output
    from snooptools.btf import Layout
    from snooptools.tool import Tool

    head = Layout(["ts_ns", "pid", "tid", "uid", "comm", "vpid", "cgroup_id"], "=QIII16sIQ",
                  {}, 48)                   # struct task_head
    asked = []

    class FakeResolver:
        def __init__(self):
            self.cache = {}

        def __call__(self, cgroup_id):
            asked.append(cgroup_id)
            keys = {"container_id": A, "container_runtime": "podman",
                    "container_name": "web"} if cgroup_id == 880 else {}
            self.cache[cgroup_id] = keys
            return keys
    monkeypatch.setattr(containers, "Resolver", FakeResolver)

    def records(json_mode, events):
        tool = Tool()
        tool.clock = output.Clock()
        tool.args = argparse.Namespace(json=json_mode, containers=False, container=None,
                                       all_containers=False)
        out = []
        handle = loop.decoder(tool, head, out.append)
        for pid, vpid, cgroup_id in events:
            data = head.struct.pack(0, pid, pid, 0, b"cat", vpid, cgroup_id)
            handle(data, 0, len(data))
        return [{k: v for k, v in r.items() if k != "ts"} for r in out]

    events = [(100, 100, 1), (200, 7, 880), (201, 8, 880)]
    assert records(True, events) == [
        {"pid": 100, "tid": 100, "uid": 0, "comm": "cat", "cgroup_id": 1},
        {"pid": 200, "tid": 200, "uid": 0, "comm": "cat", "cgroup_id": 880, "vpid": 7,
         "container_id": A, "container_runtime": "podman", "container_name": "web"},
        {"pid": 201, "tid": 201, "uid": 0, "comm": "cat", "cgroup_id": 880, "vpid": 8,
         "container_id": A, "container_runtime": "podman", "container_name": "web"}]
    assert asked == [1, 880]            # once per cgroup
    asked.clear()
    # text without a CONTAINER column: nothing resolved
    assert records(False, events)[1] == {"pid": 200, "tid": 200, "uid": 0, "comm": "cat",
                                         "cgroup_id": 880, "vpid": 7}
    assert asked == []
