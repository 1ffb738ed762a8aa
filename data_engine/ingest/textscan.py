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
    """What the scan found: the number of each kind of line ending (``crlf``, ``cr`` alone, ``lf`` alone)."""

    crlf: int
    cr: int
    lf: int

    @property
    def kinds(self) -> list[str]:
        """The kinds of line ending present, e.g. ``['CRLF', 'LF']``."""
        return [name for name, n in (("CRLF", self.crlf), ("CR", self.cr), ("LF", self.lf)) if n]

    @property
    def mixed(self) -> bool:
        """True when more than one kind of line ending is present."""
        return len(self.kinds) > 1


def open_bytes(path: Path) -> BinaryIO:
    """``path``'s bytes, gunzipped when its name ends in ``.gz``."""
    return gzip.open(path, "rb") if path.name.lower().endswith(".gz") else path.open("rb")


def scan_text(path: Path, unreadable: type[EngineError] = EngineError) -> TextScan:
    """Scan ``path`` (gunzipped if ``.gz``); raise ``unreadable`` for UTF-16/32, a NUL byte or a broken gzip."""
    crlf = cr = lf = 0
    offset = 0
    lines_before = 0  # line breaks before the current chunk
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
                n_crlf, n_cr, n_lf = chunk.count(b"\r\n"), chunk.count(b"\r"), chunk.count(b"\n")
                if nul >= 0:
                    line = lines_before + _breaks(chunk[:nul]) + 1
                    raise unreadable(
                        f"binary data, not text: a NUL byte on line {line} (byte {offset + nul}); a text file holds "
                        "none, so the whole file is refused wherever it is (re-export it, or remove the NUL bytes)")
                crlf += n_crlf
                cr += n_cr - n_crlf
                lf += n_lf - n_crlf
                lines_before += n_lf + n_cr - n_crlf
                offset += len(chunk)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise unreadable(f"not a readable gzip file ({exc}); compress it with gzip or land it uncompressed") from None
    return TextScan(crlf, cr, lf)


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

