"""``endpoint``: the model behind an inference endpoint; the function does pre- and
post-processing and calls it, so it neither ships nor loads the model."""

from __future__ import annotations

from modelambda.advisor.terms import Terms


class Endpoint(Terms):
    name = "endpoint"
    update_path = "update the endpoint (the function is untouched)"
    update_without_deploy = True
    ships_model = False
