"""A client of a real emulator's front door for the fuzzers: sends a case, checks /health."""

from __future__ import annotations

import http.client
import json
from typing import Any

from modelambda.local.emulator import EmulatorThread
from tests.hostile.fuzz import GOOD, HttpCase, Tally


class FrontDoor:
    """One keep-alive connection to the emulator (a new one when the server closes it), and
    the environments of ``function`` seen so far: a crash replaces an environment, so one of
    them missing from /health later is counted as a crash."""

    def __init__(self, emu: EmulatorThread, function: str = "iris") -> None:
        self.port = emu.emulator.port
        self.function = function
        self.conn: http.client.HTTPConnection | None = None
        self.seen: dict[str, int] = {}  # environment id -> invocations at last look

    def send(self, case: HttpCase) -> tuple[int, dict[str, str], bytes]:
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
            try:
                self.conn.request(case.method, case.path, body=case.body or None,
                                  headers=case.headers)
                response = self.conn.getresponse()
                body = response.read()
                headers = {k.lower(): v for k, v in response.getheaders()}
                if response.will_close:
                    self.close()
                return response.status, headers, body
            except (ConnectionError, http.client.HTTPException):
                self.close()  # the server closed a kept-alive connection: once more
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def health(self) -> dict[str, Any]:
        status, _, body = self.send(HttpCase("GET", "/health", {}, b""))
        assert status == 200, body
        described: dict[str, Any] = json.loads(body)
        return described

    def environments(self) -> dict[str, int]:
        for function in self.health()["functions"]:
            if function["name"] == self.function:
                return {e["id"]: e["invocations"] for e in function["environments"]}
        raise AssertionError(f"{self.function} is gone from /health")

    def warm(self) -> None:
        """One good request, so that an environment exists to watch."""
        case = HttpCase("POST", f"/2015-03-31/functions/{self.function}/invocations",
                        {"Content-Type": "application/json"}, json.dumps(GOOD).encode())
        status, _, body = self.send(case)
        assert status == 200 and "predictions" in json.loads(body), body
        self.seen = self.environments()

    def check_alive(self, tally: Tally) -> None:
        now = self.environments()
        for env_id, count in self.seen.items():
            if env_id not in now:
                tally.failed("crashes", f"environment {env_id} is gone (it had served "
                                        f"{count}): {now}")
            elif now[env_id] < count:
                tally.failed("crashes", f"environment {env_id}'s count went back")
        self.seen = {**self.seen, **now}
        self.seen = {k: v for k, v in self.seen.items() if k in now}

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None
