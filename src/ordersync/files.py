"""Reading a file ordersync is given, bounded, with one wording for what goes wrong: a
device such as /dev/zero, or a file far larger than its kind ever is, is refused instead of
filling memory, and every problem is one :class:`~ordersync.errors.FileUnreadable` line
that names the file (the caller puts the setting or option in front)."""

from __future__ import annotations

from pathlib import Path

from .errors import FileUnreadable


def read_bytes(path: Path, limit: int, kind: str) -> bytes:
    """The file's bytes, at most ``limit`` of them; ``kind`` names what the file should be
    ("a configuration file") in the error."""
    try:
        with open(path, "rb") as f:
            content = f.read(limit + 1)
    except OSError as exc:
        raise FileUnreadable(f"{path}: cannot read it ({exc.strerror or exc})") from None
    if len(content) > limit:
        raise FileUnreadable(f"{path}: more than {limit} bytes, too large for {kind}")
    return content


def read_text(path: Path, limit: int, kind: str) -> str:
    """:func:`read_bytes` as UTF-8 text."""
    content = read_bytes(path, limit, kind)
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FileUnreadable(f"{path}: not UTF-8 text (byte {content[exc.start]:#04x} at"
                             f" offset {exc.start})") from None
