"""Smart fields of email templates (B6), pure: filling, escaping, missing and unknown fields."""

# ruff: noqa: RUF001 - the Turkish dotless i is a letter here, not a typo

from __future__ import annotations

from inbox import smartfields

VALUES: smartfields.FieldValues = {
    "person": {"name": "Ayşe Yılmaz", "first_name": "Ayşe", "email": "ayse@example.com.tr"},
    "organization": {"name": "Smith & <Sons>"},
    "deal": {"title": "Printers", "value": "12,000.00", "currency": "EUR", "stage": None},
    "user": {"name": "Rob Rep", "first_name": "Rob"},
}


def test_fields_are_filled_and_escaped_for_html() -> None:
    rendered = smartfields.render(
        "<p>Hello {{person.first_name}},</p><p>{{ organization.name }}: {{deal.value}} "
        "{{deal.currency}}</p><p>{{user.name}}</p>",
        VALUES,
    )
    assert rendered.text == (
        "<p>Hello Ayşe,</p><p>Smith &amp; &lt;Sons&gt;: 12,000.00 EUR</p><p>Rob Rep</p>"
    )
    assert rendered.missing == ()
    assert rendered.unknown == ()


def test_a_subject_takes_values_as_they_are() -> None:
    rendered = smartfields.render("Offer for {{organization.name}}", VALUES, as_html=False)
    assert rendered.text == "Offer for Smith & <Sons>"


def test_fields_without_a_value_are_empty_and_reported_once() -> None:
    rendered = smartfields.render(
        "{{deal.stage}} / {{lead.title}} / {{deal.stage}} / {{person.phone}}", VALUES
    )
    assert rendered.text == " /  /  / "
    assert rendered.missing == ("deal.stage", "lead.title", "person.phone")


def test_unknown_fields_stay_visible_and_other_braces_are_text() -> None:
    rendered = smartfields.render(
        "{{deal.titel}} {{ person.first_name }} {{not a field}} {single}", VALUES
    )
    assert rendered.text == "{{deal.titel}} Ayşe {{not a field}} {single}"
    assert rendered.unknown == ("deal.titel",)
    assert rendered.missing == ()


def test_the_fields_a_template_uses() -> None:
    assert smartfields.fields_used(
        "{{deal.title}} {{person.first_name}} {{deal.title}} {{deal.nope}}"
    ) == ("deal.title", "person.first_name")


def test_first_name() -> None:
    assert smartfields.first_name("  Ayşe Yılmaz ") == "Ayşe"
    assert smartfields.first_name("") == ""
