"""`mailsync.pipeline.parse` over the corpus of ugly messages in tests/fixtures/emails/.

No test here requests the database: pytest-django then refuses any query, which checks that
the parse stage is pure."""

# The corpus speaks Turkish, Polish and German: dotless i and en dashes are the point.
# ruff: noqa: RUF001

from __future__ import annotations

import base64
import hashlib
import random
import tracemalloc
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from mailsync.pipeline.parse import (
    attachment_content,
    html_to_text,
    normalize_address,
    normalize_message_id,
    parse_message,
    thread_subject,
)
from mailsync.pipeline.types import AttachmentKind, ParsedMessage, Participant, ParticipantRole

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "emails"
CORPUS_FILES = sorted(CORPUS.glob("*.eml"))


def parse(name: str) -> ParsedMessage:
    return parse_message((CORPUS / name).read_bytes())


def raw(name: str) -> bytes:
    return (CORPUS / name).read_bytes()


def addresses(message: ParsedMessage, role: ParticipantRole) -> list[str]:
    return [p.address for p in message.participants if p.role is role]


# --- The corpus as a whole ------------------------------------------------------------------


def test_corpus_has_a_readme_line_for_every_file() -> None:
    readme = (CORPUS / "README.md").read_text()
    assert len(CORPUS_FILES) >= 25
    for path in CORPUS_FILES:
        assert f"`{path.name}`" in readme


@pytest.mark.parametrize("path", CORPUS_FILES, ids=lambda path: path.name)
def test_every_corpus_message_parses_or_is_flagged(path: Path) -> None:
    data = path.read_bytes()
    message = parse_message(data)
    assert message.size == len(data)
    if message.parse_error:
        assert message.key == "sha256:" + hashlib.sha256(data).hexdigest()
    else:
        assert message.key
        assert message.participants
        assert message.snippet
    for attachment in message.attachments:
        content_type, content = attachment_content(data, attachment.part_path)
        assert content_type == attachment.content_type
        assert len(content) == attachment.size


@pytest.mark.parametrize("path", CORPUS_FILES, ids=lambda path: path.name)
def test_truncating_a_corpus_message_anywhere_never_raises(path: Path) -> None:
    data = path.read_bytes()
    for cut in range(0, len(data), max(1, len(data) // 40)):
        message = parse_message(data[:cut])
        assert message.size == cut


def test_random_bytes_never_raise() -> None:
    rng = random.Random(7)
    seeds = [raw("nested-mixed-alternative-related.eml"), raw("rfc2231-filenames.eml")]
    for _ in range(300):
        data = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 30)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        assert parse_message(bytes(data)).size == len(data)
    for length in (0, 1, 2, 10, 100, 5000):
        assert parse_message(rng.randbytes(length)).size == length


def test_hostile_structures_never_raise() -> None:
    deep = b"Content-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\n" * 200
    encoded_words = b"Subject: " + b"=?a?q?" * 50_000 + b"\r\n\r\nbody"
    dashes = b"Content-Type: multipart/mixed; boundary=b\r\nFrom: a@b.cd\r\n\r\n" + b"-" * 100_000
    for data in (deep, encoded_words, dashes, b"\r\n\r\n", b"From: \r\n\r\n", b"Subject: x"):
        message = parse_message(data)
        assert message.size == len(data)


def test_pure_garbage_is_flagged_and_keyed_by_content_hash() -> None:
    data = raw("garbage-bytes.eml")
    message = parse_message(data)
    assert message.parse_error == "no message headers"
    assert message.key == "sha256:" + hashlib.sha256(data).hexdigest()
    assert message.participants == ()
    assert message.body_text == ""


def test_empty_input_is_flagged() -> None:
    message = parse_message(b"")
    assert message.parse_error == "empty message"
    assert message.key == "sha256:" + hashlib.sha256(b"").hexdigest()


def test_an_unexpected_failure_becomes_a_parse_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(_raw: bytes) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr("mailsync.pipeline.parse._parse_structure", explode)
    message = parse_message(b"From: a@example.com\r\n\r\nhi")
    assert message.parse_error == "unreadable message (RuntimeError)"
    assert message.key.startswith("sha256:")


# --- Keys, ids and threading ----------------------------------------------------------------


def test_message_without_message_id_is_keyed_by_content_hash() -> None:
    data = raw("no-message-id.eml")
    message = parse_message(data)
    assert message.message_id == ""
    assert message.key == "sha256:" + hashlib.sha256(data).hexdigest()
    assert message.parse_error == ""


def test_empty_message_id_is_keyed_by_content_hash() -> None:
    message = parse("no-date.eml")
    assert message.message_id == ""
    assert message.key.startswith("sha256:")


def test_message_id_keeps_local_part_case_and_lowercases_domain() -> None:
    message = parse("text-only-quoted-printable.eml")
    assert message.message_id == "CAF=text.only.1@mail.example.com"
    assert message.key == message.message_id


def test_message_id_without_brackets_is_accepted() -> None:
    assert parse("garbage-date.eml").message_id == "garbage-date-5@example.org"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("<Abc.DEF@Example.COM>", "Abc.DEF@example.com"),
        ("  <a@b.c> (comment) <second@b.c>", "a@b.c"),
        ("bare@Host.Example", "bare@host.example"),
        ("<local@part@Domain.ORG>", "local@part@domain.org"),
        ("<>", ""),
        ("", ""),
        ("<no-at-sign>", ""),
        ("<@domain.only>", ""),
        ("<with space@x.y>", ""),
    ],
)
def test_normalize_message_id(value: str, expected: str) -> None:
    assert normalize_message_id(value) == expected


