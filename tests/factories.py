"""factory_boy factories. Tenant rows are created inside `tenancy.bound(company)`: the
runtime role may only write the company its transaction is bound to."""

from __future__ import annotations

import factory

from crm.models import User


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("email",)

    email = factory.Sequence(lambda n: f"user{n}@example.test")
    name = factory.Faker("name")
    password = factory.django.Password("correct horse battery staple")
