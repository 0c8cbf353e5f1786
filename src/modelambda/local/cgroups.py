"""One control group per execution environment: CPU by memory size, a hard memory limit, and
freezing between invocations, as on Lambda.

Lambda gives a function CPU in proportion to its memory (1769 MB buys one vCPU, up to 6 at
10240 MB), kills it the moment it goes over its memory size, and freezes the environment while
it has no invocation. The emulator does the same with Linux control groups:

- cgroup v1 (``cpu``, ``memory`` and ``freezer`` hierarchies, as on these machines):
  ``cpu.cfs_period_us`` / ``cpu.cfs_quota_us``, ``memory.limit_in_bytes`` (and
  ``memory.memsw.limit_in_bytes`` where swap is accounted, so nothing is swapped out instead),
  ``freezer.state``; the peak from ``memory.max_usage_in_bytes``, OOM kills from
  ``memory.oom_control``'s ``oom_kill`` counter.
- cgroup v2: ``cpu.max``, ``memory.max`` with ``memory.swap.max`` 0 and ``memory.oom.group``
  1, ``cgroup.freeze``; the peak from ``memory.peak``, OOM kills from ``memory.events``.

Where the groups go: one *base* group per emulator process, ``modelambda-<pid>-<start time>``,
and one group per environment inside it. On v1 the base goes under the emulator's own group in
each hierarchy, so environments stay within whatever limits the emulator itself runs under. On
v2 it goes in the nearest ancestor-or-self of the emulator's own group that this user can write
and that can hand ``cpu`` and ``memory`` to children (the root, any group for root; for a user,
a subtree systemd delegated, e.g. under ``user.slice/user-1000.slice/user@1000.service/``, or a
``systemd-run --user --scope -p Delegate=yes`` scope). A base whose emulator is gone (killed
with -9: its environments may still sit frozen) is swept by the next emulator that starts: its
groups are thawed, their processes killed, the groups removed.

Off when ``MODELAMBDA_CGROUPS=off`` (or a function or emulator setting says so), or when no
group is writable: that is said once on stderr, memory is then policed by polling RSS, CPU is
not limited and nothing is frozen. ``describe()`` says which mode is active (``/health``).
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import itertools
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from modelambda import limits

V1, V2, OFF = "v1", "v2", "off"
ENV_VAR = "MODELAMBDA_CGROUPS"
V1_CONTROLLERS = ("cpu", "memory", "freezer")
V2_CONTROLLERS = ("cpu", "memory")
CFS_PERIOD_US = 100_000
# The init phase runs with burst CPU whatever the memory size: "Lambda managed runtimes offer
# up to 10 seconds for function initialization with burst CPU" (awslabs.github.io/
# aws-lambda-web-adapter, async-init), measured as two unthrottled vCPUs (Luc van Donkersgoed,
# "Lambda Cold Starts and Bootstrap Code", 2023). Environments get this until their first
# /next, then their memory size's share.
INIT_BURST_VCPUS = 2.0
MIN_QUOTA_US = 1_000  # the kernel refuses a smaller CFS quota
BASE_PREFIX = "modelambda-"
_BASE_NAME = re.compile(r"^modelambda-(\d+)-(\d+)$")
_GROUP_CHARS = re.compile(r"[^A-Za-z0-9_.-]")
_OFF_WORDS = ("off", "0", "false", "no", "none", "disabled")


# --- pure functions: reading /proc, sizing ------------------------------------------------

@dataclass(frozen=True)
class MountPoint:
    fstype: str  # "cgroup" (v1) or "cgroup2"
    root: str  # the hierarchy's directory mounted there ("/" unless bind-mounted)
    path: str  # the mount point
    options: frozenset[str]  # super options: the v1 controllers, "name=...", ...


def _unescape(text: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), text)


def parse_mountinfo(text: str) -> list[MountPoint]:
    """The cgroup mounts in /proc/self/mountinfo."""
    found = []
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if not sep or len(fields) < 5 or len(tail) < 3 or tail[0] not in ("cgroup", "cgroup2"):
            continue
        found.append(MountPoint(tail[0], _unescape(fields[3]), _unescape(fields[4]),
                                frozenset(tail[2].split(","))))
    return found


def parse_proc_cgroup(text: str) -> dict[str, str]:
    """/proc/self/cgroup -> {controller: path}; the v2 group under the key ``""``."""
    groups: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        for controller in parts[1].split(",") if parts[1] else [""]:
            groups[controller] = parts[2]
    return groups


def group_dir(mount: MountPoint, path: str) -> Path:
    """Where group ``path`` (as /proc/self/cgroup names it) is under ``mount``."""
    root = mount.root.rstrip("/")
    if root and (path == root or path.startswith(root + "/")):
        path = path[len(root):]
    return Path(mount.path) / path.lstrip("/")


def machine_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def vcpus(memory_mb: int, cores: int) -> float:
    """Lambda's CPU share for a memory size (1769 MB = 1 vCPU), capped at the machine's."""
    return min(memory_mb / limits.MEMORY_MB_PER_VCPU, float(cores))


def cpu_quota_us(memory_mb: int, cores: int, period_us: int = CFS_PERIOD_US) -> int:
    return max(MIN_QUOTA_US, round(vcpus(memory_mb, cores) * period_us))


def init_quota_us(memory_mb: int, cores: int, period_us: int = CFS_PERIOD_US) -> int:
    """The quota during the init phase: the burst, or the memory's share if larger."""
    burst = round(min(INIT_BURST_VCPUS, float(cores)) * period_us)
    return max(burst, cpu_quota_us(memory_mb, cores, period_us))


