"""The command line: init writes a working service; invoke runs it in-process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from modelambda.cli.main import main
from tests.conftest import IRIS, ROOT


def modelambda(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "modelambda.cli.main", *args],
                          capture_output=True, text=True, cwd=ROOT)


def test_invoke_prints_the_payload_on_stdout_and_the_report_on_stderr() -> None:
    done = modelambda("invoke", str(IRIS), "--data", f"@{IRIS / 'request.json'}")
    assert done.returncode == 0, done.stderr
    payload = json.loads(done.stdout)  # stdout is exactly the JSON payload
    assert [p["label"] for p in payload["predictions"]] == [0, 2]
    assert "REPORT RequestId:" in done.stderr and "Init Duration:" in done.stderr


def test_invoke_with_a_raw_event_file() -> None:
    event = {"version": "2.0", "rawPath": "/", "headers": {},
             "requestContext": {"http": {"method": "POST", "path": "/"},
                                "domainName": "abc.lambda-url.us-east-1.on.aws"},
             "body": json.dumps({"instances": [[5.1, 3.5, 1.4, 0.2]]}),
             "isBase64Encoded": False}
    path = ROOT / ".pytest_cache" / "event.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(event))
    done = modelambda("invoke", str(IRIS), "--event", str(path))
    assert done.returncode == 0, done.stderr
    response = json.loads(done.stdout)
    assert response["statusCode"] == 200
    assert json.loads(response["body"])["predictions"][0]["label"] == 0


def test_invoke_function_error_prints_lambdas_error_payload() -> None:
    done = modelambda("invoke", str(IRIS), "--data", '{"instances": [[1, 2, 3]]}')
    assert done.returncode == 1
    error = json.loads(done.stdout)
    assert error["errorType"] == "ShapeError"
    assert "expected 4 features" in error["errorMessage"]


@pytest.mark.parametrize("args,message", [
    (["invoke", str(IRIS), "--data", "{not json"], "--data is not valid JSON"),
    (["invoke", str(IRIS), "--data", "@/nonexistent.json"], "no such file"),
    (["invoke", "/nonexistent-dir", "--data", "{}"], "is not a service directory"),
    (["init", "/tmp/x", "--model", "/nonexistent.onnx"], "no such file"),
])
def test_bad_arguments_are_named(args: list[str], message: str,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert main(args) == 2
    assert message in capsys.readouterr().err


def test_init_writes_a_spec_and_request_that_work(tmp_path: Path) -> None:
    service = tmp_path / "my-iris"
    assert main(["init", str(service), "--model", str(IRIS / "model.onnx")]) == 0
    spec = (service / "modelambda.toml").read_text()
    assert 'framework = "onnx"' in spec
    assert "input: float32 [N, 4]" in spec  # read from the model
    request = json.loads((service / "request.json").read_text())
    assert request == {"instances": [[0.0, 0.0, 0.0, 0.0]]}
    done = modelambda("invoke", str(service), "--data", f"@{service / 'request.json'}")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["model_name"] == "my-iris"


def test_init_refuses_to_overwrite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["init", str(tmp_path), "--model", str(IRIS / "model.onnx")]) == 0
    assert main(["init", str(tmp_path), "--model", str(IRIS / "model.onnx")]) == 2
    assert "--force" in capsys.readouterr().err


def test_init_for_a_skops_model_lists_types_to_review(tmp_path: Path) -> None:
    assert main(["init", str(tmp_path), "--model", str(IRIS / "model.skops")]) == 0
    spec = (tmp_path / "modelambda.toml").read_text()
    assert '# trusted_types = ["sklearn.tree._tree.Tree"]' in spec


def test_help_has_examples() -> None:
    done = modelambda("invoke", "--help")
    assert done.returncode == 0 and "examples:" in done.stdout
