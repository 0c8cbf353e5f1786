"""Each build imports its handler in the target interpreter from the built files.

Slimming, ``[build] exclude`` and the target's wheels can leave out something the shipped code
imports, which then fails only on Lambda (or under ``up``), after an in-process ``invoke`` has
already answered. So a build runs the function's init in the target interpreter, isolated
(``-I -S``: nothing of this machine's site-packages), with the artifact laid out as Lambda lays
it out: the task root, the layers under ``/opt``, the Lambda runtime's own packages last. A
failure names the module that could not be imported, the file that imported it and the
distribution it belongs to.

How far the check goes depends on where the model is (``Strategy.import_check``):
``"init"`` runs the handler's init (model and hooks load) from the artifact; ``"beside"`` does
the same with the built model placed beside the artifact (the model store's strategies);
``"imports"`` imports the backend and runs the pipeline's setup without the model (the
endpoint strategy, whose model is served elsewhere).
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from modelambda.errors import ModelambdaError
from modelambda.package.archive import Entry
from modelambda.package.artifacts import BuildResult
from modelambda.package.files import link_or_copy

TIMEOUT_S = 300.0

# Runs in the target interpreter with -I -S: stdlib only until sys.path is set.
_SCRIPT = r"""
import json, os, sys, traceback
mode, paths = sys.argv[1], json.loads(sys.argv[2])
sys.path[:0] = paths
try:
    if mode == "imports":
        from modelambda.runtime.backends import load_backend_class
        from modelambda.runtime.config import load_config
        from modelambda.runtime.paths import Paths
        from modelambda.runtime.pipeline import Pipeline
        paths_ = Paths.from_environment()
        config = load_config(paths_)
        sys.path.insert(0, paths_.task_root)
        load_backend_class(config.model.backend)
        Pipeline.load(config.pipeline, os.path.join(paths_.task_root,
                      config.source.get("path") or "."), run_setup=True)
    else:
        import modelambda.runtime.handler  # the init phase, as Lambda runs it
except BaseException as exc:
    frames = [f.filename for f in traceback.extract_tb(exc.__traceback__)]
    print(json.dumps({"type": type(exc).__name__, "message": str(exc),
                      "module": getattr(exc, "name", None), "frames": frames,
                      "traceback": traceback.format_exc()[-4000:]}))
    sys.exit(1)
"""


class ImportCheckFailed(ModelambdaError):
    """The built function cannot import or initialise its handler."""


def check(result: BuildResult, python: str, runtime_dir: Path | None) -> None:
    """Lay the build out in a temporary directory and run its init; raise ImportCheckFailed
    naming the module and package that broke."""
    mode = result.strategy.import_check
    with tempfile.TemporaryDirectory(prefix="modelambda-check-") as tmp:
        root = Path(tmp)
        task, opt = _lay_out(result, root)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8",
               "MODELAMBDA_TASK_ROOT": str(task), "MODELAMBDA_OPT_DIR": str(opt),
               "MODELAMBDA_TMP_DIR": str(root / "tmp"), "AWS_REGION": "us-east-1",
               "AWS_LAMBDA_FUNCTION_NAME": result.spec.service.name,
               "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(result.spec.service.memory_mb)}
        (root / "tmp").mkdir()
        if mode == "beside":
            env["MODELAMBDA_CONFIG"] = str(_config_with_model_beside(result, task, root))
        paths = [str(task), str(opt / "python")] + ([str(runtime_dir)] if runtime_dir else [])
        try:
            done = subprocess.run([python, "-I", "-S", "-c", _SCRIPT, mode, json.dumps(paths)],
                                  cwd=task, env=env, capture_output=True, text=True,
                                  timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired as exc:
            raise ImportCheckFailed(f"the function's init did not finish in {TIMEOUT_S:.0f} s "
                                    "under the import check") from exc
        if done.returncode != 0:
            raise ImportCheckFailed(_explain(done.stdout, done.stderr, root, result))


def _lay_out(result: BuildResult, root: Path) -> tuple[Path, Path]:
    opt = root / "opt"
    opt.mkdir()
    if result.function.kind == "image-context":
        link_or_copy(result.function.entries, root)  # entries are task/...
        return root / "task", opt
    task = root / "task"
    link_or_copy(result.function.entries, task)
    for layer in result.layers:  # in order: a later layer's file replaces an earlier one's
        for entry in layer.entries:
            target = opt / entry.name
            if target.exists():
                target.unlink()
        link_or_copy(layer.entries, opt)
    return task, opt


def _config_with_model_beside(result: BuildResult, task: Path, root: Path) -> Path:
    """The function's config with its model read from the built files placed beside it."""
    models = root / "model"
    link_or_copy([Entry(e.name, e.source) for e in result.model_entries], models)
    config: dict[str, Any] = json.loads((task / "modelambda.json").read_text())
    config["source"] = {"kind": "local", "path": str(models / result.spec.model.path)}
    config["model"]["verify_checksums"] = False
    path = root / "config.json"
    path.write_text(json.dumps(config))
    return path


def _package(frame: str, root: Path) -> str | None:
    """The top-level package a file of the laid-out function belongs to."""
    for base in (root / "task", root / "opt" / "python"):
        try:
            rel = Path(frame).relative_to(base)
        except ValueError:
            continue
        return rel.parts[0].removesuffix(".py") if rel.parts else None
    return None


def _present(package: str, root: Path) -> bool:
    return any((base / package).is_dir() or (base / f"{package}.py").is_file()
               for base in (root / "task", root / "opt" / "python"))


def _explain(stdout: str, stderr: str, root: Path, result: BuildResult) -> str:
    try:
        failure = json.loads(stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        tail = (stdout + stderr).strip()[-1500:]
        return f"the built function's init failed in the target interpreter:\n{tail}"
    # the packages the failing import went through, outermost first, without repeats
    chain: list[str] = []
    for frame in failure["frames"]:
        package = _package(frame, root)
        if package and (not chain or chain[-1] != package):
            chain.append(package)
    via = f" (import chain: {' -> '.join(chain)})" if chain else ""
    missing = failure["module"]
    if failure["type"] in ("ModuleNotFoundError", "ImportError") and missing:
        top = missing.split(".")[0]
        if _present(top, root):
            why = (f"package {top} is in the artifact but {missing} is not: slimming or "
                   "[build] exclude_files dropped it")
        else:
            why = (f"package {top} is not in the artifact: add it to requirements.txt, or "
                   "remove it from [build] exclude")
        return f"the built function cannot import {missing!r}{via}: {why}"
    return (f"the built function's init fails in the target interpreter{via}: "
            f"{failure['type']}: {failure['message']}")
