"""`inbox.smartcontext`: the smart field values of a message come from the items it is linked
to, only those the sender may see, and the composer's preview fills a template as sending will
(values escaped in the body, as they are in the subject, fields without a value reported)."""

from __future__ import annotations

import pytest

from crm import tenancy
from crm.models import Membership
from inbox import smartcontext
from tests.conftest import Cast
from tests.inbox.items import ZOE, Items, make_items

pytestmark = pytest.mark.django_db


@pytest.fixture
def items(cast: Cast) -> Items:
    return make_items(cast)


@pytest.fixture
def alice(cast: Cast) -> Membership:
    return cast.membership(cast.alice, cast.company_a)


@pytest.fixture
def bob(cast: Cast) -> Membership:
    return cast.membership(cast.bob, cast.company_a)


@pytest.fixture
def carol(cast: Cast) -> Membership:
    return cast.membership(cast.carol, cast.company_b)


def _values(membership: Membership, **links: object) -> dict[str, dict[str, str | None]]:
    with tenancy.bound(membership.company_id, user_id=membership.user_id):
        found = smartcontext.field_values(membership=membership, **links)  # type: ignore[arg-type]
    return {item: dict(fields) for item, fields in found.items()}


def test_a_deal_gives_its_fields_and_its_person_and_organization(
    bob: Membership, items: Items
) -> None:
    values = _values(bob, deal_id=items.deal.pk)

    assert values["deal"] == {
        "title": "Renewal <2027> & more",
        "value": "1,500.50 EUR",
        "currency": "EUR",
        "stage": items.deal.stage.name,
    }
    assert values["person"] == {
        "name": "Zoë Müller",
        "first_name": "Zoë",
        "last_name": "Müller",
        "email": ZOE,
        "phone": "+49 30 1234567",
        "job_title": "Head of <Purchasing>",
    }
    assert values["organization"] == {
        "name": "Müller & Söhne GmbH",
        "address": "Hauptstraße 5, 10115 Berlin",
    }
    # The sender and their company, always.
    assert values["user"] == {"name": "Bob Brown", "first_name": "Bob", "email": "bob@acme.test"}
    assert values["company"] == {"name": "Acme"}
    assert "lead" not in values
    assert "project" not in values


def test_a_lead_and_a_project_give_their_titles(bob: Membership, items: Items) -> None:
    values = _values(bob, lead_id=str(items.lead.pk), project_id=items.project.pk)

    assert values["lead"] == {"title": "Second site"}
    assert values["project"] == {"title": "Rollout"}
    assert values["person"]["name"] == "Zoë Müller"  # the lead's person
    assert values["organization"]["name"] == "Müller & Söhne GmbH"  # her organization
    assert _values(bob, lead_id="not-a-uuid").keys() == {"user", "company"}


def test_a_hidden_deal_fills_nothing_and_brings_no_person(
    bob: Membership, alice: Membership, items: Items
) -> None:
    values = _values(bob, deal_id=items.hidden_deal.pk)

    assert values.keys() == {"user", "company"}
    # Its owner sees it all.
    mine = _values(alice, deal_id=items.hidden_deal.pk)
    assert mine["deal"]["title"] == "Secret merger"
    assert mine["person"]["name"] == "Hidden Hannah"
    assert mine["organization"]["name"] == "Secret Corp"


def test_the_person_is_the_linked_one_else_the_recipients_else_the_deals(
    bob: Membership, alice: Membership, items: Items
) -> None:
    # A reply's linked person wins over everything.
    linked = _values(
        alice,
        deal_id=items.deal.pk,
        person_id=items.hidden_person.pk,
        recipient_address=ZOE,
    )
    assert linked["person"]["name"] == "Hidden Hannah"
    assert linked["organization"]["name"] == "Secret Corp"  # the person's organization

    # The greeting is for who reads it: the first recipient, written as mail clients write it.
    to_hannah = _values(
        alice, deal_id=items.deal.pk, recipient_address="Hannah <HANNAH@secret.test>"
    )
    assert to_hannah["person"]["first_name"] == "Hidden"
    assert to_hannah["deal"]["title"] == "Renewal <2027> & more"

    # Bob may not see Hannah: her address gives nothing, and the deal's person stands in.
    for_bob = _values(bob, deal_id=items.deal.pk, recipient_address="hannah@secret.test")
    assert for_bob["person"]["name"] == "Zoë Müller"
    hidden_link = _values(bob, person_id=items.hidden_person.pk)
    assert "person" not in hidden_link
    assert "organization" not in hidden_link

    # No link at all: the recipient alone.
    assert _values(bob, recipient_address=ZOE)["person"]["email"] == ZOE
    assert "person" not in _values(bob, recipient_address="stranger@nowhere.test")


def test_another_companys_items_give_nothing(carol: Membership, items: Items) -> None:
    values = _values(
        carol,
        deal_id=items.deal.pk,
        lead_id=str(items.lead.pk),
        project_id=items.project.pk,
        person_id=items.person.pk,
        recipient_address=ZOE,
    )

    assert values.keys() == {"user", "company"}
    assert values["company"] == {"name": "Globex"}


def test_the_preview_fills_escapes_and_reports_what_has_no_value(
    bob: Membership, items: Items
) -> None:
    with tenancy.bound(bob.company_id, user_id=bob.user_id):
        shown = smartcontext.preview(
            membership=bob,
            subject="{{deal.title}} for {{ organization.name }}\n",
            body_html=(
                "<p>Dear {{person.first_name}},</p>"
                "<p>{{deal.title}}: {{deal.value}} ({{lead.title}}, {{deal.colour}})</p>"
                "<p>{{person.job_title}}</p><p>{{user.name}}, {{company.name}}</p>"
            ),
            deal_id=items.deal.pk,
        )

    assert shown.subject == "Renewal <2027> & more for Müller & Söhne GmbH"
    assert "<p>Dear Zoë,</p>" in shown.body_html
    assert "Renewal &lt;2027&gt; &amp; more: 1,500.50 EUR (, {{deal.colour}})" in shown.body_html
    assert "<p>Head of &lt;Purchasing&gt;</p>" in shown.body_html
    assert "<p>Bob Brown, Acme</p>" in shown.body_html
    assert shown.missing == ("lead.title",)
    assert shown.unknown == ("deal.colour",)


def test_the_preview_of_a_hidden_deal_reports_its_fields_missing(
    bob: Membership, items: Items
) -> None:
    with tenancy.bound(bob.company_id, user_id=bob.user_id):
        shown = smartcontext.preview(
            membership=bob,
            subject="About {{deal.title}}",
            body_html="<p>Hi {{person.first_name}}</p><script>x()</script>",
            deal_id=items.hidden_deal.pk,
        )

    assert shown.subject == "About"
    assert shown.body_html == "<p>Hi </p>"  # cleaned too: it goes into the composer's page
    assert "Secret" not in shown.subject + shown.body_html
    assert shown.missing == ("deal.title", "person.first_name")


def test_the_field_menu_offers_every_field_by_item() -> None:
    menu = smartcontext.field_menu()
    tokens = [choice.token for group in menu for choice in group.choices]

    assert "{{person.first_name}}" in tokens
    assert "{{deal.value}}" in tokens
    assert "{{company.name}}" in tokens
    assert [group.label for group in smartcontext.field_menu(items=("user", "company"))] == [
        "You (the sender)",
        "Your company",
    ]