def test_reply_references_its_parent_in_order_with_in_reply_to_last() -> None:
    parent = parse("thread-parent.eml")
    reply = parse("thread-reply.eml")
    assert reply.in_reply_to == parent.message_id == "parent-24@acme.example.com"
    assert reply.references == ("older-0@acme.example.com", "parent-24@acme.example.com")
    assert reply.thread_subject == parent.thread_subject == "angebot q3"


def test_in_reply_to_alone_becomes_the_reference() -> None:
    message = parse("auto-reply.eml")
    assert message.references == ("nested-14@mail.example.com",)


def test_in_reply_to_is_appended_after_references_when_missing_from_them() -> None:
    data = (
        b"From: a@example.com\r\nReferences: <one@x.org> <two@x.org> <one@X.ORG>\r\n"
        b"In-Reply-To: <three@x.org>\r\n\r\nhi"
    )
    message = parse_message(data)
    assert message.references == ("one@x.org", "two@x.org", "three@x.org")


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("Re: Angebot", "angebot"),
        ("RE: AW: Fwd: FW: WG: Angebot", "angebot"),
        ("SV: VS: Vs: Odp: PD: Angebot", "angebot"),
        ("YNT: İlt: ILT: Teklif", "teklif"),
        ("Vá: Antw: Doorst: Offerte", "offerte"),
        ("Re[2]: Re(3): Angebot", "angebot"),
        ("[Sales] Re: [ext] RE:   Angebot   Q3 ", "angebot q3"),
        ("Re : Réunion", "réunion"),
        ("Ynt: Teklif hakkında görüşme", "teklif hakkında görüşme"),
        ("Reply needed", "reply needed"),
        ("Re:", ""),
        ("", ""),
    ],
)
def test_thread_subject_strips_reply_prefixes_and_tags(subject: str, expected: str) -> None:
    assert thread_subject(subject) == expected


# --- Headers, charsets and names ------------------------------------------------------------


def test_raw_8bit_cp1254_headers_are_read_with_the_body_charset() -> None:
    message = parse("8bit-headers-turkish-cp1254.eml")
    assert message.subject == "Ynt: Teklif hakkında görüşme"
    assert message.from_participant == Participant(
        ParticipantRole.FROM, "sukru@ornek.com.tr", "Şükrü Öztürk"
    )
    assert message.participants[1].name == "Ayşe Yılmaz"
    assert "8bit-headers" in message.notes
    assert message.snippet.startswith("Merhaba Ayşe, teklifimizi")


def test_raw_8bit_utf8_headers_keep_a_comma_inside_a_quoted_name() -> None:
    message = parse("8bit-headers-polish-utf8.eml")
    assert message.subject == "Odp: Zamówienie nr 15 – potwierdzenie"
    assert message.thread_subject == "zamówienie nr 15 – potwierdzenie"
    assert message.from_participant is not None
    assert message.from_participant.name == "Łukasz Żółkiewski"
    assert message.participants[1] == Participant(
        ParticipantRole.TO, "zamowienia@sklep.example.pl", "Zamówienia, Dział"
    )
    assert message.notes == ("8bit-headers",)


