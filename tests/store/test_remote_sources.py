"""The s3 and efs sources in the runtime: same predictions as a bundle, refresh, faults."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from modelambda import modelstore
from modelambda.local.s3server import EmbeddedS3
from modelambda.modelstore import DirStore, S3Store
from modelambda.runtime import ModelLoadError, storelayout
from modelambda.runtime.app import App
from modelambda.spec import load_spec
from tests.conftest import IRIS, MINILM_DATA, MINILM_EXAMPLE, make_app
from tests.store.conftest import BUCKET, service, store_app

ROWS = json.loads((IRIS / "request.json").read_text())
TEXTS = json.loads((MINILM_DATA / "reference_texts.json").read_text())["texts"]


def s3_service(tmp_path: Path, source: Path = IRIS, refresh_s: int = 0) -> Path:
    return service(source, tmp_path / source.name, f'kind = "s3"\nbucket = "{BUCKET}"\n'
                   f'prefix = "p-{tmp_path.name}"\nrefresh_s = {refresh_s}')


def efs_service(tmp_path: Path, source: Path = IRIS, refresh_s: int = 0) -> Path:
    return service(source, tmp_path / source.name, f'kind = "efs"\nrefresh_s = {refresh_s}')


def s3_store(s3: EmbeddedS3, root: Path) -> S3Store:
    spec = load_spec(root)
    return S3Store(BUCKET, spec.strategy.settings["prefix"], s3.client())


def test_s3_gives_the_bundles_predictions(s3_env: EmbeddedS3, tmp_path: Path) -> None:
    root = s3_service(tmp_path)
    spec = load_spec(root)
    version = modelstore.publish_service(spec, s3_store(s3_env, root), alias="live")
    app = store_app(spec, "s3", tmp_path / "tmp")
    result = app.handle(ROWS)
    assert result == {**make_app(IRIS).handle(ROWS), "model_version": version}
    assert not list((tmp_path / "tmp").rglob("*.onnx"))  # ONNX loaded from memory
    assert not open_memory_files("model.onnx")  # ... which is freed once loaded


def open_memory_files(name: str) -> list[str]:
    """This process's open in-memory files (memfd) of that name."""
    import os

    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # closed meanwhile (listdir's own descriptor)
            continue
        if target.startswith(f"/memfd:{name}"):
            found.append(target)
    return found


def test_minilm_from_s3_and_efs_matches_the_bundle(s3_env: EmbeddedS3, tmp_path: Path,
                                                   minilm_app: App) -> None:
    expected = np.array(minilm_app.handle({"instances": TEXTS})["predictions"])
    root = s3_service(tmp_path / "s", MINILM_EXAMPLE)
    spec = load_spec(root)
    modelstore.publish_service(spec, s3_store(s3_env, root), alias="live")
    got = store_app(spec, "s3", tmp_path / "tmp").handle({"instances": TEXTS})
    assert np.abs(np.array(got["predictions"]) - expected).max() < 1e-5

    root = efs_service(tmp_path / "e", MINILM_EXAMPLE)
    spec = load_spec(root)
    modelstore.publish_service(spec, DirStore(tmp_path / "efs"), alias="live")
    got = store_app(spec, "efs", tmp_path / "tmp2", efs_dir=tmp_path / "efs").handle(
        {"instances": TEXTS})
    assert np.abs(np.array(got["predictions"]) - expected).max() < 1e-5


def test_efs_with_verification_refuses_a_corrupted_file(tmp_path: Path) -> None:
    root = efs_service(tmp_path)
    spec = load_spec(root)
    store = DirStore(tmp_path / "efs")
    version = modelstore.publish_service(spec, store, alias="live")
    assert store_app(spec, "efs", tmp_path, efs_dir=tmp_path / "efs", verify=True).handle(ROWS)
    model = tmp_path / "efs" / "iris" / "versions" / version / "model.onnx"
    data = bytearray(model.read_bytes())
    data[-1] ^= 0xFF
    model.write_bytes(bytes(data))
    with pytest.raises(ModelLoadError, match=r"sha256 .* the manifest says"):
        store_app(spec, "efs", tmp_path, efs_dir=tmp_path / "efs", verify=True)


def _serve_while(app: App, stop: threading.Event, seen: list[Any]) -> None:
    while not stop.is_set():
        try:
            seen.append(app.handle(ROWS)["model_version"])
        except Exception as exc:  # any failure is recorded, and fails the test
            seen.append(exc)
        time.sleep(0.005)


