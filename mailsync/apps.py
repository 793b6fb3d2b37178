from django.apps import AppConfig


class MailsyncConfig(AppConfig):
    name = "mailsync"
    verbose_name = "Mail sync"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from crm import hooks
        from mailsync import relink, tasks  # noqa: F401  (tasks registers the Celery tasks)

        hooks.subscribe(hooks.PERSON_ADDRESSES_CHANGED, relink.person_addresses_changed)
