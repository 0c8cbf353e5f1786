"""How one execution environment's process is started: bubblewrap, or plain with a warning.

Inside bubblewrap the function sees Lambda's layout: its code read-only at ``/var/task``, its
layers read-only at ``/opt``, the Lambda runtime (awslambdaric, boto3) at ``/var/runtime``, a
``/tmp`` tmpfs capped at the function's ephemeral storage (so a full /tmp fails with "No space
left on device" as on Lambda), EFS directories at their mount paths, its own PID namespace.
The host's root is bound read-only underneath for the interpreter and the system libraries;
the interpreter runs with ``-S`` so no site-packages of this machine leak in.

Without bwrap (not installed, or switched off with ``use_bwrap=False``, i.e. ``up
--no-sandbox``), the process runs plainly with the paths remapped through the runtime's
``MODELAMBDA_*`` variables, and the emulator says once that isolation is off, and why.

With control groups on (``cgroups.py``), the ``/tmp`` tmpfs is memory charged to the
environment's group, so what a function keeps in /tmp counts toward its memory limit (on
Lambda /tmp is separate storage): the out-of-memory log line says how much /tmp held.

modelambda's own runtime-side files (the pure-Python client, SnapStart's template) are shipped
into the runtime directory and run from ``/var/runtime`` (``lambda_runtime.ship_client``), so
nothing of the path modelambda is installed at needs to be visible inside.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass, field

from modelambda.local.lambda_runtime import ship_client

TASK_ROOT = "/var/task"
RUNTIME_DIR = "/var/runtime"
OPT_DIR = "/opt"

_warned: set[str] = set()  # the reasons already said


@dataclass
class SandboxSpec:
    python: str  # interpreter binary on the host
    handler: str  # "module.function"
    task_dir: str  # host dir -> /var/task
    runtime_dir: str  # host dir with awslambdaric & co -> /var/runtime
    tmp_dir: str  # host dir used as /tmp without bwrap
    opt_dir: str | None = None  # host dir -> /opt
    ephemeral_mb: int = 512
    mounts: dict[str, str] = field(default_factory=dict)  # mount path in env -> host dir (rw)
    env: dict[str, str] = field(default_factory=dict)  # Lambda's variables for the function
    runtime_client: str = "awslambdaric"  # or "python": modelambda's pyric.py
    # a file of modelambda's runtime client (lambda_runtime.CLIENT_FILES) to run instead of
    # the runtime client, e.g. "snapstart_boot.py" for SnapStart's template
    entry: str | None = None
    # start the external extensions in /opt/extensions before the runtime
    extensions: bool = False


# Attaching a process to its control group before it runs anything: it is started as this
# small shell, which waits for one line on its stdin (written once the emulator has put the
# shell's pid in the group), then execs the real command with stdin from /dev/null. At EOF
# (the emulator could not attach it, or died) it exits 111 without running anything. One
# exec of /bin/sh, about 0.8 ms per cold start.
HOLD_SCRIPT = 'read -r go || exit 111; exec "$@" </dev/null'


# External extensions: every executable file in /opt/extensions is started in the background,
# in the environment, with its variables, then the runtime takes this shell's place (so the
# extensions are its children, in its control group and PID namespace). One exec of /bin/sh,
# only for functions that have extensions.
EXTENSIONS_SCRIPT = ('dir=$1; shift; for e in "$dir"/*; do '
                     'if [ -f "$e" ] && [ -x "$e" ]; then "$e" & fi; done; exec "$@"')


def extension_files(opt_dir: str | os.PathLike[str] | None) -> list[str]:
    """The external extensions of a function: executable files in ``<opt>/extensions``."""
    if not opt_dir:
        return []
    directory = os.path.join(opt_dir, "extensions")
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return []
    return [name for name in names if os.path.isfile(os.path.join(directory, name))
            and os.access(os.path.join(directory, name), os.X_OK)]


def held_command(argv: list[str]) -> list[str]:
    """``argv`` behind the gate above."""
    return ["/bin/sh", "-c", HOLD_SCRIPT, "modelambda-hold", *argv]


def bwrap_path() -> str | None:
    return shutil.which("bwrap")


def sandbox_mode(use_bwrap: bool | None) -> str:
    """"bwrap" or "plain": how environments started with ``use_bwrap`` really run."""
    return "bwrap" if use_bwrap is not False and bwrap_path() is not None else "plain"


def python_path(python_version: str, task: str, opt: str | None, runtime: str) -> str:
    """Lambda's search order: task root, layers' site-packages, layers, then the runtime."""
    parts = [task]
    if opt:
        parts += [f"{opt}/python/lib/python{python_version}/site-packages", f"{opt}/python"]
    parts.append(runtime)
    return ":".join(parts)


def bwrap_mounts(spec: SandboxSpec) -> list[str]:
    """The file system an environment sees, as bwrap arguments (order matters)."""
    argv = ["--ro-bind", "/", "/", "--tmpfs", "/var",
            "--ro-bind", spec.task_dir, TASK_ROOT,
            "--ro-bind", spec.runtime_dir, RUNTIME_DIR]
    if spec.opt_dir:
        argv += ["--ro-bind", spec.opt_dir, OPT_DIR]
    else:
        argv += ["--tmpfs", OPT_DIR]  # an empty /opt, not the host's
    argv += ["--size", str(spec.ephemeral_mb * 1024 * 1024), "--tmpfs", "/tmp"]
    interpreter = os.path.dirname(os.path.dirname(os.path.realpath(spec.python)))
    for home in hidden_homes():
        argv += ["--tmpfs", home]  # the developer's files are not the function's
        # ... but the interpreter's installation (e.g. pyenv's) stays visible where it is
        if (interpreter + "/").startswith(home.rstrip("/") + "/"):
            argv += ["--ro-bind", interpreter, interpreter]
    if spec.mounts:
        argv += ["--tmpfs", "/mnt"]  # EFS mount points live under /mnt, as on Lambda
    for mount_path, host_dir in sorted(spec.mounts.items()):
        argv += ["--bind", host_dir, mount_path]
    return argv


def hidden_homes() -> list[str]:
    """The developer's home and every user's (/root, /home): each replaced by an empty
    directory inside, parents first."""
    homes = {os.path.expanduser("~"), "/root", "/home"}
    return sorted(h for h in homes if h not in ("/", "") and os.path.isdir(h))


def read_only_remounts(spec: SandboxSpec) -> list[str]:
    """The tmpfs mounts made only to hold mount points (/var for /var/task and /var/runtime,
    an empty /opt, the hidden homes, /mnt for EFS paths, bwrap's /dev and its /dev/shm), made
    read-only once everything is mounted: on Lambda /tmp is the only writable path (and there
    is no /dev/shm). The device nodes stay writable. bwrap applies its arguments in order, so
    these go after every mount (SnapStart's socket directory under /var included)."""
    paths = ["/var", *([] if spec.opt_dir else [OPT_DIR]), *hidden_homes(),
             *(["/mnt"] if spec.mounts else []), "/dev", "/dev/shm"]
    return [arg for path in paths for arg in ("--remount-ro", path)]


def _warn_plain(reason: str) -> None:
    if reason in _warned:
        return
    _warned.add(reason)
    why = ("the sandbox is off as asked (--no-sandbox / use_bwrap=False)" if reason == "asked"
           else "bwrap not found (apt-get install bubblewrap)")
    print(f"modelambda: {why}: environments run as plain processes: no read-only /var/task, "
          "no /tmp size cap, no PID namespace", file=sys.stderr)


def build_command(spec: SandboxSpec, python_version: str, use_bwrap: bool | None = None
                  ) -> tuple[list[str], dict[str, str], str]:
    """(argv, environment, working directory) for one environment's process."""
    bwrap = bwrap_path() if use_bwrap is not False else None
    if use_bwrap and bwrap is None:
        raise RuntimeError("bubblewrap (bwrap) is not installed: apt-get install bubblewrap")
    runtime_root = RUNTIME_DIR if bwrap is not None else spec.runtime_dir
    entry = spec.entry or ("pyric.py" if spec.runtime_client == "python" else None)
    if entry is not None:
        client = ship_client(spec.runtime_dir)
        runtime_args = [spec.python, "-S", f"{runtime_root}/{client}/{entry}", spec.handler]
    else:
        runtime_args = [spec.python, "-S", "-m", "awslambdaric", spec.handler]
    if spec.extensions and spec.opt_dir:
        extensions = f"{OPT_DIR if bwrap is not None else spec.opt_dir}/extensions"
        runtime_args = ["/bin/sh", "-c", EXTENSIONS_SCRIPT, "modelambda-extensions",
                        extensions, *runtime_args]
    env = dict(spec.env)
    if bwrap is not None:
        opt = OPT_DIR if spec.opt_dir else None
        env.update(LAMBDA_TASK_ROOT=TASK_ROOT, LAMBDA_RUNTIME_DIR=RUNTIME_DIR,
                   PYTHONPATH=python_path(python_version, TASK_ROOT, opt, RUNTIME_DIR))
        return [bwrap, *bwrap_mounts(spec), "--proc", "/proc", "--dev", "/dev",
                *read_only_remounts(spec), "--unshare-pid", "--die-with-parent",
                "--new-session", "--chdir", TASK_ROOT,
                *runtime_args], env, "/"
    _warn_plain("asked" if use_bwrap is False else "missing")
    os.makedirs(spec.tmp_dir, exist_ok=True)
    env.update(LAMBDA_TASK_ROOT=spec.task_dir, LAMBDA_RUNTIME_DIR=spec.runtime_dir,
               MODELAMBDA_TMP_DIR=spec.tmp_dir, TMPDIR=spec.tmp_dir,
               PYTHONPATH=python_path(python_version, spec.task_dir, spec.opt_dir,
                                      spec.runtime_dir))
    if spec.opt_dir:
        env["MODELAMBDA_OPT_DIR"] = spec.opt_dir
    if spec.mounts:
        # the runtime's EFS source reads MODELAMBDA_EFS_DIR in place of the mount path
        env["MODELAMBDA_EFS_DIR"] = next(iter(spec.mounts.values()))
    return runtime_args, env, spec.task_dir
