"""An embedded S3 (moto's server) on 127.0.0.1 that is always stopped, even on Ctrl-C or errors."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
from collections.abc import Iterator
from dataclasses import dataclass

from secml.errors import SecmlError

# What boto3 needs to talk to the embedded server and nothing else: dummy credentials (so it
# never looks for real ones, e.g. on the instance metadata endpoint) and a fixed region.
DUMMY_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}


@dataclass(frozen=True)
class EmbeddedS3:
    host: str
    port: int

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"


def port_is_open(host: str, port: int) -> bool:
    """True if something accepts connections on host:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def check_port_free(host: str, port: int) -> None:
    """Fail with one clear line before moto's thread would (werkzeug prints and exits there)."""
    if port == 0:
        return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as werkzeug binds
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise SecmlError(
                f"port {port} on {host} is not available ({exc.strerror}); "
                "pick another --port or leave it out to use any free port"
            ) from None


def _make_server(host: str, port: int):
    from moto.server import ThreadedMotoServer

    class _Server(ThreadedMotoServer):
        """ThreadedMotoServer.start() waits forever if binding fails in its thread (port in use);
        this one records the error and wakes start() up so we can report it."""

        startup_error: BaseException | None = None

        def _server_entry(self) -> None:
            try:
                super()._server_entry()
            except BaseException as exc:  # noqa: BLE001 - handed to the caller in start()
                self.startup_error = exc
                self._server_ready_event.set()

    return _Server(ip_address=host, port=port, verbose=False)


@contextlib.contextmanager
def _sigterm_as_keyboard_interrupt() -> Iterator[None]:
    """`kill PID` unwinds like Ctrl-C, so the finally below still stops the server."""

    def _raise(signum, frame):  # noqa: ARG001
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, _raise)
    except ValueError:  # not the main thread (e.g. a test runner thread): leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def embedded_s3(port: int = 0, host: str = "127.0.0.1") -> Iterator[EmbeddedS3]:
    """Start moto's server on host:port (0: any free port) and stop it on the way out."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    check_port_free(host, port)
    server = _make_server(host, port)
    with _sigterm_as_keyboard_interrupt():
        server.start()
        if server.startup_error is not None:  # lost a race for the port, or a bad host
            raise SecmlError(
                f"could not start the embedded S3 on {host}:{port}: "
                f"{server.startup_error or 'address in use'}"
            )
        try:
            bound_host, bound_port = server.get_host_and_port()
            embedded = EmbeddedS3(bound_host, bound_port)
            _reset(embedded)
            yield embedded
        finally:
            server.stop()


def _reset(server: EmbeddedS3) -> None:
    """moto keeps its state per process, not per server: a second run in the same process (the
    tests) would otherwise find the first run's buckets and tuples."""
    import urllib.request

    request = urllib.request.Request(f"{server.endpoint_url}/moto-api/reset", method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()


@contextlib.contextmanager
def aws_env(endpoint_url: str | None) -> Iterator[None]:
    """Point boto3 at the embedded server with dummy credentials; restore the environment after."""
    values: dict[str, str | None] = dict(DUMMY_AWS_ENV)
    # A user's profile or per-service endpoint must not send the demo's calls anywhere else.
    values["AWS_PROFILE"] = None
    values["AWS_ENDPOINT_URL"] = endpoint_url
    values["AWS_ENDPOINT_URL_S3"] = endpoint_url
    with patched_environ(values):
        yield


@contextlib.contextmanager
def patched_environ(values: dict[str, str | None]) -> Iterator[None]:
    """Set (or, for None, unset) environment variables for the duration of the block."""
    saved = {key: os.environ.get(key) for key in values}
    for key, value in values.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old
