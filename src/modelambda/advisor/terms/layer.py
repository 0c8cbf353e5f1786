"""``layer``: the model in a Lambda layer, unpacked to /opt with the other layers."""

from __future__ import annotations

from modelambda.advisor.terms import Terms


class Layer(Terms):
    name = "layer"
    update_path = "publish a new layer version, update the function's layer list"
