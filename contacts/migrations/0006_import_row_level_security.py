"""Row-level security on the import tables (crm.tenancy.RowLevelSecurity)."""

from django.db import migrations

from crm.tenancy import RowLevelSecurity


class Migration(migrations.Migration):
    dependencies = [("contacts", "0005_import")]

    operations = [
        RowLevelSecurity("importjob"),
        RowLevelSecurity("importrow"),
    ]