def base_name(pid: int) -> str | None:
    start = process_start(pid)
    return None if start is None else f"{BASE_PREFIX}{pid}-{start}"


def process_start(pid: int) -> int | None:
    """The process's start time (clock ticks after boot): tells a pid reused apart."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            return int(handle.read().rsplit(b")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def stale_base(name: str) -> bool:
    """Whether base group ``name`` belongs to an emulator process that is gone."""
    match = _BASE_NAME.match(name)
    if match is None:
        return False
    return process_start(int(match.group(1))) != int(match.group(2))


def looks_oom(exit_code: int | None, peak_bytes: int | None, limit_bytes: int) -> bool:
    """Killed by SIGKILL with the group's peak at its limit: the kernel's OOM killer, where
    no OOM counter says so (bwrap reports its child's signal as 128 + signal)."""
    killed = exit_code in (-signal.SIGKILL, 128 + signal.SIGKILL)
    return killed and peak_bytes is not None and peak_bytes >= limit_bytes - 2 * 4096 * 256


def setting_from_env(environ: dict[str, str] | None = None) -> bool | None:
    """``MODELAMBDA_CGROUPS``: False for off/0/false/no, else None (use them when possible)."""
    value = (environ if environ is not None else os.environ).get(ENV_VAR, "")
    return False if value.strip().lower() in _OFF_WORDS else None


# --- detection ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Layout:
    version: str  # V1 or V2
    parents: dict[str, Path]  # v1: controller -> directory the base goes in; v2: {"": dir}


@dataclass(frozen=True)
class Detection:
    mode: str  # V1, V2 or OFF
    detail: str  # where the groups go, or why there are none
    layout: Layout | None = None


def _can_write(path: Path) -> bool:
    return os.access(path, os.W_OK)


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def detect(mountinfo: str, proc_cgroup: str, *,
           writable: Callable[[Path], bool] | None = None) -> Detection:
    """Which hierarchy environments' groups go in: v1 when cpu, memory and freezer are all
    mounted and writable, else v2 where a writable group can delegate cpu and memory."""
    can_write = writable or _can_write
    mounts = parse_mountinfo(mountinfo)
    own = parse_proc_cgroup(proc_cgroup)
    reasons = []
    v1 = {c: m for m in mounts if m.fstype == "cgroup" for c in V1_CONTROLLERS if c in m.options}
    if v1:
        missing = [c for c in V1_CONTROLLERS if c not in v1]
        parents = {c: group_dir(v1[c], own.get(c, "/")) for c in V1_CONTROLLERS if c in v1}
        unwritable = [str(d) for d in parents.values() if not (d.is_dir() and can_write(d))]
        if not missing and not unwritable:
            return Detection(V1, "v1: " + ", ".join(f"{c} under {d}" for c, d in parents.items()),
                             Layout(V1, parents))
        reasons.append(f"cgroup v1 lacks {', '.join(missing)}" if missing
                       else f"cgroup v1 is not writable here ({', '.join(unwritable)})")
    for mount in (m for m in mounts if m.fstype == "cgroup2"):
        start = group_dir(mount, own.get("", "/"))
        top = Path(mount.path)
        directory = start
        while True:
            if _delegates(directory, directory == top, can_write):
                return Detection(V2, f"v2: under {directory}", Layout(V2, {"": directory}))
            if directory == top or directory.parent == directory:
                break
            directory = directory.parent
        reasons.append(f"cgroup v2 at {mount.path}: no group from {start} up is writable and "
                       "can hand cpu and memory to children (as a user, run under a delegated "
                       "scope: systemd-run --user --scope -p Delegate=yes ...)")
        break
    if not mounts:
        reasons.append("no cgroup file system is mounted")
    return Detection(OFF, "; ".join(reasons))


def _delegates(directory: Path, is_root: bool, can_write: Callable[[Path], bool]) -> bool:
    """Whether groups with cpu and memory limits can be made under ``directory`` by us."""
    controllers = _read(directory / "cgroup.controllers").split()
    if not all(c in controllers for c in V2_CONTROLLERS):
        return False
    if not all(can_write(p) for p in (directory, directory / "cgroup.subtree_control",
                                      directory / "cgroup.procs")):
        return False
    enabled = _read(directory / "cgroup.subtree_control").split()
    # no internal processes: a group with processes of its own cannot enable controllers
    return is_root or all(c in enabled for c in V2_CONTROLLERS) or \
        not _read(directory / "cgroup.procs").strip()


# --- one environment's group ----------------------------------------------------------------

def _write(path: Path, value: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_TRUNC)  # (as `echo v > file`; fakes need it)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


def _read_int(path: Path) -> int | None:
    try:
        fd = os.open(path, os.O_RDONLY)  # (a third of open()'s cost: this is on the warm path)
        try:
            return int(os.read(fd, 64).split()[0])
        finally:
            os.close(fd)
    except (OSError, IndexError, ValueError):
        return None


def _keyed(path: Path, key: str) -> int | None:
    """The value of ``key`` in a flat-keyed file such as memory.events."""
    try:
        with open(path, "rb") as handle:
            for line in handle:
                name, _, value = line.partition(b" ")
                if name.decode() == key:
                    return int(value)
    except (OSError, ValueError):
        return None
    return None


@dataclass
class Group:
    """One environment's control group (one directory per v1 hierarchy, one on v2)."""

    version: str
    dirs: dict[str, Path]  # v1: controller -> directory; v2: {"": directory}
    memory_bytes: int = 0
    quota_us: int = 0
    period_us: int = CFS_PERIOD_US
    frozen: bool = False
    removed: bool = False
    _has_peak: bool | None = field(default=None, repr=False)
    # files used on the warm path, kept open: opening one costs ~25 us, a pread ~2 us
    _open: dict[tuple[str, str], int] = field(default_factory=dict, repr=False)

    def file(self, controller: str, name: str) -> Path:
        return self.dirs["" if self.version == V2 else controller] / name

    @property
    def name(self) -> str:
        return next(iter(self.dirs.values())).name

    def _kept(self, controller: str, name: str, flags: int) -> int:
        key = (controller, name)
        fd = self._open.get(key)
        if fd is None:
            fd = self._open[key] = os.open(self.file(controller, name), flags)
        return fd

    def _write_kept(self, controller: str, name: str, value: bytes) -> None:
        os.pwrite(self._kept(controller, name, os.O_WRONLY), value, 0)

    def _read_kept(self, controller: str, name: str) -> int | None:
        try:
            return int(os.pread(self._kept(controller, name, os.O_RDONLY), 64, 0).split()[0])
        except (OSError, IndexError, ValueError):
            return None

    def close(self) -> None:
        """Close the files kept open (reopened if used again)."""
        for fd in self._open.values():
            with contextlib.suppress(OSError):
                os.close(fd)
        self._open.clear()

    def set_limits(self, memory_bytes: int, quota_us: int, period_us: int = CFS_PERIOD_US
                   ) -> None:
        self.memory_bytes = memory_bytes
        self.set_cpu(quota_us, period_us)
        if self.version == V1:
            _write(self.file("memory", "memory.limit_in_bytes"), str(memory_bytes))
            memsw = self.file("memory", "memory.memsw.limit_in_bytes")
            if memsw.exists():  # swap accounted: no swapping past the limit either
                _write(memsw, str(memory_bytes))
            return
        _write(self.file("memory", "memory.max"), str(memory_bytes))
        for name, value in (("memory.swap.max", "0"), ("memory.oom.group", "1")):
            path = self.file("memory", name)
            if path.exists():
                _write(path, value)

    def set_cpu(self, quota_us: int, period_us: int = CFS_PERIOD_US) -> None:
        """The CPU quota: ``quota_us`` of CPU time per ``period_us`` (over all CPUs)."""
        if self.version == V1:
            if period_us != self.period_us or not self.quota_us:
                _write(self.file("cpu", "cpu.cfs_period_us"), str(period_us))
            _write(self.file("cpu", "cpu.cfs_quota_us"), str(quota_us))
        else:
            _write(self.file("cpu", "cpu.max"), f"{quota_us} {period_us}")
        self.quota_us, self.period_us = quota_us, period_us

    def attach(self, pid: int) -> None:
        """Move process ``pid`` (and, from then on, its children) into this group."""
        for directory in self.dirs.values():
            _write(directory / "cgroup.procs", str(pid))

    def freeze(self) -> None:
        if self.version == V1:
            self._write_kept("freezer", "freezer.state", b"FROZEN")
        else:
            self._write_kept("", "cgroup.freeze", b"1")
        self.frozen = True

    def thaw(self) -> None:
        if self.version == V1:
            self._write_kept("freezer", "freezer.state", b"THAWED")
        else:
            self._write_kept("", "cgroup.freeze", b"0")
        self.frozen = False

    def usage(self) -> int:
        name = "memory.usage_in_bytes" if self.version == V1 else "memory.current"
        return _read_int(self.file("memory", name)) or 0

    def peak(self) -> int | None:
        """The most memory the group has held (None where the kernel does not keep it)."""
        name = "memory.max_usage_in_bytes" if self.version == V1 else "memory.peak"
        return self._read_kept("memory", name)

    @property
    def has_peak(self) -> bool:
        if self._has_peak is None:
            self._has_peak = self.peak() is not None
        return self._has_peak

    def oom_kills(self) -> int | None:
        """How many processes the kernel killed for going over the limit (None: unknown)."""
        if self.version == V1:
            return _keyed(self.file("memory", "memory.oom_control"), "oom_kill")
        return _keyed(self.file("memory", "memory.events"), "oom_kill")

    def shmem(self) -> int:
        """Bytes of shared memory (the /tmp tmpfs) charged to the group."""
        key = "total_shmem" if self.version == V1 else "shmem"
        return _keyed(self.file("memory", "memory.stat"), key) or 0

    def pids(self) -> list[int]:
        found: set[int] = set()
        for directory in self.dirs.values():
            with contextlib.suppress(OSError, ValueError):
                found.update(int(p) for p in (directory / "cgroup.procs").read_text().split())
        return sorted(found)

    def kill_all(self) -> None:
        """SIGKILL everything in the group (thawed first: a frozen v1 task cannot die)."""
        if self.removed:
            return
        with contextlib.suppress(OSError):
            self.thaw()
        kill = self.file("", "cgroup.kill") if self.version == V2 else None
        if kill is not None and kill.exists():
            with contextlib.suppress(OSError):
                _write(kill, "1")
                return
        for pid in self.pids():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)

    def remove(self) -> bool:
        """Remove the group's directories; False while processes are still in it."""
        self.close()
        for directory in list(self.dirs.values()):
            try:
                directory.rmdir()
            except FileNotFoundError:
                continue
            except OSError as exc:
                if exc.errno in (errno.EBUSY, errno.ENOTEMPTY):
                    return False
                raise
        self.removed = True
        return True

    def describe(self, steady_quota_us: int | None = None) -> str:
        """One line: the CPU share (and the init burst, while it lasts) and the limit."""
        share = (steady_quota_us or self.quota_us) / self.period_us
        burst = (f" ({self.quota_us / self.period_us:.2f} during init)"
                 if steady_quota_us and steady_quota_us != self.quota_us else "")
        return (f"cgroup {self.version} {self.name}: {share:.2f} vCPU{burst}, memory limit "
                f"{self.memory_bytes // 2**20} MB, frozen between invocations")


