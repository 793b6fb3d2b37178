from django.apps import AppConfig


class ContactsConfig(AppConfig):
    name = "contacts"
    verbose_name = "Contacts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Imported here: models must be loaded first. The platform's demo cannot import this
        # app, so the app hands it its loader (it runs before crm.sales', which links to ours).
        from contacts import demo as contacts_demo
        from crm import demo

        demo.register(contacts_demo.load)
