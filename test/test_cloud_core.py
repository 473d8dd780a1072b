"""Spool and uploader cores against the real filesystem (incl. a full tmpfs) and a real
S3-compatible server (weed mini): rolling, atomic finalize, disk bound, checksummed upload,
outage and restart recovery, idempotent keys, credential errors."""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from rosbags.highlevel import AnyReader

from harness import S3Server
from twin_bag.writer import load_typestore
from twin_bridge.cloud_config import DROP_NEWEST, S3Config, SpoolConfig
from twin_bridge.spool import Spool
from twin_bridge.uploader import Uploader, object_key

TYPE = 'sensor_msgs/msg/Temperature'
TYPESTORE = load_typestore([TYPE], os.environ.get('AMENT_PREFIX_PATH', '').split(os.pathsep))
BUCKET = 'twin-test'
NAME = re.compile(r'^\d{8}T\d{6}\.\d{6}Z_[0-9a-f]{16}\.mcap$')
T0 = 1_767_225_600_000_000_000  # 2026-01-01T00:00:00Z


def temperature(index: int) -> bytes:
    """A serialized Temperature whose value is ``index``."""
    types = TYPESTORE.types
    header = types['std_msgs/msg/Header'](types['builtin_interfaces/msg/Time'](index, 0), 'm')
    return bytes(TYPESTORE.serialize_cdr(types[TYPE](header, float(index), 0.0), TYPE))


def values(path: Path) -> list[int]:
    """The Temperature values stored in an MCAP segment, in order."""
    with AnyReader([path]) as reader:
        return [int(reader.deserialize(raw, TYPE).temperature)
                for _, _, raw in reader.messages()]


def fill(spool: Spool, count: int, start: int = 0, period_ns: int = 1_000_000) -> None:
    for index in range(start, start + count):
        spool.write('/motors/joint_1/temperature', TYPE, temperature(index),
                    T0 + index * period_ns)