# --- the emulator process's base group --------------------------------------------------------

class Hierarchy:
    """The base group of this emulator process and the environments' groups in it."""

    def __init__(self, layout: Layout, name: str) -> None:
        self.layout = layout
        self.name = name
        self.bases = {key: parent / name for key, parent in layout.parents.items()}
        self._made = False
        self._lock = threading.Lock()
        self._counter = itertools.count(1)

    @property
    def version(self) -> str:
        return self.layout.version

    def _make_bases(self) -> None:
        with self._lock:
            if self._made:
                return
            for key, base in self.bases.items():
                if self.version == V2:
                    _enable(self.layout.parents[key])
                base.mkdir(exist_ok=True)
                if self.version == V2:
                    _enable(base)
            self._made = True

    def create(self, label: str, memory_bytes: int, quota_us: int) -> Group:
        """A new group for one environment, limits set, nothing in it yet."""
        self._make_bases()
        name = f"{_GROUP_CHARS.sub('_', label)[:80]}-{next(self._counter)}"
        group = Group(self.version, {key: base / name for key, base in self.bases.items()})
        made = []
        try:
            for directory in group.dirs.values():
                directory.mkdir()
                made.append(directory)
            group.set_limits(memory_bytes, quota_us)
        except BaseException:
            for directory in made:
                with contextlib.suppress(OSError):
                    directory.rmdir()
            raise
        return group

    def groups(self) -> list[str]:
        """The environments' groups that exist now (in any hierarchy)."""
        names: set[str] = set()
        for base in self.bases.values():
            with contextlib.suppress(OSError):
                names.update(p.name for p in base.iterdir() if p.is_dir())
        return sorted(names)

    def remove(self, wait_s: float = 2.0) -> None:
        """Kill what is left in the environments' groups, remove them and the base."""
        for name in self.groups():
            _discard(Group(self.version, {k: b / name for k, b in self.bases.items()}), wait_s)
        for base in self.bases.values():
            with contextlib.suppress(OSError):
                base.rmdir()
        self._made = False


