import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


@pytest.fixture
def fleet_aws(monkeypatch):
    """In-process moto with test credentials in eu-west-1, whatever the shell has set (the
    fleet tests' accounts are reached from it with sts:AssumeRole)."""
    from moto import mock_aws

    for var in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    with mock_aws():
        yield


@contextmanager
def moto_server_url() -> Iterator[str]:
    """A moto server on a free local port, for code in other processes (bash, a kernel)."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def moto_server(monkeypatch):
    """A moto server, and an environment (inherited by the kernels and processes a test
    starts) whose boto3 clients talk to it in us-west-2 with test credentials, and carry none
    of the notebook's settings from the shell."""
    with moto_server_url() as url:
        monkeypatch.setenv("AWS_ENDPOINT_URL", url)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        monkeypatch.setenv("AWS_DEFAULT_REGION", "us-west-2")
        for key in (
            "SECML_BACKEND",
            "SECML_TUPLES_BUCKET",
            "SECML_TUPLES_DIR",
            "SECML_WORKSHOP_CONFIG",
        ):
            monkeypatch.delenv(key, raising=False)
        yield url
