"""Hypothesis settings for the hostile-input properties.

The default run takes MODELAMBDA_FUZZ_EXAMPLES examples per property (50 unless set; the
slowest properties a fraction of it, ``examples()``); ``benchmarks/reliability_hostile.py`` runs
the same properties 10,000+ times.
No example database: a failure prints the example and its seed, nothing is written to the tree.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from modelambda.local.services import function_for
from tests.emulator.conftest import (  # noqa: F401 - the emulator tests' fixtures, shared
    Emu,
    emu,
    lambda_runtime,
    make_function,
    python312,
    require_bwrap,
)
from tests.hostile.frontdoor import FrontDoor

EXAMPLES = int(os.environ.get("MODELAMBDA_FUZZ_EXAMPLES", "50"))


def examples(share: float) -> int:
    """A share of the examples per property, for the slow ones (each a CLI run, or a spec
    compiled for six strategies)."""
    return max(5, int(EXAMPLES * share))


settings.register_profile(
    "modelambda-hostile",
    max_examples=EXAMPLES,
    deadline=None,  # the machine is shared: no test asserts a timing
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.filter_too_much],
)
settings.load_profile("modelambda-hostile")


@pytest.fixture(scope="session")
def iris_emu(plain_services: dict[str, Path]) -> Iterator[Emu]:
    """A real emulator serving iris (bundle, in bubblewrap), shared by the hostile tests."""
    settings, _ = function_for(plain_services["iris"])
    running = Emu(idle_timeout_s=3600)
    running.add(settings, ("iris",))
    try:
        yield running
    finally:
        running.stop(drain_s=2)


@pytest.fixture(scope="session")
def door(iris_emu: Emu) -> Iterator[FrontDoor]:
    front = FrontDoor(iris_emu.thread)
    front.warm()
    try:
        yield front
    finally:
        front.close()
