"""Background upload of finalized spool segments to S3 with boto3.

One thread uploads the oldest pending segment at a time to an idempotent key
``<prefix>/<robot>/YYYY/MM/DD/HH/<segment name>`` (the name holds the start time and a hash
of the content, so a retry overwrites the same object). Each PUT carries the file's SHA-256
(``x-amz-checksum-sha256``, verified by S3 against the body); the segment is deleted locally
only when S3 confirms that same SHA-256.
Failures back off exponentially; a restart resumes, since pending segments are just files.
Credentials come from boto3's standard chain and are never logged.
"""
from __future__ import annotations

import base64
import hashlib
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from twin_bridge.cloud_config import S3Config
from twin_bridge.spool import MB, Spool, segment_start
from twin_core.restart import Backoff
from twin_core.workers import Workers

AUTH_ERRORS = {'InvalidAccessKeyId', 'SignatureDoesNotMatch', 'AccessDenied', 'ExpiredToken',
               'InvalidToken', 'NoSuchBucket', 'AllAccessDisabled'}
IDLE_POLL_S = 1.0


class ChecksumMismatch(Exception):
    """S3 stored something other than what was sent."""


def object_key(prefix: str, robot: str, name: str) -> str:
    """``<prefix>/<robot>/YYYY/MM/DD/HH/<name>``, partitioned by the segment's start (UTC)."""
    start = segment_start(name)
    parts = [prefix.strip('/'), robot, start.strftime('%Y/%m/%d/%H'), name]
    return '/'.join(part for part in parts if part)


def s3_client(config: S3Config) -> Any:
    """A boto3 S3 client from the standard credential chain (or ``config.profile``)."""
    session = boto3.session.Session(profile_name=config.profile or None)
    return session.client(
        's3', endpoint_url=config.endpoint_url or None, region_name=config.region,
        config=Config(s3={'addressing_style': 'path' if config.path_style else 'virtual'},
                      connect_timeout=config.timeout, read_timeout=config.timeout,
                      retries={'total_max_attempts': 1}))


def describe_error(error: Exception, bucket: str) -> tuple[str, bool]:
    """A one-line explanation of an upload failure and whether it needs an operator."""
    if isinstance(error, NoCredentialsError):
        return ('no AWS credentials found (environment, shared credentials file, profile, '
                'instance role)', True)
    if isinstance(error, ClientError):
        code = error.response.get('Error', {}).get('Code', '?')
        if code == 'NoSuchBucket':
            return f'bucket {bucket!r} does not exist', True
        if code in AUTH_ERRORS:
            return f'S3 rejected the credentials or permissions ({code})', True
        return f'S3 error {code}', False
    return f'{type(error).__name__}: {error}', False


@dataclass(frozen=True)
class UploadStats:
    """A snapshot of the uploader's counters."""

    uploaded_segments: int
    uploaded_bytes: int
    failures: int
    failing: bool
    needs_operator: bool
    retry_in: float
    last_error: str


class Uploader:
    """Uploads ``spool``'s finalized segments from a daemon thread; ``notify()`` wakes it."""

    def __init__(self, spool: Spool, config: S3Config, robot: str, workers: Workers | None = None) -> None:
        self._spool = spool
        self._workers = workers or Workers()
        self._config = config
        self._robot = robot
        self._client: Any = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._uploaded = self._uploaded_bytes = self._failures = 0
        self._last_error = ''
        self._failing = self._needs_operator = False
        self._retry_at = 0.0
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the upload worker."""
        self._thread = self._workers.spawn('s3 uploader', self._run, self._stop)

    def notify(self) -> None:
        """A segment was finalized: upload it without waiting for the next poll."""
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop after the upload in flight (bounded by the request timeout)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def stats(self) -> UploadStats:
        """Current counters."""
        with self._lock:
            return UploadStats(self._uploaded, self._uploaded_bytes, self._failures,
                               self._failing, self._needs_operator,
                               max(0.0, self._retry_at - time.monotonic()), self._last_error)

    def _run(self) -> None:
        backoff = Backoff(initial=self._config.backoff_min, maximum=self._config.backoff_max)
        while not self._stop.is_set():
            self._wake.clear()
            pending = self._spool.pending()
            if not pending:
                self._wake.wait(IDLE_POLL_S)
                continue
            try:
                self._upload(pending[0])
            except FileNotFoundError:  # dropped by the spool's disk policy meanwhile
                continue
            except (BotoCoreError, ClientError, ChecksumMismatch, OSError) as error:
                message, needs_operator = describe_error(error, self._config.bucket)
                with self._lock:
                    self._failures += 1
                    self._last_error = f'{pending[0].name}: {message}'
                    self._failing = True
                    self._needs_operator = needs_operator
                    delay = backoff.delay()
                    self._retry_at = time.monotonic() + delay
                self._stop.wait(delay)
                continue
            backoff.reset()

    def _upload(self, path: Path) -> None:
        if self._client is None:
            self._client = s3_client(self._config)
        sha256 = hashlib.sha256()
        with path.open('rb') as file:
            while block := file.read(MB):
                sha256.update(block)
            size = file.tell()
            file.seek(0)
            checksum = base64.b64encode(sha256.digest()).decode()
            response = self._client.put_object(
                Bucket=self._config.bucket,
                Key=object_key(self._config.prefix, self._robot, path.name), Body=file,
                ContentLength=size, ChecksumSHA256=checksum)
        if response.get('ChecksumSHA256') != checksum:
            raise ChecksumMismatch(f'S3 confirmed SHA-256 {response.get("ChecksumSHA256")!r}, '
                                   f'sent {checksum!r}')
        self._spool.remove(path)
        with self._lock:
            self._uploaded += 1
            self._uploaded_bytes += size
            self._failing = self._needs_operator = False
            self._retry_at = 0.0
