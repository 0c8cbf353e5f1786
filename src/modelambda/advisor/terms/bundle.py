"""``bundle``: the model inside the function's zip, unpacked with the code."""

from __future__ import annotations

from modelambda.advisor.terms import Terms


class Bundle(Terms):
    name = "bundle"
    update_path = "redeploy the function (new zip)"
