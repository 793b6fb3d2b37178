"""Outgoing messages as bytes (`inbox.mime`, pure: no database): what the ingest parser reads
back from them is what the outbox stores, headers are encoded as mail clients expect, the
plain-text alternative is readable, right-to-left text keeps its direction, replies carry
their threading headers, Bcc never reaches the SMTP server's copy."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email import message_from_bytes, policy

from inbox import mime
from mailsync.pipeline.parse import parse_message
from mailsync.pipeline.types import AttachmentKind, ParticipantRole

DATE = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
PERSIAN = "درخواست قیمت برای پروژه"


def outgoing(**fields: object) -> mime.Outgoing:
    values: dict[str, object] = {
        "sender": mime.Party("alice@acme.test", "Alice Adams"),
        "message_id": "0123456789abcdef0123456789abcdef.outbox@crm.example.com",
        "date": DATE,
        "to": [mime.Party("pat@customer.test", "Pat Customer")],
        "subject": "Quote",
        "body_html": "<p>Hello Pat</p>",
    }
    values.update(fields)
    return mime.Outgoing(**values)  # type: ignore[arg-type]


def header_block(raw: bytes) -> str:
    return raw[: raw.index(b"\r\n\r\n")].decode("ascii")


def test_the_parser_reads_back_what_the_outbox_stores() -> None:
    built = mime.build(
        outgoing(
            cc=[mime.Party("bob@acme.test")],
            bcc=[mime.Party("boss@acme.test", "The Boss")],
            body_html='<p>See the logo <img src="cid:logo1" alt="Logo"></p>',
            attachments=[
                mime.Attachment("offer.pdf", "application/pdf", b"%PDF-1.4 " * 50),
                mime.Attachment("logo.png", "image/png", b"\x89PNG" * 8, "logo1", inline=True),
                mime.Attachment("notes.txt", "text/plain", b"plain notes\n"),
            ],
            in_reply_to="q1@customer.test",
            references=["root@customer.test", "q1@customer.test"],
        )
    )

    parsed = parse_message(built.raw)

    assert parsed.parse_error == ""
    our_id = "0123456789abcdef0123456789abcdef.outbox@crm.example.com"
    assert parsed.key == parsed.message_id == our_id
    assert parsed.in_reply_to == "q1@customer.test"
    assert parsed.references == ("root@customer.test", "q1@customer.test")
    assert parsed.date == DATE
    assert [(p.role, p.address, p.name) for p in parsed.participants] == [
        (ParticipantRole.FROM, "alice@acme.test", "Alice Adams"),
        (ParticipantRole.TO, "pat@customer.test", "Pat Customer"),
        (ParticipantRole.CC, "bob@acme.test", ""),
        (ParticipantRole.BCC, "boss@acme.test", "The Boss"),
    ]
    assert parsed.body_html == built.body_html
    assert parsed.body_text == built.body_text
    assert parsed.snippet == mime.snippet(built.body_text)
    assert [
        (a.filename, a.content_type, a.size, a.content_id, a.part_path) for a in parsed.attachments
    ] == [
        (a.filename, a.content_type, a.size, a.content_id, a.part_path) for a in built.attachments
    ]
    kinds = {a.filename: a.kind for a in parsed.attachments}
    assert kinds == {
        "logo.png": AttachmentKind.INLINE,
        "offer.pdf": AttachmentKind.FILE,
        "notes.txt": AttachmentKind.FILE,
    }
    assert {a.filename: a.inline for a in built.attachments}["logo.png"]


def test_the_structure_is_mixed_alternative_related() -> None:
    built = mime.build(
        outgoing(
            body_html='<p><img src="cid:c1"></p>',
            attachments=[
                mime.Attachment("a.bin", "application/octet-stream", b"x"),
                mime.Attachment("c.png", "image/png", b"p", "c1", inline=True),
            ],
        )
    )
    message = message_from_bytes(built.raw, policy=policy.default)

    def shape(part) -> object:
        if part.is_multipart():
            return (part.get_content_type(), [shape(p) for p in part.iter_parts()])
        return part.get_content_type()

    assert shape(message) == (
        "multipart/mixed",
        [
            (
                "multipart/alternative",
                ["text/plain", ("multipart/related", ["text/html", "image/png"])],
            ),
            "application/octet-stream",
        ],
    )
    # One MIME-Version, on the message only; CRLF line ends and 7-bit bytes throughout.
    assert built.raw.count(b"MIME-Version") == 1
    assert b"\n" not in built.raw.replace(b"\r\n", b"")
    assert built.raw.isascii()


def test_a_text_only_message_is_one_text_part() -> None:
    built = mime.build(outgoing(body_html="", body_text="Just text.\nTwo lines."))
    message = message_from_bytes(built.raw, policy=policy.default)

    assert message.get_content_type() == "text/plain"
    assert message.get_content().replace("\r\n", "\n") == "Just text.\nTwo lines.\n"
    assert built.body_html == ""


def test_non_ascii_names_subjects_and_files_are_encoded_and_round_trip() -> None:
    built = mime.build(
        outgoing(
            sender=mime.Party("zoe@acme.test", "Zoë Ünal, Sales"),
            to=[mime.Party("maryam@münchen.de", "مریم رضایی")],
            subject=f"Re: {PERSIAN} — Zürich",
            attachments=[mime.Attachment("Résumé · قیمت.pdf", "application/pdf", b"%PDF")],
        )
    )
    head = header_block(built.raw)

    assert "=?utf-8?" in head  # RFC 2047 encoded words
    assert "maryam@xn--mnchen-3ya.de" in head  # IDNA domain
    assert "filename*=utf-8''R%C3%A9sum%C3%A9" in built.raw.decode("ascii")  # RFC 2231
    assert all(len(line) <= 78 for line in head.split("\r\n"))
    parsed = parse_message(built.raw)
    assert parsed.subject == f"Re: {PERSIAN} — Zürich"
    assert [(p.address, p.name) for p in parsed.participants] == [
        ("zoe@acme.test", "Zoë Ünal, Sales"),
        ("maryam@xn--mnchen-3ya.de", "مریم رضایی"),
    ]
    assert [a.filename for a in parsed.attachments] == ["Résumé · قیمت.pdf"]


def test_a_header_injection_in_the_subject_stays_in_the_subject() -> None:
    built = mime.build(outgoing(subject="Hello\r\nBcc: spy@evil.test\r\n"))
    head = header_block(built.raw)

    assert not re.search(r"(?m)^Bcc:", head)
    assert parse_message(built.raw).subject == "Hello Bcc: spy@evil.test"


def test_a_reply_carries_in_reply_to_and_references_unencoded() -> None:
    long_ids = [f"{'x' * 60}{n}@{'y' * 30}.example.com" for n in range(4)]
    built = mime.build(outgoing(in_reply_to=long_ids[-1], references=long_ids))
    head = header_block(built.raw)

    assert f"In-Reply-To: <{long_ids[-1]}>" in head
    assert "References: <" + ">\r\n <".join(long_ids) + ">" in head
    assert "=?" not in head.split("In-Reply-To:")[1]  # never an encoded word


def test_reply_references_keep_the_root_and_the_latest() -> None:
    chain = [f"m{n}@x.test" for n in range(30)]

    references = mime.reply_references("parent@x.test", chain)

    assert len(references) == mime.MAX_REFERENCES
    assert references[0] == "m0@x.test"
    assert references[-1] == "parent@x.test"
    assert mime.reply_references("p@x.test", ["a@x.test", "p@x.test"]) == ("a@x.test", "p@x.test")


def test_reply_and_forward_subjects_do_not_stack() -> None:
    assert mime.reply_subject("Quote") == "Re: Quote"
    assert mime.reply_subject("RE: Quote") == "RE: Quote"
    assert mime.reply_subject("AW: Angebot") == "AW: Angebot"
    assert mime.reply_subject("Fwd: Quote") == "Re: Fwd: Quote"
    assert mime.reply_subject("") == "Re:"
    assert mime.forward_subject("Quote") == "Fwd: Quote"
    assert mime.forward_subject("FW: Quote") == "FW: Quote"
    assert mime.forward_subject("WG: Angebot") == "WG: Angebot"
    assert mime.forward_subject("Re: Quote") == "Fwd: Re: Quote"
    assert mime.forward_subject("Region: north") == "Fwd: Region: north"


def test_bcc_is_kept_in_the_stored_copy_and_stripped_for_the_server() -> None:
    many = [mime.Party(f"person{n}@acme.test", f"Person Number {n}") for n in range(6)]
    built = mime.build(outgoing(bcc=many, subject="About Bcc: nothing"))

    sent = mime.transmitted(built.raw)

    assert re.search(rb"(?m)^Bcc: ", built.raw)
    assert not re.search(rb"(?mi)^bcc:", sent)
    assert b"person5@acme.test" in built.raw
    assert b"person5@acme.test" not in sent  # the folded lines went with it
    assert b"Subject: About Bcc: nothing" in sent
    assert sent[sent.index(b"\r\n\r\n") :] == built.raw[built.raw.index(b"\r\n\r\n") :]
    assert parse_message(sent).body_text == parse_message(built.raw).body_text


def test_message_ids_carry_our_token() -> None:
    token, message_id = mime.new_message_id("CRM.Example.com")

    assert re.fullmatch(r"[0-9a-f]{32}\.outbox@crm\.example\.com", message_id)
    assert mime.outbox_token(f"<{message_id}>") == token
    assert mime.outbox_token("abc@customer.test") is None
    assert mime.new_message_id("crm.example.com")[0] != token


def test_the_plain_text_alternative_reads_like_the_html() -> None:
    markup = """
    <html><head><style>p { color: red }</style><title>x</title></head><body>
    <h1>Offer</h1>
    <p>Dear&nbsp;Pat,<br>here is <b>our</b> offer:</p>
    <ul><li>Support</li><li>Training<ol><li>Day one</li><li>Day two</li></ol></li></ul>
    <p>See <a href="https://acme.test/offer">the offer page</a>, <a href="https://acme.test">https://acme.test</a>
    or write to <a href="mailto:sales@acme.test">sales@acme.test</a>.</p>
    <div>Line one</div><div>Line two</div>
    <img src="https://acme.test/logo.png" alt="Acme logo">
    <script>alert(1)</script>
    <blockquote><p>Pat wrote:</p><blockquote><p>Can you send a quote?</p></blockquote></blockquote>
    <pre>  keep   this
  spacing</pre>
    </body></html>
    """

    text = mime.html_to_text(markup)

    assert text == (
        "Offer\n"
        "\n"
        "Dear Pat,\n"
        "here is our offer:\n"
        "\n"
        "- Support\n"
        "- Training\n"
        "  1. Day one\n"
        "  2. Day two\n"
        "\n"
        "See the offer page (https://acme.test/offer), https://acme.test or write to "
        "sales@acme.test.\n"
        "\n"
        "Line one\n"
        "Line two\n"
        "Acme logo\n"
        "\n"
        "> Pat wrote:\n"
        ">\n"
        "> > Can you send a quote?\n"
        "\n"
        "  keep   this\n"
        "  spacing"
    )


def test_right_to_left_text_keeps_its_direction() -> None:
    given = f'<p dir="rtl">{PERSIAN}</p><p dir="ltr">Hello</p>'
    built = mime.build(outgoing(body_html=given))
    assert given in built.body_html
    assert "<body>" in built.body_html  # the editor chose directions: nothing added

    fragment = mime.build(outgoing(body_html=f"<p>{PERSIAN}</p><p>Hello</p>"))
    assert '<body dir="rtl">' in fragment.body_html
    assert fragment.body_text.startswith(PERSIAN)
    latin = mime.build(outgoing(body_html="<p>Hello سلام</p>"))
    assert "<body>" in latin.body_html

    parsed = parse_message(fragment.raw)
    assert '<body dir="rtl">' in parsed.body_html
    assert PERSIAN in parsed.body_text


def test_a_full_html_document_is_sent_as_given() -> None:
    document = "<!DOCTYPE html><html><body><p>Hi</p></body></html>"

    assert mime.build(outgoing(body_html=document)).body_html == document
