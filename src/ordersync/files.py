"""Reading a file ordersync is given, bounded: a device such as /dev/zero, or a file far
larger than its kind ever is, is refused instead of filling memory."""

from __future__ import annotations

from pathlib import Path

CONFIG_MAX_BYTES = 1 << 20
"""A configuration file: a few kilobytes in practice."""
SECRET_MAX_BYTES = 64 << 10
"""A secret file: one value."""
FIELDS_MAX_BYTES = 16 << 20
"""A file of an action's fields (``--from``)."""


class TooLarge(ValueError):
    """The file holds more than its kind may (``limit`` bytes)."""

    def __init__(self, path: Path, limit: int) -> None:
        super().__init__(f"{path}: more than {limit} bytes")
        self.limit = limit


def read_bounded(path: Path, limit: int) -> bytes:
    """The file's bytes; :class:`TooLarge` past ``limit``; OSError as open() raises it."""
    with open(path, "rb") as f:
        content = f.read(limit + 1)
    if len(content) > limit:
        raise TooLarge(path, limit)
    return content


def read_text_bounded(path: Path, limit: int) -> str:
    """:func:`read_bounded` as UTF-8 text (UnicodeDecodeError as bytes.decode raises it)."""
    return read_bounded(path, limit).decode("utf-8")
