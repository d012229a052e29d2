"""The records of a JSON export streamed from the upload: the items of a top-level list (how Label
Studio and Argilla export), or one object a line (JSON Lines). One record is decoded at a time, so a
50 MB export is never held whole as Python objects; each problem names the record it is in."""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterator, Sequence
from typing import BinaryIO

from app.errors import RequestError
from app.tasks import uploads
from app.tasks.imports.records import Table, capped

CHUNK_CHARS = 1 << 20
_NOT_SPACE = re.compile(r"[^ \t\n\r]")  # JSON's whitespace, and no other
# Bytes that are not UTF-8, as the decoder's surrogateescape handler hands them on: finding them after
# an item is decoded says which record they are in (a strict decoder fails a chunk ahead of the parser).
_NOT_UTF8 = re.compile("[\udc80-\udcff]")
_NUMBER_TAIL = re.compile(r"[0-9.eE+-]*\Z")  # what may follow the start of a number to the chunk's end
_DECODER = json.JSONDecoder()


def json_items(upload: BinaryIO, noun: str) -> Iterator[object]:
    """Each item of the file's top-level JSON list, or each object of its lines; a RequestError
    naming the item (`noun` and its number) where the file is not UTF-8 or not JSON."""
    reader = _ListReader(upload, noun)
    first = reader.peek()
    if first == "{":
        upload.seek(0)
        yield from uploads._jsonl_rows(uploads._utf8_lines(upload))
    elif first == "[":
        yield from reader.items()
    elif first == "":
        raise RequestError("file", "is empty")
    else:
        raise RequestError("file", f"is neither a JSON list of {noun}s nor JSON Lines")


def json_table(upload: BinaryIO, noun: str, max_rows: int) -> Table:
    """The file's records as a Table: a first pass finds their keys (and which hold strings) and
    applies the row cap; each `records` call reads the file again."""
    columns: dict[str, None] = {}
    text_columns: dict[str, None] = {}
    for number, record in enumerate(capped(json_items(upload, noun), max_rows), start=1):
        if not isinstance(record, dict):
            raise RequestError("file", f"{noun} {number} is not a JSON object")
        for key, value in record.items():
            columns.setdefault(key)
            if isinstance(value, str):
                text_columns.setdefault(key)

    def records(_columns: Sequence[str]) -> Iterator[dict]:
        upload.seek(0)
        yield from json_items(upload, noun)  # all objects: the first pass checked

    return Table(list(columns), list(text_columns), records)


class _ListReader:
    """A JSON list read a chunk at a time, each item decoded once all of it has arrived."""

    def __init__(self, upload: BinaryIO, noun: str):
        self._upload = upload
        self._noun = noun
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="surrogateescape")
        self._text = ""
        self._pos = 0
        self._at_end = False
        self._items = 0
        self._more()
        if self._text.startswith("\ufeff"):  # a byte-order mark, as some editors save
            self._pos = 1

    def _where(self) -> str:
        return f"{self._noun} {self._items + 1}"

    def _more(self) -> bool:
        """Read on, False at the end. An item longer than a chunk asks for twice as much each time,
        so decoding it again from its start costs a bounded multiple of its length."""
        if self._at_end:
            return False
        raw = self._upload.read(max(CHUNK_CHARS, len(self._text) - self._pos))
        self._at_end = not raw
        self._text = self._text[self._pos:] + self._utf8.decode(raw, final=self._at_end)
        self._pos = 0
        return True

    def peek(self) -> str:
        """The next character that is not whitespace ('' at the end), reading on as needed."""
        while not (found := _NOT_SPACE.search(self._text, self._pos)):
            self._pos = len(self._text)
            if not self._more():
                return ""
        self._pos = found.start()
        if _NOT_UTF8.match(self._text, self._pos):
            raise RequestError("file", f"{self._where()} is not UTF-8 text")
        return self._text[self._pos]

    def items(self) -> Iterator[object]:
        self._pos += 1  # past the "["
        if self.peek() == "]":
            self._pos += 1
        else:
            while True:
                yield self._item()
                self._items += 1
                following = self.peek()
                self._pos += 1
                if following == "]":
                    break
                if following != ",":
                    what = "ends" if following == "" else f"has {following!r}"
                    raise RequestError("file", f"{what} after {self._noun} {self._items} where the JSON list "
                                               "needs ',' or ']'")
        if self.peek() != "":
            raise RequestError("file", "goes on after the end of its JSON list")

    def _item(self) -> object:
        self.peek()  # past the whitespace before it, which the decoder does not skip
        while True:
            try:
                item, end = _DECODER.raw_decode(self._text, self._pos)
            except json.JSONDecodeError as exc:
                # Cut off where the chunk ends (inside a string, or a few characters into a value): read on.
                cut_off = exc.msg.startswith("Unterminated string") or exc.pos > len(self._text) - 16
                if cut_off and self._more():
                    continue
                if _NOT_UTF8.search(self._text, self._pos, exc.pos + 1):
                    raise RequestError("file", f"{self._where()} is not UTF-8 text") from None
                raise RequestError("file", f"{self._where()} is not valid JSON: {exc.msg}") from None
            except RecursionError:
                raise RequestError("file", f"{self._where()} is nested too deeply to be a record") from None
            except ValueError:  # an integer of thousands of digits, which Python refuses to convert
                raise RequestError("file", f"{self._where()} has a number with too many digits") from None
            if _NUMBER_TAIL.match(self._text, end) and self._more():  # "1.5" may be "1.5e3" whole
                continue
            if _NOT_UTF8.search(self._text, self._pos, end):
                raise RequestError("file", f"{self._where()} is not UTF-8 text")
            self._pos = end
            return item
