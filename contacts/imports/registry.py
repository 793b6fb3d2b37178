"""The item kinds the import knows, by name: a plain dict. Persons and organizations are ours;
crm.sales adds deals and leads from its AppConfig.ready() (it sits above contacts, so we
cannot import it)."""

from __future__ import annotations

from contacts.imports.kinds import ItemHandler
from contacts.imports.persons import OrganizationHandler, PersonHandler

_HANDLERS: dict[str, ItemHandler] = {
    handler.kind: handler for handler in (PersonHandler(), OrganizationHandler())
}


def register(handler: ItemHandler) -> None:
    _HANDLERS[handler.kind] = handler


def handler_for(kind: str) -> ItemHandler:
    """KeyError for a kind nobody registered."""
    return _HANDLERS[kind]


def handlers() -> dict[str, ItemHandler]:
    return dict(_HANDLERS)
