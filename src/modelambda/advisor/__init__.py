"""``modelambda advise``: the strategies and the options around them, side by side for this
model and this traffic, with a recommendation and the facts that decided it.

Pure functions (``model.py``: limits + latency + cost -> rows; ``recommend.py``: the rules)
over three inputs gathered here: the sizes real builds produce (``sizes.py``), a measured
local profile (``profile.py``: a bench file, or a short profile run) and the traffic
(``traffic.py``). Constants live in ``constants.py`` and prices in ``prices.json``, each with
its source.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from modelambda.advisor.model import Inputs, Option, evaluate
from modelambda.advisor.prices import load_prices
from modelambda.advisor.recommend import Recommendation, advise, choose
from modelambda.advisor.traffic import Traffic, check

if TYPE_CHECKING:
    from modelambda.advisor.profile import Profile
    from modelambda.spec import ServiceSpec


def gather(spec: ServiceSpec, traffic: Traffic, *, from_bench: Path | None = None,
           strategies: Sequence[str] | None = None, log: Callable[[str], None] | None = None
           ) -> Inputs:
    """Sizes from real builds, the profile (bench file or a short run), the checked traffic."""
    from modelambda import strategies as registry
    from modelambda.advisor import profile as profiles
    from modelambda.advisor import sizes as size_report
    from modelambda.errors import UsageError

    check(traffic)
    bench = profiles.read_bench(from_bench) if from_bench is not None else None
    if bench is not None:  # the wrong model's bench file is refused before any build
        profiles.check_bench_model(bench, spec, None, str(from_bench))
    names = list(strategies or registry.names())
    say = log or (lambda _line: None)
    say(f"building {', '.join(names)} for their sizes (cached when unchanged)")
    sizes = size_report.from_builds(spec, names, lambda s, n: size_report.build_manifest(
        s, n, log=None))
    version = next((s.model_version for s in sizes.values() if s.model_version), None)
    profile: Profile
    if bench is not None:
        profile = profiles.from_bench(bench, spec, version, source=str(from_bench))
    else:
        usable = [n for n in profiles.PROFILE_STRATEGIES
                  if n in sizes and sizes[n].built and not sizes[n].failures]
        if not usable:
            raise UsageError("no strategy builds for this model, so there is nothing to "
                             "profile: pass --from-bench FILE")
        say(f"profiling {usable[0]} at {spec.service.memory_mb} MB on the emulator "
            "(pass --from-bench FILE to use a bench run instead)")
        profile = profiles.measure(spec, usable[0], version, log=say)
    settings = {n: dict(spec.for_strategy(n).strategy.settings) for n in names}
    return Inputs(sizes=sizes, profile=profile, traffic=traffic, prices=load_prices(),
                  memory_mb=spec.service.memory_mb,
                  ephemeral_mb=spec.service.ephemeral_storage_mb, runtime=spec.service.runtime,
                  settings=settings)


__all__ = ["Inputs", "Option", "Recommendation", "Traffic", "advise",
           "choose", "evaluate", "gather"]
