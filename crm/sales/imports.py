"""Deals and leads for the spreadsheet import (contacts.imports): the framework lives in
contacts, which cannot import us, so we hand it our handlers (`register`, called from
SalesConfig.ready()). Stages and pipelines are named in the file, as Pipedrive exports them;
persons and organizations named in a row are found by name or made."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from contacts.imports import registry
from contacts.imports.kinds import (
    ImportContext,
    ImportField,
    ItemHandler,
    RowError,
    RowResult,
    currency,
    date,
    label_ids,
    money,
    owner_id,
)
from contacts.imports.persons import organization_ensure, person_ensure
from contacts.models import ImportRowOutcome
from crm.access import ItemKind
from crm.sales import services
from crm.sales.models import Deal, Lead, Pipeline, Stage
from crm.services import ServiceError

_PARTY_FIELDS = (
    ImportField(
        "person", gettext_lazy("Person"), ("person - name", "contact person", "person name")
    ),
    ImportField(
        "organization",
        gettext_lazy("Organization"),
        ("organization - name", "organisation", "company"),
    ),
    ImportField("owner", gettext_lazy("Owner"), ("owner name", "owner email"), "owner"),
)


def _parties(
    *, context: ImportContext, values: Mapping[str, str], also_created: list[list[str]]
) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    organization = None
    if values.get("organization", "").strip():
        organization = organization_ensure(
            context=context, name=values["organization"].strip(), also_created=also_created
        )
        fields["organization_id"] = organization.pk
    if values.get("person", "").strip():
        fields["person_id"] = person_ensure(
            context=context,
            name=values["person"].strip(),
            organization=organization,
            also_created=also_created,
        ).pk
    if values.get("owner", "").strip():
        fields["owner_id"] = owner_id(context=context, text=values["owner"])
    return fields


class DealHandler(ItemHandler):
    kind = ItemKind.DEAL
    label = gettext_lazy("Deals")
    label_kind = ItemKind.DEAL
    required = (("title",),)
    fields = (
        ImportField("title", gettext_lazy("Title"), ("deal title", "deal name", "name")),
        ImportField("value", gettext_lazy("Value"), ("amount", "deal value"), "number"),
        ImportField("currency", gettext_lazy("Currency"), ("deal currency",), "currency"),
        ImportField("pipeline", gettext_lazy("Pipeline"), ("deal pipeline",)),
        ImportField("stage", gettext_lazy("Stage"), ("deal stage",)),
        *_PARTY_FIELDS,
        ImportField(
            "expected_close_date",
            gettext_lazy("Expected close date"),
            ("close date", "expected close"),
            "date",
        ),
        ImportField("label", gettext_lazy("Label"), ("labels",), "label"),
    )

    def check(self, *, context: ImportContext, values: Mapping[str, str]) -> dict[str, str]:
        problems = super().check(context=context, values=values)
        try:
            self._stage(context=context, values=values)
        except RowError as error:
            problems.setdefault(error.field or "stage", error.message)
        return problems

    def _stage(self, *, context: ImportContext, values: Mapping[str, str]) -> Stage | None:
        """The stage the row names (in its pipeline, when it names one); None for neither."""
        stages: list[Stage] | None = context.cache.get("stages")
        if stages is None:
            stages = list(
                Stage.objects.for_company(context.company)
                .select_related("pipeline")
                .order_by("pipeline__position", "pipeline_id", "position", "id")
            )
            context.cache["stages"] = stages
        pipeline_name = " ".join(values.get("pipeline", "").split()).lower()
        stage_name = " ".join(values.get("stage", "").split()).lower()
        if pipeline_name:
            stages = [s for s in stages if s.pipeline.name.lower() == pipeline_name]
            if not stages and not self._pipeline_exists(context=context, name=pipeline_name):
                raise RowError(
                    _("No pipeline named %(name)s.") % {"name": values["pipeline"][:100]},
                    field="pipeline",
                )
        if stage_name:
            for stage in stages:
                if stage.name.lower() == stage_name:
                    return stage
            raise RowError(_("No stage named %(name)s.") % {"name": values["stage"][:100]})
        return stages[0] if pipeline_name and stages else None

    def _pipeline_exists(self, *, context: ImportContext, name: str) -> bool:
        return any(
            pipeline.lower() == name
            for pipeline in Pipeline.objects.for_company(context.company).values_list(
                "name", flat=True
            )
        )

    def apply(self, *, context: ImportContext, values: Mapping[str, str], policy: str) -> RowResult:
        self.checked(context=context, values=values)
        also_created: list[list[str]] = []
        fields: dict[str, Any] = {"title": values["title"].strip()}
        stage = self._stage(context=context, values=values)
        if stage is not None:
            fields["stage_id"], fields["pipeline_id"] = stage.pk, stage.pipeline_id
        if values.get("value", "").strip():
            fields["value"] = money(values["value"])
        if values.get("currency", "").strip():
            fields["currency"] = currency(values["currency"])
        if values.get("expected_close_date", "").strip():
            fields["expected_close_date"] = date(values["expected_close_date"])
        if values.get("label", "").strip():
            fields["label_ids"] = label_ids(context=context, text=values["label"], kind=self.kind)
        try:
            fields.update(_parties(context=context, values=values, also_created=also_created))
            deal = services.deal_create(
                company=context.company, membership=context.membership, fields=fields
            )
        except ServiceError as error:
            raise RowError(error.message) from None
        return RowResult(ImportRowOutcome.CREATED, str(deal.pk), None, also_created)

    def delete(self, *, context: ImportContext, object_id: str) -> None:
        deal = Deal.objects.for_company(context.company).filter(pk=int(object_id)).first()
        if deal is not None:
            services.deal_delete(company=context.company, membership=context.membership, deal=deal)


class LeadHandler(ItemHandler):
    kind = ItemKind.LEAD
    label = gettext_lazy("Leads")
    required = (("title",), ("person", "organization"))
    fields = (
        ImportField("title", gettext_lazy("Title"), ("lead title", "lead name", "name")),
        ImportField("value", gettext_lazy("Value"), ("amount", "lead value"), "number"),
        ImportField("currency", gettext_lazy("Currency"), ("lead currency",), "currency"),
        *_PARTY_FIELDS,
        ImportField(
            "expected_close_date",
            gettext_lazy("Expected close date"),
            ("close date", "expected close"),
            "date",
        ),
    )

    def apply(self, *, context: ImportContext, values: Mapping[str, str], policy: str) -> RowResult:
        self.checked(context=context, values=values)
        also_created: list[list[str]] = []
        fields: dict[str, Any] = {"title": values["title"].strip()}
        if values.get("value", "").strip():
            fields["value"] = {
                "amount": money(values["value"]),
                "currency": currency(
                    values.get("currency", "").strip() or services.DEFAULT_CURRENCY
                ),
            }
        if values.get("expected_close_date", "").strip():
            fields["expected_close_date"] = date(values["expected_close_date"])
        try:
            fields.update(_parties(context=context, values=values, also_created=also_created))
            lead = services.lead_create(
                company=context.company, membership=context.membership, fields=fields
            )
        except ServiceError as error:
            raise RowError(error.message) from None
        return RowResult(ImportRowOutcome.CREATED, str(lead.pk), None, also_created)

    def delete(self, *, context: ImportContext, object_id: str) -> None:
        lead = Lead.objects.for_company(context.company).filter(pk=object_id).first()
        if lead is not None:
            services.lead_delete(company=context.company, membership=context.membership, lead=lead)


def register() -> None:
    """Hand the import our item kinds (from SalesConfig.ready())."""
    registry.register(DealHandler())
    registry.register(LeadHandler())
