"""Reading a feed as numbered physical lines, safely.

A feed is hostile input: it may be huge, have a line of a gigabyte, NUL bytes, a BOM, CRLF
or no final newline. Lines are read with a length cap (the rest of an overlong line is
skipped without being held in memory) and decoded as UTF-8 with replacement.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO

MAX_LINE_BYTES = 8192


class LineTooLong(str):
    """The first bytes of a line that exceeded MAX_LINE_BYTES (a str, so it can be shown)."""


def numbered_lines(stream: BinaryIO, max_bytes: int = MAX_LINE_BYTES) -> Iterator[tuple[int, str]]:
    """Yield (line_no, text) from 1, without line endings; overlong lines as LineTooLong."""
    line_no = 0
    first = True
    readline = stream.readline
    while True:
        raw = readline(max_bytes + 1)
        if not raw:
            return
        line_no += 1
        too_long = len(raw) > max_bytes and not raw.endswith(b"\n")
        if too_long:
            # Drain the rest of this physical line in bounded pieces.
            while True:
                more = readline(65536)
                if not more or more.endswith(b"\n"):
                    break
        if first:
            first = False
            if raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
        text = raw.decode("utf-8", "replace").rstrip("\r\n")
        # lstrip: an indented overlong line must not look blank (and be skipped silently).
        yield line_no, (LineTooLong(text.lstrip()[:200]) if too_long else text)


def head_lines(stream: BinaryIO, count: int = 200) -> list[str]:
    """The first `count` lines (for format detection); rewinds the stream afterwards."""
    position = stream.tell()
    sample = []
    for _no, text in numbered_lines(stream):
        sample.append(text)
        if len(sample) >= count:
            break
    stream.seek(position)
    return sample
