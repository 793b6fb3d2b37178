from django.apps import AppConfig


class CrmConfig(AppConfig):
    name = "crm"
    verbose_name = "CRM platform"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Imported here: models must be loaded first. crm.tasks registers webhook_deliver, which
        # crm.webhooks enqueues by name (it sits below crm.tasks in the layers).
        from crm import hooks, tasks, webhooks  # noqa: F401

        hooks.subscribe(hooks.ITEM_EVENT, webhooks.item_event_handle)
