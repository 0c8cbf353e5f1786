"""Services for the TFLite, XGBoost and LightGBM backends, made in tmp_path.

The TFLite iris MLP is the committed copy in tests/data/iris-tflite/ (input fixed at batch 1
as converted; Keras' probabilities for all 150 iris rows beside it). The XGBoost and LightGBM
models are trained here on iris, small and deterministic, and never committed.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
TFLITE_DATA = ROOT / "tests" / "data" / "iris-tflite"
ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]  # setosa (0), virginica (2)
FORMATS = ("tflite", "xgboost", "lightgbm")


def iris() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_iris

    x, y = load_iris(return_X_y=True)
    return np.asarray(x, dtype=np.float64), np.asarray(y)


def write_service(root: Path, name: str, model: str, framework: str | None,
                  instances: list[Any] | None = None, extra: str = "") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    spec = f'[service]\nname = "{name}"\nmemory_mb = 512\n\n[model]\npath = "{model}"\n'
    if framework is not None:
        spec += f'framework = "{framework}"\n'
    (root / "modelambda.toml").write_text(spec + extra)
    (root / "request.json").write_text(json.dumps({"instances": instances or ROWS}))
    return root


def make_tflite(root: Path, name: str = "iris-tflite") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy(TFLITE_DATA / "iris_mlp.tflite", root / "model.tflite")
    return write_service(root, name, "model.tflite", None)


def train_xgboost(file: Path, objective: str = "multi:softprob", **params: Any) -> None:
    import xgboost as xgb

    x, y = iris()
    if objective.startswith("binary"):
        y = (y == 2).astype(int)
    booster = xgb.train({"objective": objective, "max_depth": 3, "eta": 0.3, "seed": 0,
                         "nthread": 1, **({"num_class": 3} if objective.startswith("multi")
                                          else {}), **params},
                        xgb.DMatrix(x, label=y), num_boost_round=20)
    booster.save_model(str(file))


def make_xgboost(root: Path, name: str = "iris-xgboost", suffix: str = ".json",
                 framework: str | None = "xgboost") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    train_xgboost(root / f"model{suffix}")
    return write_service(root, name, f"model{suffix}", framework)


def train_lightgbm(file: Path, objective: str = "multiclass") -> None:
    import lightgbm as lgb

    x, y = iris()
    if objective == "binary":
        y = (y == 2).astype(int)
    params = {"objective": objective, "num_leaves": 7, "min_data_in_leaf": 5, "seed": 0,
              "deterministic": True, "num_threads": 1, "verbose": -1,
              **({"num_class": 3} if objective == "multiclass" else {})}
    booster = lgb.train(params, lgb.Dataset(x, label=y), num_boost_round=20)
    booster.save_model(str(file))


def make_lightgbm(root: Path, name: str = "iris-lightgbm", suffix: str = ".txt",
                  framework: str | None = "lightgbm") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    train_lightgbm(root / f"model{suffix}")
    return write_service(root, name, f"model{suffix}", framework)


MAKERS: dict[str, Callable[[Path], Path]] = {
    "tflite": lambda root: make_tflite(root / "iris-tflite"),
    "xgboost": lambda root: make_xgboost(root / "iris-xgboost"),
    "lightgbm": lambda root: make_lightgbm(root / "iris-lightgbm"),
}


def labels(predictions: list[Any]) -> list[int]:
    """The class of each prediction: a label, or the largest of a row of probabilities."""
    return [int(p["label"]) if isinstance(p, dict) else int(np.argmax(p)) for p in predictions]


@pytest.fixture(scope="session")
def services(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("formats")
    return {name: make(root) for name, make in MAKERS.items()}
