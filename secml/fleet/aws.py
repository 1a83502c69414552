"""Sessions into attendee accounts, and retrying what AWS throttles.

boto3 sessions are not thread-safe, so every worker thread gets its own base session (from the
facilitator's credentials) and every account its own assumed-role session. Clients use
botocore's ``adaptive`` retry mode (client-side rate limiting plus backoff); ``with_backoff``
adds a second, slower layer for what that mode does not cover: waiters that give up on a
throttled ``DescribeStacks`` and calls that exhausted their attempts while 200 threads share one
account's CloudFormation API limits.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from secml.fleet.roster import Target

T = TypeVar("T")

THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "RequestThrottled",
        "RequestThrottledException",
        "SlowDown",
    }
)
SESSION_NAME = "secml-fleet"
_loader_lock = threading.Lock()
_shared_loader: Any = None


def new_session(**kwargs: Any) -> Any:
    """A boto3 session that reuses one botocore data loader (service models) for the process.

    Each fresh session would otherwise parse the JSON service models again (about 0.1 s of
    CPU, under the GIL, per client): with hundreds of accounts that, not AWS, was the
    bottleneck. The loader only reads and caches files, so sharing it between threads is safe.
    """
    import boto3
    import botocore.session
    from botocore.loaders import create_loader

    global _shared_loader
    with _loader_lock:
        if _shared_loader is None:
            _shared_loader = create_loader()
    core = botocore.session.Session(profile=kwargs.pop("profile_name", None))
    core.register_component("data_loader", _shared_loader)
    return boto3.Session(botocore_session=core, **kwargs)


def client_config(max_attempts: int = 8) -> Any:
    from botocore.config import Config

    return Config(
        retries={"mode": "adaptive", "max_attempts": max_attempts},
        connect_timeout=10,
        read_timeout=60,
        max_pool_connections=10,
    )


def partition_for(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def error_code(exc: BaseException) -> str:
    response = getattr(exc, "response", None) or getattr(exc, "last_response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def is_throttling(exc: BaseException) -> bool:
    return error_code(exc) in THROTTLING_CODES


def with_backoff(
    call: Callable[[], T],
    *,
    attempts: int = 6,
    base: float = 1.0,
    cap: float = 30.0,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Call ``call``; on throttling wait (full jitter, exponential) and try again."""
    for attempt in range(attempts):
        try:
            return call()
        except Exception as exc:
            if not is_throttling(exc) or attempt == attempts - 1:
                raise
            sleep(random.uniform(0, min(cap, base * 2**attempt)))
    raise AssertionError("unreachable")


def describe_error(exc: BaseException) -> str:
    """One line for the report: the AWS error code and message, or the exception."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict) and "Error" in response:
        err = response["Error"]
        return f"{err.get('Code', 'Error')}: {err.get('Message', '')}".strip()
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


class AssumedRoleSessions:
    """``factory(target) -> boto3.Session`` in the target account, via ``sts:AssumeRole``."""

    def __init__(
        self,
        role_name: str,
        *,
        external_id: str | None = None,
        base_profile: str | None = None,
    ) -> None:
        self.role_name = role_name
        self.external_id = external_id
        self.base_profile = base_profile
        self._local = threading.local()

    def _base(self) -> Any:
        base = getattr(self._local, "session", None)
        if base is None:
            base = new_session(profile_name=self.base_profile)
            self._local.session = base
        return base

    def role_arn(self, target: Target) -> str:
        return f"arn:{partition_for(target.region)}:iam::{target.account_id}:role/{self.role_name}"

    def __call__(self, target: Target) -> Any:
        sts = self._base().client("sts", region_name=target.region, config=client_config())
        kwargs: dict[str, Any] = {
            "RoleArn": self.role_arn(target),
            "RoleSessionName": SESSION_NAME,
            "DurationSeconds": 3600,
        }
        if self.external_id:
            kwargs["ExternalId"] = self.external_id
        creds = with_backoff(lambda: sts.assume_role(**kwargs))["Credentials"]
        return new_session(
            aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds["SessionToken"],
            region_name=target.region,
        )