def _enable(directory: Path) -> None:
    """Let ``directory``'s children have cpu and memory limits (v2's subtree_control)."""
    enabled = _read(directory / "cgroup.subtree_control").split()
    wanted = [c for c in V2_CONTROLLERS if c not in enabled]
    if wanted:
        _write(directory / "cgroup.subtree_control", " ".join(f"+{c}" for c in wanted))


def _discard(group: Group, wait_s: float) -> bool:
    deadline = time.monotonic() + wait_s
    while True:
        group.kill_all()
        try:
            if group.remove():
                return True
        except OSError:
            return False
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)


def sweep_stale(layout: Layout, wait_s: float = 2.0) -> list[str]:
    """Remove the base groups of emulators that are gone (and kill what is in them)."""
    swept = []
    names: set[str] = set()
    for parent in layout.parents.values():
        with contextlib.suppress(OSError):
            names.update(p.name for p in parent.iterdir() if p.name.startswith(BASE_PREFIX))
    for name in sorted(n for n in names if stale_base(n)):
        Hierarchy(layout, name).remove(wait_s)
        swept.append(name)
    return swept


# --- once per process -----------------------------------------------------------------------

_state_lock = threading.Lock()
_detection: Detection | None = None
_hierarchy: Hierarchy | None = None
_said: set[str] = set()
_asked_off: str | None = None  # how they were last switched off, for banners


