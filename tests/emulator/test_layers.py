"""The spec's own layers (``[service] layers``): unpacked safely, counted in Lambda's 5-layer
and 250 MB limits, shipped after modelambda's layers and seen under /opt by the function."""

from __future__ import annotations

import json
import shutil
import stat
import zipfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from modelambda import limits
from modelambda.errors import SpecError
from modelambda.package.archive import ArchiveError
from modelambda.package.build import _user_layers, build
from modelambda.package.checks import LimitExceeded
from modelambda.spec import load_spec
from tests.conftest import IRIS
from tests.emulator.conftest import Emu


def make_zip(path: Path, files: dict[str, str], executable: tuple[str, ...] = (),
             links: dict[str, str] | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, text in files.items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFREG | (0o755 if name in executable else 0o644)) << 16
            zf.writestr(info, text)
        for name, target in (links or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, target)
    return path


def stand_in(root: Path, *layers: str) -> Any:
    return SimpleNamespace(root=root, service=SimpleNamespace(layers=layers))


def test_a_layer_is_unpacked_with_the_archive_rules(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "build" / "bundle"
    out.mkdir(parents=True)
    make_zip(tmp_path / "good.zip", {"python/greeting.py": "WORD = 1\n",
                                     "extensions/ext": "#!/bin/sh\n"},
             executable=("extensions/ext",))
    (layer,) = _user_layers(stand_in(tmp_path, "good.zip"), out, 3)
    assert layer.name == "layer-3-good.zip" and layer.kind == "layer"
    assert sorted(e.name for e in layer.entries) == ["extensions/ext", "python/greeting.py"]
    ext = next(e for e in layer.entries if e.name == "extensions/ext")
    assert ext.source.stat().st_mode & stat.S_IXUSR  # an extension stays executable

    bad = {"dotdot.zip": {"../escape.py": "x"}, "absolute.zip": {"/etc/evil": "x"}}
    for name, files in bad.items():
        make_zip(tmp_path / name, files)
        with pytest.raises(ArchiveError, match=rf"\[service\] layers: {name}: .*outside"):
            _user_layers(stand_in(tmp_path, name), out, 1)
    make_zip(tmp_path / "link.zip", {}, links={"python/up": "../../../etc/passwd"})
    with pytest.raises(ArchiveError, match="symlink"):
        _user_layers(stand_in(tmp_path, "link.zip"), out, 1)
    monkeypatch.setattr(limits, "UNZIPPED_TOTAL_BYTES", 5)
    with pytest.raises(ArchiveError, match="unpacks to 19 bytes, over 5"):
        _user_layers(stand_in(tmp_path, "good.zip"), out, 1)


def spec_with(tmp_path: Path, lines: str, extra: str = "") -> Path:
    service = tmp_path / "iris"
    if not service.exists():
        shutil.copytree(IRIS, service, ignore=shutil.ignore_patterns(".modelambda"))
        (service / "modelambda.toml.orig").write_text((service / "modelambda.toml").read_text())
    text = (service / "modelambda.toml.orig").read_text()
    (service / "modelambda.toml").write_text(
        text.replace("[service]\n", f"[service]\n{lines}\n", 1) + extra)
    return service


def test_the_spec_checks_its_layers(tmp_path: Path) -> None:
    service = spec_with(tmp_path, "")
    (service / "notes.zip").write_text("not a zip")
    make_zip(service / "ok.zip", {"python/a.py": ""})
    cases = {
        'layers = ["missing.zip"]': "[service] layers = 'missing.zip': no such file in",
        'layers = ["notes.zip"]': "[service] layers = 'notes.zip': not a zip file",
        'layers = ["../iris/ok.zip"]': "[service] layers = '../iris/ok.zip': a list of at most 5",
        'layers = ["ok.zip", "ok.zip", "ok.zip", "ok.zip", "ok.zip", "ok.zip"]':
            "[service] layers = ['ok.zip', 'ok.zip', 'ok.zip', 'ok.zip', 'ok.zip', 'ok.zip']: "
            "a list of at most 5 layer zips",
    }
    for line, problem in cases.items():
        with pytest.raises(SpecError) as info:
            load_spec(spec_with(tmp_path, line))
        assert any(p.startswith(problem) for p in info.value.problems), info.value.problems
    with pytest.raises(SpecError) as info:
        load_spec(spec_with(tmp_path, 'layers = ["ok.zip"]')).for_strategy("image")
    assert "Lambda has no layers for container images" in str(info.value)


# A postprocess that reads a module from the spec's own layer (on /opt/python).
PIPELINE = """
import greeting

def postprocess(outputs):
    rows = len(next(iter(outputs.values())))
    return [{"word": greeting.WORD} for _ in range(rows)]
"""


def test_own_layers_ship_after_modelambdas_count_in_the_limits_and_run_from_opt(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from modelambda.local.services import function_for

    service = spec_with(tmp_path, 'layers = ["mylayer.zip"]',
                        '\n[pipeline]\npostprocess = "pipeline:postprocess"\n')
    (service / "pipeline.py").write_text(PIPELINE)
    make_zip(service / "mylayer.zip", {"python/greeting.py": "WORD = 'from my layer'\n"})
    settings, spec = function_for(service, strategy="layer")
    result = build(spec)  # the build up made, reused
    assert [a.name for a in result.layers] == [
        "layer-1-dependencies.zip", "layer-2-model.zip", "layer-3-mylayer.zip"]
    assert "mylayer.zip" not in {e.name for e in result.function.entries}  # not in the code
    checks = {c["name"]: c for c in result.manifest["limits"]}
    assert checks["layers per function"]["value"] == 3
    total = checks["function and layers, unzipped"]["value"]

    emu = Emu()
    try:
        emu.add(settings)
        response = emu.client.invoke(FunctionName="iris", Payload=(IRIS / "request.json")
                                     .read_bytes())
        body = json.loads(response["Payload"].read())
        assert "FunctionError" not in response, body
        assert body["predictions"] == [{"word": "from my layer"}] * 2
    finally:
        emu.stop(drain_s=1)

    # counted in the 250 MB: one byte less than modelambda's layers and yours is refused
    monkeypatch.setattr(limits, "UNZIPPED_TOTAL_BYTES", total - 1)
    with pytest.raises(LimitExceeded, match="function and layers, unzipped"):
        build(spec, force=True)
    monkeypatch.undo()
    # and in the 5 layers: modelambda's 2 and 4 of yours are 6
    for index in range(2, 5):
        make_zip(service / f"more{index}.zip", {f"data/{index}.txt": "x"})
    more = load_spec(spec_with(tmp_path, 'layers = ["mylayer.zip", "more2.zip", "more3.zip", '
                                         '"more4.zip"]',
                               '\n[pipeline]\npostprocess = "pipeline:postprocess"\n'))
    with pytest.raises(LimitExceeded, match="layers per function: 6 layers is over the limit "
                                            "of 5 layers by 1 layers"):
        build(more, "layer")
