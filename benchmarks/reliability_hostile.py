"""Hostile input at volume: the properties of ``tests/hostile/`` run 10,000+ times.

``run(quick)`` returns one row per area, ``{"area", "cases", "crashes", "unexpected_5xx",
"non_json_errors", "outcome"}``, for the reliability suite's table (``benchmarks/reliability.py``
prints them); run on its own it prints the table:

    python benchmarks/reliability_hostile.py           # 10,000+ cases, a few minutes
    python benchmarks/reliability_hostile.py --quick   # a few hundred

Areas: every event decoder (REST v1, HTTP API, Function URL, ALB, SQS/SNS/S3/EventBridge
shapes, direct) and the inference contract (instances, v2 tensors) in process, on the iris app;
the Invoke API and the Function URL / v2 / console paths on a real emulator serving iris
(bubblewrap environment, watched through /health: a crash replaces the environment); malformed
and damaged HTTP on raw sockets against the emulator's own HTTP server; mutated
``modelambda.toml`` files (valid, or one line per problem); hostile and damaged zips through
``unpack_zip``. Hypothesis generates the inputs (no shrinking: a failure
is counted with its example, and the run goes on).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]
os.environ.setdefault("MODELAMBDA_ZIP_LEVEL", "1")

from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from tests.hostile import fuzz  # noqa: E402

# examples per area: (full, quick)
COUNTS = {"events": (3000, 60), "contract": (1500, 40), "invoke": (1500, 40),
          "url": (1500, 40), "http": (1200, 40), "spec": (600, 20), "archives": (1000, 40)}


def _drive(strategy: Any, examples: int, check: Callable[[Any], None]) -> None:
    """Run ``check`` on ``examples`` generated inputs; it records, never raises."""
    @settings(max_examples=examples, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(value=strategy)
    def run_all(value: Any) -> None:
        check(value)

    run_all()


def _row(area: str, tally: fuzz.Tally) -> dict[str, Any]:
    return {"area": area, "cases": tally.cases, "crashes": tally.crashes,
            "unexpected_5xx": tally.unexpected_5xx, "non_json_errors": tally.non_json_errors,
            "outcome": tally.outcome}


def _count(area: str, quick: bool) -> int:
    return COUNTS[area][1 if quick else 0]


# --- areas ------------------------------------------------------------------------------------

def events_and_contract(quick: bool) -> list[dict[str, Any]]:
    from modelambda.runtime import contract, errors
    from modelambda.runtime.app import App
    from modelambda.runtime.backends.base import TensorSpec
    from modelambda.runtime.paths import Paths
    from modelambda.spec import compile_runtime_config, load_spec

    app = App(compile_runtime_config(load_spec(fuzz.IRIS)), Paths.from_environment(),
              log=lambda line: None)
    events = fuzz.Tally()

    def one_event(event: Any) -> None:
        fuzz.check_app_event(app, event, events)

    _drive(fuzz.EVENT, _count("events", quick), one_event)
    fuzz.check_still_serving(app, events)

    specs = [TensorSpec("input", "float32", (None, 4)), TensorSpec("ids", "int64", (None, None)),
             TensorSpec("text", "str", (None,)), TensorSpec("u", "uint64", (None, 2))]
    tensors = fuzz.Tally()

    def one_body(drawn: tuple[Any, int]) -> None:
        body, index = drawn
        tensors.cases += 1
        try:
            if isinstance(body, dict) and "inputs" in body:
                contract.v2_tensors(body)
            else:
                batch = contract.check_batch(body.get("instances") if isinstance(body, dict)
                                             else body, 1024)
                contract.instances_to_inputs(batch, [specs[index]])
        except errors.RequestError:
            pass
        except Exception as exc:
            tensors.failed("unexpected_5xx", f"{type(exc).__name__}: {exc} for {body!r}")

    _drive(st.tuples(fuzz.BODY | fuzz.V2_BODY, st.integers(0, len(specs) - 1)),
           _count("contract", quick), one_body)
    return [_row("event decoders (in process)", events),
            _row("contract: instances, v2", tensors)]


@contextmanager
def iris_emulator() -> Iterator[Any]:
    """A real emulator serving a copy of examples/iris (bundle), as ``up`` runs it."""
    from modelambda.local.emulator import EmulatorThread
    from modelambda.local.services import function_for

    with tempfile.TemporaryDirectory(prefix="modelambda-hostile-") as tmp:
        service = Path(tmp) / "iris"
        shutil.copytree(fuzz.IRIS, service, ignore=shutil.ignore_patterns(".modelambda"))
        settings_, _ = function_for(service, log=lambda line: None)
        emu = EmulatorThread(sink=lambda line: None, idle_timeout_s=3600)
        try:
            emu.add_function(settings_, ("iris",))
            yield emu
        finally:
            emu.stop(drain_s=2)


def front_doors(quick: bool) -> list[dict[str, Any]]:
    from tests.hostile.frontdoor import FrontDoor
    from tests.hostile.malformed import check_raw_answer, damaged_request

    rows = []
    with iris_emulator() as emu:
        door = FrontDoor(emu)
        door.warm()
        for area, strategy, label in (
                ("invoke", fuzz.invoke_case(), "Invoke API (emulator)"),
                ("url", fuzz.url_case(), "Function URL, v2, console")):
            tally = fuzz.Tally()

            def one(case: fuzz.HttpCase, tally: fuzz.Tally = tally) -> None:
                fuzz.check_http_answer(case, *door.send(case), tally)
                if tally.cases % 25 == 0:
                    door.check_alive(tally)

            _drive(strategy, _count(area, quick), one)
            door.check_alive(tally)
            rows.append(_row(label, tally))
        raw = fuzz.Tally()
        address = ("127.0.0.1", emu.emulator.port)
        _drive(damaged_request(), _count("http", quick),
               lambda request: check_raw_answer(address, request, raw))
        door.check_alive(raw)
        door.close()
        rows.append(_row("malformed HTTP (raw sockets)", raw))
    return rows


def specs(quick: bool) -> list[dict[str, Any]]:
    from modelambda.errors import ModelambdaError
    from tests.hostile.test_fuzz_spec import check_spec, mutated_spec

    tally = fuzz.Tally()
    with tempfile.TemporaryDirectory(prefix="modelambda-spec-fuzz-") as tmp:
        service = Path(tmp) / "iris"
        shutil.copytree(fuzz.IRIS, service, ignore=shutil.ignore_patterns(".modelambda"))

        def one(text: str) -> None:
            tally.cases += 1
            try:
                check_spec(service, text)
            except AssertionError as exc:  # a problem that is not one line
                tally.failed("non_json_errors", f"{exc} for {text[:200]!r}")
            except ModelambdaError:
                pass
            except Exception as exc:  # a traceback through the CLI
                tally.failed("crashes", f"{type(exc).__name__}: {exc} for {text[:200]!r}")

        _drive(mutated_spec(), _count("spec", quick), one)
    return [_row("modelambda.toml fuzzing", tally)]


def archives(quick: bool) -> list[dict[str, Any]]:
    from tests.hostile.zips import check_unpack, damaged_zip

    tally = fuzz.Tally()
    with tempfile.TemporaryDirectory(prefix="modelambda-zip-fuzz-") as tmp:
        _drive(damaged_zip(), _count("archives", quick),
               lambda data: check_unpack(data, Path(tmp), tally))
    return [_row("zip archives (unpack_zip)", tally)]


def run(quick: bool) -> list[dict[str, Any]]:
    """Every hostile-input area; one row each."""
    return [*events_and_contract(quick), *front_doors(quick), *specs(quick), *archives(quick)]


def print_table(rows: list[dict[str, Any]]) -> None:
    print(f"{'area':<28} {'cases':>6} {'crashes':>7} {'5xx':>4} {'non-JSON':>8}  outcome")
    for row in rows:
        print(f"{row['area']:<28} {row['cases']:>6} {row['crashes']:>7} "
              f"{row['unexpected_5xx']:>4} {row['non_json_errors']:>8}  {row['outcome']}")
    print(f"{'all':<28} {sum(r['cases'] for r in rows):>6}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a few hundred cases")
    args = parser.parse_args()
    rows = run(args.quick)
    print_table(rows)
    return 0 if all(r["outcome"] == "pass" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
