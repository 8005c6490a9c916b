"""Text for people: vendor strings made safe for a terminal, and aligned columns.

Vendor text (references, customer names, comments, error messages) is printed in tables,
``orders show`` and error lines. A vendor's escape sequence must not recolour, retitle or
rewrite the operator's terminal, so every human-readable line goes through
:func:`printable`. JSON output needs no such care: its encoder escapes control characters.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

# C0 and C1 control characters (ESC, CR, BEL, newline ...) and DEL; bidirectional
# embeddings, overrides and isolates, which can make text read other than it is.
_ESCAPES = {code: f"\\x{code:02x}" for code in (*range(0x20), *range(0x7F, 0xA0))}
_ESCAPES.update({code: f"\\u{code:04x}" for code in (*range(0x202A, 0x202F),
                                                     *range(0x2066, 0x206A))})


def printable(value: object) -> str:
    """``value`` as text a terminal shows literally: control characters become ``\\x1b``."""
    return str(value).translate(_ESCAPES)


def columns(rows: Sequence[Sequence[object]], *, right: Iterable[int] = ()) -> list[str]:
    """Rows (the first is the header) as lines of aligned, printable columns, two spaces
    apart; columns numbered in ``right`` (numbers) are aligned right."""
    cells = [[printable("" if value is None else value) for value in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]
    right = set(right)
    return ["  ".join(cell.rjust(w) if i in right else cell.ljust(w)
                      for i, (cell, w) in enumerate(zip(row, widths, strict=False))).rstrip()
            for row in cells]
