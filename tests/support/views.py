"""Reading the "AI Exchange" view's two-column sections back: each column as its own text."""

from __future__ import annotations

from addon import columns


def sides(text: str, title: str) -> tuple[list[str], list[str], str]:
    """The section `title` ("Requests" or "Answers", the view's last sections) of a view's text: the left and the
    right column's lines (right-stripped) and the row of column titles."""
    section = text.split(f"─── {title} ───\n", 1)[1].split("\n\n─── ", 1)[0]
    titles, rule, *rows = section.split("\n")
    assert set(rule) == {"-", "+"}, rule
    cells = rule.index("+") - 1
    left, right = [], []
    for row in rows:
        assert row[cells : cells + 2] in (" │", ""), row  # the separator stays in its column (ASCII content)
        left.append(row[:cells].rstrip())
        right.append(row[cells + len(columns.GAP) :].rstrip())
    return left, right, titles
