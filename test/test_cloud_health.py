"""Health of the cloud uploader: the spool's size alert is held for a while, upload errors logged once."""
from dataclasses import replace

from twin_bridge.cloud_config import SpoolConfig
from twin_bridge.cloud_health import ALERT_HOLD_S, CloudHealth
from twin_bridge.spool import MB, SpoolStats
from twin_bridge.uploader import UploadStats
from twin_core.levels import Level

SPOOL = SpoolStats(pending_segments=2, pending_bytes=3 * MB, open_bytes=MB, messages=10, dropped_messages=0,
                   dropped_segments=0, policy_hits=0, abandoned_segments=0, disk_full=False, last_error='')
UPLOADS = UploadStats(uploaded_segments=4, uploaded_bytes=2 * MB, failures=0, failing=False, needs_operator=False,
                      retry_in=0.0, last_error='')


def test_the_spool_warns_for_a_while_after_its_size_policy_acted():
    health = CloudHealth(SpoolConfig())
    ok = health.spool(SPOOL, 100.0)
    assert (ok.name, ok.level, ok.message, ok.values['spool_mb']) == ('spool', Level.OK, 'recording', 4.0)
    hit = replace(SPOOL, policy_hits=1)
    warned = health.spool(hit, 101.0)
    assert warned.level == Level.WARN and warned.message.startswith(f'spool reached {SpoolConfig().max_mb} MB')
    assert health.spool(hit, 101.0 + ALERT_HOLD_S - 1.0).level == Level.WARN
    assert health.spool(hit, 101.0 + ALERT_HOLD_S).level == Level.OK
    full = health.spool(replace(hit, disk_full=True, last_error='No space left on device'), 500.0)
    assert (full.level, full.message) == (Level.ERROR, 'No space left on device')


def test_upload_errors_are_logged_once_and_need_an_operator_only_for_credentials():
    health = CloudHealth(SpoolConfig())
    status, new = health.upload(UPLOADS)
    assert (status.level, status.message, new) == (Level.OK, 'uploading', False)
    failing = replace(UPLOADS, failing=True, failures=1, last_error='connection refused')
    status, new = health.upload(failing)
    assert (status.level, status.message, new) == (Level.WARN, 'connection refused', True)
    assert health.upload(failing)[1] is False
    denied = replace(failing, needs_operator=True, last_error='S3 rejected the credentials (AccessDenied)')
    status, new = health.upload(denied)
    assert (status.level, new) == (Level.ERROR, True)
