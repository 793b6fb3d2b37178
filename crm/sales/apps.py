from django.apps import AppConfig


class SalesConfig(AppConfig):
    name = "crm.sales"
    label = "sales"
    verbose_name = "Deals, leads and projects"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Imported here: models must be loaded first. The platform's demo cannot import this
        # app, so the app hands it its loader; INSTALLED_APPS puts contacts first, so the
        # persons and organizations the deals link to exist when it runs.
        from crm import demo
        from crm.sales import demo as sales_demo
        from crm.sales import imports

        demo.register(sales_demo.load)
        imports.register()