def test_encoded_words_decode_across_charsets_splits_and_unknown_labels() -> None:
    message = parse("encoded-words-estonian-dutch.eml")
    assert message.subject == "Vs: Pakkumine - jõulud € 500"
    assert message.thread_subject == "pakkumine - jõulud € 500"
    assert [(p.name, p.address) for p in message.participants] == [
        ("Jüri Mägi", "juri@firma.example.ee"),
        ("Joëlle van der Berg", "joelle@bedrijf.example.nl"),
        ("De Vries, Anne", "anne@bedrijf.example.nl"),
        ("Müller", "muller@example.de"),
    ]
    assert message.body_text == "Tere! Hind on 500 € (eurot).\n"


def test_unknown_body_charset_falls_back_to_windows_1252() -> None:
    message = parse("charset-x-unknown.eml")
    assert message.body_text == "Chère collègue, voilà le résumé – € 10.\n"
    assert message.from_participant is not None
    assert message.from_participant.name == "Renée"
    assert message.notes == ("8bit-headers", "unknown-charset")


def test_koi8_r_body_and_subject_decode() -> None:
    message = parse("charset-koi8-r.eml")
    assert message.subject == "Привет"
    assert message.body_text == "Добрый день! Счёт во вложении.\n"


def test_iso_8859_9_reads_as_windows_1254_with_its_quotes() -> None:
    message = parse("charset-iso-8859-9.eml")
    assert message.subject == "İşe başlama günü"
    assert message.from_participant is not None
    assert message.from_participant.name == "Gülşen Işık"
    assert message.body_text == "İşe başlama günü çarşamba. “Teşekkürler”\n"


def test_misspelled_utf8_charset_is_understood() -> None:
    message = parse("charset-utf8-misspelled.eml")
    assert message.subject == "Offerte coöperatie"
    assert message.body_text.startswith("Beste Bob, de coöperatie gaat akkoord.")
    assert "unknown-charset" not in message.notes


def test_text_declared_utf8_but_written_in_windows_1252_is_still_readable() -> None:
    message = parse("charset-declared-utf8-really-cp1252.eml")
    assert message.body_text == "Grüße aus München – das Angebot folgt.\n"
    assert message.from_participant is not None
    assert message.from_participant.name == "Jürgen Weiß"


def test_mbox_separator_lf_endings_and_tab_folding() -> None:
    message = parse("mbox-from-line-lf-only.eml")
    assert message.message_id == "mbox-28@example.com"
    assert message.subject == "a subject folded over two lines"
    assert message.body_text == "LF line endings only.\n"


def test_nul_characters_are_removed_from_text() -> None:
    message = parse_message(b"From: a@example.com\r\nSubject: a\x00b\r\n\r\nc\x00d")
    assert message.subject == "ab"
    assert message.body_text == "cd"


# --- Dates ----------------------------------------------------------------------------------


def test_date_is_aware_in_the_senders_offset() -> None:
    date = parse("thread-parent.eml").date
    assert date == datetime(2024, 9, 18, 7, 0, tzinfo=UTC)
    assert date is not None
    assert date.utcoffset() == timedelta(hours=2)
    assert date.tzinfo == timezone(timedelta(hours=2))


def test_date_without_zone_is_taken_as_utc() -> None:
    assert parse("html-only-base64.eml").date == datetime(2024, 9, 4, 10, 0, tzinfo=UTC)


def test_missing_date_is_none() -> None:
    message = parse("no-date.eml")
    assert message.date is None
    assert "unreadable-date" not in message.notes


def test_garbage_date_is_none_and_noted() -> None:
    message = parse("garbage-date.eml")
    assert message.date is None
    assert message.notes == ("unreadable-date",)


@pytest.mark.parametrize(
    "value", ["Mon, 1 Jan 1900 00:00:00 +0000", "Fri, 1 Jan 2200 00:00:00 +0000", "0", "+0000"]
)
def test_dates_outside_1970_to_2100_or_unreadable_are_rejected(value: str) -> None:
    message = parse_message(f"From: a@example.com\r\nDate: {value}\r\n\r\nx".encode())
    assert message.date is None


# --- Participants ---------------------------------------------------------------------------


