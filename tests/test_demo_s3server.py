"""The embedded S3 starts on a free port, refuses a busy one clearly, and always stops."""

import os
import signal
import socket
import subprocess
import sys
import time

import boto3
import pytest

from secml.demo.s3server import aws_env, embedded_s3, port_is_open
from secml.errors import SecmlError
from tests.conftest import ROOT


def test_server_serves_s3_and_is_stopped_on_exit():
    with embedded_s3() as server, aws_env(server.endpoint_url):
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket="demo-test-bucket")
        s3.put_object(Bucket="demo-test-bucket", Key="k", Body=b"v")
        assert s3.get_object(Bucket="demo-test-bucket", Key="k")["Body"].read() == b"v"
        port = server.port
        assert os.environ["AWS_ENDPOINT_URL"] == server.endpoint_url
    assert not port_is_open("127.0.0.1", port)
    assert os.environ.get("AWS_ENDPOINT_URL") != server.endpoint_url


def test_each_server_starts_empty():
    """moto keeps state per process; a second demo run in one process must not see the first's."""
    with embedded_s3() as server, aws_env(server.endpoint_url):
        boto3.client("s3").create_bucket(Bucket="demo-leftover-bucket")
    with embedded_s3() as server, aws_env(server.endpoint_url):
        assert boto3.client("s3").list_buckets()["Buckets"] == []


def test_server_is_stopped_when_the_block_fails():
    with pytest.raises(RuntimeError, match="step failed"), embedded_s3() as server:
        port = server.port
        assert port_is_open("127.0.0.1", port)
        raise RuntimeError("step failed")
    assert not port_is_open("127.0.0.1", port)


def test_busy_port_is_one_clear_error_not_a_hang():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        started = time.monotonic()
        match = f"port {port} on 127.0.0.1 is not available"
        with pytest.raises(SecmlError, match=match), embedded_s3(port=port):
            pass
        assert time.monotonic() - started < 5


def test_sigterm_stops_the_server_before_the_process_exits(tmp_path):
    """`kill PID` on a running demo unwinds through the finally that stops the server."""
    script = (
        "import sys, time\n"
        "from secml.demo.s3server import embedded_s3, port_is_open\n"
        "try:\n"
        "    with embedded_s3() as s:\n"
        "        print(s.port, flush=True)\n"
        # Short sleeps: the kernel may deliver SIGTERM to the server's thread, and Python runs
        # the handler only when the main thread next gets control (a long sleep would wait).
        "        while True: time.sleep(0.05)\n"
        "except KeyboardInterrupt:\n"
        "    print('interrupted, open:', port_is_open('127.0.0.1', s.port), flush=True)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        port = int(proc.stdout.readline())
        assert port_is_open("127.0.0.1", port)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "interrupted, open: False" in out  # stopped by the finally, before the process ended
