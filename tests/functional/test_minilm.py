"""The MiniLM example reproduces sentence-transformers' embeddings, truncation included."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from tokenizers import Tokenizer

from modelambda.runtime import InvalidInput, MissingField
from modelambda.runtime.app import App
from tests.conftest import MINILM_DATA, MINILM_EXAMPLE, make_app


def test_reproduces_reference_embeddings(minilm_app: App) -> None:
    texts = json.loads((MINILM_DATA / "reference_texts.json").read_text())["texts"]
    expected = np.load(MINILM_DATA / "reference_embeddings.npy")

    result = minilm_app.handle({"instances": texts})

    got = np.array(result["predictions"], dtype=np.float32)
    assert got.shape == expected.shape == (len(texts), 384)
    assert np.abs(got - expected).max() < 1e-5
    assert result["model_name"] == "all-MiniLM-L6-v2"


def test_each_text_alone_matches_the_batch(minilm_app: App) -> None:
    # Padding to the longest text in a batch must not change any embedding.
    texts = json.loads((MINILM_DATA / "reference_texts.json").read_text())["texts"]
    batch = np.array(minilm_app.handle({"instances": texts})["predictions"])
    for i, text in enumerate(texts):
        alone = np.array(minilm_app.handle({"instances": [text]})["predictions"][0])
        assert np.abs(alone - batch[i]).max() < 1e-5


def test_long_text_is_truncated_to_256_tokens_like_sentence_transformers(
    minilm_app: App, minilm_dir: Path,
) -> None:
    # GIVEN a text of about 400 word tokens
    words = [f"word{i % 50}" for i in range(400)]
    long_text = " ".join(words)
    # sentence-transformers keeps [CLS] + the first 254 tokens + [SEP] (max_seq_length 256).
    raw = Tokenizer.from_file(str(minilm_dir / "model" / "tokenizer.json"))
    raw.no_padding()
    raw.no_truncation()
    ids = raw.encode(long_text).ids
    assert len(ids) > 300
    cls_id, sep_id = ids[0], ids[-1]
    truncated = np.array([[cls_id, *ids[1:255], sep_id]], dtype=np.int64)
    assert truncated.shape == (1, 256)
    session = ort.InferenceSession(str(minilm_dir / "model" / "model.onnx"),
                                   providers=["CPUExecutionProvider"])
    (expected,) = session.run(None, {"input_ids": truncated,
                                     "attention_mask": np.ones_like(truncated)})

    # WHEN the function embeds it
    got = np.array(minilm_app.handle({"instances": [long_text]})["predictions"][0])

    # THEN it equals the embedding of the first 256 tokens, and text past them is ignored
    assert np.abs(got - expected[0]).max() < 1e-5
    longer = np.array(
        minilm_app.handle({"instances": [long_text + " completely different tail"]})
        ["predictions"][0])
    assert np.abs(longer - got).max() < 1e-6


def test_non_text_instance_is_a_client_error(minilm_app: App) -> None:
    with pytest.raises(InvalidInput, match="instance 1 is int"):
        minilm_app.handle({"instances": ["fine", 42]})
    assert len(minilm_app.handle({"instances": ["still works"]})["predictions"][0]) == 384


def test_multi_input_model_takes_instances_keyed_by_input_name(
    copy_service: Callable[..., Path], minilm_app: App
) -> None:
    # GIVEN the MiniLM model served without hooks: two int64 inputs
    root = copy_service(MINILM_EXAMPLE)
    spec = (root / "modelambda.toml").read_text()
    (root / "modelambda.toml").write_text(spec.split("[pipeline]")[0])
    app = make_app(root)
    ids = [101, 7592, 2088, 102]  # [CLS] hello world [SEP]
    expected = minilm_app.handle({"instances": ["hello world"]})["predictions"][0]

    # WHEN each instance is an object keyed by input name
    got = app.handle({"instances": [{"input_ids": ids, "attention_mask": [1, 1, 1, 1]}]})
    assert np.abs(np.array(got["predictions"][0]) - expected).max() < 1e-5

    # AND the same through the v2 protocol, one tensor per input
    v2 = app.handle({"inputs": [
        {"name": "input_ids", "shape": [1, 4], "datatype": "INT64", "data": ids},
        {"name": "attention_mask", "shape": [1, 4], "datatype": "INT64", "data": [1, 1, 1, 1]},
    ]})
    (output,) = v2["outputs"]
    assert output["name"] == "sentence_embedding" and output["shape"] == [1, 384]
    assert np.abs(np.array(output["data"]) - expected).max() < 1e-5

    # AND a missing input is named
    with pytest.raises(MissingField, match="no 'attention_mask'"):
        app.handle({"instances": [{"input_ids": ids}]})