def test_participants_from_every_address_header_in_role_order() -> None:
    message = parse("address-oddities.eml")
    assert [(p.role, p.address, p.name) for p in message.participants] == [
        (ParticipantRole.FROM, "", "Bob at Home"),
        (ParticipantRole.SENDER, "assistant@example.com", ""),
        (ParticipantRole.REPLY_TO, "team@example.com", "Team Inbox"),
        (ParticipantRole.CC, "mueller@xn--bcher-kva.example", "Müller"),
        (ParticipantRole.CC, "ian@example.com", ""),
        (ParticipantRole.BCC, "hidden@example.com", ""),
    ]


def test_undisclosed_recipients_produce_no_participant() -> None:
    assert addresses(parse("address-oddities.eml"), ParticipantRole.TO) == []


def test_nested_message_lists_to_and_cc_in_order() -> None:
    message = parse("nested-mixed-alternative-related.eml")
    assert addresses(message, ParticipantRole.TO) == ["bob@example.org", "carol@example.com"]
    assert message.participants[-1] == Participant(ParticipantRole.CC, "dan@example.org", "Dan D.")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (" <Ana.Silva@Example.COM> ", "ana.silva@example.com"),
        ("user@Bücher.Example", "user@xn--bcher-kva.example"),
        ("user@example.com.", "user@example.com"),
        ("user@localhost", "user@localhost"),
        ("not an address", ""),
        ("bob at example dot com", ""),
        ("@example.com", ""),
        ("user@", ""),
        ("user@nodot", ""),
        ("a<b@c.d", ""),
        ("", ""),
    ],
)
def test_normalize_address(value: str, expected: str) -> None:
    assert normalize_address(value) == expected


# --- Bodies ---------------------------------------------------------------------------------


def test_quoted_printable_text_body_and_snippet_without_quoted_lines() -> None:
    message = parse("text-only-quoted-printable.eml")
    assert message.subject == "Café meeting tomorrow"
    assert message.body_html == ""
    assert "so we can go through it line by line." in message.body_text
    assert message.snippet == (
        "Yes, see you at the café at ten. I will bring the printed contract so we can go "
        "through it line by line. Ana"
    )


def test_html_only_message_gets_text_from_its_html() -> None:
    message = parse("html-only-base64.eml")
    assert message.body_html.startswith("<html><head><title>Invoice</title>")
    assert message.body_text == (
        "Dear customer,\n\nyour invoice #4711 of € 120,00 is attached & due on 1 Oct.\n\n"
        "Kind regards\nBilling team"
    )
    assert "alert" not in message.body_text
    assert "color: red" not in message.body_text


def test_base64_text_body_decodes() -> None:
    message = parse("base64-text-body.eml")
    assert message.body_text == "Grüße aus Köln!\nDas ist ein Test mit Umlauten: äöü ÄÖÜ ß.\n"


def test_nested_multiparts_give_first_text_and_html_and_an_inline_image() -> None:
    message = parse("nested-mixed-alternative-related.eml")
    assert message.body_text == "Hello Bob, the quarterly report is attached."
    assert message.body_html.startswith("<p>Hello Bob, the <b>quarterly report</b>")
    assert message.attachments[0].filename == "logo.png"
    assert message.attachments[0].kind is AttachmentKind.INLINE
    assert message.attachments[0].content_id == "logo.png@01DA0001"
    assert message.attachments[0].part_path == "1.2.2"
    assert message.attachments[0].size == 68
    assert message.attachments[1].filename == "report-q3.pdf"
    assert message.attachments[1].kind is AttachmentKind.FILE
    assert message.attachments[1].part_path == "2"
    assert message.attachments[1].size == 3016


def test_snippet_is_at_most_225_characters_with_whitespace_collapsed() -> None:
    body = ("word   " * 200).encode()
    message = parse_message(b"From: a@example.com\r\n\r\n" + body)
    assert len(message.snippet) <= 225
    assert "  " not in message.snippet


def test_snippet_of_a_fully_quoted_body_uses_the_quote() -> None:
    message = parse_message(b"From: a@example.com\r\n\r\n> only quoted\r\n> text\r\n")
    assert message.snippet == "> only quoted > text"


def test_html_to_text_survives_broken_markup() -> None:
    assert html_to_text("<p>one<p>two &amp <b>three</i></div>") == "one\ntwo & three"
    assert html_to_text("<div><![CDATA[x]]><!-- c -->after") == "after"


# --- Attachments ----------------------------------------------------------------------------


