"""Row-level security on this app's tenant tables (crm.tenancy.RowLevelSecurity)."""

from django.db import migrations

from crm.tenancy import RowLevelSecurity


class Migration(migrations.Migration):
    dependencies = [("contacts", "0001_initial")]

    operations = [
        RowLevelSecurity("organization"),
        RowLevelSecurity("organizationlabel"),
        RowLevelSecurity("organizationrelation"),
        RowLevelSecurity("person"),
        RowLevelSecurity("personemail"),
        RowLevelSecurity("personphone"),
        RowLevelSecurity("personlabel"),
    ]
