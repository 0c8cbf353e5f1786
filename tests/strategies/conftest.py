"""`modelambda up` through the real console script, as a user runs it."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CLI = Path(sys.executable).parent / "modelambda"
READY = re.compile(r"modelambda: ready on (http://\S+)")


class Up:
    def __init__(self, process: subprocess.Popen[str], url: str, output: list[str]) -> None:
        self.process = process
        self.url = url
        self.output = output

    def post(self, path: str, body: Any) -> tuple[int, Any]:
        request = urllib.request.Request(self.url + path, data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    @property
    def text(self) -> str:
        return "".join(self.output)


@contextmanager
def up(*args: str | Path, env: Mapping[str, str] | None = None, timeout: float = 900
       ) -> Iterator[Up]:
    """Run ``modelambda up ARGS --port 0`` until it says it is ready; stop it with Ctrl-C
    (SIGINT) afterwards and check that it stopped cleanly."""
    process = subprocess.Popen([str(CLI), "up", *map(str, args), "--port", "0"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env=dict(env) if env is not None else None)
    assert process.stdout is not None
    output: list[str] = []
    ready = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            output.append(line)
            if READY.search(line):
                ready.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    deadline = time.monotonic() + timeout
    while not ready.wait(0.2):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            process.wait(10)
            reader.join(5)
            process.stdout.close()
            raise AssertionError("modelambda up did not get ready:\n" + "".join(output))
    match = READY.search("".join(output))
    assert match is not None
    try:
        yield Up(process, match.group(1), output)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            code = process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
        reader.join(5)
        process.stdout.close()
        assert code == 0, "".join(output)
        assert "Traceback" not in "".join(output), "".join(output)


def env_without_aws() -> dict[str, str]:
    """up's own defaults: no S3 endpoint or credentials of this shell."""
    return {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
