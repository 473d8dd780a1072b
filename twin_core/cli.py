"""What the project's command-line tools share."""
from __future__ import annotations

import argparse
from collections.abc import Callable


def run_command(parser: argparse.ArgumentParser, arguments: argparse.Namespace,
                handler: Callable[[argparse.Namespace], int]) -> int:
    """``handler(arguments)``; a file or column it cannot use (KeyError, ValueError, OSError) ends
    the command with one line, ``<prog> <command>: error: ...``, and exit code 2, as argparse does.
    """
    try:
        return handler(arguments)
    except (KeyError, ValueError, OSError) as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        parser.exit(2, f'{parser.prog} {arguments.command}: error: {message}\n')
