"""Object stores behind a channel destination: S3 (boto3) or a local folder (``file://``).

S3 settings come only from the standard AWS chain (env vars, ``~/.aws``, instance roles; endpoint
via ``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_S3`` or the config file), or from an Airflow
connection named by ``DMP_AWS_CONN_ID``. Nothing here logs or formats a credential.

Every object we write carries its sha256 as ``x-amz-meta-sha256`` so a retry can skip objects that
already arrived intact (HEAD instead of re-upload).
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlparse

from dmp.contracts.channels import normalise_destination
from dmp.contracts.errors import DmpError
from dmp.contracts.settings import env_setting

MB = 1024 * 1024


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class ObjectStore(Protocol):
    url: str

    def put(self, key: str, data: bytes) -> None: ...

    def get(self, key: str, max_bytes: int | None = None) -> bytes:
        """The object's bytes; with ``max_bytes``, at most ``max_bytes + 1`` of them (so "too big" shows)."""
        ...

    def exists(self, key: str) -> bool: ...

    def stored_sha256(self, key: str) -> str | None: ...

    def list_keys(self, prefix: str) -> list[str]: ...

    def list_dirs(self, prefix: str) -> list[str]: ...

    def delete(self, key: str) -> None: ...


def _join(*parts: str) -> str:
    return "/".join(p.strip("/") for p in parts if p.strip("/"))


def checked_key(url: str, key: str, *, listing: bool = False) -> str:
    """``key`` when it is a relative path of plain names; a key that could leave the store is refused.

    Keys are built from validated channel / segment / date names and manifest paths; this is the
    last line of defence, so a ``..`` from anywhere never reaches the filesystem or the bucket.
    ``listing``: a list prefix may also be ``""``, the whole store.
    """
    if listing and key == "":
        return key
    parts = key.split("/")
    if key.startswith("/") or "\x00" in key or any(p in ("", ".", "..") for p in parts):
        shown = key if len(key) <= 80 else key[:77] + "..."
        raise DmpError(
            f"{url}: refusing object key {shown!r}: keys are relative paths without '', '.' or '..' parts"
        )
    return key


@dataclass
class FileStore:
    """A destination folder on a local or mounted filesystem; writes are atomic (tmp + rename)."""

    root: Path
    url: str

    def _path(self, key: str, *, listing: bool = False) -> Path:
        return self.root / checked_key(self.url, key, listing=listing)

    def put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)

    def get(self, key: str, max_bytes: int | None = None) -> bytes:
        path = self._path(key)
        try:
            with path.open("rb") as fh:
                return fh.read() if max_bytes is None else fh.read(max_bytes + 1)
        except FileNotFoundError:
            raise DmpError(f"{self.url}/{key}: not found") from None
        except OSError as exc:  # a folder where a file belongs, no permission
            raise DmpError(f"{self.url}/{key}: cannot read ({exc.strerror or type(exc).__name__})") from None

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def stored_sha256(self, key: str) -> str | None:
        path = self._path(key)
        return sha256_hex(path.read_bytes()) if path.is_file() else None

    def list_keys(self, prefix: str) -> list[str]:
        base = self._path(prefix, listing=True)
        if not base.is_dir():
            return []
        return sorted(
            str(p.relative_to(self.root))
            for p in base.rglob("*")
            if p.is_file() and not p.name.startswith(".")
        )

    def list_dirs(self, prefix: str) -> list[str]:
        base = self._path(prefix, listing=True)
        if not base.is_dir():
            return []
        return sorted(p.name for p in base.iterdir() if p.is_dir())

    def delete(self, key: str) -> None:
        path = self._path(key)
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


def _airflow_connection_kwargs(conn_id: str) -> dict[str, Any]:
    """Client kwargs from an Airflow connection (login = access key id, password = secret)."""
    try:
        from airflow.sdk import BaseHook  # Airflow 3
    except ImportError:  # pragma: no cover - Airflow 2 layout
        from airflow.hooks.base import BaseHook  # type: ignore[no-redef]
    try:
        conn = BaseHook.get_connection(conn_id)
    except Exception as exc:  # noqa: BLE001 - Airflow raises several types; never echo the connection
        raise DmpError(
            f"DMP_AWS_CONN_ID={conn_id}: Airflow connection could not be loaded ({type(exc).__name__})"
        ) from None
    extra = conn.extra_dejson or {}
    kwargs: dict[str, Any] = {}
    if conn.login:
        kwargs["aws_access_key_id"] = conn.login
        kwargs["aws_secret_access_key"] = conn.password
    if extra.get("aws_session_token"):
        kwargs["aws_session_token"] = extra["aws_session_token"]
    if extra.get("endpoint_url"):
        kwargs["endpoint_url"] = extra["endpoint_url"]
    if extra.get("region_name"):
        kwargs["region_name"] = extra["region_name"]
    return kwargs


def s3_client(max_attempts: int | None = None) -> Any:
    """A boto3 S3 client from the standard chain, with botocore's standard retry mode."""
    import boto3
    from botocore.config import Config

    attempts = max_attempts or int(env_setting("s3_max_attempts"))
    config = Config(
        retries={"mode": "standard", "max_attempts": attempts},
        connect_timeout=float(env_setting("s3_connect_timeout")),
        read_timeout=float(env_setting("s3_read_timeout")),
        # Path-style works with every S3-compatible server (MinIO on 127.0.0.1) and with AWS.
        s3={"addressing_style": env_setting("s3_addressing_style")},
    )
    kwargs: dict[str, Any] = {}
    conn_id = env_setting("aws_conn_id")
    if conn_id:
        kwargs = _airflow_connection_kwargs(conn_id)
    session = boto3.session.Session(region_name=kwargs.pop("region_name", None))
    return session.client("s3", config=config, **kwargs)


