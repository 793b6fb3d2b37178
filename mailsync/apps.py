from django.apps import AppConfig


class MailsyncConfig(AppConfig):
    name = "mailsync"
    verbose_name = "Mail sync"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from mailsync import tasks  # noqa: F401  (registers the Celery tasks)
