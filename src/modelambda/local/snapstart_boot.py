"""SnapStart's template process: awslambdaric, turned into a fork server at ``/restore/next``.

Runs inside the template's sandbox as ``python -S /var/runtime/<client dir>/snapstart_boot.py
module.function`` (see ``lambda_runtime.ship_client``): standalone, like ``pyric.py`` beside
it (stdlib and awslambdaric only, no modelambda imports), because the sandbox cannot see where
modelambda is installed. awslambdaric runs init and the before-snapshot hooks (it does both
when AWS_LAMBDA_INITIALIZATION_TYPE is ``snap-start``), then asks the Runtime API for
``/restore/next``: here that call connects to the emulator's control socket and serves forks.
Each fork gets its own Runtime API address and stdout/stderr (passed over the socket),
returns from ``restore_next``, and awslambdaric runs the after-restore hooks and polls. With a
third fd (a pipe), the child first waits for one byte on it: the emulator sends it once the
child is in its own control group (at EOF the child exits without running anything). A fork
is made as faithful to a restore as it can be: ``random``'s state is the snapshot's, not
re-seeded by the fork (as Python does in forked children), and it gets its own ``/tmp``
holding a copy of the snapshot's (``own_tmp``).
"""

from __future__ import annotations

import ctypes
import importlib.util
import json
import os
import shutil
import signal
import socket
import sys
from types import ModuleType
from typing import Any


def _load_pyric() -> ModuleType:
    """pyric.py from beside this file (this directory is not on sys.path, see main)."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pyric.py")
    spec = importlib.util.spec_from_file_location("pyric", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _random_state() -> Any:
    random = sys.modules.get("random")
    return None if random is None else random.getstate()


def _restore_random(state: Any) -> None:
    """Undo the re-seed that ``random`` does in every forked child (os.register_at_fork):
    a restore from Lambda's snapshot is a copy of memory, generator state included, so every
    restored environment draws the same numbers until an after-restore hook re-seeds."""
    if state is not None:
        sys.modules["random"].setstate(state)


CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
MS_REC = 0x4000
MS_PRIVATE = 0x40000


def _fail(what: str) -> OSError:
    errno = ctypes.get_errno()
    return OSError(errno, f"{what}: {os.strerror(errno)}")


def own_tmp(tmp: dict[str, Any] | None) -> None:
    """Give this restored environment a /tmp of its own, holding a copy of the snapshot's.

    In the sandbox: a user namespace (this process maps to its own uid, so it needs no
    privilege) with a mount namespace, in which a new tmpfs of the ephemeral size covers
    /tmp. Without the sandbox: its own directory as TMPDIR. The sandbox's read-only mounts
    stay locked read-only in the new namespaces."""
    if not tmp:
        return
    if "dir" in tmp:
        os.makedirs(tmp["dir"], exist_ok=True)
        if os.path.isdir(tmp.get("from", "")):
            shutil.copytree(tmp["from"], tmp["dir"], symlinks=True, dirs_exist_ok=True)
        os.environ["TMPDIR"] = os.environ["MODELAMBDA_TMP_DIR"] = tmp["dir"]
        tempfile: Any = sys.modules.get("tempfile")
        if tempfile is not None:
            tempfile.tempdir = None  # its cached choice was the snapshot's
        return
    libc = ctypes.CDLL(None, use_errno=True)
    uid, gid = os.geteuid(), os.getegid()
    if libc.unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0:
        raise _fail("unshare")
    with open("/proc/self/setgroups", "w") as handle:
        handle.write("deny")
    with open("/proc/self/uid_map", "w") as handle:
        handle.write(f"{uid} {uid} 1")
    with open("/proc/self/gid_map", "w") as handle:
        handle.write(f"{gid} {gid} 1")
    if libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None) != 0:
        raise _fail("mount --make-rprivate /")
    old = os.open("/tmp", os.O_RDONLY | os.O_DIRECTORY)
    try:
        options = f"size={int(tmp['tmpfs_bytes'])},mode=1777".encode()
        if libc.mount(b"tmpfs", b"/tmp", b"tmpfs", 0, options) != 0:
            raise _fail("mount tmpfs /tmp")
        shutil.copytree(f"/proc/self/fd/{old}", "/tmp", symlinks=True, dirs_exist_ok=True)
    finally:
        os.close(old)


def main(argv: list[str]) -> None:
    # Run by path, Python put this file's directory first on sys.path; put the working
    # directory (the task root) there, as `python -m awslambdaric` has it.
    if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
        sys.path[0] = os.getcwd()
    pyric = _load_pyric()
    from awslambdaric import __main__ as ric_main
    from awslambdaric import lambda_runtime_client as lrc

    def restore_next(self: Any) -> None:
        control = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        control.connect(os.environ["MODELAMBDA_SNAPSHOT_SOCKET"])
        signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # restored environments reap themselves
        control.sendall(b'{"snapshot": "ready"}\n')
        while True:
            message, fds, _, _ = socket.recv_fds(control, 65536, 3)
            if not message:
                os._exit(0)
            request = json.loads(message)
            snapshot_random = _random_state()
            pid = os.fork()
            if pid == 0:
                if len(fds) > 2:  # wait until the emulator has put us in our own group
                    go = os.read(fds[2], 1)
                    os.close(fds.pop())
                    if not go:
                        os._exit(1)
                _restore_random(snapshot_random)
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # the function's subprocesses
                control.close()
                os.dup2(fds[0], 1)
                os.dup2(fds[1], 2)
                for fd in fds:
                    os.close(fd)
                try:
                    own_tmp(request.get("tmp"))
                except OSError as exc:
                    print(f"modelambda: this restored environment shares /tmp with the "
                          f"snapshot ({exc})", file=sys.stderr, flush=True)
                os.environ["AWS_LAMBDA_RUNTIME_API"] = request["runtime_api"]
                self.lambda_runtime_address = request["runtime_api"]
                # A forked child cannot reuse awslambdaric's native client: it was bound to
                # the template's Runtime API address when the module was imported.
                lrc.runtime_client = pyric.RuntimeClient(request["runtime_api"])
                return  # awslambdaric now runs the after-restore hooks, then the invoke loop
            for fd in fds:
                os.close(fd)
            control.sendall(json.dumps({"pid": pid}).encode() + b"\n")

    lrc.LambdaRuntimeClient.restore_next = restore_next
    ric_main.main(["awslambdaric", argv[1]])


if __name__ == "__main__":
    main(sys.argv)
