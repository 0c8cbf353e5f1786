"""What a build guarantees beyond sizes: the shipped code imports in the target interpreter,
and a reused build is never stale."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import modelambda
from modelambda.package import reuse
from modelambda.package.archive import Entry
from modelambda.spec import load_spec
from tests.cli.conftest import run_cli
from tests.conftest import IRIS, make_app
from tests.strategies.conftest import env_without_aws, up

ROWS = json.loads((IRIS / "request.json").read_text())
SKOPS = """
[model.options]
trusted_types = ["sklearn.tree._tree.Tree"]
"""


def skops_service(target: Path, extra: str = "") -> Path:
    """examples/iris served from its skops file (the README's variant)."""
    shutil.copytree(IRIS, target, ignore=shutil.ignore_patterns(".modelambda"))
    spec = target / "modelambda.toml"
    text = spec.read_text().replace('path = "model.onnx"', 'path = "model.skops"')
    text = text.replace('framework = "onnx"', 'framework = "sklearn"')
    text = text.replace('exclude_files = ["model.skops", "train.py"]',
                        'exclude_files = ["model.onnx", "train.py"]')
    spec.write_text(text + SKOPS + extra)
    return target


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["bundle", "layer"])
def test_a_skops_service_answers_under_up(tmp_path: Path, strategy: str) -> None:
    # numpy.f2py was slimmed away; scipy's array_api_compat does `from numpy import *`,
    # which imports it: the function failed with Runtime.ImportModuleError under up
    service = skops_service(tmp_path / "iris")
    with up(service, "--strategy", strategy, env=env_without_aws()) as running:
        status, body = running.post("/fn/iris/", ROWS)
    assert status == 200, body
    assert body["predictions"] == make_app(service).handle(ROWS)["predictions"]
    manifest = json.loads((service / f".modelambda/build/{strategy}/manifest.json").read_text())
    assert manifest["import_check"] == "init"


@pytest.mark.slow
def test_a_build_whose_handler_cannot_import_fails_naming_the_module(tmp_path: Path) -> None:
    # GIVEN a scikit-learn service whose spec leaves scipy out of the artifact
    service = skops_service(tmp_path / "iris").resolve()
    spec = service / "modelambda.toml"
    spec.write_text(spec.read_text().replace("[build]\n", '[build]\nexclude = ["scipy"]\n'))
    # WHEN it is built THEN the build fails at once, naming the module and the chain
    done = run_cli("build", service, "--strategy", "bundle", env=env_without_aws(),
                   timeout=600)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    error = done.stderr.strip().splitlines()[-1]
    assert "cannot import 'scipy" in error, error
    assert "package scipy is not in the artifact" in error, error
    # the chain names the package whose import broke (skops imports scipy here)
    assert "(import chain: modelambda -> skops)" in error, error
    manifest = json.loads((service / ".modelambda/build/bundle/manifest.json").read_text())
    assert manifest["ok"] is False
    # and with the check skipped the same build goes through (what used to happen)
    done = run_cli("build", service, "--strategy", "bundle", "--no-import-check",
                   env=env_without_aws(), timeout=600)
    assert done.returncode == 0, done.stderr


def test_the_reuse_fingerprint_covers_every_shipped_and_deciding_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # a copy of modelambda's own sources stands in for the installed package
    package = tmp_path / "modelambda"
    shutil.copytree(Path(modelambda.__file__).parent, package,
                    ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(modelambda, "__file__", str(package / "__init__.py"))
    spec = load_spec(IRIS)
    shipped = [Entry("model.onnx", IRIS / "model.onnx")]
    first = reuse.fingerprint(spec, ["bundle"], shipped)
    assert reuse.fingerprint(spec, ["bundle"], shipped) == first
    for changed in ("limits.py", "strategies/bundle.py", "package/checks.py",
                    "runtime/app.py"):
        path = package / changed
        path.write_text(path.read_text() + "\n# changed\n")
        now = reuse.fingerprint(spec, ["bundle"], shipped)
        assert now != first, f"a change to {changed} would reuse a stale build"
        first = now
    assert reuse.fingerprint(spec, ["layer"], shipped) != first


def test_a_busy_port_is_refused_before_anything_is_built(tmp_path: Path) -> None:
    import socket

    service = tmp_path / "iris"
    shutil.copytree(IRIS, service, ignore=shutil.ignore_patterns(".modelambda"))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run_cli("up", service, "--port", str(port), env=env_without_aws(), timeout=60)
    assert done.returncode == 2, done.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr and "--port" in done.stderr
    assert not (service / ".modelambda").exists()  # refused before the build


def test_a_memory_or_deploy_change_reuses_the_build_and_a_model_change_does_not(
        tmp_path: Path) -> None:
    service = tmp_path / "iris"
    shutil.copytree(IRIS, service, ignore=shutil.ignore_patterns(".modelambda"))
    spec_file = service / "modelambda.toml"
    original = spec_file.read_text()
    shipped = [Entry("model.onnx", service / "model.onnx")]

    def print_of(text: str) -> str:
        spec_file.write_text(text)
        return reuse.fingerprint(load_spec(service), ["bundle"], shipped)

    first = print_of(original)
    # the function's configuration, not its files
    assert print_of(original.replace("memory_mb = 512", "memory_mb = 1024")) == first
    assert print_of(original.replace("timeout_s = 10", "timeout_s = 60")) == first
    assert print_of(original + '\n[deploy]\nstack_name = "iris-prod"\n') == first
    # what the artifact or its checks depend on
    assert print_of(original.replace('name = "iris"', 'name = "iris2"')) != first
    assert print_of(original.replace("[service]", "[service]\nephemeral_storage_mb = 1024")
                    ) != first
    assert print_of(original.replace('[build]\n', '[build]\noptimize_onnx = false\n')) != first