@pytest.mark.parametrize("kind", ["s3", "efs"])
def test_promote_and_rollback_under_load(s3_env: EmbeddedS3, tmp_path: Path, kind: str) -> None:
    # GIVEN a warm function serving v1 that checks its alias every second
    root = (s3_service if kind == "s3" else efs_service)(tmp_path, refresh_s=1)
    spec = load_spec(root)
    store = s3_store(s3_env, root) if kind == "s3" else DirStore(tmp_path / "efs")
    modelstore.publish_service(spec, store, version="v1", alias="live")
    modelstore.publish_service(spec, store, version="v2")
    lines: list[str] = []
    app = store_app(spec, kind, tmp_path / "tmp", efs_dir=tmp_path / "efs", lines=lines)
    seen: list[Any] = []
    stop = threading.Event()
    worker = threading.Thread(target=_serve_while, args=(app, stop, seen))
    worker.start()
    try:
        for target in ("v2", "v1"):
            # WHEN the alias moves (promote, then rollback)
            time.sleep(0.3)
            mark = len(seen)
            if target == "v2":
                modelstore.promote(store, "iris", "v2", "live")
            else:
                assert modelstore.rollback(store, "iris", "live") == ("v2", "v1")
            # THEN within refresh_s (+ loading) every answer comes from the new version
            deadline = time.monotonic() + 8
            while time.monotonic() < deadline and (len(seen) < mark + 5 or
                                                   seen[-5:] != [target] * 5):
                time.sleep(0.05)
            window = seen[mark:]
            assert window[-5:] == [target] * 5
            assert all(v in ("v1", "v2") for v in window)  # none failed
            switch = window.index(target)
            assert all(v == target for v in window[switch:])  # one switch, no flapping
    finally:
        stop.set()
        worker.join()
    assert sum(1 for line in lines if '"model switched"' in line) == 2


def test_s3_down_at_cold_start_then_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                         ) -> None:
    # GIVEN a store whose server is down when the environment starts
    server = EmbeddedS3().start()
    server.ensure_bucket(BUCKET)
    root = s3_service(tmp_path)
    spec = load_spec(root)
    modelstore.publish_service(spec, s3_store(server, root), alias="live")
    for key, value in server.environment().items():
        monkeypatch.setenv(key, value)
    server.stop()
    # THEN init fails after its retries, naming the bucket, the key and the cause
    start = time.monotonic()
    with pytest.raises(ModelLoadError) as info:
        store_app(spec, "s3", tmp_path / "tmp")
    message = str(info.value)
    assert f"s3://{BUCKET}/" in message and "aliases/live" in message
    assert "gave up after 5 attempts" in message and "Connection" in message
    assert time.monotonic() - start < 15
    # AND the next cold start after the server is back succeeds
    server = EmbeddedS3(port=server.port).start()
    try:
        server.ensure_bucket(BUCKET)
        modelstore.publish_service(spec, s3_store(server, root), alias="live", exist_ok=True)
        assert store_app(spec, "s3", tmp_path / "tmp").handle(ROWS)["predictions"]
    finally:
        server.stop()


