"""Property-based fuzzing of the emulator's front doors, on a real emulator serving iris.

Hostile Invoke API calls (names, qualifiers, invocation and log types, client contexts,
payloads) and Function URL / v2 requests (methods, paths, queries, headers, content types,
bodies) over HTTP: no 5xx, every error a JSON object with a message, and the same environment
keeps serving (its id stays, its invocation count goes up).
"""

from __future__ import annotations

from hypothesis import given

from tests.hostile.frontdoor import FrontDoor
from tests.hostile.fuzz import HttpCase, Tally, check_http_answer, invoke_case, url_case


def run(door: FrontDoor, case: HttpCase) -> None:
    tally = Tally()
    check_http_answer(case, *door.send(case), tally)
    door.check_alive(tally)
    assert tally.outcome == "pass", tally.outcome


@given(case=invoke_case())
def test_invoke_api_answers_hostile_calls_as_designed(door: FrontDoor, case: HttpCase) -> None:
    run(door, case)


@given(case=url_case())
def test_function_url_answers_hostile_requests_as_designed(door: FrontDoor,
                                                            case: HttpCase) -> None:
    run(door, case)
