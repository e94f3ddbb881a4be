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
    least a third full, else anywhere; the pieces after the first keep the line's indent and start with ↪."""
    if width(line) <= cells:
        return [line]
    indent = line[: min(len(line) - len(line.lstrip(" ")), cells // 2)]
    lead = indent + CONTINUED
    pieces: list[str] = []
    rest, room = line, cells
    while width(rest) > room:
        cut, used = 0, 0
        for ch in rest:
            used += char_width(ch)
            if used > room:
                break
            cut += 1
        space = rest.rfind(" ", 0, cut + 1)
        if space > max(cut // 3, len(indent)):
            cut = space
        cut = max(cut, 1)  # a character wider than the room still moves on
        pieces.append(rest[:cut].rstrip(" "))
        rest = rest[cut:].lstrip(" ")
        room = cells - width(lead)
    if rest:
        pieces.append(rest)
    return [pieces[0], *(lead + piece for piece in pieces[1:])]


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