def test_tnef_winmail_dat_is_kind_tnef_and_noted() -> None:
    message = parse("tnef-winmail.eml")
    (attachment,) = message.attachments
    assert attachment.kind is AttachmentKind.TNEF
    assert attachment.filename == "winmail.dat"
    assert attachment.size == 1028
    assert message.notes == ("tnef",)
    assert message.headers == (("X-Mailer", "Microsoft Outlook 16.0"),)


def test_smime_signature_is_kind_smime() -> None:
    message = parse("smime-signed.eml")
    assert message.body_text == "I confirm the statement."
    (signature,) = message.attachments
    assert (signature.filename, signature.kind, signature.size) == (
        "smime.p7s",
        AttachmentKind.SMIME,
        600,
    )


def test_pgp_signature_is_kind_pgp() -> None:
    message = parse("pgp-signed.eml")
    assert message.body_text == "Signed with PGP."
    (signature,) = message.attachments
    assert (signature.filename, signature.kind, signature.content_type) == (
        "signature.asc",
        AttachmentKind.PGP,
        "application/pgp-signature",
    )


def test_filenames_in_rfc2231_rfc2047_and_raw_utf8_are_decoded() -> None:
    message = parse("rfc2231-filenames.eml")
    assert message.subject == "Vá: Smlouvy"
    assert message.thread_subject == "smlouvy"
    assert [a.filename for a in message.attachments] == [
        "smlouva č. 1.pdf",
        "Příloha s velmi dlouhým názvem.docx",
        "Čtvrtletí Q3.xls",
        "poznámka.txt",
        "attachment-5.bin",
    ]
    assert [a.part_path for a in message.attachments] == ["2", "3", "4", "5", "6"]
    assert [a.size for a in message.attachments] == [12, 9, 9, 18, 4]


def test_attached_message_is_kind_message_and_not_walked_into() -> None:
    message = parse("forwarded-message-rfc822.eml")
    assert message.body_text == "See the message below."
    (attached,) = message.attachments
    assert attached.kind is AttachmentKind.MESSAGE
    assert attached.filename == "The original.eml"
    assert attached.part_path == "2"
    content_type, content = attachment_content(raw("forwarded-message-rfc822.eml"), "2")
    assert content_type == "message/rfc822"
    assert parse_message(content).message_id == "inner-20@example.com"


def test_calendar_alternative_becomes_a_named_attachment() -> None:
    (invite,) = parse("calendar-invite.eml").attachments
    assert (invite.filename, invite.content_type) == ("attachment-1.ics", "text/calendar")


def test_missing_closing_boundary_keeps_the_parts_and_notes_it() -> None:
    message = parse("truncated-missing-close-boundary.eml")
    assert message.parse_error == ""
    assert message.body_text == "Photos from the fair attached."
    (photo,) = message.attachments
    assert photo.filename == "fair.jpg"
    assert photo.size == 220
    assert message.notes == ("truncated-mime",)


def test_attachment_content_returns_decoded_bytes() -> None:
    data = raw("nested-mixed-alternative-related.eml")
    content_type, content = attachment_content(data, "2")
    assert content_type == "application/pdf"
    assert content.startswith(b"%PDF-1.4\n")
    assert content.endswith(b"%%EOF\n")
    assert attachment_content(data, "1.2.2")[1].startswith(b"\x89PNG")


@pytest.mark.parametrize("path", ["3", "0", "1.9", "x", "", "1.2.2.1"])
def test_attachment_content_of_a_missing_part_raises_key_error(path: str) -> None:
    with pytest.raises(KeyError):
        attachment_content(raw("nested-mixed-alternative-related.eml"), path)


def test_single_part_message_body_is_part_one() -> None:
    data = raw("base64-text-body.eml")
    assert attachment_content(data, "1")[1].startswith("Grüße".encode())


def test_single_part_attachment_message_lists_its_body_as_attachment() -> None:
    data = (
        b"From: scanner@example.com\r\nContent-Type: application/pdf; name=scan.pdf\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n" + base64.b64encode(b"%PDF scan") + b"\r\n"
    )
    (scan,) = parse_message(data).attachments
    assert (scan.filename, scan.part_path, scan.size) == ("scan.pdf", "1", 9)


