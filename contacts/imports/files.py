"""Reading an uploaded spreadsheet into a table of text cells.

Nothing here evaluates anything: CSV cells are text, and XLSX cells are read with
`data_only=True`, which gives a formula cell's cached result (or nothing), never a formula to
run. A cell that looks like a formula (`=cmd|' /C calc'!A0`) stays plain text; exports
neutralize it (contacts.exports)."""

from __future__ import annotations

import csv
import datetime
import io
import zipfile
from dataclasses import dataclass
from typing import BinaryIO

from django.utils.translation import gettext as _

MAX_BYTES = 20 * 1024 * 1024
MAX_ROWS = 100_000
MAX_COLUMNS = 200
_DELIMITERS = (",", ";", "\t", "|")
# Signatures of files people upload by mistake: legacy Excel, PDF, images, archives.
_BINARY_SIGNATURES = (
    b"\xd0\xcf\x11\xe0",
    b"%PDF",
    b"\x89PNG",
    b"\xff\xd8\xff",
    b"GIF8",
    b"\x1f\x8b",
    b"7z\xbc\xaf",
    b"Rar!",
)


class ImportFileError(Exception):
    """The file cannot be imported; the message says why, for the user."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Table:
    headers: list[str]
    rows: list[list[str]]


def table_read(*, stream: BinaryIO) -> Table:
    """The header row and data rows of a CSV or XLSX file. Reads at most MAX_BYTES + 1 bytes,
    so a huge upload is refused without being held in memory twice."""
    data = stream.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise ImportFileError(
            _("The file is larger than %(size)d MB. Split it into smaller files.")
            % {"size": MAX_BYTES // (1024 * 1024)}
        )
    if not data.strip():
        raise ImportFileError(_("The file is empty."))
    if data.startswith(b"PK\x03\x04"):
        rows = _xlsx_rows(data)
    elif data.startswith(_BINARY_SIGNATURES) or b"\x00" in data[:8192]:
        raise ImportFileError(
            _("This is a binary file, not a spreadsheet. Upload a CSV or XLSX file.")
        )
    else:
        rows = _csv_rows(_decode(data))
    rows = [row for row in rows if any(cell.strip() for cell in row)]
    if not rows:
        raise ImportFileError(_("The file has no rows."))
    headers = [" ".join(cell.split()) for cell in rows[0]]
    if len(headers) > MAX_COLUMNS:
        raise ImportFileError(
            _("The file has more than %(max)d columns; is it really a spreadsheet?")
            % {"max": MAX_COLUMNS}
        )
    if len(rows) - 1 > MAX_ROWS:
        raise ImportFileError(
            _("The file has more than %(max)d rows. Split it into smaller files.")
            % {"max": MAX_ROWS}
        )
    return Table(headers=headers, rows=rows[1:])


def _decode(data: bytes) -> str:
    """UTF-8 (with or without a byte order mark) first; then Windows-1252, what Excel writes
    on Western systems; Latin-1 last, which decodes anything."""
    for encoding in ("utf-8-sig", "cp1252", "latin-1"):
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        break
    controls = sum(1 for char in text[:65536] if ord(char) < 32 and char not in "\t\r\n")
    if controls > len(text[:65536]) // 100:
        raise ImportFileError(
            _("The file does not look like text (wrong encoding or a binary file).")
        )
    return text


def _delimiter(text: str) -> str:
    """The separator that splits the header line most often (Sniffer is fooled by commas
    inside values; the header line rarely has any)."""
    first_line = text.lstrip("\r\n").split("\n", 1)[0]
    counts = {delimiter: first_line.count(delimiter) for delimiter in _DELIMITERS}
    best = max(counts, key=lambda delimiter: counts[delimiter])
    return best if counts[best] else ","


def _csv_rows(text: str) -> list[list[str]]:
    try:
        return list(csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(text)))
    except csv.Error as error:
        raise ImportFileError(
            _("The file is not a readable CSV file (%(error)s).") % {"error": error}
        ) from None


def _cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime.datetime):
        return value.date().isoformat() if value.time() == datetime.time() else value.isoformat()
    if isinstance(value, datetime.date):
        return value.isoformat()
    return str(value)


def _xlsx_rows(data: bytes) -> list[list[str]]:
    # Imported here: openpyxl is slow to import and only XLSX uploads need it.
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError, TypeError):
        raise ImportFileError(
            _("This is a ZIP file but not a readable XLSX workbook. Upload a CSV or XLSX file.")
        ) from None
    try:
        sheet = workbook.worksheets[0]
        rows: list[list[str]] = []
        for values in sheet.iter_rows(values_only=True):
            rows.append([_cell_text(value) for value in values[: MAX_COLUMNS + 1]])
            if len(rows) > MAX_ROWS + 1:
                break
        # Read-only sheets pad rows to the widest one: trailing empty columns are noise.
        width = max(
            (max((i + 1 for i, c in enumerate(row) if c), default=0) for row in rows), default=0
        )
        return [row[:width] for row in rows]
    finally:
        workbook.close()
