"""`modelambda init`: the request it writes is one the model accepts; a skops model with
types skops does not trust gets one clear line naming them and how to trust them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from modelambda.scaffold import skops_feature_count
from tests.cli.conftest import one_error_line, run_cli
from tests.conftest import IRIS

TREE = "sklearn.tree._tree.Tree"


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    """This environment, with emulator records of this test only (none running)."""
    import os

    return {**os.environ, "MODELAMBDA_STATE_DIR": str(tmp_path / "emulators")}


@pytest.mark.slow  # three runs that import scikit-learn
def test_untrusted_skops_model_gets_a_valid_request_and_one_line_to_trust_it(
        tmp_path: Path, cli_env: dict[str, str]) -> None:
    model = tmp_path / "download" / "model.skops"
    model.parent.mkdir()
    shutil.copy(IRIS / "model.skops", model)
    service = tmp_path / "svc"
    done = run_cli("init", service, "--model", model, env=cli_env)
    assert done.returncode == 0, done.stderr
    notes = [line for line in done.stdout.splitlines() if line.startswith("note: ")]
    assert notes == [f"note: model.skops holds types skops does not trust by default: {TREE}. "
                     "The model will not load until you trust them: if you trust the file, "
                     f"uncomment [model.options] and trusted_types in {service}/modelambda.toml"]
    # the request has the model's shape, read from the file without loading it
    request = json.loads((service / "request.json").read_text())
    assert request == {"instances": [[0.0, 0.0, 0.0, 0.0]]}
    spec = (service / "modelambda.toml").read_text()
    assert "#   input: float64 [N, 4]" in spec
    assert f'# trusted_types = ["{TREE}"]' in spec

    # invoking before trusting: one line naming the types and where to list them
    done = run_cli("invoke", service, "--data", f"@{service / 'request.json'}", env=cli_env)
    line = one_error_line(done, "invoke")
    assert TREE in line and "[model.options] trusted_types" in line

    # trusted as the spec's comment says: the written request is answered
    (service / "modelambda.toml").write_text(
        spec.replace("# [model.options]", "[model.options]")
            .replace("# trusted_types", "trusted_types"))
    done = run_cli("invoke", service, "--data", f"@{service / 'request.json'}", env=cli_env)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    answer = json.loads(done.stdout)
    assert answer["model_name"] == "svc" and len(answer["predictions"]) == 1
    assert set(answer["predictions"][0]) == {"label", "probabilities"}


def test_skops_feature_count_of_a_pipeline_is_its_first_steps(tmp_path: Path) -> None:
    import numpy as np
    import skops.io as sio
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x = np.random.default_rng(0).normal(size=(30, 3))
    y = (x[:, 0] > 0).astype(int)
    sio.dump(make_pipeline(StandardScaler(), LogisticRegression()).fit(x, y),
             tmp_path / "pipe.skops")
    assert skops_feature_count(tmp_path / "pipe.skops") == 3
    assert skops_feature_count(IRIS / "model.skops") == 4
    assert skops_feature_count(IRIS / "model.onnx") is None  # not a skops file


def test_a_model_whose_inputs_cannot_be_read_gets_no_request(tmp_path: Path,
                                                             cli_env: dict[str, str]) -> None:
    pickle = tmp_path / "model.pkl"
    pickle.write_bytes(b"never unpickled by init")
    service = tmp_path / "svc"
    done = run_cli("init", service, "--model", pickle, env=cli_env)
    assert done.returncode == 0, done.stderr
    assert not (service / "request.json").exists()  # no placeholder the model would refuse
    assert f"no request.json was written: write {service}/request.json" in done.stdout
    assert done.stdout.rstrip().endswith(
        f"""next: modelambda invoke {service} --data '{{"instances": [...]}}'""")
