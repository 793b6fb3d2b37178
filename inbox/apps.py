from django.apps import AppConfig


class InboxConfig(AppConfig):
    name = "inbox"
    verbose_name = "Sales Inbox"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from crm import hooks
        from inbox import linking

        # Linking re-runs for mail already stored (C1, C2).
        hooks.subscribe(hooks.PERSON_ADDRESSES_CHANGED, linking.on_person_addresses_changed)
        hooks.subscribe(hooks.DEAL_STATUS_CHANGED, linking.on_deal_status_changed)
        hooks.subscribe(hooks.ITEM_EVENT, linking.on_item_event)
