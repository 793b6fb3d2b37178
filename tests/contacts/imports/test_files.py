"""Reading uploads and guessing the mapping: pure, no database."""

from __future__ import annotations

import io
import os
import pathlib
import tempfile

import pytest
from openpyxl import Workbook

from contacts.imports import files
from contacts.imports.files import ImportFileError, table_read
from contacts.imports.kinds import mapping_guess
from contacts.imports.persons import OrganizationHandler, PersonHandler
from crm.sales.imports import DealHandler, LeadHandler

FIXTURES = pathlib.Path(__file__).parents[2] / "fixtures" / "imports"


def read(data: bytes) -> files.Table:
    return table_read(stream=io.BytesIO(data))


def test_utf8_with_and_without_byte_order_mark() -> None:
    text = "Name,Email\nZoë Ångström,zoe@example.test\n"
    for data in (text.encode(), b"\xef\xbb\xbf" + text.encode()):
        table = read(data)
        assert table.headers == ["Name", "Email"]
        assert table.rows == [["Zoë Ångström", "zoe@example.test"]]


def test_cp1252_file_with_semicolons_is_decoded_and_split() -> None:
    table = read((FIXTURES / "persons-cp1252-semicolon.csv").read_bytes())
    assert table.headers == ["First name", "Last name", "E-mail", "Organisation"]
    # U+2019, a right single quotation mark: 0x92 in Windows-1252, a control in Latin-1.
    assert table.rows[0] == ["José", "O\u2019Brien", "jose@example.test", "Société Générale"]
    assert table.rows[1][3] == "Cafe €uro"


def test_tab_and_pipe_delimiters_are_sniffed_from_the_header_line() -> None:
    assert read(b"Name\tEmail\nA, B\ta@example.test\n").rows == [["A, B", "a@example.test"]]
    assert read(b"Name|Email\nA|a@example.test\n").rows == [["A", "a@example.test"]]


def test_quoted_values_keep_their_commas_and_newlines() -> None:
    table = read(b'Name,Notes\n"Doe, Jane","line one\nline two"\n')
    assert table.rows == [["Doe, Jane", "line one\nline two"]]


def test_blank_lines_are_dropped() -> None:
    assert read(b"Name\n\nA\n,\nB\n").rows == [["A"], ["B"]]


def test_xlsx_first_sheet_is_read_without_evaluating_formulas() -> None:
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["Name", "Deal - Value", "Formula"])
    sheet.append(["Ada", 1500, "=1+1"])
    sheet.append(["Bob", 12.5, "=cmd|' /C calc'!A0"])
    buffer = io.BytesIO()
    workbook.save(buffer)
    table = read(buffer.getvalue())
    assert table.headers == ["Name", "Deal - Value", "Formula"]
    # data_only: a formula never calculated by a spreadsheet program has no value; never run.
    assert table.rows == [["Ada", "1500", ""], ["Bob", "12.5", ""]]


def test_formula_text_in_a_csv_stays_plain_text() -> None:
    table = read((FIXTURES / "pipedrive-persons.csv").read_bytes())
    assert table.rows[1][0] == "=cmd|' /C calc'!A0"


@pytest.mark.parametrize(
    "data",
    [
        b"\x89PNG\r\n\x1a\n" + bytes(range(256)),
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100,  # legacy .xls
        b"Name,Email\n\x00\x01\x02\x03",
    ],
)
def test_binary_files_are_refused_clearly(data: bytes) -> None:
    with pytest.raises(ImportFileError, match="binary file"):
        read(data)


def test_a_zip_that_is_not_a_workbook_is_refused() -> None:
    with pytest.raises(ImportFileError, match="not a readable XLSX"):
        read(b"PK\x03\x04" + os.urandom(200))


def test_control_character_soup_is_refused_as_not_text() -> None:
    with pytest.raises(ImportFileError, match="does not look like text"):
        read(bytes(range(1, 32)) * 100)


def test_empty_file_is_refused() -> None:
    with pytest.raises(ImportFileError, match="empty"):
        read(b"  \n")


def test_fifty_megabytes_of_garbage_are_refused_after_reading_the_limit_only() -> None:
    with tempfile.TemporaryFile() as handle:
        # Written in 1 MB pieces: the test never holds the 50 MB either.
        for _ in range(50):
            handle.write(os.urandom(1024 * 1024))
        handle.seek(0)
        with pytest.raises(ImportFileError, match="larger than 20 MB"):
            table_read(stream=handle)
        assert handle.tell() == files.MAX_BYTES + 1


def test_pipedrive_person_export_headers_are_guessed() -> None:
    headers = [
        "Person - Name",
        "Person - First name",
        "Person - Last name",
        "Person - Email - Work",
        "Person - Email - Home",
        "Person - Phone - Mobile",
        "Person - Organization",
        "Person - Label",
        "Person - Owner",
        "Something else",
    ]
    assert mapping_guess(handler=PersonHandler(), headers=headers) == {
        "0": "name",
        "1": "first_name",
        "2": "last_name",
        "3": "email_work",
        "4": "email_home",
        "5": "phone_mobile",
        "6": "organization",
        "7": "label",
        "8": "owner",
    }


def test_plain_headers_are_guessed_in_any_case_and_each_field_once() -> None:
    guessed = mapping_guess(
        handler=PersonHandler(),
        headers=["NAME", "e-mail", "Email", "Phone", "Organization", "job_title"],
    )
    assert guessed == {
        "0": "name",
        "1": "email",
        "3": "phone",
        "4": "organization",
        "5": "job_title",
    }


def test_organization_headers_are_guessed() -> None:
    guessed = mapping_guess(
        handler=OrganizationHandler(),
        headers=["Organization - Name", "Organization - Address", "Organization - Owner"],
    )
    assert guessed == {"0": "name", "1": "address", "2": "owner"}


def test_deal_and_lead_headers_are_guessed() -> None:
    headers = [
        "Deal - Title",
        "Deal - Value",
        "Deal - Currency",
        "Deal - Stage",
        "Deal - Pipeline",
        "Person - Name",
        "Organization - Name",
        "Deal - Owner",
    ]
    assert mapping_guess(handler=DealHandler(), headers=headers) == {
        "0": "title",
        "1": "value",
        "2": "currency",
        "3": "stage",
        "4": "pipeline",
        "5": "person",
        "6": "organization",
        "7": "owner",
    }
    lead = mapping_guess(handler=LeadHandler(), headers=["Lead - Title", "Person - Name"])
    assert lead == {"0": "title", "1": "person"}
