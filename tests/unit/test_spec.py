"""The service spec: every value checked, every problem named with file, key, value, allowed."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from modelambda.errors import SpecError
from modelambda.spec import compile_runtime_config, load_spec
from tests.conftest import IRIS

MINIMAL = """
[service]
name = "svc"

[model]
path = "model.onnx"
"""


def service(tmp_path: Path, toml: str) -> Path:
    root = tmp_path / "svc"
    root.mkdir(exist_ok=True)
    shutil.copy(IRIS / "model.onnx", root / "model.onnx")
    (root / "modelambda.toml").write_text(toml)
    return root


def problems(tmp_path: Path, toml: str) -> list[str]:
    with pytest.raises(SpecError) as info:
        load_spec(service(tmp_path, toml))
    assert str(info.value).startswith(str(tmp_path / "svc" / "modelambda.toml"))
    return info.value.problems


def test_minimal_spec_gets_defaults(tmp_path: Path) -> None:
    spec = load_spec(service(tmp_path, MINIMAL))
    assert spec.service.runtime == "python3.12"
    assert spec.service.memory_mb == 1024
    assert spec.model.framework == "onnx"  # guessed from the suffix
    assert spec.model.name == "svc"
    assert spec.strategy.kind == "bundle"


def test_unknown_key_is_named_with_a_suggestion(tmp_path: Path) -> None:
    toml = MINIMAL.replace('name = "svc"', 'name = "svc"\nmemroy_mb = 512')
    (problem,) = problems(tmp_path, toml)
    assert "[service] memroy_mb = 512" in problem
    assert "did you mean 'memory_mb'" in problem


@pytest.mark.parametrize("value", [64, 10241, "512", 1.5, True])
def test_memory_out_of_range_or_wrong_type(tmp_path: Path, value: object) -> None:
    toml_value = f'"{value}"' if isinstance(value, str) else str(value).lower()
    (problem,) = problems(tmp_path, MINIMAL.replace('name = "svc"',
                                                    f'name = "svc"\nmemory_mb = {toml_value}'))
    assert problem.startswith("[service] memory_mb = ")
    assert "from 128 to 10240" in problem


def test_missing_model_file(tmp_path: Path) -> None:
    (problem,) = problems(tmp_path, MINIMAL.replace("model.onnx", "nope.onnx"))
    assert "[model] path = 'nope.onnx'" in problem and "no such file" in problem


def test_unknown_framework_lists_the_known_ones(tmp_path: Path) -> None:
    (problem,) = problems(tmp_path, MINIMAL + 'framework = "pytorch"\n')
    assert "[model] framework = 'pytorch'" in problem
    assert "onnx" in problem and "sklearn" in problem


def test_known_framework_without_backend(tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    # every framework DESIGN.md names has a backend now: take one away, as an install
    # without the xgboost plugin would be
    from modelambda.runtime import backends

    installed = {k: v for k, v in backends.registered().items() if k != "xgboost"}
    monkeypatch.setattr(backends, "registered", lambda: installed)
    (problem,) = problems(tmp_path, MINIMAL + 'framework = "xgboost"\n')
    assert "no backend" in problem and "available: " in problem and "xgboost" not in \
        problem.partition("available: ")[2]


def test_model_path_cannot_escape_the_service_dir(tmp_path: Path) -> None:
    (problem,) = problems(tmp_path, MINIMAL.replace('"model.onnx"', '"../model.onnx"'))
    assert "without '..'" in problem


def test_all_problems_are_reported_at_once(tmp_path: Path) -> None:
    found = problems(tmp_path, """
[service]
name = "bad name!"
timeout_s = 0
architecture = "sparc"

[model]
path = "model.onnx"

[strategy]
kind = "ftp"