def test_base64_size_is_exact_for_any_line_width_and_padding() -> None:
    rng = random.Random(3)
    for length in (0, 1, 2, 3, 4, 57, 58, 1000, 4096):
        payload = rng.randbytes(length)
        for width, eol in ((76, b"\r\n"), (64, b"\n"), (72, b"\r\n")):
            text = base64.b64encode(payload)
            lines = eol.join(text[i : i + width] for i in range(0, len(text), width))
            data = (
                b"From: a@example.com\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n"
                b"--x\r\nContent-Type: application/octet-stream; name=f\r\n"
                b"Content-Transfer-Encoding: base64\r\n\r\n" + lines + b" \r\n\r\n--x--\r\n"
            )
            (attachment,) = parse_message(data).attachments
            assert attachment.size == length
            assert attachment_content(data, attachment.part_path)[1] == payload


# --- Bulk mail ------------------------------------------------------------------------------


def test_newsletter_with_list_id_is_bulk_and_keeps_its_list_headers() -> None:
    message = parse("newsletter-list-id.eml")
    assert message.is_bulk
    assert message.thread_subject == "this week: 10 tips"
    assert message.headers == (
        ("List-Id", "Example Weekly <weekly.news.example.com>"),
        ("List-Unsubscribe", "<https://news.example.com/u/123>, <mailto:unsub@news.example.com>"),
        ("Precedence", "bulk"),
    )


def test_auto_reply_is_bulk() -> None:
    message = parse("auto-reply.eml")
    assert message.is_bulk
    assert message.headers == (("Auto-Submitted", "auto-replied"),)


@pytest.mark.parametrize(
    ("header", "bulk"),
    [
        (b"Precedence: list", True),
        (b"Precedence: junk", True),
        (b"Precedence: first-class", False),
        (b"Auto-Submitted: no", False),
        (b"Auto-Submitted: auto-generated", True),
        (b"List-Unsubscribe: <mailto:u@example.com>", True),
        (b"X-Mailer: Thunderbird", False),
    ],
)
def test_bulk_headers(header: bytes, bulk: bool) -> None:
    message = parse_message(b"From: a@example.com\r\n" + header + b"\r\n\r\nhi")
    assert message.is_bulk is bulk


def test_personal_message_is_not_bulk() -> None:
    assert not parse("thread-reply.eml").is_bulk


# --- Size -----------------------------------------------------------------------------------


def test_20_mb_attachment_is_measured_without_decoding_it() -> None:
    payload = random.Random(5).randbytes(20 * 1024 * 1024)
    encoded = base64.encodebytes(payload).replace(b"\n", b"\r\n")
    data = (
        b"Message-ID: <big@example.com>\r\nFrom: a@example.com\r\nSubject: big\r\n"
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n'
        b"Content-Type: text/plain\r\n\r\nsee attachment\r\n--b\r\n"
        b'Content-Type: application/zip\r\nContent-Disposition: attachment; filename="big.zip"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\n" + encoded + b"--b--\r\n"
    )
    tracemalloc.start()
    try:
        message = parse_message(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert message.body_text == "see attachment"
    (attachment,) = message.attachments
    assert attachment.size == len(payload)
    assert peak < 1024 * 1024  # no copy of the 27 MB of base64, no decoded 20 MB
    assert attachment_content(data, "2")[1] == payload


def test_1_mb_html_body_yields_text() -> None:
    rows = "".join(f"<tr><td>Row {n}</td><td>&euro; {n},00</td></tr>" for n in range(30_000))
    html = f"<html><body><p>Price list</p><table>{rows}</table></body></html>"
    assert len(html) > 1_000_000
    data = b"From: a@example.com\r\nContent-Type: text/html; charset=utf-8\r\n\r\n" + html.encode()
    message = parse_message(data)
    assert message.snippet.startswith("Price list Row 0 € 0,00 Row 1 € 1,00")
    assert "Row 29999 € 29999,00" in message.body_text
    assert len(message.body_html) == len(html)


def test_8bit_text_labelled_us_ascii_is_read_as_utf8() -> None:
    data = b"From: a@example.com\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nK\xc3\xb6ln"
    assert parse_message(data).body_text == "Köln"


def test_header_folded_over_many_lines_is_joined_in_linear_time() -> None:
    data = b"From: a@example.com\r\nReferences: <0@x.org>" + b"\r\n <n@x.org>" * 100_000
    message = parse_message(data + b"\r\n\r\nbody")
    assert message.references == ("0@x.org", "n@x.org")
    assert message.body_text == "body"
