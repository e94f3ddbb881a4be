"""Text set in two columns of fixed width, side by side, for a contentview: mitmweb shows a view's text in a <pre>
(monospaced, no wrapping: a wide line scrolls) and mitmproxy's console in an urwid text widget (monospaced,
wrapped at the terminal's width), so the columns line up in both when every row has the same width in cells and
is no wider than the terminal. Each column is wrapped at its own width (a wrapped line continues under its own
indent, marked `↪`), wide East Asian characters count two cells and combining marks none, tabs become spaces and
other control characters a "." (as mitmproxy itself escapes them, after the view: done here first so that the
widths hold). Pure."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence

GAP = " │ "
CONTINUED = "↪ "
MIN_COLUMN = 24
# Control characters (C0 but newline, DEL, C1) become "." as mitmproxy's escape_control_characters does (C0, DEL).
_CONTROL = str.maketrans({c: "." for c in (*range(0x20), *range(0x7F, 0xA0)) if c != 0x0A})


def clean(text: str) -> str:
    """Text whose every character takes the cells char_width says: tabs expanded, control characters as '.'."""
    return text.expandtabs(4).translate(_CONTROL)


def char_width(ch: str) -> int:
    if unicodedata.combining(ch) or unicodedata.category(ch) in ("Mn", "Me", "Cf"):
        return 0
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def width(text: str) -> int:
    """Cells the text takes on a monospaced grid."""
    return text.__len__() if text.isascii() else sum(char_width(c) for c in text)


def wrap(line: str, cells: int) -> list[str]:
    """One line (already clean) cut into pieces of at most `cells` cells, at the last space that leaves a piece at
    least a third full, else anywhere; the pieces after the first keep the line's indent and start with ↪.
    Linear in the line's length (a prompt can be one line of megabytes)."""
    ascii_only = line.isascii()
    if (len(line) if ascii_only else width(line)) <= cells:
        return [line]
    indent = line[: min(len(line) - len(line.lstrip(" ")), cells // 2)]
    lead = indent + CONTINUED
    later = cells - width(lead)  # the room of the pieces after the first
    pieces: list[str] = []
    start, room, size = 0, cells, len(line)
    while True:
        end = _fit(line, start, room, ascii_only)
        if end >= size:
            pieces.append(line[start:])
            break
        space = line.rfind(" ", start, end + 1)
        if space - start > max((end - start) // 3, len(indent)):
            end = space
        pieces.append(line[start:end].rstrip(" "))
        start = end
        while start < size and line[start] == " ":
            start += 1
        if start >= size:
            break
        room = later
    return [pieces[0], *(lead + piece for piece in pieces[1:])]


def _fit(line: str, start: int, room: int, ascii_only: bool) -> int:
    """Where a piece of `line` from `start` that fits in `room` cells ends (at least one character further)."""
    if ascii_only:
        return min(len(line), start + room)
    used, end, size = 0, start, len(line)
    while end < size:
        used += char_width(line[end])
        if used > room:
            break
        end += 1
    return max(end, start + 1)  # a character wider than the room still moves on


def pad(text: str, cells: int) -> str:
    return text + " " * max(0, cells - width(text))


def fit(lines: Sequence[str], cells: int) -> list[str]:
    """Lines no wider than `cells`: cleaned, each wrapped."""
    return [piece for line in lines for text in clean(line).split("\n") for piece in wrap(text.rstrip(), cells)]


def column(lines: Sequence[str], cells: int) -> list[str]:
    """Lines set in a column `cells` wide: cleaned, each wrapped, each padded to the width."""
    return [pad(piece, cells) for piece in fit(lines, cells)]


def column_width(total: int) -> int:
    """The width of each of two columns that fit, with the gap between them, in `total` cells."""
    return max(MIN_COLUMN, (total - width(GAP)) // 2)


def side_by_side(left: Sequence[Sequence[str]], right: Sequence[Sequence[str]], total: int) -> list[str]:
    """Two columns in `total` cells. Each side is a list of blocks (e.g. first line, headers, body); block i of the
    left starts on the same row as block i of the right, the shorter one padded with blank rows."""
    cells = column_width(total)
    rows: list[str] = []
    blank = " " * cells
    for i in range(max(len(left), len(right))):
        a = column(left[i], cells) if i < len(left) else []
        b = column(right[i], cells) if i < len(right) else []
        for j in range(max(len(a), len(b))):
            rows.append((a[j] if j < len(a) else blank) + GAP + (b[j] if j < len(b) else "").rstrip())
    return [row.rstrip() for row in rows]


def heading(left: str, right: str, total: int) -> list[str]:
    """Column titles over a rule: `left │ right`, then `-----+-----` (ASCII: a browser may draw box-drawing
    characters from a fallback font a little wider than a cell, and a whole row of them would drift)."""
    cells = column_width(total)
    titles = side_by_side([[left]], [[right]], total)
    return [*titles, "-" * cells + "-+-" + "-" * cells]
