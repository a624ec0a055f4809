"""Local paths and ``s3://`` URIs behind one pyarrow FileSystem interface.

S3 credentials come only from the environment (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
``AWS_SESSION_TOKEN``, ``AWS_REGION``) or the usual AWS credential chain; an S3-compatible
server is named by ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL``. Nothing here logs or returns
a credential: ``describe_uri`` gives only what is safe to put in a manifest.
"""

from __future__ import annotations

import os
import posixpath
from dataclasses import dataclass
from urllib.parse import urlparse

import pyarrow.fs as pafs


class InputError(Exception):
    """A user mistake in inputs (missing file, bad format, bad column): reported without a traceback."""


@dataclass(frozen=True)
class FileInfo:
    uri: str  # as the user would write it: a local absolute path or s3://bucket/key
    size: int
    mtime_ns: int | None


def is_s3(uri: str) -> bool:
    return uri.startswith("s3://") or uri.startswith("s3a://")


S3_ENV_KEYS = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_PROFILE",
)


def storage_env() -> dict[str, str]:
    """The S3 settings of this process, to hand to Spark tasks in memory (Python workers inherit the
    JVM's environment, fixed when it started). Never logged, never written to a manifest."""
    return {k: os.environ[k] for k in S3_ENV_KEYS if k in os.environ}


def apply_storage_env(env: dict[str, str]) -> None:
    """In a Spark task: adopt the driver's S3 settings where the worker has none of its own."""
    for key, value in env.items():
        os.environ.setdefault(key, value)


def s3_filesystem() -> pafs.S3FileSystem:
    """An S3FileSystem configured from the environment only."""
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    kwargs: dict = {}
    if endpoint:
        parsed = urlparse(endpoint)
        kwargs["endpoint_override"] = parsed.netloc or parsed.path
        kwargs["scheme"] = parsed.scheme or "https"
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if region:
        kwargs["region"] = region
    if os.environ.get("AWS_ACCESS_KEY_ID"):
        kwargs["access_key"] = os.environ["AWS_ACCESS_KEY_ID"]
        kwargs["secret_key"] = os.environ.get("AWS_SECRET_ACCESS_KEY", "")
        if os.environ.get("AWS_SESSION_TOKEN"):
            kwargs["session_token"] = os.environ["AWS_SESSION_TOKEN"]
    # connection failures and 5xx answers are retried with backoff (TIERLAKE_S3_MAX_ATTEMPTS, default 5)
    kwargs["retry_strategy"] = pafs.AwsStandardS3RetryStrategy(max_attempts=int(os.environ.get("TIERLAKE_S3_MAX_ATTEMPTS", "5")))
    kwargs["connect_timeout"] = float(os.environ.get("TIERLAKE_S3_CONNECT_TIMEOUT", "10"))
    return pafs.S3FileSystem(**kwargs)


def resolve(uri: str) -> tuple[pafs.FileSystem, str]:
    """(filesystem, path inside it) for a local path or an s3:// URI."""
    if is_s3(uri):
        parsed = urlparse(uri)
        return s3_filesystem(), f"{parsed.netloc}{parsed.path}".rstrip("/")
    return pafs.LocalFileSystem(), os.path.abspath(os.path.expanduser(uri))


def to_uri(fs: pafs.FileSystem, path: str) -> str:
    return f"s3://{path}" if isinstance(fs, pafs.S3FileSystem) else path


def list_files(uri: str, suffixes: tuple[str, ...] | None = None, keep_hidden: tuple[str, ...] = ()) -> list[FileInfo]:
    """Every regular file at or below ``uri``, sorted, skipping hidden and ``_``-prefixed names
    (Spark/Hive markers such as ``_SUCCESS`` and ``.crc``) except folders named in ``keep_hidden``
    (the lake catalog keeps ``_delta_log``). Raises InputError naming the path
    when nothing is there."""
    fs, path = resolve(uri)
    try:
        info = fs.get_file_info(path)
    except OSError as exc:  # unreachable bucket, permission denied
        raise InputError(f"cannot read {uri}: {exc}") from None
    if info.type == pafs.FileType.NotFound:
        raise InputError(f"input not found: {uri}")
    if info.type == pafs.FileType.File:
        infos = [info]
    else:
        try:
            infos = fs.get_file_info(pafs.FileSelector(path, recursive=True))
        except OSError as exc:
            raise InputError(f"cannot list {uri}: {exc}") from None
    files = []
    for item in infos:
        if item.type != pafs.FileType.File:
            continue
        rel_parts = posixpath.relpath(item.path, path).split("/") if item.path != path else [item.base_name]
        if any(p.startswith((".", "_")) and p not in keep_hidden for p in rel_parts):
            continue
        if suffixes and not item.base_name.lower().endswith(suffixes):
            continue
        files.append(FileInfo(to_uri(fs, item.path), item.size or 0, item.mtime_ns))
    files.sort(key=lambda f: f.uri)
    return files


def describe_uri(uri: str) -> str:
    """The URI as it may appear in logs and manifests (never credentials; strips user:pass@)."""
    parsed = urlparse(uri)
    if parsed.scheme and "@" in parsed.netloc:
        return uri.replace(parsed.netloc, parsed.netloc.split("@", 1)[1])
    return uri
