"""A real MinIO server for the delivery tests (built from source by ``infra/minio.sh build``).

``MinioServer`` starts MinIO on 127.0.0.1 with a throwaway data dir and fixed test credentials,
exports the standard AWS env vars (endpoint, keys) while it runs, and can be stopped and restarted
on the same port and data dir to simulate an outage in the middle of an upload. Use it from a test
module as a module-scoped fixture::

    @pytest.fixture(scope="module")
    def s3() -> Iterator[MinioServer]:
        with MinioServer() as server:
            yield server
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from types import TracebackType

REPO_ROOT = Path(__file__).resolve().parents[2]
MINIO_BIN = Path(os.environ.get("MINIO_BIN", str(Path.home() / "go" / "bin" / "minio")))
TEST_USER = "dmp-test"
TEST_SECRET = "dmp-test-secret"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ensure_minio_built() -> Path:
    if not MINIO_BIN.exists():
        subprocess.run(["bash", str(REPO_ROOT / "infra" / "minio.sh"), "build"], check=True)
    return MINIO_BIN


class MinioServer:
    def __init__(self) -> None:
        self.port = _free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.data_dir = Path(tempfile.mkdtemp(prefix="dmp-minio-"))
        self._proc: subprocess.Popen[bytes] | None = None
        self._saved_env: dict[str, str | None] = {}

    # -- lifecycle
    def start(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            return
        env = dict(
            os.environ, MINIO_ROOT_USER=TEST_USER, MINIO_ROOT_PASSWORD=TEST_SECRET, MINIO_BROWSER="off"
        )
        self._proc = subprocess.Popen(
            [
                str(ensure_minio_built()),
                "server",
                "--quiet",
                "--address",
                f"127.0.0.1:{self.port}",
                "--console-address",
                f"127.0.0.1:{_free_port()}",
                str(self.data_dir),
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"minio exited with {self._proc.returncode} while starting")
            try:
                with urllib.request.urlopen(f"{self.endpoint}/minio/health/ready", timeout=1) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"minio did not become ready on {self.endpoint}")

    def stop(self) -> None:
        if self._proc is None:
            return
        self._proc.terminate()
        try:
            self._proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._proc = None

    def __enter__(self) -> MinioServer:
        env = {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": TEST_USER,
            "AWS_SECRET_ACCESS_KEY": TEST_SECRET,
            "AWS_DEFAULT_REGION": "us-east-1",
            # Fail fast while the server is deliberately down (the retry test), still retrying.
            "DMP_S3_MAX_ATTEMPTS": "2",
            "DMP_S3_CONNECT_TIMEOUT": "2",
        }
        for key, value in env.items():
            self._saved_env[key] = os.environ.get(key)
            os.environ[key] = value
        for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "DMP_AWS_CONN_ID"):
            self._saved_env[key] = os.environ.pop(key, None)
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        shutil.rmtree(self.data_dir, ignore_errors=True)

    # -- helpers
    def client(self):  # noqa: ANN201 - boto3 client
        from dmp.delivery.storage import s3_client

        return s3_client()

    def create_bucket(self, name: str) -> None:
        client = self.client()
        existing = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
        if name not in existing:
            client.create_bucket(Bucket=name)