[extra]
""")
    text = "\n".join(found)
    for needle in ("[service] name = 'bad name!'", "[service] timeout_s = 0",
                   "[service] architecture = 'sparc'", "[strategy] kind = 'ftp'",
                   "[extra]: unknown section"):
        assert needle in text
    assert len(found) == 5


def test_invalid_toml_names_the_line(tmp_path: Path) -> None:
    (problem,) = problems(tmp_path, "[service\nname = 1")
    assert "not valid TOML" in problem and "line 1" in problem


def test_missing_spec_file_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="modelambda init"):
        load_spec(tmp_path)


def test_hook_module_must_exist(tmp_path: Path) -> None:
    (problem,) = problems(tmp_path, MINIMAL + '\n[pipeline]\npreprocess = "nowhere:prep"\n')
    assert "[pipeline] preprocess = 'nowhere:prep'" in problem and "nowhere.py" in problem


def test_hook_reference_must_be_module_colon_function(tmp_path: Path) -> None:
    (problem,) = problems(tmp_path, MINIMAL + '\n[pipeline]\npreprocess = "justaname"\n')
    assert "'module:function'" in problem


def test_strategy_keys_are_per_kind(tmp_path: Path) -> None:
    found = problems(tmp_path, MINIMAL + '\n[strategy]\nkind = "s3"\nmount_path = "/mnt/x"\n')
    text = "\n".join(found)
    assert "[strategy] bucket (missing): required" in text
    assert "[strategy] mount_path = '/mnt/x': unknown key" in text


def test_efs_mount_path_must_be_under_mnt(tmp_path: Path) -> None:
    (problem,) = problems(tmp_path, MINIMAL + '\n[strategy]\nkind = "efs"\nmount_path = "/data"\n')
    assert "/mnt/NAME" in problem


def test_snapstart_is_refused_with_efs_and_big_tmp(tmp_path: Path) -> None:
    found = problems(tmp_path, MINIMAL.replace(
        'name = "svc"', 'name = "svc"\nsnapstart = true\nephemeral_storage_mb = 1024'
    ) + '\n[strategy]\nkind = "efs"\n')
    text = "\n".join(found)
    assert "no SnapStart with EFS" in text and "ephemeral_storage_mb > 512" in text


def test_python_framework_needs_a_class(tmp_path: Path) -> None:
    (problem,) = problems(tmp_path, MINIMAL + 'framework = "python"\n')
    assert "[model] class (missing)" in problem


def test_compiled_config_round_trips_and_versions_by_hash(tmp_path: Path) -> None:
    spec = load_spec(IRIS)
    config = compile_runtime_config(spec)
    assert config.model.backend == "modelambda.runtime.backends.onnx:OnnxBackend"
    assert list(config.model.files) == ["model.onnx"]
    assert len(config.model.version) == 12
    assert config.model.verify_checksums is False  # bundle: the artifact is checked by Lambda
    from modelambda.runtime.config import RuntimeConfig

    assert RuntimeConfig.from_dict(config.to_dict()) == config
    # The same bytes give the same version; other bytes another.
    copy = service(tmp_path, MINIMAL)
    assert compile_runtime_config(load_spec(copy)).model.version == config.model.version
    (copy / "model.onnx").write_bytes((copy / "model.onnx").read_bytes() + b"\0")
    assert compile_runtime_config(load_spec(copy)).model.version != config.model.version


def test_example_specs_are_valid() -> None:
    assert load_spec(IRIS).service.name == "iris"


# --- deploy options: [service] additions, [deploy], and what Lambda refuses together ----------


def test_snapstart_with_efs_is_refused(tmp_path: Path) -> None:
    snapstart = MINIMAL.replace('name = "svc"', 'name = "svc"\nsnapstart = true')
    (problem,) = problems(tmp_path, snapstart + '\n[strategy]\nkind = "efs"\n')
    assert problem == "[service] snapstart = True: Lambda has no SnapStart with EFS"


def test_snapstart_with_big_tmp_is_refused(tmp_path: Path) -> None:
    (problem,) = problems(tmp_path, MINIMAL.replace(
        'name = "svc"', 'name = "svc"\nsnapstart = true\nephemeral_storage_mb = 1024'))
    assert problem.startswith("[service] snapstart = True: Lambda has no SnapStart with "
                              "ephemeral_storage_mb > 512")


def test_snapstart_with_provisioned_concurrency_is_refused(tmp_path: Path) -> None:
    (problem,) = problems(tmp_path, MINIMAL.replace(
        'name = "svc"', 'name = "svc"\nsnapstart = true\nprovisioned_concurrency = 2'))
    assert problem.startswith("[service] snapstart = True: Lambda has no SnapStart with "
                              "provisioned concurrency (provisioned_concurrency = 2)")


def test_snapstart_with_a_container_image_is_refused(tmp_path: Path) -> None:
    snapstart = MINIMAL.replace('name = "svc"', 'name = "svc"\nsnapstart = true')
    (problem,) = problems(tmp_path, snapstart + '\n[strategy]\nkind = "image"\n')
    assert "no SnapStart for container images" in problem


def test_provisioned_concurrency_within_reserved(tmp_path: Path) -> None:
    (problem,) = problems(tmp_path, MINIMAL.replace(
        'name = "svc"', 'name = "svc"\nreserved_concurrency = 2\nprovisioned_concurrency = 3'))
    assert problem.startswith("[service] provisioned_concurrency = 3: at most "
                              "reserved_concurrency (2)")


def test_service_deploy_options_and_deploy_defaults(tmp_path: Path) -> None:
    spec = load_spec(service(tmp_path, MINIMAL.replace(
        'name = "svc"', 'name = "my_svc"\nprovisioned_concurrency = 1\ntracing = true\n'
                        'log_format = "JSON"')))
    assert (spec.service.provisioned_concurrency, spec.service.tracing,
            spec.service.log_format) == (1, True, "JSON")
    assert spec.deploy.alias == "live" and spec.deploy.url_auth == "AWS_IAM"
    assert spec.deploy.log_retention_days == 30 and spec.deploy.tags == {}
    assert spec.stack_name == "modelambda-my-svc"  # '_' is not allowed in stack names


@pytest.mark.parametrize("name", ["1stack", "my_stack", "stack.name", "s" * 129])
def test_invalid_stack_name(tmp_path: Path, name: str) -> None:
    (problem,) = problems(tmp_path, MINIMAL + f'\n[deploy]\nstack_name = "{name}"\n')
    assert problem.startswith(f"[deploy] stack_name = '{name}': a CloudFormation stack name")


def test_unknown_deploy_key_is_named_with_a_suggestion(tmp_path: Path) -> None:
    (problem,) = problems(tmp_path, MINIMAL + '\n[deploy]\nstack = "x"\n')
    assert problem.startswith("[deploy] stack = 'x': unknown key (did you mean 'stack_name'?)")


def test_every_deploy_problem_at_once(tmp_path: Path) -> None:
    found = problems(tmp_path, MINIMAL + (
        '\n[deploy]\nregion = "Europe"\nurl_auth = "PUBLIC"\nalias = "123"\n'
        'log_retention_days = 10\nartifact_bucket = "Bad_Bucket"\n'
        '[deploy.tags]\n"aws:owner" = "me"\n'))
    text = "\n".join(found)
    assert len(found) == 6, text
    assert "[deploy] region = 'Europe': an AWS region" in text
    assert "[deploy] url_auth = 'PUBLIC': one of AWS_IAM, NONE" in text
    assert "[deploy] alias = '123'" in text and "not only digits" in text
    assert "[deploy] log_retention_days = 10: one of CloudWatch's retention settings" in text
    assert "[deploy] artifact_bucket = 'Bad_Bucket'" in text
    assert "[deploy] tags = {'aws:owner': 'me'}" in text and "not starting with 'aws:'" in text


def test_service_log_format_choices(tmp_path: Path) -> None:
    (problem,) = problems(tmp_path, MINIMAL.replace('name = "svc"',
                                                    'name = "svc"\nlog_format = "json"'))
    assert problem == "[service] log_format = 'json': one of Text, JSON"


def test_efs_vpc_and_subnets_go_together(tmp_path: Path) -> None:
    found = problems(tmp_path, MINIMAL + '\n[strategy]\nkind = "efs"\nvpc_id = "vpc-0123abcd"\n'
                     'subnet_ids = ["subnet-1"]\n')
    text = "\n".join(found)
    assert "[strategy] subnet_ids = ['subnet-1']: a list of distinct subnet ids" in text
    assert "vpc_id and subnet_ids go together" in text


def test_sagemaker_settings_are_checked(tmp_path: Path) -> None:
    found = problems(tmp_path, MINIMAL + '\n[strategy]\nkind = "endpoint"\nprotocol = "v2"\n'
                     'serverless_memory_mb = 1500\n')
    text = "\n".join(found)
    assert "[strategy] serverless_memory_mb = 1500: one of 1024, 2048" in text
    assert "serverless inference needs both" in text
    assert 'needs protocol = "sagemaker"' in text


def test_service_events_table(tmp_path: Path) -> None:
    spec = load_spec(service(tmp_path, MINIMAL.replace(
        'name = "svc"', 'name = "svc"\n[service.events]\nmaximum_retry_attempts = 0\n'
                        'maximum_event_age_s = 120')))
    assert (spec.service.event_retries, spec.service.event_max_age_s) == (0, 120)
    assert load_spec(service(tmp_path, MINIMAL)).service.event_retries == 2
    found = problems(tmp_path, MINIMAL.replace(
        'name = "svc"', 'name = "svc"\n[service.events]\nmaximum_retry_attempts = 3\n'
                        'maximum_event_age_s = 30\nmaximum_retries = 1'))
    assert found == [
        "[service.events] maximum_retry_attempts = 3: must be an integer from 0 to 2",
        "[service.events] maximum_event_age_s = 30: must be an integer from 60 to 21600 (s)",
        "[service.events] maximum_retries = 1: unknown key (did you mean "
        "'maximum_retry_attempts'?); known keys: maximum_event_age_s, maximum_retry_attempts"]


def test_service_environment_variables(tmp_path: Path) -> None:
    spec = load_spec(service(tmp_path, MINIMAL.replace(
        'name = "svc"', 'name = "svc"\n[service.environment]\nLOG_WHO = "me"\nTZ = ":UTC"')))
    assert spec.service.environment == {"LOG_WHO": "me", "TZ": ":UTC"}
    found = problems(tmp_path, MINIMAL.replace('name = "svc"', (
        'name = "svc"\n[service.environment]\nAWS_REGION = "eu-west-1"\n'
        'AWS_SESSION_TOKEN = "x"\nMODELAMBDA_CONFIG = "/x"\n"1BAD" = "x"\nCOUNT = 3')))
    assert found == [
        "[service.environment] AWS_REGION = 'eu-west-1': reserved: Lambda sets it in every "
        "environment and refuses it in a function's configuration",
        "[service.environment] AWS_SESSION_TOKEN = 'x': reserved: Lambda sets it in every "
        "environment and refuses it in a function's configuration",
        "[service.environment] MODELAMBDA_CONFIG = '/x': reserved: modelambda's runtime reads "
        "MODELAMBDA_* as the build and the strategy set them",
        "[service.environment] 1BAD = 'x': a variable name: a letter, then letters, digits "
        "and '_' (at least 2 characters)",
        "[service.environment] COUNT = 3: a string (Lambda's variables are strings: quote it)"]
    big = "\n".join(f'V{i} = "{"x" * 1000}"' for i in range(5))
    (problem,) = problems(tmp_path, MINIMAL.replace(
        'name = "svc"', f'name = "svc"\n[service.environment]\n{big}'))
    assert problem == ("[service] environment = '5 variables, 5010 bytes': Lambda takes at "
                       "most 4096 bytes of names and values in all")


def test_log_level_needs_the_json_format(tmp_path: Path) -> None:
    spec = load_spec(service(tmp_path, MINIMAL.replace(
        'name = "svc"', 'name = "svc"\nlog_format = "JSON"\nlog_level = "WARN"')))
    assert spec.service.log_level == "WARN"
    (problem,) = problems(tmp_path, MINIMAL.replace(
        'name = "svc"', 'name = "svc"\nlog_level = "DEBUG"'))
    assert problem == ("[service] log_level = 'DEBUG': Lambda filters by log level in JSON "
                       'format only: set log_format = "JSON"')
