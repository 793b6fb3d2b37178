from django.apps import AppConfig


class MailsyncConfig(AppConfig):
    name = "mailsync"
    verbose_name = "Mail sync"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from crm import hooks
        from mailsync import tasks  # registers the Celery tasks

        # Two-way sync: the inbox wrote provider actions; run them when their undo window ends.
        hooks.subscribe(tasks.ACTIONS_QUEUED, tasks.on_actions_queued)
        # The outbox: the inbox queued messages; deliver them when their undo window ends.
        hooks.subscribe(tasks.OUTBOX_QUEUED, tasks.on_outbox_queued)
        # Drafts: the inbox saved, sent or discarded one; keep its Drafts folder copy in step.
        hooks.subscribe(tasks.DRAFTS_CHANGED, tasks.on_drafts_changed)
