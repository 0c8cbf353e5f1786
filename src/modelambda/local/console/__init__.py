"""The local console: ``up``'s functions, environments, invocations, model versions and
measurements, in the browser at ``/``, and as JSON under ``/console/api/``.

Routes (GET unless said):

- ``/`` (a browser, ``Accept: text/html``) and ``/console/``: the page; ``/console/static/*``
  its script and style (package data, no build step, nothing from elsewhere);
- ``/console/api/functions``: every function with its environments (and the ended ones,
  with their reason), strategy, model and URLs; ``/console/api/functions/NAME``: one;
- ``/console/api/invocations?function=NAME&after=ID&limit=N``: the last invocations, newest
  first; ``/console/api/invocations/ID``: one, with request, response, logs and REPORT line;
- ``/console/api/latency/NAME``: the last five minutes' durations as a histogram;
- ``/console/api/models/NAME``: the model store's versions and aliases (``s3``/``efs``);
  ``POST /console/api/models/NAME/promote`` ``{"version": V, "alias": A}`` and
  ``POST /console/api/models/NAME/rollback`` ``{"alias": A}``: as ``modelambda models``;
- ``/console/api/measurements/NAME``: the last ``bench`` and ``advise`` results; their
  charts at ``/console/measurements/NAME/FILE.png``;
- ``/console/api/live``: server-sent events, one ``update`` (the functions and the new
  invocations) at most twice a second, and every second.

The only actions are promote and rollback (the page's "try it" calls the Function URL or the
Invoke API like any client). The console is on loopback, so the threats are another page in
the same browser (CSRF) and DNS rebinding: every console request must name this server in
its Host header, and a POST must come from this origin (Origin header) with a JSON body (a
cross-origin JSON POST needs a CORS preflight, which is never granted). Every answer carries a
Content-Security-Policy that allows the page's own script, style and images only.
"""

from __future__ import annotations

import asyncio
import json
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelambda.local.console import api
from modelambda.local.console.api import Service
from modelambda.local.console.live import Live
from modelambda.local.console.store import InvocationLog
from modelambda.local.httpserver import HttpRequest, HttpResponse, StreamResponse

if TYPE_CHECKING:
    from modelambda.local.emulator import Emulator

__all__ = ["Console", "Service", "wants_page"]

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
SECURITY_HEADERS = [("Content-Security-Policy", CSP), ("X-Content-Type-Options", "nosniff"),
                    ("Referrer-Policy", "no-referrer"), ("X-Frame-Options", "DENY"),
                    ("Cache-Control", "no-store")]
STATIC = {"console.js": "text/javascript; charset=utf-8",
          "console.css": "text/css; charset=utf-8",
          "index.html": "text/html; charset=utf-8"}
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
MAX_LIMIT = 1000  # invocations in one listing
MAX_STREAMS = 16  # live streams at once (each tab holds one)


def _json(status: int, body: Any) -> HttpResponse:
    return HttpResponse(status, json.dumps(body, default=str).encode(),
                        [("Content-Type", "application/json"), *SECURITY_HEADERS])


def _error(status: int, message: str) -> HttpResponse:
    return _json(status, {"error": message})


def wants_page(request: HttpRequest) -> bool:
    """A browser asking for ``/`` gets the page; scripts (no text/html) keep ``/health``'s
    JSON there."""
    return "text/html" in request.headers.get("accept", "")


