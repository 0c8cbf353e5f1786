"""Test helpers: Debian's ``docker-registry`` (the CNCF distribution registry) on loopback, and a
token-auth proxy in front of it for the ``Bearer`` challenge.

    with LocalRegistry(tmp_path) as registry:        # 127.0.0.1:<free port>, no auth
        registry.host                                 # "127.0.0.1:41234"
    LocalRegistry(tmp_path, htpasswd=True)            # basic auth: USER / PASSWORD
    TokenProxy(registry)                              # Bearer realm=http://127.0.0.1:P/token
"""

from __future__ import annotations

import base64
import http.client
import secrets
import shutil
import socket
import subprocess
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType

import pytest

BINARY = "docker-registry"
USER = "tester"
PASSWORD = "s3cret-test"
# bcrypt (cost 4) of PASSWORD: the registry's htpasswd file takes bcrypt only
PASSWORD_BCRYPT = "$2b$04$oJx5TsigKZoqTY3v/DCKGe6MKAYOMSkX01RrOoldu8mCUXM3s5SJq"

CONFIG = """\
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {storage}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{port}
  secret: modelambda-test-secret
{auth}"""

AUTH = """\
auth:
  htpasswd:
    realm: modelambda-test
    path: {htpasswd}
"""


def registry_binary() -> str:
    """The registry's path, or skip the test saying how to get it."""
    found = shutil.which(BINARY) or (f"/usr/bin/{BINARY}" if Path(f"/usr/bin/{BINARY}")
                                     .is_file() else None)
    if found is None:
        pytest.skip("docker-registry is not installed (Debian package docker-registry: "
                    "`apt-get install -y docker-registry`; .ci/run installs it)")
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LocalRegistry:
    """``docker-registry serve config.yml`` on 127.0.0.1 and a free port, storage in ``root``."""

    def __init__(self, root: Path, *, htpasswd: bool = False) -> None:
        self.root = root
        self.htpasswd = htpasswd
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> LocalRegistry:
        binary = registry_binary()
        self.root.mkdir(parents=True, exist_ok=True)
        auth = ""
        if self.htpasswd:
            passwords = self.root / "htpasswd"
            passwords.write_text(f"{USER}:{PASSWORD_BCRYPT}\n")
            auth = AUTH.format(htpasswd=passwords)
        config = self.root / "config.yml"
        self.port = free_port()
        config.write_text(CONFIG.format(storage=self.root / "storage", port=self.port,
                                        auth=auth))
        log = (self.root / "registry.log").open("wb")
        self.process = subprocess.Popen([binary, "serve", str(config)], stdout=log,
                                        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"docker-registry exited ({self.process.returncode}): "
                                   f"{(self.root / 'registry.log').read_text()[-2000:]}")
            if _answers(self.host):
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"docker-registry did not answer GET /v2/ on {self.host} in 20 s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def __enter__(self) -> LocalRegistry:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def _answers(host: str) -> bool:
    connection = http.client.HTTPConnection(host, timeout=1)
    try:
        connection.request("GET", "/v2/")
        return connection.getresponse().status in (200, 401)
    except OSError:
        return False
    finally:
        connection.close()


class TokenProxy:
    """A registry front that demands ``Bearer`` tokens, as Docker Hub, ECR Public and GHCR
    do: ``/token`` hands out a token for USER/PASSWORD (basic auth), every ``/v2/`` request
    without a valid one gets ``401`` with ``WWW-Authenticate: Bearer realm=...``; the rest
    goes to the upstream registry (with the Host header kept, so its Location headers point
    back here). ``token_requests`` records each token request's scopes."""

    def __init__(self, upstream: LocalRegistry) -> None:
        self.upstream = upstream
        self.tokens: set[str] = set()
        self.token_requests: list[list[str]] = []
        self.seen_authorization: list[tuple[str, str]] = []  # (path, Authorization)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def handle_any(self) -> None:
                proxy.handle(self)

            do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = handle_any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> TokenProxy:
        self.thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.server.shutdown()
        self.server.server_close()

    def handle(self, request: BaseHTTPRequestHandler) -> None:
        length = int(request.headers.get("Content-Length") or 0)
        body = request.rfile.read(length) if length else b""
        url = urllib.parse.urlsplit(request.path)
        authorization = request.headers.get("Authorization") or ""
        self.seen_authorization.append((url.path, authorization))
        if url.path == "/token":
            self.token(request, url.query, authorization)
            return
        if authorization.removeprefix("Bearer ") not in self.tokens:
            parts = url.path.split("/")
            repo = "/".join(parts[2:parts.index("blobs") if "blobs" in parts else
                                  parts.index("manifests") if "manifests" in parts else 2])
            scope = f'repository:{repo}:pull,push' if repo else ""
            challenge = (f'Bearer realm="http://{self.host}/token",service="test-registry"'
                         + (f',scope="{scope}"' if scope else ""))
            _reply(request, 401, {"WWW-Authenticate": challenge, "Content-Type":
                                  "application/json"},
                   b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}')
            return
        upstream = http.client.HTTPConnection(self.upstream.host, timeout=60)
        headers = {k: v for k, v in request.headers.items() if k.lower() != "authorization"}
        upstream.request(request.command, request.path, body=body, headers=headers)
        answer = upstream.getresponse()
        data = answer.read()
        upstream.close()
        passed = {k: v for k, v in answer.getheaders()
                  if k.lower() not in ("content-length", "transfer-encoding", "connection")}
        _reply(request, answer.status, passed, data, head=request.command == "HEAD",
               length=answer.getheader("Content-Length"))

    def token(self, request: BaseHTTPRequestHandler, query: str, authorization: str) -> None:
        expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        if authorization != expected:
            _reply(request, 401, {"Content-Type": "application/json"},
                   b'{"details":"incorrect username or password"}')
            return
        self.token_requests.append(urllib.parse.parse_qs(query).get("scope", []))
        token = secrets.token_hex(16)
        self.tokens.add(token)
        _reply(request, 200, {"Content-Type": "application/json"},
               f'{{"token":"{token}","expires_in":300}}'.encode())


def _reply(request: BaseHTTPRequestHandler, status: int, headers: dict[str, str], body: bytes,
           *, head: bool = False, length: str | None = None) -> None:
    request.send_response(status)
    for name, value in headers.items():
        request.send_header(name, value)
    request.send_header("Content-Length", length if head and length else str(len(body)))
    request.end_headers()
    if not head:
        request.wfile.write(body)
