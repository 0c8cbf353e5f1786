"""Tokenisation before the model, as sentence-transformers does it for all-MiniLM-L6-v2.

The model (model/model.onnx) already does mean pooling and L2 normalisation inside its graph,
so the only pre-processing is WordPiece tokenisation, truncated to 256 tokens including
[CLS] and [SEP] (sentence_bert_config.json's max_seq_length), and padded to the longest text
of the batch. The tokenizer.json's own settings (128 tokens, fixed padding) are NOT the ones
the model was used with, so both are replaced here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from tokenizers import Tokenizer

from modelambda.runtime import InvalidInput

DEFAULT_MAX_SEQ_LENGTH = 256
_tokenizer: Tokenizer | None = None


def setup(model_path: str) -> None:
    """Load the tokenizer that lives beside the model, once per environment."""
    global _tokenizer
    max_len = DEFAULT_MAX_SEQ_LENGTH
    config = Path(model_path) / "sentence_bert_config.json"
    if config.is_file():
        max_len = int(json.loads(config.read_text())["max_seq_length"])
    tokenizer = Tokenizer.from_file(str(Path(model_path) / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=max_len)  # counts [CLS] and [SEP]
    pad_id = tokenizer.token_to_id("[PAD]")
    tokenizer.enable_padding(pad_id=pad_id if pad_id is not None else 0, pad_token="[PAD]")
    _tokenizer = tokenizer


def preprocess(instances: list[Any]) -> dict[str, np.ndarray]:
    if _tokenizer is None:
        raise RuntimeError("setup() has not run: set [pipeline] setup in modelambda.toml")
    bad = [i for i, text in enumerate(instances) if not isinstance(text, str)]
    if bad:
        raise InvalidInput(f"each instance must be a text string; instance {bad[0]} is "
                           f"{type(instances[bad[0]]).__name__}")
    encodings = _tokenizer.encode_batch(instances)
    return {
        "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
        "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
    }


def postprocess(outputs: dict[str, np.ndarray]) -> np.ndarray:
    return outputs["sentence_embedding"]  # [batch, 384], already L2-normalised
