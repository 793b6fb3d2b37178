"""The demo company's organizations and persons (registered with `crm.demo` in ready()).

Written through the services, as the demo admin with source "system", so the demo has change
logs and item events like real data. Addresses and websites use the reserved `.example` and
`example.net` domains: a demo must never mail or link to a real company."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from contacts import services
from contacts.models import ContactLabel, Organization, RelationKind
from contacts.services import ContactPoint, OrganizationFields, PersonFields
from crm.access import Visibility
from crm.demo import DemoContext
from crm.models import LabelColor, LabelKind
from crm.services import label_create

SOURCE = "system"
LABELS = (
    ("Customer", LabelColor.GREEN),
    ("Prospect", LabelColor.BLUE),
    ("VIP", LabelColor.PURPLE),
)


@dataclass(frozen=True)
class _Org:
    name: str
    industry: str
    website: str
    address: Mapping[str, str]
    employees: int
    revenue: Decimal
    by_rep: bool = False  # owned by Rob (else Dana)
    labels: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Person:
    first_name: str
    last_name: str
    job_title: str
    org: str | None
    emails: tuple[tuple[str, str], ...]  # (address, label)
    phones: tuple[tuple[str, str], ...]  # (number, label)
    by_rep: bool = False
    labels: tuple[str, ...] = ()
    owner_only: bool = False
    notes: str = ""
    postal_address: Mapping[str, str] = field(default_factory=dict)


def _address(
    *, route: str, number: str, postal_code: str, locality: str, country: str
) -> dict[str, str]:
    return {
        "value": f"{route} {number}, {postal_code} {locality}, {country}",
        "route": route,
        "street_number": number,
        "postal_code": postal_code,
        "locality": locality,
        "country": country,
    }


VAN_DIJK = "Van Dijk Logistiek B.V."
TAMM_SAAR = "Tamm & Saar OÜ"
KOWALSKI = "Kowalski Meble Sp. z o.o."
YILDIZ = "Yıldız Tekstil A.Ş."  # noqa: RUF001 - the Turkish dotless i, on purpose
BRIGHTWATER = "Brightwater Group plc"
BRIGHTWATER_RETAIL = "Brightwater Retail Inc."

ORGANIZATIONS = (
    _Org(
        VAN_DIJK,
        industry="Logistics",
        website="https://vandijk-logistiek.example",
        address=_address(
            route="Waalhaven Oostzijde",
            number="14",
            postal_code="3087 BM",
            locality="Rotterdam",
            country="Netherlands",
        ),
        employees=420,
        revenue=Decimal("61000000"),
        labels=("Customer",),
    ),
    _Org(
        TAMM_SAAR,
        industry="Software",
        website="https://tammsaar.example",
        address=_address(
            route="Narva mnt",
            number="5",
            postal_code="10117",
            locality="Tallinn",
            country="Estonia",
        ),
        employees=35,
        revenue=Decimal("3200000"),
        by_rep=True,
        labels=("Prospect",),
    ),
    _Org(
        KOWALSKI,
        industry="Furniture manufacturing",
        website="https://kowalski-meble.example",
        address=_address(
            route="ul. Głogowska",
            number="120",
            postal_code="60-243",
            locality="Poznań",
            country="Poland",
        ),
        employees=180,
        revenue=Decimal("24000000"),
        labels=("Customer",),
    ),
    _Org(
        YILDIZ,
        industry="Textiles",
        website="https://yildiz-tekstil.example",
        address=_address(
            route="Mavi Cadde",
            number="12",
            postal_code="16140",
            locality="Nilüfer, Bursa",
            country="Türkiye",
        ),
        employees=650,
        revenue=Decimal("48000000"),
        by_rep=True,
        labels=("Prospect",),
    ),
    _Org(
        BRIGHTWATER,
        industry="Retail",
        website="https://brightwater-group.example",
        address=_address(
            route="Bishopsgate",
            number="100",
            postal_code="EC2N 4AG",
            locality="London",
            country="United Kingdom",
        ),
        employees=5200,
        revenue=Decimal("910000000"),
        labels=("Customer",),
    ),
    _Org(
        BRIGHTWATER_RETAIL,
        industry="Retail",
        website="https://brightwater-retail.example",
        address=_address(
            route="Boylston Street",
            number="800",
            postal_code="02199",
            locality="Boston, MA",
            country="United States",
        ),
        employees=1300,
        revenue=Decimal("210000000"),
        by_rep=True,
        labels=("Prospect",),
    ),
)

WORK, HOME, MOBILE = ContactLabel.WORK, ContactLabel.HOME, ContactLabel.MOBILE

PERSONS = (
    _Person(
        "Sanne",
        "de Vries",
        "Head of Procurement",
        VAN_DIJK,
        # Typed in mixed case, as people do: the stored normalized form is lower case.
        emails=(("Sanne.deVries@VanDijk-Logistiek.example", WORK), ("sanne.dv@example.net", HOME)),
        phones=(("+31 10 412 3456", WORK), ("+31 6 1234 5678", MOBILE)),
        labels=("Customer", "VIP"),
        notes="Decides on all software purchases above EUR 10k.",
    ),
    _Person(
        "Joost",
        "Bakker",
        "Operations Manager",
        VAN_DIJK,
        emails=(("joost.bakker@vandijk-logistiek.example", WORK),),
        phones=(("+31 10 412 3470", WORK),),
        by_rep=True,
        labels=("Customer",),
    ),
    _Person(
        "Kadri",
        "Tamm",
        "CEO",
        TAMM_SAAR,
        emails=(("kadri@tammsaar.example", WORK), ("kadri.tamm@example.net", HOME)),
        phones=(("+372 5123 4567", MOBILE),),
        labels=("Prospect",),
    ),
    _Person(
        "Mart",
        "Saar",
        "CTO",
        TAMM_SAAR,
        emails=(("mart@tammsaar.example", WORK),),
        phones=(("+372 640 1234", WORK),),
        by_rep=True,
    ),
    _Person(
        "Agnieszka",
        "Kowalska",
        "Purchasing Director",
        KOWALSKI,
        emails=(("a.kowalska@kowalski-meble.example", WORK),),
        phones=(("+48 61 867 12 34", WORK),),
        labels=("Customer",),
    ),
    _Person(
        "Tomasz",
        "Nowak",
        "Sales Manager",
        KOWALSKI,
        emails=(("t.nowak@kowalski-meble.example", WORK),),
        phones=(("+48 601 234 567", MOBILE),),
        by_rep=True,
    ),
    _Person(
        "Elif",
        "Yıldız",  # noqa: RUF001 - the Turkish dotless i, on purpose
        "General Manager",
        YILDIZ,
        emails=(("elif.yildiz@yildiz-tekstil.example", WORK),),
        phones=(("+90 224 411 22 33", WORK),),
        labels=("Prospect", "VIP"),
    ),
    _Person(
        "Mehmet",
        "Demir",
        "Export Manager",
        YILDIZ,
        emails=(("mehmet.demir@yildiz-tekstil.example", WORK), ("mdemir@example.net", HOME)),
        phones=(("+90 532 123 45 67", MOBILE),),
        by_rep=True,
    ),
    _Person(
        "Olivia",
        "Bennett",
        "Chief Financial Officer",
        BRIGHTWATER,
        emails=(("olivia.bennett@brightwater-group.example", WORK),),
        phones=(("+44 20 7946 0123", WORK),),
        labels=("Customer", "VIP"),
    ),
    _Person(
        "James",
        "Whitaker",
        "IT Director",
        BRIGHTWATER,
        emails=(("james.whitaker@brightwater-group.example", WORK),),
        phones=(("+44 20 7946 0456", WORK), ("+44 7700 900123", MOBILE)),
        labels=("Customer",),
    ),
    _Person(
        "Emily",
        "Carter",
        "VP Store Operations",
        BRIGHTWATER_RETAIL,
        emails=(("emily.carter@brightwater-retail.example", WORK),),
        phones=(("+1 617 555 0142", WORK),),
        by_rep=True,
        labels=("Prospect",),
    ),
    _Person(
        "Liam",
        "O'Connor",
        "Independent consultant",
        None,
        emails=(("liam@oconnor-consulting.example", WORK),),
        phones=(("+353 87 123 4567", MOBILE),),
        by_rep=True,
        # Rob's own contact: shows that an owner-only person stays hidden from colleagues.
        owner_only=True,
        notes="Introduced me to Brightwater. Keep to myself for now.",
        postal_address=_address(
            route="Baggot Street Lower",
            number="22",
            postal_code="D02 X658",
            locality="Dublin",
            country="Ireland",
        ),
    ),
)


def _labels(*, context: DemoContext, kind: str) -> dict[str, int]:
    return {
        name: label_create(company=context.company, kind=kind, name=name, color=color).pk
        for name, color in LABELS
    }


def _organizations(*, context: DemoContext) -> dict[str, Organization]:
    label_ids = _labels(context=context, kind=LabelKind.ORGANIZATION)
    created: dict[str, Organization] = {}
    for org in ORGANIZATIONS:
        fields: OrganizationFields = {
            "name": org.name,
            "owner_id": (context.rep if org.by_rep else context.admin).pk,
            "industry": org.industry,
            "website": org.website,
            "address": org.address,
            "employee_count": org.employees,
            "annual_revenue": org.revenue,
            "label_ids": [label_ids[name] for name in org.labels],
        }
        created[org.name] = services.organization_create(
            company=context.company,
            membership=context.admin_membership,
            fields=fields,
            source=SOURCE,
        )
    return created


def load(context: DemoContext) -> None:
    organizations = _organizations(context=context)
    services.organization_relation_add(
        company=context.company,
        membership=context.admin_membership,
        kind=RelationKind.PARENT,
        organization=organizations[BRIGHTWATER],
        related_organization=organizations[BRIGHTWATER_RETAIL],
    )
    label_ids = _labels(context=context, kind=LabelKind.PERSON)
    for person in PERSONS:
        fields: PersonFields = {
            "first_name": person.first_name,
            "last_name": person.last_name,
            "job_title": person.job_title,
            "owner_id": (context.rep if person.by_rep else context.admin).pk,
            "org_id": None if person.org is None else organizations[person.org].pk,
            "emails": [
                ContactPoint(value, primary=index == 0, label=label)
                for index, (value, label) in enumerate(person.emails)
            ],
            "phones": [
                ContactPoint(value, primary=index == 0, label=label)
                for index, (value, label) in enumerate(person.phones)
            ],
            "label_ids": [label_ids[name] for name in person.labels],
        }
        if person.owner_only:
            fields["visible_to"] = Visibility.OWNER
        if person.notes:
            fields["notes"] = person.notes
        if person.postal_address:
            fields["postal_address"] = person.postal_address
        services.person_create(
            company=context.company,
            membership=context.admin_membership,
            fields=fields,
            source=SOURCE,
        )
