"""A report page as a PNG through headless Chromium (Debian package ``chromium``).

For the docs' page screenshot and the page test:

    python -m twin_report.screenshot report.html docs/report_page.png [--width 1280]
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from twin_core.config import ConfigError
from twin_core.paths import resolve_executable

CHROMIUM = 'chromium'
TIMEOUT_S = 60.0
MAX_HEIGHT = 16000  # px: taller than any report page
MARGIN = 24  # px of background kept below the page's last content


def screenshot(page: Path, png: Path, width: int, height: int, timeout: float = TIMEOUT_S) -> None:
    """Chromium's screenshot of ``page`` in a ``width`` × ``height`` px window into ``png``;
    ``RuntimeError`` if it fails or takes longer than ``timeout`` s (then it is killed, with its
    helper processes, as it is after it finished).
    """
    try:
        chromium = resolve_executable(CHROMIUM)
    except ConfigError:
        raise RuntimeError(f'{CHROMIUM} is not installed (apt-get install chromium)') from None
    with tempfile.TemporaryDirectory(prefix='twin_chromium_') as profile:
        command = [chromium, '--headless', '--no-sandbox', '--disable-gpu', '--hide-scrollbars',
                   f'--user-data-dir={profile}', f'--window-size={width},{height}',
                   f'--screenshot={png.resolve()}', page.resolve().as_uri()]
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE, text=True, start_new_session=True)
        try:
            _, errors = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise RuntimeError(f'{CHROMIUM} took longer than {timeout:g} s on {page}') from None
        finally:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            process.wait()
    if process.returncode != 0 or not png.is_file():
        last = errors.strip().splitlines()[-1:] or ['no output']
        raise RuntimeError(f'{CHROMIUM} exited with code {process.returncode}: {last[0]}')


def full_page(page: Path, png: Path, width: int) -> tuple[int, int]:
    """The whole page as one PNG of ``width`` px (the background below it trimmed, 256 colors to
    keep the file small); returns its size.
    """
    screenshot(page, png, width, MAX_HEIGHT)
    with Image.open(png) as shot:
        pixels = np.asarray(shot.convert('RGB'))
    content = np.flatnonzero((pixels != pixels[-1, -1]).any(axis=(1, 2)))
    if not content.size:
        raise RuntimeError(f'{page} rendered blank')
    height = min(int(content[-1]) + MARGIN, pixels.shape[0])
    Image.fromarray(pixels[:height]).quantize(256).save(png, optimize=True)
    return width, height


def main(argv: list[str] | None = None) -> int:
    """Console entry point (``python -m twin_report.screenshot``)."""
    parser = argparse.ArgumentParser(prog='python -m twin_report.screenshot', description=__doc__.split('\n')[0])
    parser.add_argument('page', type=Path, help='HTML file (twin_report --out)')
    parser.add_argument('png', type=Path, help='PNG file to write')
    parser.add_argument('--width', type=int, default=1280, help='window width (px)')
    arguments = parser.parse_args(argv)
    if not arguments.page.is_file():
        parser.error(f'{arguments.page}: no such file')
    try:
        width, height = full_page(arguments.page, arguments.png, arguments.width)
    except (OSError, RuntimeError) as error:
        print(f'twin_report.screenshot: {error}', file=sys.stderr)
        return 1
    print(f'wrote {arguments.png} ({width} × {height} px, {arguments.png.stat().st_size // 1024} kB)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
