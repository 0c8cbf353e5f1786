"""A small client for the OCI distribution API (the registry HTTP API), stdlib only.

What ``modelambda.package.oci`` needs to push an image without a Docker daemon: read
manifests and blobs, ask whether a blob exists (``HEAD``), mount a blob from another
repository of the same registry, upload a blob (``POST``, ``PATCH``, ``PUT ?digest=``) and put
a manifest. Authentication follows the registry's ``WWW-Authenticate`` challenge: ``Basic``
sends the given user and password; ``Bearer realm=...,service=...,scope=...`` fetches a token
from the realm (with the credentials when there are any, anonymously otherwise) for every
scope the client has needed so far, so one token serves a whole push.

Plain ``http://`` is used only for loopback registries (``localhost``, ``127.0.0.0/8``,
``::1``), which are also the default for those hosts without a scheme, as Docker does.
Credentials never appear in messages or logs.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import ipaddress
import json
import os
import re
import socket
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import modelambda
from modelambda.errors import ModelambdaError

Log = Callable[[str], None]

MANIFEST_DOCKER = "application/vnd.docker.distribution.manifest.v2+json"
MANIFEST_LIST_DOCKER = "application/vnd.docker.distribution.manifest.list.v2+json"
MANIFEST_OCI = "application/vnd.oci.image.manifest.v1+json"
INDEX_OCI = "application/vnd.oci.image.index.v1+json"
MANIFEST_TYPES = (MANIFEST_OCI, MANIFEST_DOCKER, INDEX_OCI, MANIFEST_LIST_DOCKER)

DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"
TIMEOUT_S = 120.0
USER_AGENT = f"modelambda/{modelambda.__version__}"
_REDIRECTS = (301, 302, 303, 307, 308)
_BLOCK = 1 << 20


class RegistryError(ModelambdaError):
    """A registry operation failed; the one-line message names the registry, the operation,
    the HTTP status (when there was one) and what to do. It never contains credentials."""

    def __init__(self, message: str, *, status: int | None = None, code: str = "") -> None:
        super().__init__(" ".join(message.split()))
        self.http_status = status  # the registry's HTTP status; None when it did not answer
        self.code = code  # the registry's error code, e.g. MANIFEST_UNKNOWN


@dataclass(frozen=True)
class RegistryAuth:
    """Credentials for one registry: a user name and password (or token used as one, as
    ECR's ``AWS`` + authorization token). ``registry`` is informational (ECR's endpoint host).
    The password never shows in ``repr``."""

    username: str
    password: str = field(repr=False)
    registry: str = ""


@dataclass(frozen=True)
class Reference:
    """``registry/repository[:tag][@sha256:...]``, optionally ``http://`` or ``https://``
    first."""

    registry: str  # host[:port] as written (docker.io for Docker Hub)
    repository: str
    tag: str = ""
    digest: str = ""
    scheme: str = "https"

    @property
    def ref(self) -> str:
        """What goes after ``/manifests/``: the digest if there is one, else the tag."""
        return self.digest or self.tag or "latest"

    @property
    def api_host(self) -> str:
        return DOCKER_HUB_API if self.registry == DOCKER_HUB else self.registry

    @property
    def name(self) -> str:
        """The reference as written, without a scheme."""
        text = f"{self.registry}/{self.repository}"
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text

    def by_digest(self, digest: str) -> str:
        return f"{self.registry}/{self.repository}@{digest}"


_REPO = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)"
                   r"[a-z0-9]+)*)*$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


def parse_reference(text: str, *, what: str = "image reference") -> Reference:
    """Parse ``[scheme://]registry/repo[:tag][@sha256:...]``. A first component without a
    dot or colon (and not ``localhost``) means Docker Hub, as for ``docker pull``."""
    rest, scheme = text.strip(), ""
    for prefix in ("http://", "https://"):
        if rest.startswith(prefix):
            scheme, rest = prefix[:-3], rest[len(prefix):]
    digest = ""
    if "@" in rest:
        rest, digest = rest.split("@", 1)
        if not _DIGEST.match(digest):
            raise RegistryError(f"{what} {text!r}: the digest must be sha256: and 64 hex "
                                "digits")
    first, slash, remainder = rest.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        registry, path = first, remainder
    else:
        registry, path = DOCKER_HUB, rest
        if "/" not in path:
            path = f"library/{path}"
    tag = ""
    last = path.rsplit("/", 1)[-1]
    if ":" in last:
        path, tag = path.rsplit(":", 1)
        if not _TAG.match(tag):
            raise RegistryError(f"{what} {text!r}: tag {tag!r} is not a valid tag "
                                "([A-Za-z0-9_.-], at most 128, not starting with . or -)")
    if not registry or not _REPO.match(path):
        raise RegistryError(f"{what} {text!r}: expected registry/repository[:tag] or "
                            "registry/repository@sha256:..., repository in lower case")
    host = _host_of(registry)
    if not scheme:
        scheme = "http" if is_loopback(host) else "https"
    elif scheme == "http" and not is_loopback(host):
        raise RegistryError(f"{what} {text!r}: plain http:// is allowed only for loopback "
                            f"registries (localhost, 127.0.0.0/8, ::1); use https://{registry}")
    return Reference(registry, path, tag, digest, scheme)


def _host_of(netloc: str) -> str:
    if netloc.startswith("["):
        return netloc[1:].split("]", 1)[0]
    return netloc.rsplit(":", 1)[0] if netloc.count(":") == 1 else netloc


def is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: bytes
    url: str

    def header(self, name: str) -> str:
        return self.headers.get(name) or ""


class _Body:
    """A request body that can be sent again (after a stale connection or a re-auth)."""

    def __init__(self, data: bytes | None = None, path: Path | None = None, offset: int = 0,
                 length: int = 0) -> None:
        self.data, self.path, self.offset = data, path, offset
        self.length = len(data) if data is not None else length

    def open(self) -> bytes | _Reader | None:
        if self.path is None:
            return self.data
        handle = self.path.open("rb")
        handle.seek(self.offset)
        return _Reader(handle, self.length)


class _Reader:
    """At most ``length`` bytes of an open file, read by http.client block by block."""

    def __init__(self, handle: BinaryIO, length: int) -> None:
        self.handle, self.left = handle, length

    def read(self, size: int = -1) -> bytes:
        if self.left <= 0:
            self.close()
            return b""
        size = self.left if size < 0 else min(size, self.left)
        data = self.handle.read(size)
        self.left -= len(data)
        if not data:
            self.left = 0
        return data

    def close(self) -> None:
        self.handle.close()


@dataclass
class _Challenge:
    scheme: str
    params: dict[str, str]


def parse_challenge(header: str) -> _Challenge:
    """``Bearer realm="...",service="...",scope="..."`` or ``Basic realm="..."``."""
    scheme, _, rest = header.strip().partition(" ")
    params = {k.lower(): v for k, v in re.findall(r'(\w+)="([^"]*)"', rest)}
    return _Challenge(scheme.lower(), params)


class Registry:
    """One registry (scheme + host): connections, credentials, tokens."""

    def __init__(self, scheme: str, host: str, auth: RegistryAuth | None = None,
                 log: Log | None = None, timeout: float = TIMEOUT_S) -> None:
        self.scheme, self.host, self.auth = scheme, host, auth
        self.timeout = timeout
        self.log = log or (lambda _line: None)
        self._mode = ""  # "" until challenged, then "basic" or "bearer"
        self._bearer = ""
        self._token_scopes: frozenset[str] = frozenset()
        self._challenge: _Challenge | None = None
        self._expected: set[str] = set()
        self._connections: dict[tuple[str, str], http.client.HTTPConnection] = {}

    @classmethod
    def for_reference(cls, ref: Reference, auth: RegistryAuth | None = None,
                      log: Log | None = None) -> Registry:
        return cls(ref.scheme, ref.api_host, auth, log)

    def expect(self, *, pull: Iterable[str] = (), push: Iterable[str] = ()) -> None:
        """Repositories this client will read (``pull``) and write (``push``): a bearer token
        then covers them all at once, instead of one token per new scope."""
        self._expected.update([*map(_pull, pull), *map(_push, push)])

    @property
    def label(self) -> str:
        return self.host

    def close(self) -> None:
        for connection in self._connections.values():
            connection.close()
        self._connections.clear()

    # --- the API ------------------------------------------------------------------------

    def blob_exists(self, repo: str, digest: str) -> bool:
        reply = self.request("HEAD", f"/v2/{repo}/blobs/{digest}", scopes=[_pull(repo)],
                             op=f"checking blob {digest[:19]} in {repo}", ok=(200, 404))
        return reply.status == 200

    def get_manifest(self, repo: str, ref: str, *, what: str) -> tuple[bytes, str, str]:
        """(bytes, media type, digest) of a manifest or index; 404 names ``what``."""
        reply = self.request("GET", f"/v2/{repo}/manifests/{ref}", scopes=[_pull(repo)],
                             op=f"reading the manifest of {what}", ok=(200,),
                             headers={"Accept": ", ".join(MANIFEST_TYPES)},
                             not_found=f"{what} does not exist: check the repository and "
                                       "tag (or digest)")
        digest = sha256_digest(reply.body)
        if ref.startswith("sha256:") and digest != ref:
            raise RegistryError(f"registry {self.label}: the manifest of {what} has digest "
                                f"{digest}, not {ref}: the registry returned other bytes")
        return reply.body, _media_type(reply), digest

    def get_blob(self, repo: str, digest: str, *, what: str) -> bytes:
        reply = self.request("GET", f"/v2/{repo}/blobs/{digest}", scopes=[_pull(repo)],
                             op=f"reading {what} {digest[:19]} from {repo}", ok=(200,),
                             not_found=f"{what} {digest} is missing from {repo}")
        if sha256_digest(reply.body) != digest:
            raise RegistryError(f"registry {self.label}: {what} {digest[:19]} from {repo} "
                                "does not match its digest: the registry returned other bytes")
        return reply.body

    def download_blob(self, repo: str, digest: str, dest: Path) -> None:
        """Stream a blob to ``dest`` (atomically), checking its digest."""
        tmp = dest.with_name(dest.name + f".{os.getpid()}.part")
        dest.parent.mkdir(parents=True, exist_ok=True)
        with tmp.open("wb") as handle:
            sink = _HashingSink(handle)
            self.request("GET", f"/v2/{repo}/blobs/{digest}", scopes=[_pull(repo)],
                         op=f"downloading blob {digest[:19]} from {repo}", ok=(200,),
                         not_found=f"blob {digest} is missing from {repo}", sink=sink)
        if sink.digest() != digest:
            tmp.unlink(missing_ok=True)
            raise RegistryError(f"registry {self.label}: blob {digest[:19]} from {repo} does "
                                "not match its digest: the registry returned other bytes")
        tmp.replace(dest)

    def mount_blob(self, repo: str, digest: str, source_repo: str) -> str | None:
        """Mount ``digest`` from ``source_repo`` (same registry). None when mounted, else the
        upload location the registry opened instead."""
        query = urllib.parse.urlencode({"mount": digest, "from": source_repo})
        reply = self.request("POST", f"/v2/{repo}/blobs/uploads/?{query}",
                             scopes=[_push(repo), _pull(source_repo)],
                             op=f"mounting blob {digest[:19]} from {source_repo} into {repo}",
                             ok=(201, 202), body=_Body(b""))
        if reply.status == 201:
            return None
        return self._location(reply, "mounting a blob")

    def upload_blob(self, repo: str, digest: str, data: bytes | Path, *,
                    location: str | None = None, chunk_size: int | None = None) -> None:
        """Upload a blob: ``POST`` (unless ``location`` is an open upload), ``PATCH`` the bytes
        (one request, or chunks of ``chunk_size``), then ``PUT ?digest=``."""
        op = f"uploading blob {digest[:19]} to {repo}"
        if location is None:
            reply = self.request("POST", f"/v2/{repo}/blobs/uploads/", scopes=[_push(repo)],
                                 op=op, ok=(202,), body=_Body(b""))
            location = self._location(reply, op)
        size = len(data) if isinstance(data, bytes) else data.stat().st_size
        step = chunk_size or max(size, 1)
        offset = 0
        while offset < size:
            length = min(step, size - offset)
            body = (_Body(data[offset:offset + length]) if isinstance(data, bytes)
                    else _Body(path=data, offset=offset, length=length))
            reply = self.request("PATCH", location, scopes=[_push(repo)], op=op, ok=(202,),
                                 body=body, headers={
                                     "Content-Type": "application/octet-stream",
                                     "Content-Range": f"{offset}-{offset + length - 1}"})
            location = self._location(reply, op)
            offset += length
        joiner = "&" if "?" in location else "?"
        self.request("PUT", f"{location}{joiner}digest={urllib.parse.quote(digest)}",
                     scopes=[_push(repo)], op=op, ok=(201, 204), body=_Body(b""),
                     headers={"Content-Type": "application/octet-stream"})

    def put_manifest(self, repo: str, ref: str, body: bytes, media_type: str) -> str:
        """Put a manifest under a tag (or its digest); returns the registry's digest."""
        reply = self.request("PUT", f"/v2/{repo}/manifests/{ref}", scopes=[_push(repo)],
                             op=f"putting the manifest {repo}:{ref}", ok=(200, 201),
                             body=_Body(body), headers={"Content-Type": media_type})
        return reply.header("Docker-Content-Digest") or sha256_digest(body)

    # --- HTTP, auth -----------------------------------------------------------------------

    def request(self, method: str, target: str, *, scopes: Iterable[str], op: str,
                ok: tuple[int, ...], headers: dict[str, str] | None = None,
                body: _Body | None = None, sink: _HashingSink | None = None,
                not_found: str = "") -> Reply:
        """One API call with auth: on a 401 answer to the challenge once and try again."""
        wanted = frozenset(scopes)
        url = urllib.parse.urljoin(f"{self.scheme}://{self.host}/", target)
        for attempt in range(2):
            if self._mode == "bearer" and not _covers(self._token_scopes, wanted):
                self._fetch_token(wanted, op)
            reply = self._send(method, url, headers or {}, body, sink, op)
            if reply.status != 401 or attempt == 1:
                break
            if not self._answer(reply.header("WWW-Authenticate"), wanted, op):
                break
        if reply.status not in ok:
            raise self._failure(method, op, reply, not_found)
        return reply

    def _answer(self, header: str, scopes: frozenset[str], op: str) -> bool:
        """Set up credentials for a 401's challenge; False when there is nothing new to try."""
        challenge = parse_challenge(header) if header else None
        if challenge is None:
            return False
        if challenge.scheme == "basic":
            if self.auth is None or self._mode == "basic":
                return False
            self._mode = "basic"
            return True
        if challenge.scheme == "bearer" and "realm" in challenge.params:
            # a new token every time: the one we had may have expired mid-push
            scope = challenge.params.get("scope", "")
            wanted = scopes | frozenset(s for s in scope.split(" ") if s)
            self._mode, self._challenge = "bearer", challenge
            self._fetch_token(wanted, op)
            return True
        return False

    def _fetch_token(self, scopes: frozenset[str], op: str) -> None:
        assert self._challenge is not None
        params = self._challenge.params
        realm = params["realm"]
        wanted = scopes | self._token_scopes | self._expected
        parts = urllib.parse.urlsplit(realm)
        if parts.scheme != "https" and not (parts.scheme == "http" and
                                            is_loopback(parts.hostname or "")):
            raise RegistryError(f"registry {self.label}: its token service {realm} is not "
                                "https (plain http only on loopback): refusing to send "
                                "credentials there")
        query = [("service", params["service"])] if "service" in params else []
        query += [("scope", s) for s in sorted(wanted)]
        url = realm + ("&" if "?" in realm else "?") + urllib.parse.urlencode(query)
        request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
        if self.auth is not None:
            request.add_unredirected_header("Authorization", self._basic_header())
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:
                data = json.loads(answer.read())
        except urllib.error.HTTPError as e:
            e.close()  # the error holds the answer's open connection
            who = "the credentials were refused" if self.auth else "it needs credentials"
            raise RegistryError(
                f"registry {self.label}: {op} failed: token service {parts.netloc} answered "
                f"HTTP {e.code} ({who}); {self._credentials_fix()}", status=e.code) from None
        except (urllib.error.URLError, OSError, ValueError) as e:
            reason = getattr(e, "reason", e)
            raise RegistryError(f"registry {self.label}: {op} failed: its token service "
                                f"{parts.netloc} could not be reached or answered nonsense "
                                f"({reason}); check the network") from None
        token = data.get("token") or data.get("access_token") if isinstance(data, dict) \
            else None
        if not isinstance(token, str) or not token:
            raise RegistryError(f"registry {self.label}: {op} failed: token service "
                                f"{parts.netloc} answered without a token")
        self._bearer, self._token_scopes = token, wanted

    def _basic_header(self) -> str:
        assert self.auth is not None
        pair = f"{self.auth.username}:{self.auth.password}".encode()
        return "Basic " + base64.b64encode(pair).decode()

    def _credentials_fix(self) -> str:
        if self.auth is None:
            return ("pass credentials (auth=RegistryAuth(username, password); for ECR "
                    "auth=ecr_auth(boto3.client('ecr')))")
        return ("check the user name and password (an ECR token expires after 12 hours: "
                "get a new one with ecr_auth)")

    def _authorization(self, url: str) -> dict[str, str]:
        if urllib.parse.urlsplit(url).netloc != self.host:
            return {}  # never send credentials to another host (blob redirects to storage)
        if self._mode == "basic" and self.auth is not None:
            return {"Authorization": self._basic_header()}
        if self._mode == "bearer" and self._bearer:
            return {"Authorization": f"Bearer {self._bearer}"}
        return {}

    def _send(self, method: str, url: str, headers: dict[str, str], body: _Body | None,
              sink: _HashingSink | None, op: str) -> Reply:
        """Send, following redirects (for GET and HEAD), reusing connections."""
        for _ in range(6):
            parts = urllib.parse.urlsplit(url)
            if parts.netloc != self.host and parts.scheme == "http" and \
                    not is_loopback(parts.hostname or ""):
                raise RegistryError(f"registry {self.label}: {op}: redirected to plain "
                                    f"http://{parts.netloc}, refused (https only)")
            path = parts.path + (f"?{parts.query}" if parts.query else "")
            sent = {"User-Agent": USER_AGENT, **headers, **self._authorization(url)}
            if body is not None:
                sent["Content-Length"] = str(body.length)
            response = self._exchange(parts.scheme, parts.netloc, method, path, sent, body, op)
            if response.status in _REDIRECTS and method in ("GET", "HEAD"):
                response.read()
                url = urllib.parse.urljoin(url, response.getheader("Location") or "")
                continue
            if sink is not None and response.status == 200:
                while block := response.read(_BLOCK):
                    sink.write(block)
                data = b""
            else:
                data = response.read()
            if response.will_close:
                self._drop(parts.scheme, parts.netloc)
            return Reply(response.status, response.headers, data, url)
        raise RegistryError(f"registry {self.label}: {op}: too many redirects")

    def _exchange(self, scheme: str, netloc: str, method: str, path: str,
                  headers: dict[str, str], body: _Body | None, op: str
                  ) -> http.client.HTTPResponse:
        for attempt in range(2):
            key = (scheme, netloc)
            reused = key in self._connections
            connection = self._connections.get(key) or self._connect(scheme, netloc)
            self._connections[key] = connection
            data = body.open() if body else None
            try:
                connection.request(method, path, body=data, headers=headers)
                return connection.getresponse()
            except (http.client.RemoteDisconnected, ConnectionResetError,
                    BrokenPipeError) as e:
                self._drop(scheme, netloc)
                if reused and attempt == 0:
                    continue  # a kept-alive connection the server had closed: once more
                raise self._unreachable(netloc, op, e) from None
            except (OSError, http.client.HTTPException) as e:
                self._drop(scheme, netloc)
                raise self._unreachable(netloc, op, e) from None
            finally:
                if isinstance(data, _Reader):
                    data.close()
        raise AssertionError("unreachable")

    def _connect(self, scheme: str, netloc: str) -> http.client.HTTPConnection:
        if scheme == "https":
            return http.client.HTTPSConnection(netloc, timeout=self.timeout, blocksize=_BLOCK,
                                               context=ssl.create_default_context())
        return http.client.HTTPConnection(netloc, timeout=self.timeout, blocksize=_BLOCK)

    def _drop(self, scheme: str, netloc: str) -> None:
        connection = self._connections.pop((scheme, netloc), None)
        if connection is not None:
            connection.close()

    def _unreachable(self, netloc: str, op: str, error: BaseException) -> RegistryError:
        if isinstance(error, ConnectionRefusedError):
            why, fix = "connection refused", "is the registry running at that address?"
        elif isinstance(error, socket.gaierror):
            why, fix = "unknown host", "check the registry's host name"
        elif isinstance(error, TimeoutError):
            why, fix = f"no answer within {self.timeout:.0f} s", "check the network"
        elif isinstance(error, ssl.SSLError):
            why, fix = f"TLS failed: {error.reason or error}", \
                "is it an https registry with a trusted certificate?"
        else:
            why, fix = str(error) or type(error).__name__, "check the network and the address"
        where = "" if netloc == self.host else f" (at {netloc})"
        return RegistryError(f"registry {self.label}{where}: {op} failed: cannot connect "
                             f"({why}); {fix}")

    def _location(self, reply: Reply, op: str) -> str:
        location = reply.header("Location")
        if not location:
            raise RegistryError(f"registry {self.label}: {op}: HTTP {reply.status} without "
                                "a Location header; the registry does not follow the OCI "
                                "distribution API")
        return urllib.parse.urljoin(reply.url, location)

    def _failure(self, method: str, op: str, reply: Reply, not_found: str) -> RegistryError:
        code, detail = _error_detail(reply.body)
        status = f"HTTP {reply.status}" + (f" {code}" if code else "") + \
            (f" ({detail})" if detail and detail.lower() != code.lower().replace("_", " ")
             else "")
        if reply.status == 401:
            fix = self._credentials_fix()
        elif reply.status == 403:
            fix = "the credentials lack permission for this repository (push needs write access)"
        elif reply.status == 404 and not_found:
            fix = not_found
        elif reply.status == 404 and method in ("POST", "PUT", "PATCH"):
            fix = "the repository may not exist yet: create it first (ECR needs a repository)"
        elif reply.status == 429:
            fix = "the registry is rate-limiting: wait and try again"
        elif reply.status >= 500:
            fix = "the registry failed: try again later"
        else:
            fix = "the registry refused the request"
        return RegistryError(f"registry {self.label}: {op} failed: {status}; {fix}",
                             status=reply.status, code=code)


class _HashingSink:
    def __init__(self, sink: BinaryIO) -> None:
        self.sink, self.hasher = sink, hashlib.sha256()

    def write(self, data: bytes) -> None:
        self.hasher.update(data)
        self.sink.write(data)

    def digest(self) -> str:
        return "sha256:" + self.hasher.hexdigest()


def _error_detail(body: bytes) -> tuple[str, str]:
    """(code, message) of the registry's ``{"errors": [{"code", "message"}]}`` body."""
    try:
        errors = json.loads(body).get("errors") or []
        first = errors[0]
        return str(first.get("code", "")), " ".join(str(first.get("message", "")).split())[:200]
    except (ValueError, AttributeError, IndexError, TypeError, KeyError):
        return "", ""


def _media_type(reply: Reply) -> str:
    """A manifest's media type: its ``mediaType`` field, else the Content-Type."""
    try:
        document = json.loads(reply.body)
    except ValueError:
        document = None
    if isinstance(document, dict) and isinstance(document.get("mediaType"), str):
        return str(document["mediaType"])
    return reply.header("Content-Type").split(";")[0].strip()


def _covers(have: Iterable[str], wanted: Iterable[str]) -> bool:
    """Whether token scopes ``have`` grant ``wanted`` (``repository:x:pull`` is within
    ``repository:x:pull,push``)."""
    granted: dict[str, set[str]] = {}
    for scope in have:
        resource, _, actions = scope.rpartition(":")
        granted.setdefault(resource, set()).update(actions.split(","))
    for scope in wanted:
        resource, _, actions = scope.rpartition(":")
        if not set(actions.split(",")) <= granted.get(resource, set()):
            return False
    return True


def _pull(repo: str) -> str:
    return f"repository:{repo}:pull"


def _push(repo: str) -> str:
    return f"repository:{repo}:pull,push"


__all__ = ["INDEX_OCI", "MANIFEST_DOCKER", "MANIFEST_LIST_DOCKER", "MANIFEST_OCI", "Reference",
           "Registry", "RegistryAuth", "RegistryError", "is_loopback", "parse_reference",
           "sha256_digest"]
