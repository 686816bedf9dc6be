"""A local S3-compatible server for tests: moto in server mode, in its own process.

    with MotoS3Server() as server:
        bucket = server.create_bucket()
        store = S3BlobStore.from_url(f"s3://{bucket}", **server.store_options())

Needs ``moto[server]`` (a dev dependency). The server listens on 127.0.0.1 only,
on a free port, and accepts any credentials. moto 5.x enforces ``If-Match`` and
``If-None-Match`` on PutObject, so conditional writes are really tested.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import uuid
from types import TracebackType
from typing import Any, Self

import httpx

_START_ATTEMPTS = 3


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class MotoS3Server:
    """Start ``python -m moto.server`` on loopback; stop it on exit."""

    def __init__(self, *, startup_timeout: float = 60.0) -> None:
        self._startup_timeout = startup_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self.port = 0

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        # Another process may take the port between choosing and binding it: retry.
        for _ in range(_START_ATTEMPTS):
            self.port = free_port()
            self._process = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            if self._wait_ready():
                return
            self.stop()
        raise RuntimeError("the moto S3 server did not start")

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + self._startup_timeout
        assert self._process is not None
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                return False
            try:
                httpx.get(self.endpoint + "/moto-api/data.json", timeout=2.0)
                return True
            except httpx.TransportError:
                time.sleep(0.1)
        return False

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)

    def create_bucket(self, name: str | None = None) -> str:
        """Create a bucket (a fresh random name by default) and return its name."""
        bucket = name or f"test-{uuid.uuid4().hex[:16]}"
        response = httpx.put(f"{self.endpoint}/{bucket}", timeout=30.0)
        response.raise_for_status()
        return bucket

    def store_options(self) -> dict[str, Any]:
        """Keyword arguments for ``S3BlobStore.from_url`` pointing at this server."""
        return {
            "endpoint": self.endpoint,
            "region": "us-east-1",
            "allow_http": True,
            "access_key_id": "testing",
            "secret_access_key": "testing",
        }

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
