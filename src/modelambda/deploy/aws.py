"""The AWS clients a deploy uses, made in one place from one session.

``AwsClients`` takes a boto3 session (or builds one from a profile), the region and an optional
endpoint URL that every client is pointed at (a local AWS such as moto's server); it hands out
one cached client per service. Credentials come from boto3's own chain (environment, profile,
SSO, instance role): nothing here reads, prints or stores them. ``sleep`` and ``clock`` are
injected so that the waits of a deploy never really sleep in unit tests.

Also here: the checks of the names a deploy is given on the command line (stack name, region)
before any client is made.
"""

from __future__ import annotations

import difflib
import re
import time
from collections.abc import Callable
from typing import Any

from modelambda.errors import AwsError, UsageError

# CloudFormation: "A stack name can contain only alphanumeric characters (case-sensitive) and
# hyphens. It must start with an alphabetic character and can't be longer than 128 characters."
STACK_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,127}$")
# Region ids: us-east-1, eu-central-2, us-gov-west-1, cn-north-1, us-iso-east-1, ...
REGION = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]{1,2}$")

Sleep = Callable[[float], None]
Clock = Callable[[], float]
OnClient = Callable[[str, Any], None]

# What the CLI's clients sleep with; tests replace it (never the global time.sleep).
SLEEP: Sleep = time.sleep


def check_stack_name(name: str, where: str = "--stack-name") -> str:
    if not STACK_NAME.match(name):
        raise UsageError(f"{where} {name!r} is not a valid CloudFormation stack name: letters, "
                         "digits and '-', starting with a letter, at most 128 characters")
    return name


def known_regions() -> list[str]:
    """Every region botocore's bundled endpoint data knows, in all partitions (offline)."""
    import boto3

    session = boto3.session.Session()
    found: set[str] = set()
    for partition in session.get_available_partitions():
        found.update(session.get_available_regions("cloudformation", partition))
    return sorted(found)


def check_region(region: str, where: str = "--region") -> str:
    """A region id of the right shape; one that botocore does not know but that is close to
    one it does is taken for a typo. (A well-formed region newer than this botocore passes.)"""
    known = known_regions()
    close = difflib.get_close_matches(region, known, n=1, cutoff=0.8)
    hint = f" (did you mean {close[0]}?)" if close else ""
    if not REGION.match(region):
        raise UsageError(f"{where} {region!r} is not an AWS region id like us-east-1{hint}")
    if region not in known and close:
        raise UsageError(f"{where} {region!r} is not a known AWS region{hint}")
    return region


class AwsClients:
    """One session, one region, one optional endpoint URL: the clients of a deploy."""

    def __init__(self, session: Any, region: str, endpoint_url: str | None = None, *,
                 sleep: Sleep | None = None, clock: Clock = time.monotonic,
                 on_client: OnClient | None = None, config: Any = None) -> None:
        self.session = session
        self.region = region
        self.endpoint_url = endpoint_url
        self.sleep: Sleep = sleep or SLEEP
        self.clock = clock
        self.on_client = on_client
        self._config = config
        self._clients: dict[str, Any] = {}
        self._account: str | None = None

    @classmethod
    def from_options(cls, *, profile: str | None, region: str | None,
                     endpoint_url: str | None, default_region: str | None = None,
                     on_client: OnClient | None = None) -> AwsClients:
        """A session from boto3's credential chain (``profile`` when given); the region is
        ``region``, else ``default_region`` (the spec's), else the session's own."""
        import boto3

        session = boto3.session.Session(profile_name=profile)
        chosen = region or default_region or session.region_name
        if not chosen:
            raise UsageError("no AWS region: pass --region, set [deploy] region in "
                             "modelambda.toml, or set AWS_REGION (or the profile's region)")
        check_region(chosen)
        return cls(session, chosen, endpoint_url, on_client=on_client)

    @property
    def is_local(self) -> bool:
        """Whether the clients reach a local AWS (an endpoint URL was given)."""
        return self.endpoint_url is not None

    def client(self, service: str) -> Any:
        if service not in self._clients:
            from botocore.config import Config

            config = Config(retries={"mode": "standard", "max_attempts": 5},
                            user_agent_extra="modelambda-deploy")
            if self._config is not None:
                config = config.merge(self._config)
            made = self.session.client(service, region_name=self.region,
                                       endpoint_url=self.endpoint_url, config=config)
            if self.on_client is not None:  # e.g. a test registering event hooks
                self.on_client(service, made)
            self._clients[service] = made
        return self._clients[service]

    def require_credentials(self) -> None:
        """Fail with one line, before anything is built or reached, when boto3's chain finds
        no credentials. Their values are never looked at beyond "are there any"."""
        try:
            found = self.session.get_credentials()
        except Exception as exc:  # a broken profile, an SSO cache that cannot be read...
            from modelambda.awserrors import explain

            line = explain(exc)
            if line is None:
                raise
            raise AwsError(line) from exc
        if found is None:
            raise AwsError("no AWS credentials found: pass --profile NAME, set AWS_PROFILE or "
                           "run `aws configure` (or `aws sso login`); a local AWS such as "
                           "moto's server (--endpoint-url) takes any AWS_ACCESS_KEY_ID and "
                           "AWS_SECRET_ACCESS_KEY")

    def account_id(self) -> str:
        if self._account is None:
            self._account = str(self.client("sts").get_caller_identity()["Account"])
        return self._account

    def close(self) -> None:
        for made in self._clients.values():
            close = getattr(made, "close", None)
            if close is not None:
                close()
        self._clients.clear()

    def describe(self) -> str:
        where = f" at {self.endpoint_url}" if self.endpoint_url else ""
        return f"{self.region}{where}"


__all__ = ["SLEEP", "AwsClients", "check_region", "check_stack_name", "known_regions"]
