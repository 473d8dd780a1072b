"""HTML building blocks of the report page: escaped tables, embedded PNGs, notes."""
from __future__ import annotations

import base64
from collections.abc import Iterable, Sequence
from html import escape

STYLE = """
body { font-family: sans-serif; margin: 1.5em auto; max-width: 70em; color: #222; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ccc; margin-top: 1.8em; }
table { border-collapse: collapse; margin: 0.6em 0; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: left; vertical-align: top; }
th { background: #f0f0f0; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
img { max-width: 100%; } p.nodata { color: #a60; font-style: italic; }
p.note { color: #555; font-size: 0.9em; }
"""


def cell(value: object) -> str:
    """A table cell: numbers right-aligned, everything escaped."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f'<td class="num">{escape(str(value))}</td>'
    return f'<td>{escape(str(value))}</td>'


def table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    head = ''.join(f'<th>{escape(h)}</th>' for h in header)
    body = ''.join(f'<tr>{"".join(cell(v) for v in row)}</tr>' for row in rows)
    return f'<table><tr>{head}</tr>{body}</table>'


def pairs(rows: Iterable[tuple[str, object]]) -> str:
    """A two-column key/value table."""
    return '<table>' + ''.join(f'<tr><th>{escape(k)}</th>{cell(v)}</tr>' for k, v in rows) + '</table>'


def image(png: bytes, alt: str) -> str:
    """``png`` embedded as a base64 data URI."""
    data = base64.b64encode(png).decode('ascii')
    return f'<img alt="{escape(alt)}" src="data:image/png;base64,{data}">'


def nodata(text: str) -> str:
    return f'<p class="nodata">No data: {escape(text)}</p>'


def not_recorded(topic: str, consequence: str = '') -> str:
    """The note of a topic the run did not record (``consequence``: what is missing for it)."""
    return f'<p class="nodata">Not recorded: {escape(topic)}{escape(consequence and f" ({consequence})")}.</p>'


def milliseconds(seconds: float) -> str:
    """``seconds`` in ms with one decimal; never ``-0.0``."""
    return f'{round(seconds * 1e3, 1) + 0.0:.1f} ms'


def note(text: str) -> str:
    return f'<p class="note">{escape(text)}</p>'


def section(anchor: str, title: str, parts: Iterable[str]) -> str:
    return f'<section id="{escape(anchor)}"><h2>{escape(title)}</h2>{"".join(parts)}</section>'


def document(title: str, parts: Iterable[str]) -> str:
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}'
            f'</title><style>{STYLE}</style></head><body><h1>{escape(title)}</h1>'
            f'{"".join(parts)}</body></html>\n')
