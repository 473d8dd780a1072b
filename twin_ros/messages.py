"""ROS message classes by type name."""
from __future__ import annotations

import importlib


def message_class(type_name: str) -> type:
    """The Python class of ``pkg/msg/Name``; ``LookupError`` if it is not installed."""
    package, _, name = type_name.split('/')
    try:
        return getattr(importlib.import_module(f'{package}.msg'), name)
    except (ImportError, AttributeError):
        raise LookupError(f'message type {type_name} is not installed') from None
