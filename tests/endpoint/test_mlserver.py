"""The endpoint strategy against a real third-party v2 server: MLServer with its sklearn runtime.

MLServer runs from its own virtual environment (its pins clash with ours), made on first use
in ~/.cache/modelambda/mlserver-venv. MLServer 1.7.1 needs uvloop 0.21.0 (with 0.23 its
parallel worker fails with "There is no current event loop", SeldonIO/MLServer#2286), and its
/v2/health/ready turns 200 before the model is loaded, so readiness here is the model's own
ready endpoint plus a real answer.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelambda.local.s3server import free_port
from modelambda.package.deps import cache_root
from tests.conftest import IRIS, make_app
from tests.endpoint.test_endpoint import ROWS, endpoint_app
from tests.store.conftest import service

MLSERVER = ("mlserver==1.7.1", "mlserver-sklearn==1.7.1", "uvloop==0.21.0")
TRAIN = """
import joblib, sys
from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestClassifier
x, y = load_iris(return_X_y=True)
joblib.dump(RandomForestClassifier(n_estimators=100, max_depth=6, random_state=0).fit(x, y),
            sys.argv[1])
"""


def mlserver_venv() -> Path:
    """The venv, made or repaired until it imports what the test needs (an interrupted
    install leaves bin/mlserver without the rest; benchmarks/emulator.py adds onnxruntime to
    the same venv)."""
    venv = cache_root() / "mlserver-venv"
    python = venv / "bin" / "python"
    check = [str(python), "-c", "import mlserver, mlserver_sklearn, uvloop, sklearn, joblib"]
    if python.exists() and subprocess.run(check, capture_output=True).returncode == 0:
        return venv
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", *MLSERVER], check=True)
    subprocess.run(check, check=True)
    return venv


def _get(url: str) -> int:
    try:
        return int(urllib.request.urlopen(url, timeout=2).status)
    except (urllib.error.URLError, OSError):
        return 0


@pytest.fixture(scope="module")
def mlserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    venv = mlserver_venv()
    work = tmp_path_factory.mktemp("mlserver")
    subprocess.run([str(venv / "bin" / "python"), "-c", TRAIN, str(work / "model.joblib")],
                   check=True)
    port = free_port()
    (work / "settings.json").write_text(json.dumps({
        "host": "127.0.0.1", "http_port": port, "grpc_port": free_port(),
        "metrics_port": free_port(), "parallel_workers": 0}))
    (work / "model-settings.json").write_text(json.dumps({
        "name": "iris-sklearn", "implementation": "mlserver_sklearn.SKLearnModel",
        "parameters": {"uri": "./model.joblib", "version": "v1"},
        "inputs": [{"name": "input-0", "datatype": "FP64", "shape": [-1, 4]}],
        "outputs": [{"name": "predict", "datatype": "INT64", "shape": [-1, 1]}]}))
    log = open(work / "mlserver.log", "w")  # noqa: SIM115 - closed below
    process = subprocess.Popen([str(venv / "bin" / "mlserver"), "start", str(work)],
                               stdout=log, stderr=subprocess.STDOUT, cwd=work,
                               env={**os.environ, "PYTHONPATH": ""})
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while _get(f"{url}/v2/models/iris-sklearn/ready") != 200:
            assert process.poll() is None, (work / "mlserver.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "MLServer did not get ready"
            time.sleep(0.3)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def test_function_calls_mlserver(mlserver: str, tmp_path: Path,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    root = service(IRIS, tmp_path / "iris", f'kind = "endpoint"\nprotocol = "v2"\n'
                                           f'url = "{mlserver}"\nname = "iris-sklearn"')
    # no MODELAMBDA_ENDPOINT_URL: the function finds MLServer from the spec's url alone
    app = endpoint_app(root, None, monkeypatch)
    assert "MODELAMBDA_ENDPOINT_URL" not in os.environ
    assert app.backend.url == mlserver
    result = app.handle(ROWS)
    labels = [int(p[0] if isinstance(p, list) else p) for p in result["predictions"]]
    expected = [p["label"] for p in make_app(IRIS).handle(ROWS)["predictions"]]
    assert labels == expected == [0, 2]
    # MLServer's metadata gave the function the input's shape: checked before sending
    from modelambda.runtime import ShapeError

    with pytest.raises(ShapeError, match="expected 4 features"):
        app.handle({"instances": [[1.0, 2.0]]})
