"""Python ``logging`` records (the twin's modules and the libraries it uses) through the node's ROS
logger, so they reach the console and the log files formatted and filtered like the node's own.

A third-party library's records below ERROR are its protocol chatter (asyncua's revised
subscription values, a secure channel closed twice): the node reports what matters of them itself
(connection lost, device not reached), so they are passed on at DEBUG.
"""
from __future__ import annotations

import logging

from rclpy.impl.rcutils_logger import RcutilsLogger

OWN_PACKAGES_PREFIX = 'twin_'


class RosLogHandler(logging.Handler):
    """Forwards each record to ``logger`` prefixed by the record's logger name."""

    def __init__(self, logger: RcutilsLogger) -> None:
        super().__init__()
        self.logger = logger

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = f'{record.name}: {record.getMessage()}'
            if record.exc_info:
                text += '\n' + logging.Formatter().formatException(record.exc_info)
        except Exception:  # a record whose message cannot be formatted
            self.handleError(record)
            return
        level = severity(record)
        # rclpy keeps one severity per call site: one call per level.
        if level >= logging.ERROR:
            self.logger.error(text)
        elif level >= logging.WARNING:
            self.logger.warning(text)
        elif level >= logging.INFO:
            self.logger.info(text)
        else:
            self.logger.debug(text)


def severity(record: logging.LogRecord) -> int:
    """The record's level, or DEBUG for a third-party library's record below ERROR."""
    if record.name.startswith(OWN_PACKAGES_PREFIX) or record.levelno >= logging.ERROR:
        return record.levelno
    return logging.DEBUG


def route_python_logging(logger: RcutilsLogger) -> RosLogHandler:
    """Install the handler on the root logger (INFO and above) in place of Python's bare stderr
    output; returns it for :func:`unroute_python_logging`.
    """
    handler = RosLogHandler(logger)
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    return handler


def unroute_python_logging(handler: RosLogHandler) -> None:
    logging.getLogger().removeHandler(handler)