def test_store_down_during_refresh_keeps_the_old_version(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    server = EmbeddedS3().start()
    server.ensure_bucket(BUCKET)
    root = s3_service(tmp_path, refresh_s=1)
    spec = load_spec(root)
    store = s3_store(server, root)
    modelstore.publish_service(spec, store, version="v1", alias="live")
    for key, value in server.environment().items():
        monkeypatch.setenv(key, value)
    lines: list[str] = []
    app = store_app(spec, "s3", tmp_path / "tmp", lines=lines)
    server.stop()
    app.refresh_now()
    assert app.handle(ROWS)["model_version"] == "v1"
    assert any('"refresh failed"' in line and "v1" in line for line in lines)


def test_corrupted_and_truncated_objects_are_refused(s3_env: EmbeddedS3, tmp_path: Path
                                                     ) -> None:
    root = s3_service(tmp_path, refresh_s=1)
    spec = load_spec(root)
    store = s3_store(s3_env, root)
    modelstore.publish_service(spec, store, version="v1", alias="live")
    modelstore.publish_service(spec, store, version="v2")
    lines: list[str] = []
    app = store_app(spec, "s3", tmp_path / "tmp", lines=lines)
    key = storelayout.join(storelayout.version_dir("", "iris", "v2"), "model.onnx")
    good = store.read(key)
    assert good is not None
    # a corrupted v2 (same size, other bytes) is refused; v1 keeps serving
    store.write(key, bytes(b ^ 0xFF for b in good[:100]) + good[100:])
    modelstore.promote(store, "iris", "v2", "live")
    app.refresh_now()
    assert app.handle(ROWS)["model_version"] == "v1"
    assert any("sha256" in line and '"refresh failed"' in line for line in lines)
    # and a cold start on it is a clear init error
    with pytest.raises(ModelLoadError, match=r"sha256 .* the manifest says"):
        store_app(spec, "s3", tmp_path / "tmp2")
    # once the object is repaired, the next refresh takes v2 (a failure is retried)
    store.write(key, good)
    app.refresh_now()
    assert app.handle(ROWS)["model_version"] == "v2"
    # a truncated object too
    store.write(key, good[:-1000])
    with pytest.raises(ModelLoadError, match="truncated"):
        store_app(spec, "s3", tmp_path / "tmp3")


def test_aliases_that_point_nowhere(s3_env: EmbeddedS3, tmp_path: Path) -> None:
    root = s3_service(tmp_path)
    spec = load_spec(root)
    with pytest.raises(ModelLoadError, match="alias 'live' of model 'iris' not found"):
        store_app(spec, "s3", tmp_path / "tmp")
    store = s3_store(s3_env, root)
    store.save_alias_record("iris", "live", {"version": "../../escape", "previous": []})
    with pytest.raises(ModelLoadError, match="not a valid alias record"):
        store_app(spec, "s3", tmp_path / "tmp")
    store.save_alias_record("iris", "live", {"version": "nope", "previous": []})
    with pytest.raises(ModelLoadError, match="points to version 'nope', which has no manifest"):
        store_app(spec, "s3", tmp_path / "tmp")

    efs = efs_service(tmp_path / "e")
    (tmp_path / "efs" / "iris" / "aliases").mkdir(parents=True)
    (tmp_path / "efs" / "iris" / "aliases" / "live").symlink_to("../versions/nope")
    with pytest.raises(ModelLoadError, match="not a version directory"):
        store_app(load_spec(efs), "efs", tmp_path / "tmp", efs_dir=tmp_path / "efs")


@pytest.mark.parametrize("fast", [True, False])
def test_fetch_streams_on_a_fast_connection_and_goes_parallel_on_a_slow_one(
        s3: EmbeddedS3, monkeypatch: pytest.MonkeyPatch, fast: bool) -> None:
    import os as _os

    from modelambda.runtime.aws import s3 as s3module
    from modelambda.runtime.aws.sigv4 import Credentials

    data = _os.urandom(5 * 1024 * 1024 + 123)
    s3.client().put_object(Bucket=BUCKET, Key="blob", Body=data)
    # a threshold no connection reaches forces the parallel path, 0 the streaming one
    monkeypatch.setattr(s3module, "FAST_CONNECTION_BYTES_S", 0 if fast else 10**15)
    requests: list[tuple[int, int] | None] = []
    client = s3module.S3Client(endpoint=s3.url, region="us-east-1",
                               credentials=Credentials("a", "b"))
    original = client.get

    def counting(bucket: str, key: str, **kwargs: Any) -> Any:
        requests.append(kwargs.get("byte_range"))
        return original(bucket, key, **kwargs)

    client.get = counting  # type: ignore[method-assign]
    assert client.fetch(BUCKET, "blob", len(data), part_bytes=1024 * 1024) == data
    assert requests == [] if fast else len(requests) == 5  # 1 MB probe, then 5 ranges
    # the bytes are hashed as they arrive, in order, whichever way they came
    import hashlib

    digest, got = hashlib.sha256(), bytearray(len(data))
    client.download(BUCKET, "blob", len(data),
                    lambda offset, chunk: got.__setitem__(slice(offset, offset + len(chunk)),
                                                          chunk),
                    digest=digest, part_bytes=1024 * 1024)
    assert got == data and digest.hexdigest() == hashlib.sha256(data).hexdigest()


def test_an_alias_s3_refuses_to_show_is_named_with_both_causes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # S3 answers 403 (not 404) for a missing key to a role without s3:ListBucket, which is
    # how the deployed role is scoped: the error must not read like a network failure
    import http.server

    class Denied(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>"
            self.send_response(403)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Denied)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", f"http://127.0.0.1:{server.server_port}")
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "local")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "local")
        monkeypatch.setenv("AWS_REGION", "us-east-1")
        spec = load_spec(s3_service(tmp_path))
        with pytest.raises(ModelLoadError, match=r"access denied, which S3 also answers for a "
                                                 r"missing key .* publish and promote"):
            store_app(spec, "s3", tmp_path / "tmp")
    finally:
        server.shutdown()
        server.server_close()
