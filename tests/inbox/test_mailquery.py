"""The search language of the Sales Inbox (`inbox.mailquery`) and the language guess of
`inbox.languages`: pure, no database."""

# ruff: noqa: RUF001 - the Turkish dotless i is a letter here, not a typo
from __future__ import annotations

from datetime import date

import pytest

from inbox import languages
from inbox.mailquery import MailQuery, parse, to_text


def test_free_words_and_quoted_phrases_are_terms_a_phrase_one_item() -> None:
    query = parse('offer  "price   list" Teklif')
    assert query.terms == ("offer", "price list", "Teklif")
    assert query.errors == ()
    assert query.has_text


def test_a_minus_leaves_out_a_word_or_a_phrase() -> None:
    query = parse('quote -spam -"out of office" - alone')
    assert query.terms == ("quote", "alone")
    assert query.excluded == ("spam", "out of office")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("from:alice@acme.com", ("alice@acme.com",)),
        ("from:acme.com", ("acme.com",)),
        ("FROM:alice", ("alice",)),
        ('from:"Alice   Smith"', ("Alice Smith",)),
        ("from:a from:b", ("a", "b")),
    ],
)
def test_from_takes_an_address_a_domain_or_a_name(text: str, expected: tuple[str, ...]) -> None:
    assert parse(text).from_ == expected


def test_to_label_has_is_operators() -> None:
    query = parse('to:bob@acme.com label:Hot label:"Big deal" has:attachment is:unread is:linked')
    assert query.to == ("bob@acme.com",)
    assert query.labels == ("Hot", "Big deal")
    assert query.has_attachment is True
    assert query.unread is True
    assert query.linked is True
    assert query.has_text  # to: is answered by the full-text index
    assert not parse("label:Hot has:attachment is:unread").has_text
    assert parse("is:read is:unlinked has:Attachments") == MailQuery(
        unread=False, linked=False, has_attachment=True
    )


def test_dates_take_dashes_or_slashes() -> None:
    query = parse("before:2026-11-01 after:2026/10/1")
    assert query.before == date(2026, 11, 1)
    assert query.after == date(2026, 10, 1)


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("before:yesterday", "before: needs a date like 2026-11-01"),
        ("after:2026-02-30", "after: needs a date like 2026-11-01"),
        ("has:pdf", "has: understands has:attachment"),
        ("is:starred", "is: understands is:unread, is:read, is:linked and is:unlinked"),
        ("from:", "from: needs a value, like from:alice@example.com"),
        ("label:", "label: needs a value, like label:Hot"),
        ("to: bob", "to: needs a value, like to:acme.com"),
        ('from:""', "from: needs a value, like from:alice@example.com"),
        ("-from:alice", "-from: is not supported: leave out words with -word"),
        ("after:2026-11-02 before:2026-11-01", "after: must be earlier than before:"),
    ],
)
def test_mistakes_are_named_in_plain_words_and_never_raise(text: str, error: str) -> None:
    assert parse(text).errors == (error,)


def test_what_was_understood_stays_beside_an_error() -> None:
    query = parse("offer before:someday is:unread")
    assert query.terms == ("offer",)
    assert query.unread is True
    assert query.before is None
    assert len(query.errors) == 1


def test_a_colon_that_is_not_an_operator_is_part_of_a_word() -> None:
    query = parse("re: 10:30 http://acme.com/x Subject:offer")
    assert query.terms == ("re:", "10:30", "http://acme.com/x", "Subject:offer")
    assert query.errors == ()


def test_an_unclosed_quote_runs_to_the_end() -> None:
    assert parse('quote "price list').terms == ("quote", "price list")


def test_empty_and_blank_text_is_the_empty_query() -> None:
    for text in ("", "   ", '""', "-"):
        assert parse(text).is_empty, text


QUERIES = [
    'offer "price list" -spam -"out of office" from:alice@acme.com from:"Alice Smith" '
    'to:acme.com label:Hot label:"Big deal" has:attachment is:unread is:linked '
    "before:2026-11-01 after:2026-10-01",
    "is:read is:unlinked",
    're: "10:30" -"-x" "from:alice" label:"a:b"',
    "Łódź żółw Teklifleri göndereceğiz",
]


@pytest.mark.parametrize("text", QUERIES)
def test_to_text_reads_back_the_same_query(text: str) -> None:
    query = parse(text)
    assert query.errors == ()
    assert parse(to_text(query)) == query
    assert to_text(parse(to_text(query))) == to_text(query)


def test_to_text_is_canonical() -> None:
    query = parse('is:unread label:Hot from:Alice "big deal" -spam before:2026/1/2 offer')
    assert to_text(query) == (
        '"big deal" offer -spam from:Alice label:Hot is:unread before:2026-01-02'
    )
    assert to_text(MailQuery()) == ""


def test_errors_are_not_written_back() -> None:
    assert to_text(parse("offer is:starred")) == "offer"


# --- The language of a message -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Hi Anna, please find the updated quote for the project attached. Best regards", "en"),
        ("Beste Jan, graag sturen wij u de offerte voor het project. Met vriendelijke groet", "nl"),
        ("Merhaba, teklifi yarın göndereceğiz. Fiyatlar için teşekkürler. Saygılarımla", "tr"),
        ("Tere! Saadan teile pakkumise homme. Aitäh ja parimate soovidega, Kõik on korras", "et"),
        ("Dzień dobry, przesyłam fakturę za usługi. Proszę o potwierdzenie. Pozdrawiam", "pl"),
    ],
)
def test_the_language_of_a_message_is_guessed_from_its_common_words(
    text: str, language: str
) -> None:
    assert languages.detect(text) == language


def test_too_few_hints_is_no_language() -> None:
    assert languages.detect("") is None
    assert languages.detect("Invoice 2026-11 / PO 4711") is None
