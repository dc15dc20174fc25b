"""Reading and chunking an import file (service/import_lines.py): a line too long is
refused unread, with its number; chunks keep whole lines and the file's numbering."""

from __future__ import annotations

import io
import json

import pytest

from service import import_lines
from service.import_lines import Oversized, chunks, read_lines


def test_a_line_longer_than_the_limit_is_skipped_unread_and_stands_as_oversized() -> None:
    data = b"short\n" + b"x" * 25 + b"\n" + b"y" * 10 + b"\n" + b"z" * 11 + b"last"
    assert list(read_lines(io.BytesIO(data), limit=10)) == [
        b"short\n", Oversized(26), b"y" * 10 + b"\n", Oversized(15)]


def test_a_line_of_exactly_the_limit_and_its_line_break_is_read() -> None:
    data = b"a" * 10 + b"\n" + b"b" * 10
    assert list(read_lines(io.BytesIO(data), limit=10)) == [b"a" * 10 + b"\n", b"b" * 10]


def thread(title: str, posts: int = 1) -> bytes:
    return json.dumps({"forum": "f", "title": title, "posts": [
        {"author": "ann", "created_at": "2020-01-01T00:00:00Z", "body": "x"}] * posts}
    ).encode() + b"\n"


def test_chunks_hold_whole_lines_numbered_as_in_the_file(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(import_lines, "BATCH_POSTS", 4)
    lines: list[bytes | Oversized] = [
        thread("a", 3), b"\n", Oversized(300 << 20), thread("b", 2), b"{not json\n",
        thread("c", 1), thread("d", 5)]
    found = list(chunks(lines))
    assert [[line.number for line in c.lines] for c in found] == [[1, 4], [6, 7]]
    assert [c.first for c in found] == [1, 5]
    assert found[0].errors[0][0] == 3 and "longer than" in found[0].errors[0][1]
    assert [n for n, _ in found[1].errors] == [5]
    assert found[-1].end == sum(x.size if isinstance(x, Oversized) else len(x)
                                for x in lines)
    # The same content, wherever it is, has the same key (what makes a re-run skip it).
    assert found[0].lines[0].key == next(chunks([b"\n", thread("a", 3)])).lines[0].key