def detection() -> Detection:
    """What this machine offers (detected once per process)."""
    global _detection, _hierarchy
    with _state_lock:
        if _detection is not None:
            return _detection
        try:
            with open("/proc/self/mountinfo") as mi, open("/proc/self/cgroup") as cg:
                found = detect(mi.read(), cg.read())
        except OSError as exc:
            found = Detection(OFF, f"cannot read /proc: {exc}")
        if found.layout is not None:
            name = base_name(os.getpid())
            try:
                if name is None:
                    raise OSError("cannot read this process's start time")
                sweep_stale(found.layout)
                hierarchy = Hierarchy(found.layout, name)
                hierarchy._make_bases()
            except OSError as exc:
                found = Detection(OFF, f"cannot create control groups ({found.detail}): {exc}")
            else:
                _hierarchy = hierarchy
                atexit.register(hierarchy.remove)
        _detection = found
        return found


def hierarchy() -> Hierarchy:
    detection()
    if _hierarchy is None:
        raise RuntimeError("control groups are not available here")
    return _hierarchy


def _say_once(message: str) -> None:
    if message not in _said:
        _said.add(message)
        print(f"modelambda: {message}", file=sys.stderr)


def mode_for(*settings: bool | None) -> str:
    """The mode environments get, given the function's and the emulator's settings (first
    one not None wins; False is off, True requires them) and MODELAMBDA_CGROUPS."""
    global _asked_off
    chosen = next((s for s in settings if s is not None), None)
    if chosen is False or (chosen is None and setting_from_env() is False):
        why = _asked_off = (f"{ENV_VAR}=off" if chosen is None else "cgroups=False")
        _say_once(f"control groups are off as asked ({why}): no CPU share by memory size, "
                  "memory polled (RSS), environments not frozen between invocations")
        return OFF
    found = detection()
    if found.mode == OFF:
        if chosen is True:
            raise RuntimeError(f"control groups were required but are not available: "
                               f"{found.detail}")
        _say_once(f"control groups unavailable ({found.detail}): no CPU share by memory "
                  "size, memory polled (RSS), environments not frozen between invocations")
    return found.mode


def describe_mode(mode: str) -> str:
    """One line for banners: what the mode means for environments."""
    if mode == OFF:
        found = _detection
        why = (f"as asked: {_asked_off}" if found is None or found.mode != OFF
               else found.detail)
        return (f"cgroups off ({why}): CPU not limited, memory polled (RSS), "
                "environments not frozen")
    return (f"cgroups {mode}: CPU by memory size ({limits.MEMORY_MB_PER_VCPU} MB = 1 vCPU, "
            f"up to {machine_cores()} here), hard memory limit, frozen between invocations")