def wait(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f'timed out waiting for {what}'
        time.sleep(0.05)


@pytest.fixture
def aws_profiles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Credentials only from a shared credentials file: profile ``twin`` and ``wrong``."""
    credentials = tmp_path / 'credentials'
    credentials.write_text(
        f'[twin]\naws_access_key_id = {S3Server.ACCESS_KEY}\n'
        f'aws_secret_access_key = {S3Server.SECRET_KEY}\n'
        f'[wrong]\naws_access_key_id = {S3Server.ACCESS_KEY}\n'
        'aws_secret_access_key = not-the-secret\n')
    for name in ('AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_PROFILE'):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv('AWS_SHARED_CREDENTIALS_FILE', str(credentials))
    monkeypatch.setenv('AWS_CONFIG_FILE', str(tmp_path / 'no-config'))
    monkeypatch.setenv('AWS_EC2_METADATA_DISABLED', 'true')


def s3_config(server: S3Server, profile: str = 'twin') -> S3Config:
    return S3Config(bucket=BUCKET, prefix='fleet', endpoint_url=server.endpoint,
                    profile=profile, backoff_min=0.05, backoff_max=0.4)


def start_uploader(spool: Spool, config: S3Config) -> Uploader:
    uploader = Uploader(spool, config, 'cell_7')
    uploader.start()
    return uploader


def test_segments_roll_by_size_and_time_and_finalize_atomically(tmp_path: Path) -> None:
    finalized = []
    spool = Spool(SpoolConfig(directory=str(tmp_path), segment_max_mb=0.02, segment_max_s=10.0,
                              max_mb=10.0), TYPESTORE, on_finalized=lambda: finalized.append(1))
    fill(spool, 1000)
    assert [p.name for p in tmp_path.glob('*.partial')] and len(spool.pending()) == len(finalized)
    spool.tick(T0 + 999 * 1_000_000 + 9 * 10**9)
    assert len(spool.pending()) == len(finalized)  # the open segment is not 10 s old yet
    spool.tick(T0 + 20 * 10**9)
    assert not list(tmp_path.glob('*.partial'))
    segments = spool.pending()
    assert len(segments) == len(finalized) >= 3
    assert sorted(p.name for p in tmp_path.iterdir()) == [p.name for p in segments]
    stored = []
    for path in segments:
        assert NAME.match(path.name)
        assert hashlib.sha256(path.read_bytes()).hexdigest().startswith(path.name[24:40])
        stored += values(path)
    assert stored == list(range(1000))
    assert spool.stats().messages == 1000 and spool.stats().dropped_messages == 0


def test_restart_adopts_finalized_and_removes_unfinished_segments(tmp_path: Path) -> None:
    config = SpoolConfig(directory=str(tmp_path), segment_max_mb=0.02, max_mb=10.0)
    crashed = Spool(config, TYPESTORE)
    fill(crashed, 500)
    pending = crashed.pending()
    assert pending and list(tmp_path.glob('*.partial'))  # no close(): as if killed
    restarted = Spool(config, TYPESTORE)
    assert restarted.pending() == pending
    assert restarted.stats().abandoned_segments == 1 and not list(tmp_path.glob('*.partial'))


@pytest.mark.parametrize('policy', ['drop_oldest', DROP_NEWEST])
def test_disk_bound_policy(tmp_path: Path, policy: str) -> None:
    spool = Spool(SpoolConfig(directory=str(tmp_path), segment_max_mb=0.01, max_mb=0.05,
                              policy=policy, compression='none'), TYPESTORE)
    fill(spool, 5000)
    spool.close()
    stats = spool.stats()
    on_disk = sum(p.stat().st_size for p in tmp_path.iterdir())
    assert on_disk <= 50_000 and stats.pending_bytes == on_disk
    assert stats.policy_hits > 0
    kept = [value for path in spool.pending() for value in values(path)]
    assert kept == sorted(kept) and len(kept) == len(set(kept))
    if policy == DROP_NEWEST:
        assert kept[0] == 0 and stats.dropped_messages == 5000 - len(kept)
    else:
        assert kept[-1] == 4999 and stats.dropped_segments > 0 and stats.dropped_messages == 0


def test_full_disk_keeps_finalized_segments_and_recovers(tmp_path: Path) -> None:
    disk = tmp_path / 'tmpfs'
    disk.mkdir()
    if subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=512k', 'tmpfs', str(disk)],
                      capture_output=True).returncode != 0:
        pytest.skip('cannot mount a small tmpfs here (needs root and CAP_SYS_ADMIN)')
    try:
        filler = disk / 'filler'
        filler.write_bytes(b'\0' * 300_000)
        spool = Spool(SpoolConfig(directory=str(disk / 'spool'), segment_max_mb=0.05,
                                  max_mb=100.0, compression='none'), TYPESTORE)
        fill(spool, 6000)
        stats = spool.stats()
        assert stats.disk_full and 'disk full' in stats.last_error
        assert stats.dropped_messages > 0 and stats.pending_segments >= 2
        kept = [value for path in spool.pending() for value in values(path)]
        assert kept == list(range(len(kept)))
        filler.unlink()
        fill(spool, 100, start=10_000, period_ns=10**9)  # a second later: retried, recorded
        spool.close()
        assert not spool.stats().disk_full
        assert values(spool.pending()[-1])[-1] == 10_099
    finally:
        subprocess.run(['umount', str(disk)], check=True)


def test_upload_is_checksummed_keyed_by_time_and_deletes_only_after(
        tmp_path: Path, s3_server: S3Server, aws_profiles: None) -> None:
    spool = Spool(SpoolConfig(directory=str(tmp_path / 'spool'), segment_max_mb=0.02,
                              max_mb=10.0), TYPESTORE)
    fill(spool, 1000)
    spool.close()
    local = {object_key('fleet', 'cell_7', p.name): p.read_bytes() for p in spool.pending()}
    uploader = start_uploader(spool, s3_config(s3_server))
    try:
        wait(lambda: not spool.pending(), 20.0, 'the spool to drain')
    finally:
        uploader.stop()
    assert s3_server.objects(BUCKET) == local
    assert all(key.startswith('fleet/cell_7/2026/01/01/00/') for key in local)
    stats = uploader.stats()
    assert stats.uploaded_segments == len(local) and not stats.failing
    assert stats.uploaded_bytes == sum(len(data) for data in local.values())
    assert not list((tmp_path / 'spool').iterdir())
    head = s3_server.client().head_object(Bucket=BUCKET, Key=next(iter(local)),
                                          ChecksumMode='ENABLED')
    assert head['ChecksumSHA256']


def test_s3_outage_then_restart_of_the_uploader_loses_and_duplicates_nothing(
        tmp_path: Path, s3_server: S3Server, aws_profiles: None) -> None:
    config = SpoolConfig(directory=str(tmp_path / 'spool'), segment_max_mb=0.02, max_mb=10.0)
    spool = Spool(config, TYPESTORE)
    uploader = start_uploader(spool, s3_config(s3_server))
    fill(spool, 400)
    s3_server.stop()
    fill(spool, 800, start=400)
    spool.close()
    wait(lambda: uploader.stats().failures >= 3, 10.0, 'failed attempts')
    stats = uploader.stats()
    assert stats.failing and not stats.needs_operator and stats.retry_in <= 0.4
    pending = spool.pending()
    assert pending and all(p.exists() for p in pending)
    uploader.stop()
    restarted = Spool(config, TYPESTORE)  # a new process: pending segments are just files
    assert restarted.pending() == pending
    uploader = start_uploader(restarted, s3_config(s3_server))
    s3_server.start()
    try:
        wait(lambda: not restarted.pending(), 30.0, 'the spool to drain after the outage')
    finally:
        uploader.stop()
    stored = []
    for key, data in sorted(s3_server.objects(BUCKET).items()):
        path = tmp_path / Path(key).name
        path.write_bytes(data)
        stored += values(path)
    assert stored == list(range(1200))


def test_retry_after_a_lost_delete_overwrites_the_same_object(
        tmp_path: Path, s3_server: S3Server, aws_profiles: None) -> None:
    config = SpoolConfig(directory=str(tmp_path / 'spool'), segment_max_mb=0.02, max_mb=10.0)
    spool = Spool(config, TYPESTORE)
    fill(spool, 600)
    spool.close()
    copies = tmp_path / 'copies'
    shutil.copytree(spool.directory, copies)
    uploader = start_uploader(spool, s3_config(s3_server))
    wait(lambda: not spool.pending(), 20.0, 'the first upload')
    uploader.stop()
    first = s3_server.objects(BUCKET)
    shutil.copytree(copies, spool.directory, dirs_exist_ok=True)  # uploaded, never deleted
    again = Spool(config, TYPESTORE)
    uploader = start_uploader(again, s3_config(s3_server))
    try:
        wait(lambda: not again.pending(), 20.0, 'the retried upload')
    finally:
        uploader.stop()
    assert uploader.stats().uploaded_segments == len(first)
    assert s3_server.objects(BUCKET) == first


def test_wrong_secret_gives_one_clear_error_and_keeps_every_segment(
        tmp_path: Path, s3_server: S3Server, aws_profiles: None) -> None:
    spool = Spool(SpoolConfig(directory=str(tmp_path / 'spool'), segment_max_mb=0.02,
                              max_mb=10.0), TYPESTORE)
    fill(spool, 300)
    spool.close()
    before = {p: p.read_bytes() for p in spool.pending()}
    uploader = start_uploader(spool, s3_config(s3_server, profile='wrong'))
    try:
        wait(lambda: uploader.stats().failures >= 2, 10.0, 'failed attempts')
    finally:
        uploader.stop()
    stats = uploader.stats()
    assert stats.failing and stats.needs_operator and stats.uploaded_segments == 0
    assert 'rejected the credentials' in stats.last_error
    assert 'SignatureDoesNotMatch' in stats.last_error
    assert 'not-the-secret' not in stats.last_error
    assert {p: p.read_bytes() for p in spool.pending()} == before
    assert s3_server.objects(BUCKET) == {}
