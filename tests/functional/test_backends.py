"""Backends: ONNX, scikit-learn (skops; pickle only when trusted) and a user's Python class."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from modelambda.runtime import ModelLoadError
from modelambda.runtime.backends import BUILTIN, registered
from modelambda.runtime.errors import ConfigError
from tests.conftest import IRIS, make_app

IRIS_ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]]
SKOPS_SPEC = """
[model]
path = "model.skops"
framework = "sklearn"

[model.options]
trusted_types = ["sklearn.tree._tree.Tree"]
"""


def with_spec(copy_service: Callable[..., Path], model_toml: str) -> Path:
    root = copy_service(IRIS)
    (root / "modelambda.toml").write_text('[service]\nname = "iris"\n' + model_toml)
    return root


def test_builtins_are_registered_as_entry_points() -> None:
    from importlib.metadata import entry_points

    declared = {ep.name: ep.value for ep in entry_points(group="modelambda.backends")}
    assert declared == BUILTIN
    assert registered() == BUILTIN


def test_skops_and_onnx_give_the_same_predictions(copy_service: Callable[..., Path]) -> None:
    onnx = make_app(IRIS).handle({"instances": IRIS_ROWS})["predictions"]
    skops = make_app(with_spec(copy_service, SKOPS_SPEC)).handle(
        {"instances": IRIS_ROWS})["predictions"]
    assert [p["label"] for p in onnx] == [p["label"] for p in skops] == [0, 2, 1]
    np.testing.assert_allclose([p["probabilities"] for p in onnx],
                               [p["probabilities"] for p in skops], atol=1e-5)


def test_skops_types_need_explicit_trust(copy_service: Callable[..., Path]) -> None:
    root = with_spec(copy_service, SKOPS_SPEC.split("[model.options]")[0])
    with pytest.raises(ModelLoadError, match=r"sklearn.tree._tree.Tree.*trusted_types"):
        make_app(root)


def _pickled_iris(root: Path) -> None:
    import skops.io as sio

    model = sio.load(root / "model.skops", trusted=["sklearn.tree._tree.Tree"])
    (root / "model.pkl").write_bytes(pickle.dumps(model))


def test_pickle_is_refused_without_the_trust_flag(copy_service: Callable[..., Path]) -> None:
    root = with_spec(copy_service, '[model]\npath = "model.pkl"\n')
    _pickled_iris(root)
    with pytest.raises(ModelLoadError, match="trust_pickle = true"):
        make_app(root)


def test_pickle_loads_with_the_trust_flag_and_a_loud_warning(
    copy_service: Callable[..., Path], capfd: pytest.CaptureFixture[str]
) -> None:
    root = with_spec(copy_service, '[model]\npath = "model.pkl"\ntrust_pickle = true\n')
    _pickled_iris(root)
    app = make_app(root)
    assert "WARNING" in capfd.readouterr().err
    assert app.handle({"instances": IRIS_ROWS[:1]})["predictions"][0]["label"] == 0


@pytest.mark.parametrize("name,framework", [("model.onnx", "onnx"), ("model.skops", "sklearn")])
def test_a_file_that_is_not_a_model(copy_service: Callable[..., Path], name: str,
                                    framework: str) -> None:
    root = with_spec(copy_service, f'[model]\npath = "{name}"\nframework = "{framework}"\n'
                     '[model.options]\n' + ('trusted_types = []\n' if framework == "sklearn"
                                            else ""))
    (root / name).write_bytes(b"this is not a model\n" * 10)
    with pytest.raises(ModelLoadError, match=f"{name}.*(not a|could not)"):
        make_app(root)


def test_unknown_backend_option_is_a_config_error(copy_service: Callable[..., Path]) -> None:
    root = with_spec(copy_service, '[model]\npath = "model.onnx"\n[model.options]\nthreads = 2\n')
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['threads'\].*intra_op_threads"):
        make_app(root)


def test_python_backend_runs_a_user_class(copy_service: Callable[..., Path]) -> None:
    root = with_spec(copy_service, '[model]\npath = "weights.txt"\nframework = "python"\n'
                     'class = "mymodel:Doubler"\n')
    (root / "weights.txt").write_text("3")
    (root / "mymodel.py").write_text(
        "class Doubler:\n"
        "    def load(self, path):\n"
        "        with open(path) as f:\n"
        "            self.k = int(f.read())\n"
        "    def predict(self, batch):\n"
        "        return [x * self.k for x in batch]\n"
    )
    assert make_app(root).handle({"instances": [1, 2]})["predictions"] == [3, 6]


def test_python_backend_with_wrong_count_is_a_model_error(
    copy_service: Callable[..., Path],
) -> None:
    from modelambda.runtime import ModelError

    root = with_spec(copy_service,
                     '[model]\npath = "w.txt"\nframework = "python"\nclass = "bad:Model"\n')
    (root / "w.txt").write_text("")
    (root / "bad.py").write_text(
        "class Model:\n    def load(self, p): pass\n    def predict(self, b): return [1]\n")
    app = make_app(root)
    with pytest.raises(ModelError, match="1 predictions for 2 instances"):
        app.handle({"instances": [1, 2]})
