"""factory_boy factories for rows the cast does not cover. Tenant rows are created inside
`tenancy.bound(company)`: the runtime role may only write the company its transaction is bound
to."""

from __future__ import annotations

from factory.declarations import Sequence
from factory.django import DjangoModelFactory, Password

from crm.models import User


class UserFactory(DjangoModelFactory[User]):
    class Meta:
        model = User
        django_get_or_create = ("email",)

    email = Sequence(lambda n: f"user{n}@example.test")
    name = Sequence(lambda n: f"User {n}")
    password = Password("correct horse battery staple")
