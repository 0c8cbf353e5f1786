"""A seventh strategy is one module and its registration.

GIVEN a plugin distribution (a dist-info with an entry point in "modelambda.strategies") that
ships a ``zipped`` strategy: the model travels as one zip inside the function's zip and its
own model source (shipped into the function by the strategy) unpacks it to /tmp at cold start
WHEN `modelambda build` and `modelambda up --strategy zipped` run with it on the path
THEN it is listed, built (its own source inside the artifact) and answers like the bundle."""

from __future__ import annotations

import json
import os
import shutil
import textwrap
import zipfile
from pathlib import Path

import pytest

from tests.conftest import IRIS, make_app
from tests.strategies.conftest import env_without_aws, up

ROWS = json.loads((IRIS / "request.json").read_text())

STRATEGY = '''
"""A plugin strategy: the model as one zip inside the function's zip."""
from pathlib import Path

from modelambda.package.archive import Entry, write_zip
from modelambda.package.artifacts import Artifact
from modelambda.strategies.base import Strategy

HERE = Path(__file__).resolve().parent


class Zipped(Strategy):
    name = "zipped"
    summary = "model zipped inside the function's zip, unpacked to /tmp at cold start"
    runtime_source = "zipped_source:ZippedSource"

    def shipped_code(self):
        return [Entry("zipped_source.py", HERE / "zipped_source.py")]

    def layout(self, parts, out):
        archive = out / "model-archive.zip"
        write_zip(archive, parts.model)
        return Artifact("function.zip", "function", out / "function.zip",
                        [*parts.dependencies, *parts.runtime, *parts.user_code,
                         Entry("model.zip", archive), parts.config],
                        "code, dependencies, config and the model as one zip"), []

    def tmp_needed(self, model):
        return sum(e.size for e in model)
'''

SOURCE = '''
"""The zipped strategy's model source: ships inside the function."""
import os
import zipfile

from modelambda.runtime.sources.base import ModelSource


class ZippedSource(ModelSource):
    def resolve(self):
        target = os.path.join(self.paths.tmp_dir, "zipped-model")
        with zipfile.ZipFile(os.path.join(self.paths.task_root, "model.zip")) as archive:
            archive.extractall(target)
        return os.path.join(target, self.settings["path"])
'''


@pytest.fixture(scope="module")
def plugin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("plugin")
    (root / "zipped_strategy.py").write_text(textwrap.dedent(STRATEGY))
    (root / "zipped_source.py").write_text(textwrap.dedent(SOURCE))
    info = root / "modelambda_zipped-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: modelambda-zipped\n"
                                   "Version: 0.1\n")
    (info / "entry_points.txt").write_text("[modelambda.strategies]\n"
                                           "zipped = zipped_strategy:Zipped\n")
    return root


def plugin_env(plugin: Path) -> dict[str, str]:
    env = env_without_aws()
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(plugin), env.get("PYTHONPATH")]))
    return env


@pytest.mark.slow
def test_a_registered_strategy_builds_and_answers_under_up(plugin: Path, tmp_path: Path
                                                           ) -> None:
    from tests.cli.conftest import run_cli

    service = tmp_path / "iris"
    shutil.copytree(IRIS, service, ignore=shutil.ignore_patterns(".modelambda"))
    env = plugin_env(plugin)

    done = run_cli("up", "--help", env=env)
    assert "zipped" in done.stdout  # the CLI offers it like a built-in

    done = run_cli("build", service, "--strategy", "zipped", env=env, timeout=600)
    assert done.returncode == 0, done.stderr
    manifest = json.loads((service / ".modelambda/build/zipped/manifest.json").read_text())
    assert manifest["strategy"] == "zipped" and manifest["import_check"] == "init"
    with zipfile.ZipFile(service / ".modelambda/build/zipped/function.zip") as archive:
        names = set(archive.namelist())
        config = json.loads(archive.read("modelambda.json"))
    assert {"model.zip", "zipped_source.py"} <= names and "model.onnx" not in names
    assert config["source"]["class"] == "zipped_source:ZippedSource"

    with up(service, "--strategy", "zipped", env=env) as running:
        status, body = running.post("/fn/iris/", ROWS)
    assert status == 200, body
    assert body["predictions"] == make_app(IRIS).handle(ROWS)["predictions"]
    assert "iris: strategy zipped" in running.text


def test_an_unknown_strategy_is_one_line(tmp_path: Path) -> None:
    from tests.cli.conftest import run_cli

    service = tmp_path / "iris"
    shutil.copytree(IRIS, service, ignore=shutil.ignore_patterns(".modelambda"))
    spec = service / "modelambda.toml"
    spec.write_text(spec.read_text().replace('kind = "bundle"', 'kind = "zipped"'))
    done = run_cli("build", service, env=env_without_aws())
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "[strategy] kind = 'zipped': one of bundle, layer, image, s3, endpoint, efs" \
        in done.stderr
