"""The real ingest Lambda handlers, run in-process with the environment the stack gives them."""

from __future__ import annotations

import contextlib
import importlib
import io
import logging
import sys
import time
import uuid
from dataclasses import dataclass, field

from secml.demo.s3server import patched_environ
from secml.demo.template import IngestFunction, ensure_repo_on_path


@dataclass
class LocalLambdaContext:
    """The attributes of the Lambda runtime's context object a handler may use."""

    function_name: str
    timeout_s: int = 900
    memory_limit_in_mb: int = 3008
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = "local"
    _started: float = field(default_factory=time.monotonic)

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:000000000000:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.timeout_s - (time.monotonic() - self._started)) * 1000))


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(f"{record.levelname}: {record.getMessage()}")


@dataclass
class Invocation:
    function: str
    summary: dict
    warnings: list[str]
    seconds: float
    output: str = ""  # what the handler printed (CloudWatch Logs, when deployed)


def reset_cached_clients() -> None:
    """The handlers cache their boto3 client per process, as warm Lambdas do; a new demo run
    (another endpoint) must not reuse the last run's client."""
    common = sys.modules.get("lambda_src.ingest_common")
    if common is not None and hasattr(common, "reset_clients"):
        common.reset_clients()


def invoke(fn: IngestFunction, event: dict | None = None) -> Invocation:
    """Run `fn`'s handler as Lambda would: its env vars set, a context, logs captured.

    The module is (re)imported inside the environment, so code that reads its configuration or
    creates its boto3 client at import time sees the same values it would in Lambda.
    """
    ensure_repo_on_path()
    capture = _Capture()
    root = logging.getLogger()
    saved_level = root.level
    root.addHandler(capture)
    printed = io.StringIO()
    started = time.perf_counter()
    try:
        with (
            patched_environ({**fn.environment, "AWS_LAMBDA_FUNCTION_NAME": fn.name}),
            contextlib.redirect_stdout(printed),
        ):
            reset_cached_clients()
            if fn.module in sys.modules:
                module = importlib.reload(sys.modules[fn.module])
            else:
                module = importlib.import_module(fn.module)
            summary = module.handler(event or {}, LocalLambdaContext(function_name=fn.name))
    finally:
        root.removeHandler(capture)
        root.setLevel(saved_level)
    return Invocation(
        fn.name,
        dict(summary or {}),
        capture.messages,
        time.perf_counter() - started,
        printed.getvalue(),
    )