class Console:
    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator
        self.log = InvocationLog()
        self.services: dict[str, Service] = {}
        self.live = Live(self.log, self._update)

    # --- what the emulator tells it ------------------------------------------------------------

    def add_service(self, name: str, service: Service) -> None:
        self.services[name] = service

    def close(self) -> None:
        self.live.close()

    # --- requests ------------------------------------------------------------------------------

    def _allowed_hosts(self) -> set[str]:
        port = self.emulator.port
        names = set(LOOPBACK_NAMES) | {self.emulator.host}
        return {f"{name}:{port}" for name in names}

    def refusal(self, request: HttpRequest) -> HttpResponse | None:
        """Why this request may not reach the console (DNS rebinding, CSRF), or None."""
        hosts = self._allowed_hosts()
        if request.headers.get("host", "") not in hosts:
            return _error(403, f"the console answers requests for {self.emulator.url} only "
                               f"(Host was {request.headers.get('host', '')!r}); open it "
                               "by that address")
        if request.method == "GET":
            return None
        if request.method != "POST":
            return _error(405, f"{request.method} is not allowed here: GET, or POST for "
                               "promote and rollback")
        origin = request.headers.get("origin", "")
        if origin not in {f"http://{host}" for host in hosts}:
            return _error(403, "a console action must come from the console's own page "
                               f"(Origin was {origin or 'missing'!r})")
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            return _error(415, "a console action takes a JSON body (Content-Type: "
                               "application/json)")
        return None

    async def handle(self, request: HttpRequest) -> HttpResponse:
        refused = self.refusal(request)
        if refused is not None:
            return refused
        path = request.path
        if path in ("/", "/console", "/console/"):
            return self._static("index.html")
        if path.startswith("/console/static/"):
            return self._static(path[len("/console/static/"):])
        if path.startswith("/console/measurements/"):
            return self._chart(path[len("/console/measurements/"):])
        if path == "/console/api/live":
            if len(self.live.clients) >= MAX_STREAMS:
                return _error(503, f"{MAX_STREAMS} live streams are open already: close a "
                                   "console tab")
            return StreamResponse(200, [("Content-Type", "text/event-stream"),
                                        *SECURITY_HEADERS], self.live.stream)
        if path.startswith("/console/api/"):
            parts = path[len("/console/api/"):].strip("/").split("/")
            return await self._api(request, parts)
        return _error(404, f"no console page {path}; the console is at /")

    async def _api(self, request: HttpRequest, parts: list[str]) -> HttpResponse:
        view, rest = parts[0], parts[1:]
        if request.method == "POST":
            if view == "models" and len(rest) == 2 and rest[1] in ("promote", "rollback"):
                return await self._move_alias(request, rest[0], rest[1])
            return _error(404, "the console's actions are POST /console/api/models/NAME/"
                               "promote and .../rollback")
        if view == "functions" and len(rest) <= 1:
            views = self.functions()
            if not rest:
                return _json(200, {"functions": views})
            found = [v for v in views if v["name"] == rest[0]]
            return _json(200, found[0]) if found else self._no_function(rest[0])
        if view == "invocations" and not rest:
            return self._invocations(request)
        if view == "invocations" and len(rest) == 1:
            wanted = rest[0]
            record = (self.log.get(int(wanted)) if wanted.isascii() and wanted.isdigit()
                      and len(wanted) < 20
                      else None)
            if record is None:
                return _error(404, f"no invocation {rest[0]!r} (the console keeps the last "
                                   f"{self.log.limit}); list them at /console/api/invocations")
            return _json(200, api.detail(record))
        if view in ("latency", "models", "measurements") and len(rest) == 1:
            return await self._function_view(view, rest[0])
        return _error(404, "no such console view; see /console/api/functions")

    async def _function_view(self, view: str, name: str) -> HttpResponse:
        if name not in self.emulator.functions:
            return self._no_function(name)
        if view == "latency":
            return _json(200, api.latency(self.log, name))
        service = self.services.get(name)
        if service is None:
            return _error(404, f"{name} was not started from a service directory: no "
                               "model store or measurements to show")
        if view == "measurements":
            return _json(200, api.measurements_view(service, name))
        if service.store is None:
            return _error(404, f"{name}'s strategy ({service.spec.strategy.kind}) has no "
                               "model store: versions and aliases are for s3 and efs")
        return await self._store_call(api.models_view, service, self.log, name)

    def _no_function(self, name: str) -> HttpResponse:
        known = ", ".join(sorted(self.emulator.functions)) or "none"
        return _error(404, f"no function {name!r}; running: {known}")

    def functions(self) -> list[dict[str, Any]]:
        return [api.function_view(self.emulator, function, self.services.get(name), self.log)
                for name, function in self.emulator.functions.items()]

    def _invocations(self, request: HttpRequest) -> HttpResponse:
        query = request.query
        try:
            after = int(query.get("after", "0"))
            limit = max(1, min(int(query.get("limit", "100")), MAX_LIMIT))
        except ValueError:
            return _error(400, "after and limit are whole numbers, e.g. ?limit=50&after=120")
        function = query.get("function") or None
        listing = []
        for record in self.log.newest(function, after):
            listing.append(api.summary(record))
            if len(listing) >= limit:
                break
        return _json(200, {"invocations": listing, "last": self.log.seq,
                           "kept": len(self.log.records), "limit": self.log.limit})

    def _update(self, after: int) -> tuple[dict[str, Any], int]:
        """One live update: the functions, and the invocations after ``after`` (at most 200:
        the page lists the newest)."""
        new = []
        for record in self.log.newest(None, after):
            new.append(api.summary(record))
            if len(new) >= 200:
                break
        return {"functions": self.functions(), "invocations": new,
                "last": self.log.seq}, self.log.seq

    async def _store_call(self, view: Any, *args: Any) -> HttpResponse:
        """A model store call in a worker thread; the store's errors as one line."""
        from modelambda.errors import ModelambdaError

        try:
            return _json(200, await asyncio.to_thread(view, *args))
        except ModelambdaError as exc:
            return _error(400, str(exc))
        except Exception as exc:  # the store's client (S3 down, ...): said, not a traceback
            from modelambda.awserrors import explain

            return _error(502, explain(exc, "the model store") or
                          f"the model store failed: {type(exc).__name__}: {exc}")

    async def _move_alias(self, request: HttpRequest, name: str, action: str) -> HttpResponse:
        service = self.services.get(name)
        if service is None or service.store is None:
            return _error(404, f"{name!r} has no model store (s3 and efs services have one)")
        try:
            body = json.loads(request.body or b"{}")
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return _error(400, 'the body is a JSON object: {"version": "2", "alias": "live"}')
        alias = body.get("alias") or str(service.spec.strategy.settings.get("alias", "live"))
        version = body.get("version")
        if not isinstance(alias, str) or (action == "promote" and not isinstance(version, str)):
            return _error(400, 'promote takes {"version": "...", "alias": "..."} (strings); '
                               'rollback {"alias": "..."}')
        return await self._store_call(_move, service, action, alias, version)

    # --- files ---------------------------------------------------------------------------------

    @staticmethod
    def _static(name: str) -> HttpResponse:
        if name not in STATIC:  # a fixed list: no path from the request reaches the disk
            return _error(404, f"no console file {name!r}")
        data = resources.files(__package__).joinpath("static", name).read_bytes()
        return HttpResponse(200, data, [("Content-Type", STATIC[name]), *SECURITY_HEADERS])

    def _chart(self, rest: str) -> HttpResponse:
        name, _, file = rest.partition("/")
        service = self.services.get(name)
        if service is None or not api.CHART.match(file):
            return _error(404, "no such chart")
        path = service.bench_dir / file
        try:
            if path.resolve().parent != service.bench_dir.resolve():
                return _error(404, "no such chart")
            data = Path(path).read_bytes()
        except OSError:
            return _error(404, f"no chart {file} in {service.bench_dir}")
        return HttpResponse(200, data, [("Content-Type", "image/png"), *SECURITY_HEADERS])


def _move(service: Service, action: str, alias: str, version: str | None) -> dict[str, Any]:
    """Promote or roll back, through the functions ``modelambda models`` calls."""
    from modelambda import modelstore

    assert service.store is not None
    store = service.store()
    model = service.spec.model.name
    if action == "promote":
        assert version is not None
        before = modelstore.promote(store, model, version, alias)
        return {"alias": alias, "from": before, "to": version}
    current, target = modelstore.rollback(store, model, alias)
    return {"alias": alias, "from": current, "to": target}
