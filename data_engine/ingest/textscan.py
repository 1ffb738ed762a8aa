"""One pass over a landed text file's bytes before any reader sees it: encoding marks, NUL bytes
and line endings, decided the same way wherever in the file they are.

- UTF-16/32 (a byte-order mark) is refused: DuckDB would read it as garbage columns.
- A NUL byte anywhere refuses the whole file, naming its line and byte offset: text files do not
  hold NUL, so one means a binary file or a damaged copy (a file truncated and padded, a crash
  mid-write), and none of its rows can be trusted. The rule does not depend on the offset.
- Line endings: LF, CRLF and CR alone are each read as they are; a file that mixes them (pasted
  together from two systems) is read through a copy with every line ending written as LF (also
  inside quoted fields, where a CRLF becomes LF), and the batch says so.

A streaming scan in chunks (``bytes.find``/``count`` run in C): no Python loop per line, and memory
bounded by the chunk whatever the file's size.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from data_engine.errors import EngineError

CHUNK_BYTES = 1 << 22


@dataclass(frozen=True)
class TextScan:
    """Which kinds of line ending the file holds (CRLF, CR alone, LF alone), and whether it holds a
    double quote anywhere (``quotes``: the CSV reader then checks its quoting; see readers.py)."""

    crlf: bool
    cr: bool
    lf: bool
    quotes: bool = True

    @property
    def kinds(self) -> list[str]:
        """The kinds of line ending present, e.g. ``['CRLF', 'LF']``."""
        return [name for name, seen in (("CRLF", self.crlf), ("CR", self.cr), ("LF", self.lf)) if seen]

    @property
    def mixed(self) -> bool:
        """True when more than one kind of line ending is present."""
        return len(self.kinds) > 1


def open_bytes(path: Path) -> BinaryIO:
    """``path``'s bytes, gunzipped when its name ends in ``.gz``."""
    return gzip.open(path, "rb") if path.name.lower().endswith(".gz") else path.open("rb")


def scan_text(path: Path, unreadable: type[EngineError] = EngineError) -> TextScan:
    """Scan ``path`` (gunzipped if ``.gz``); raise ``unreadable`` for UTF-16/32, a NUL byte or a broken gzip.

    The common file (no NUL, no CR) costs four ``memchr`` passes per chunk; line endings are only
    counted in chunks that hold a CR, and lines only when a NUL byte was found (to name its line).
    The double quote is looked for here so the CSV reader need not read the file again for it.
    """
    crlf = cr = lf = quotes = False
    offset = 0
    try:
        with open_bytes(path) as fh:
            first = True
            while chunk := fh.read(CHUNK_BYTES):
                while chunk.endswith(b"\r"):
                    # A CRLF may straddle two chunks: the next byte joins this chunk.
                    more = fh.read(1)
                    if not more:
                        break
                    chunk += more
                if first:
                    if chunk.startswith((b"\xff\xfe", b"\xfe\xff")):
                        raise unreadable("the file is UTF-16 (or UTF-32) encoded; save it as UTF-8")
                    first = False
                nul = chunk.find(b"\x00")
                if nul >= 0:
                    line = _line_of(path, offset + nul)
                    raise unreadable(
                        f"binary data, not text: a NUL byte on line {line} (byte {offset + nul}); a text file holds "
                        "none, so the whole file is refused wherever it is (re-export it, or remove the NUL bytes)")
                if b"\r" in chunk:
                    n_crlf = chunk.count(b"\r\n")
                    crlf = crlf or n_crlf > 0
                    cr = cr or chunk.count(b"\r") > n_crlf
                    lf = lf or chunk.count(b"\n") > n_crlf
                else:
                    lf = lf or b"\n" in chunk
                quotes = quotes or b'"' in chunk
                offset += len(chunk)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        if path.name.lower().endswith(".gz"):
            raise unreadable(f"not a readable gzip file ({exc}); compress it with gzip or land it uncompressed") from None
        raise unreadable(f"cannot read the file ({exc})") from None
    return TextScan(crlf, cr, lf, quotes)


def _line_of(path: Path, offset: int) -> int:
    """The 1-based line of byte ``offset`` of ``path`` (gunzipped if ``.gz``)."""
    breaks, seen, last = 0, 0, b""
    with open_bytes(path) as fh:
        while seen < offset and (chunk := fh.read(min(CHUNK_BYTES, offset - seen))):
            # A CRLF split between two chunks is one line break, not two.
            breaks += _breaks(chunk) - (last == b"\r" and chunk[:1] == b"\n")
            seen, last = seen + len(chunk), chunk[-1:]
    return breaks + 1


def _breaks(data: bytes) -> int:
    """Line breaks in ``data`` (CRLF, CR and LF each count once)."""
    return data.count(b"\n") + data.count(b"\r") - data.count(b"\r\n")


def write_lf(path: Path, target: Path) -> None:
    """Copy ``path`` (gunzipped if ``.gz``) to ``target`` with every CRLF and lone CR written as LF."""
    with open_bytes(path) as src, target.open("wb") as dst:
        carry = b""
        for chunk in iter(lambda: src.read(CHUNK_BYTES), b""):
            chunk = carry + chunk
            carry = b""
            if chunk.endswith(b"\r"):
                chunk, carry = chunk[:-1], b"\r"
            dst.write(chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n"))
        if carry:
            dst.write(b"\n")

