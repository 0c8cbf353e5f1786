"""Train the iris classifier and save it as ONNX (model.onnx) and skops (model.skops).

Run from this directory: python train.py (needs scikit-learn, skl2onnx, onnx, skops: the
`dev` extra). The outputs are committed so the example works straight from a clone; this
script is how they were made, and re-running it gives an equivalent model.

Both files name their outputs the same way ("label", "probabilities"), so the two backends
answer with predictions of the same shape.
"""

from __future__ import annotations

import onnx
import skops.io as sio
from skl2onnx import to_onnx
from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestClassifier


def main() -> None:
    x, y = load_iris(return_X_y=True)
    model = RandomForestClassifier(n_estimators=100, max_depth=6, random_state=0).fit(x, y)

    # zipmap=False: probabilities as a [N, 3] tensor instead of a list of dicts.
    onx = to_onnx(model, x[:1].astype("float32"), options={"zipmap": False},
                  target_opset={"": 17, "ai.onnx.ml": 3})
    renames = {"output_label": "label", "output_probability": "probabilities"}
    for node in onx.graph.node:
        node.output[:] = [renames.get(o, o) for o in node.output]
    for output in onx.graph.output:
        output.name = renames.get(output.name, output.name)
    onx.graph.input[0].name = "input"
    for node in onx.graph.node:
        node.input[:] = ["input" if i == "X" else i for i in node.input]
    onnx.checker.check_model(onx)
    onnx.save(onx, "model.onnx")

    sio.dump(model, "model.skops")
    print("wrote model.onnx and model.skops; training accuracy", model.score(x, y))


if __name__ == "__main__":
    main()