class S3Store:
    """``s3://bucket/prefix`` through boto3; multipart above ``multipart_threshold`` bytes."""

    def __init__(self, url: str, client: Any | None = None, multipart_threshold: int = 64 * MB) -> None:
        from boto3.s3.transfer import TransferConfig

        parsed = urlparse(url)
        self.url = url.rstrip("/")
        self.bucket = parsed.netloc
        self.prefix = parsed.path.strip("/")
        self.client = client or s3_client()
        self.transfer = TransferConfig(
            multipart_threshold=multipart_threshold,
            multipart_chunksize=max(8 * MB, multipart_threshold // 4),
            max_concurrency=4,
        )

    def _key(self, key: str, *, listing: bool = False) -> str:
        return _join(self.prefix, checked_key(self.url, key, listing=listing))

    def _wrap(self, exc: Exception, action: str, key: str) -> DmpError:
        from botocore.exceptions import ClientError

        if isinstance(exc, ClientError):
            code = exc.response.get("Error", {}).get("Code", "?")
            if code == "NoSuchBucket":
                return DmpError(
                    f"s3://{self.bucket}: bucket does not exist (create it or fix the channel destination)"
                )
            return DmpError(f"{action} s3://{self.bucket}/{_join(self.prefix, key)} failed: {code}")
        # Connection errors etc.: the class name and message carry no credentials.
        return DmpError(
            f"{action} s3://{self.bucket}/{_join(self.prefix, key)} failed after retries: "
            f"{type(exc).__name__}: {exc}"
        )

    def put(self, key: str, data: bytes) -> None:
        full_key = self._key(key)
        try:
            self.client.upload_fileobj(
                io.BytesIO(data),
                self.bucket,
                full_key,
                ExtraArgs={"Metadata": {"sha256": sha256_hex(data)}},
                Config=self.transfer,
            )
        except Exception as exc:  # noqa: BLE001 - boto3 raises botocore and s3transfer errors
            raise self._wrap(exc, "upload", key) from exc

    def get(self, key: str, max_bytes: int | None = None) -> bytes:
        full_key = self._key(key)
        try:
            if max_bytes is not None:
                # One ranged GET: an object larger than expected is never downloaded whole.
                return self._get_range(full_key, max_bytes + 1)
            buf = io.BytesIO()
            self.client.download_fileobj(self.bucket, full_key, buf, Config=self.transfer)
            return buf.getvalue()
        except Exception as exc:  # noqa: BLE001
            raise self._wrap(exc, "download", key) from exc

    def _get_range(self, full_key: str, length: int) -> bytes:
        from botocore.exceptions import ClientError

        try:
            resp = self.client.get_object(Bucket=self.bucket, Key=full_key, Range=f"bytes=0-{length - 1}")
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "InvalidRange":  # an empty object
                return b""
            raise
        with resp["Body"] as body:
            return body.read(length)

    def _head(self, key: str) -> dict[str, Any] | None:
        from botocore.exceptions import ClientError

        full_key = self._key(key)
        try:
            return self.client.head_object(Bucket=self.bucket, Key=full_key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise self._wrap(exc, "head", key) from exc
        except Exception as exc:  # noqa: BLE001
            raise self._wrap(exc, "head", key) from exc

    def exists(self, key: str) -> bool:
        return self._head(key) is not None

    def stored_sha256(self, key: str) -> str | None:
        head = self._head(key)
        return None if head is None else head.get("Metadata", {}).get("sha256")

    def _list(self, prefix: str, delimiter: str | None) -> tuple[list[str], list[str]]:
        key = self._key(prefix, listing=True)
        base = f"{key}/" if key else ""  # a store at a bucket's root lists from the root, not "/"
        keys: list[str] = []
        dirs: list[str] = []
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": base}
        if delimiter:
            kwargs["Delimiter"] = delimiter
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(**kwargs):
                keys += [o["Key"] for o in page.get("Contents", [])]
                dirs += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
        except Exception as exc:  # noqa: BLE001
            raise self._wrap(exc, "list", prefix) from exc
        strip = len(self.prefix) + 1 if self.prefix else 0
        return sorted(k[strip:] for k in keys), sorted(d[len(base) :].strip("/") for d in dirs)

    def list_keys(self, prefix: str) -> list[str]:
        return self._list(prefix, None)[0]

    def list_dirs(self, prefix: str) -> list[str]:
        return self._list(prefix, "/")[1]

    def delete(self, key: str) -> None:
        full_key = self._key(key)
        try:
            self.client.delete_object(Bucket=self.bucket, Key=full_key)
        except Exception as exc:  # noqa: BLE001
            raise self._wrap(exc, "delete", key) from exc


def open_store(url: str) -> ObjectStore:
    """The store for a channel destination URL (``s3://bucket/prefix`` or ``file:///abs/path``).

    The URL is normalised and checked the way channels.yaml destinations are (no ``..``); the
    message does not repeat it, since it may hold an expanded environment variable.
    """
    try:
        url = normalise_destination(url)
    except ValueError as exc:
        raise DmpError(f"destination refused: {exc}") from None
    if url.startswith("s3://"):
        return S3Store(url)
    return FileStore(root=Path(unquote(urlparse(url).path)), url=url)
