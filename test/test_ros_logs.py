"""Python logging records reach the console through the node's ROS logger, libraries' chatter at DEBUG."""
import subprocess
import sys

PROBE = '''
import logging, sys
import rclpy.logging
from twin_ros.logs import route_python_logging
logger = rclpy.logging.get_logger('probe')
if sys.argv[1] == 'debug':
    rclpy.logging.set_logger_level('probe', rclpy.logging.LoggingSeverity.DEBUG)
route_python_logging(logger)
logging.getLogger('twin_sim.serial_port').info('serial device ready')
logging.getLogger('asyncua.client.client').warning('close_secure_channel was called')
logging.getLogger('botocore').error('bucket gone')
try:
    1 / 0
except ZeroDivisionError:
    logging.getLogger('twin_core.workers').exception('worker failed')
'''


def probe(level: str) -> list[str]:
    result = subprocess.run([sys.executable, '-c', PROBE, level], capture_output=True, text=True,
                            timeout=30, check=True)
    return (result.stdout + result.stderr).splitlines()


def test_records_go_through_the_ros_logger_and_library_warnings_only_at_debug():
    lines = probe('info')
    assert any('[INFO]' in line and '[probe]: twin_sim.serial_port: serial device ready' in line for line in lines)
    assert any('[ERROR]' in line and '[probe]: botocore: bucket gone' in line for line in lines)
    assert any('[ERROR]' in line and 'twin_core.workers: worker failed' in line for line in lines)
    assert any('ZeroDivisionError' in line for line in lines)  # the traceback comes along
    assert not any('close_secure_channel' in line for line in lines)


def test_library_chatter_is_there_at_debug_level():
    lines = probe('debug')
    assert any('[DEBUG]' in line and 'asyncua.client.client: close_secure_channel was called' in line
               for line in lines)
