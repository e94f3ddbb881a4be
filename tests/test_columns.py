"""Two columns of fixed width (addon/columns.py): every row the same grid, whatever the text holds."""

from __future__ import annotations

import pytest

from addon import columns
from addon.columns import GAP, side_by_side, width, wrap


def separator_cell(row: str) -> int:
    """The cell where the gap's bar stands in a row."""
    return width(row[: row.index("│")])


def test_short_lines_are_kept_and_padded() -> None:
    rows = side_by_side([["POST /a", "x: 1"]], [["POST /b"]], 60)
    cells = columns.column_width(60)
    assert cells == 28 and rows == ["POST /a".ljust(cells) + GAP + "POST /b", "x: 1".ljust(cells) + " │"]


def test_blocks_start_on_the_same_row() -> None:
    left = [["GET /"], ["a: 1", "b: 2", "c: 3"], ["", "{}"]]
    right = [["POST /"], ["d: 4"], ["", "[]"]]
    rows = side_by_side(left, right, 60)
    assert [r.split("│")[1].strip() for r in rows] == ["POST /", "d: 4", "", "", "", "[]"]
    assert rows[5].startswith("{}")


def test_a_long_line_wraps_at_a_space_under_its_indent() -> None:
    line = '    "content": "What is in this picture, and what is the weather in Paris today?"'
    pieces = wrap(line, 40)
    assert pieces == [
        '    "content": "What is in this picture,',
        "    ↪ and what is the weather in Paris",
        '    ↪ today?"',
    ]
    assert all(width(p) <= 40 for p in pieces)
    assert " ".join(p.removeprefix("    ↪ ").strip() for p in pieces) == line.strip()


def test_a_line_without_spaces_is_cut_anywhere() -> None:
    data = "x" * 100
    pieces = wrap(data, 30)
    assert [width(p) for p in pieces] == [30, 30, 30, 16]  # the ↪ lead takes two cells
    assert "".join(p.removeprefix("↪ ") for p in pieces) == data


@pytest.mark.parametrize(
    "text",
    [
        "天気はどうですか、とても長い行です。" * 4,  # wide characters: two cells each
        "e\u0301" * 80,  # combining accents: none
        "tab\there\x00nul\x1bescape\rreturn\x7fdel" * 3,  # control characters: one cell once cleaned
        "a" * 10 + "🙂" * 40,
    ],
)
def test_every_row_is_on_the_grid(text: str) -> None:
    rows = side_by_side([[text, "short"]], [["right", text]], 70)
    cells = columns.column_width(70)
    assert len(rows) > 3
    for row in rows:
        assert width(row) <= 70, row
        assert separator_cell(row) == cells + 1, row  # after the left column and the gap's space
    joined = "".join(rows)
    assert not any(ord(c) < 32 or 0x7F <= ord(c) < 0xA0 for c in joined)  # mitmproxy would make them "."


def test_heading_titles_and_rule() -> None:
    titles, rule = columns.heading("client sent (openai)", "sent upstream (anthropic)", 60)
    assert titles == "client sent (openai)".ljust(28) + " │ sent upstream (anthropic)"
    assert rule == "-" * 28 + "-+-" + "-" * 28


def test_a_narrow_width_keeps_a_readable_column() -> None:
    assert columns.column_width(10) == columns.MIN_COLUMN


@pytest.mark.parametrize("text", ["x" * 200_000, "天気 é " * 40_000])
def test_a_very_long_line_wraps_whole(text: str) -> None:
    pieces = wrap(text, 58)
    assert all(width(p) <= 58 for p in pieces)
    assert "".join(p.removeprefix("↪ ") for p in pieces).replace(" ", "") == text.replace(" ", "")
