"""Test helper: moto's server (``python -m moto.server``) as the local AWS of the deploy tests.

    with MotoServer() as aws:       # 127.0.0.1:<free port>, Lambda without Docker
        aws.url                     # "http://127.0.0.1:41234"
        aws.client("cloudformation")

It runs in its own process (started with ``subprocess``, stopped by pid), with Lambda's Docker
use switched off through ``POST /moto-api/config`` (functions then echo their payload).
``environment()`` is what a command needs to reach it: placeholder credentials (moto takes
any; they are not secrets) and a region.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any

REGION = "us-east-1"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "modelambda-test", "AWS_SECRET_ACCESS_KEY": "test"}

# What moto's server does not model, so the deploy tests check it on the template the deploy
# sent (DIR/.modelambda/deploy/<stack>/template.json) instead of reading it back from "AWS".
# LAMBDA_FACTS "moto server" and moto/awslambda/models.py (create_from_cloudformation_json).
NOT_CHECKED_BY_MOTO = (
    "AWS::Lambda::Alias, AWS::Lambda::Url, EventInvokeConfig, ApiGatewayV2 and CloudWatch "
    "alarms are skipped (the stack still reaches CREATE_COMPLETE); outputs that GetAtt them "
    "vanish",
    "Lambda functions created by CloudFormation drop Layers, PackageType/ImageUri, "
    "Architectures, FileSystemConfigs, EphemeralStorage (and SnapStart, LoggingConfig, "
    "TracingConfig)",
    "no resource-level stack events: a failing resource comes back as the ExecuteChangeSet "
    "error (its logical id is inferred from the error's type), and nothing is rolled back",
    "functions run no code (use_docker false: the payload is echoed), so the model is not "
    "loaded from the deployed artifact or store; Invoke answers for any function name or "
    "qualifier, without ExecutedVersion or a log tail (no REPORT line)",
    "stacks made by change sets have no Outputs (moto builds the output map from the empty "
    "template the change set's stack starts with), so printed outputs are checked against "
    "a fake CloudFormation (tests/deploy/test_plan.py)",
    "updating a function whose Layers Ref a LayerVersion of the same stack fails in moto "
    "5.2.5 (HTTP 500: the Ref resolves to the LayerVersion object, not its ARN), so the "
    "layer strategy's update is not run on moto",
    "ECR has no registry API: images go to a local docker-registry (--registry), so the ECR "
    "path (repository-only stack, push with ECR's token, then the function) is checked as a "
    "dry-run plan only",
    "a stack that creates a VPC with an S3 gateway endpoint (efs without vpc_id) cannot be "
    "deleted: moto leaves the AWS::EC2::VPCEndpoint and fails on the VPC (DependencyViolation); "
    "the efs lifecycle test uses a VPC of its own",
    "IAM policies are stored, not enforced (the function's read grant on the model bucket "
    "is not exercised)",
    "EFS file systems cannot be mounted or written",
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class MotoServer:
    def __init__(self, log: Path | None = None) -> None:
        self.port = free_port()
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 30.0) -> MotoServer:
        sink = self.log.open("wb") if self.log else subprocess.DEVNULL
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=sink, stderr=subprocess.STDOUT if self.log else subprocess.DEVNULL,
            stdin=subprocess.DEVNULL, start_new_session=True)
        if self.log:
            sink.close()  # type: ignore[union-attr]
        deadline = time.monotonic() + timeout_s
        while True:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    break
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"moto's server did not start on {self.url}")
            time.sleep(0.05)
        self.configure({"lambda": {"use_docker": False}})
        return self

    def configure(self, config: dict[str, Any]) -> None:
        request = urllib.request.Request(f"{self.url}/moto-api/config",
                                         data=json.dumps(config).encode(), method="POST",
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as answer:
            answer.read()

    def reset(self) -> None:
        """Forget every resource (moto's reset API), keeping the config."""
        request = urllib.request.Request(f"{self.url}/moto-api/reset", data=b"", method="POST")
        with urllib.request.urlopen(request, timeout=10) as answer:
            answer.read()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process = None

    def environment(self) -> dict[str, str]:
        return {**CREDENTIALS, "AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION}

    def client(self, service: str) -> Any:
        import boto3

        return boto3.client(service, endpoint_url=self.url, region_name=REGION,
                            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
                            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"])

    def __enter__(self) -> MotoServer:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()
