"""S3 upload throughput of the cloud uploader against raw boto3 ``upload_file``, same run, same
``weed mini`` on loopback; then loss and duplicates across an S3 outage and an uploader restart.

Throughput: MCAP segments of CompressedImage messages (random 64 KB payloads, no compression)
are written by the spool; the uploader drains the spool (SHA-256 pass, PUT with
ChecksumSHA256, confirmation, local delete) while the baseline uploads copies of the same
files with ``upload_file``; the two alternate for ``--rounds`` rounds, medians are shown.
Outage: Temperature messages are spooled while S3 is up, while it
is down, across a restart of spool + uploader, and after S3 is back; every object is read back.
Run: ``python bench/bench_s3.py [--mb 32] [--segment-mb 1 4] [--rounds 3]``.
"""
from __future__ import annotations

import argparse
import collections
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from rosbags.highlevel import AnyReader

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / 'test'))
from harness import S3Server  # noqa: E402
from twin_bag.writer import load_typestore  # noqa: E402
from twin_bridge.cloud_config import S3Config, SpoolConfig  # noqa: E402
from twin_bridge.spool import MB, Spool  # noqa: E402
from twin_bridge.uploader import Uploader  # noqa: E402

BUCKET = 'bench'
IMAGE = 'sensor_msgs/msg/CompressedImage'
TEMPERATURE = 'sensor_msgs/msg/Temperature'
TYPESTORE = load_typestore([IMAGE, TEMPERATURE],
                           os.environ.get('AMENT_PREFIX_PATH', '').split(os.pathsep))


def message(type_name: str, index: int, **fields) -> bytes:
    types = TYPESTORE.types
    header = types['std_msgs/msg/Header'](types['builtin_interfaces/msg/Time'](index, 0), 'b')
    return bytes(TYPESTORE.serialize_cdr(types[type_name](header, **fields), type_name))


def drain(spool: Spool, server: S3Server, timeout: float = 120.0) -> Uploader:
    uploader = Uploader(spool, S3Config(bucket=BUCKET, endpoint_url=server.endpoint,
                                        backoff_min=0.05, backoff_max=0.5), 'bench')
    uploader.start()
    deadline = time.monotonic() + timeout
    while spool.pending() and time.monotonic() < deadline:
        time.sleep(0.002)
    uploader.stop()
    return uploader


def throughput(server: S3Server, root: Path, total_mb: int, segment_mb: float) -> tuple:
    """One round: (segments, MB, uploader MB/s, upload_file MB/s)."""
    shutil.rmtree(root / 'spool', ignore_errors=True)
    shutil.rmtree(root / 'copies', ignore_errors=True)
    spool = Spool(SpoolConfig(directory=str(root / 'spool'),
                              segment_max_mb=segment_mb, max_mb=4.0 * total_mb,
                              compression='none'), TYPESTORE)
    rng = np.random.default_rng(1)
    for index in range(total_mb * MB // 65536):
        spool.write('/camera/compressed', IMAGE, message(
            IMAGE, index, format='jpeg', data=rng.integers(0, 256, 65536, dtype=np.uint8)),
            time.time_ns())
    spool.close()
    copies = root / 'copies'
    shutil.copytree(spool.directory, copies)
    files = sorted(copies.iterdir())
    size = sum(path.stat().st_size for path in files) / MB
    client = server.client()
    start = time.perf_counter()
    for path in files:
        client.upload_file(str(path), BUCKET, f'baseline/{path.name}')
    baseline = size / (time.perf_counter() - start)
    start = time.perf_counter()
    uploader = drain(spool, server)
    ours = size / (time.perf_counter() - start)
    assert uploader.stats().uploaded_segments == len(files) and not spool.pending()
    return len(files), size, ours, baseline


def outage(server: S3Server, root: Path, per_phase: int) -> dict[str, int]:
    config = SpoolConfig(directory=str(root / 'outage'), segment_max_mb=0.02, max_mb=100.0)
    config_s3 = S3Config(bucket=BUCKET, prefix='outage', endpoint_url=server.endpoint,
                         backoff_min=0.05, backoff_max=0.5)
    sent = 0

    def record(spool: Spool) -> None:
        nonlocal sent
        for _ in range(per_phase):
            spool.write('/t', TEMPERATURE, message(TEMPERATURE, sent, temperature=float(sent),
                                                   variance=0.0), time.time_ns())
            sent += 1

    spool = Spool(config, TYPESTORE)
    uploader = Uploader(spool, config_s3, 'bench')
    uploader.start()
    record(spool)
    server.stop()
    record(spool)
    spool.close()
    time.sleep(1.0)
    uploader.stop()  # restart: a new spool and uploader on the same directory
    failures = uploader.stats().failures
    spool = Spool(config, TYPESTORE)
    uploader = Uploader(spool, config_s3, 'bench')
    uploader.start()
    record(spool)
    server.start()
    record(spool)
    spool.close()
    deadline = time.monotonic() + 60.0
    while spool.pending() and time.monotonic() < deadline:
        time.sleep(0.05)
    uploader.stop()
    counts: collections.Counter = collections.Counter()
    objects = {key: data for key, data in server.objects(BUCKET).items()
               if key.startswith('outage/')}
    for key, data in objects.items():
        path = root / Path(key).name
        path.write_bytes(data)
        with AnyReader([path]) as reader:
            counts.update(int(reader.deserialize(raw, TEMPERATURE).temperature)
                          for _, _, raw in reader.messages())
    return {'sent': sent, 'stored': sum(counts.values()),
            'lost': sum(1 for index in range(sent) if index not in counts),
            'duplicated': sum(count - 1 for count in counts.values()),
            'objects': len(objects), 'pending': len(spool.pending()),
            'failed attempts': failures + uploader.stats().failures}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--mb', type=int, default=32, help='MB uploaded per segment size')
    parser.add_argument('--segment-mb', type=float, nargs='+', default=[1.0, 4.0])
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--messages', type=int, default=1000, help='per outage phase')
    args = parser.parse_args()
    os.environ.update(AWS_ACCESS_KEY_ID=S3Server.ACCESS_KEY,
                      AWS_SECRET_ACCESS_KEY=S3Server.SECRET_KEY, AWS_EC2_METADATA_DISABLED='true')
    root = Path(tempfile.mkdtemp(prefix='bench_s3_'))
    server = S3Server(root / 's3')
    server.start()
    try:
        server.client().create_bucket(Bucket=BUCKET)
        print(f'{"segment MB":>10} {"segments":>8} {"MB":>6} {"uploader MB/s":>13} '
              f'{"upload_file MB/s":>16} {"ratio":>6}')
        for segment_mb in args.segment_mb:
            rounds = [throughput(server, root, args.mb, segment_mb) for _ in range(args.rounds)]
            count, size = rounds[0][:2]
            ours, baseline = (statistics.median(r[i] for r in rounds) for i in (2, 3))
            print(f'{segment_mb:>10.1f} {count:>8} {size:>6.1f} {ours:>13.1f} '
                  f'{baseline:>16.1f} {ours / baseline:>6.2f}')
        result = outage(server, root, args.messages)
        print('S3 outage + uploader restart: ' + ', '.join(f'{k} {v}' for k, v in result.items()))
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == '__main__':
    main()
