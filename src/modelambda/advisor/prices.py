"""The dated price data (``prices.json`` beside this module), read once."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

PRICES_FILE = Path(__file__).with_name("prices.json")
HOURS_PER_MONTH = 730.0  # AWS's pricing pages use 730 hours a month
SECONDS_PER_MONTH = HOURS_PER_MONTH * 3600
DAYS_PER_MONTH = HOURS_PER_MONTH / 24


@dataclass(frozen=True)
class Instance:
    name: str
    vcpu: int
    memory_gb: float
    hour: float
    arch: str = "x86_64"


@dataclass(frozen=True)
class Prices:
    date: str
    region: str
    values: dict[str, float]
    sagemaker: tuple[Instance, ...]
    ec2: tuple[Instance, ...]
    raw: dict[str, Any]

    def __getitem__(self, name: str) -> float:
        return self.values[name]

    def lambda_gb_s(self, arch: str) -> float:
        return self.values[f"lambda_gb_s_{arch}"]

    def provisioned_gb_s(self, arch: str) -> float:
        return self.values[f"provisioned_gb_s_{arch}"]

    def provisioned_running_gb_s(self, arch: str) -> float:
        return self.values[f"provisioned_running_gb_s_{arch}"]


def _instances(table: dict[str, Any]) -> tuple[Instance, ...]:
    return tuple(sorted(
        (Instance(name, int(v["vcpu"]), float(v["memory_gb"]), float(v["hour"]),
                  str(v.get("arch", "x86_64"))) for name, v in table["types"].items()),
        key=lambda i: i.hour))


@cache
def load_prices(path: Path = PRICES_FILE) -> Prices:
    data = json.loads(path.read_text())
    return Prices(date=str(data["date"]), region=str(data["region"]),
                  values={k: float(v["value"]) for k, v in data["prices"].items()},
                  sagemaker=_instances(data["sagemaker_instances"]),
                  ec2=_instances(data["ec2_instances"]), raw=data)
