"""Row-level security on this app's tenant tables (crm.tenancy.RowLevelSecurity)."""

from django.db import migrations

from crm.tenancy import RowLevelSecurity


class Migration(migrations.Migration):
    dependencies = [("crm", "0003_labels_changes_webhooks")]

    operations = [
        RowLevelSecurity("label"),
        RowLevelSecurity("visibilitydefault"),
        RowLevelSecurity("itemchange"),
        RowLevelSecurity("webhook"),
        RowLevelSecurity("webhookdelivery"),
    ]
