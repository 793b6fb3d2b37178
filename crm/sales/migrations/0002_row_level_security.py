"""Row-level security on this app's tenant tables (crm.tenancy.RowLevelSecurity)."""

from django.db import migrations

from crm.tenancy import RowLevelSecurity


class Migration(migrations.Migration):
    dependencies = [("sales", "0001_initial")]

    operations = [
        RowLevelSecurity("pipeline"),
        RowLevelSecurity("stage"),
        RowLevelSecurity("deal"),
        RowLevelSecurity("deallabel"),
        RowLevelSecurity("dealparticipant"),
        RowLevelSecurity("lead"),
        RowLevelSecurity("leadlabel"),
        RowLevelSecurity("leadconversion"),
        RowLevelSecurity("projectboard"),
        RowLevelSecurity("projectphase"),
        RowLevelSecurity("project"),
        RowLevelSecurity("projectlabel"),
        RowLevelSecurity("projectdeal"),
        RowLevelSecurity("projectperson"),
        RowLevelSecurity("projectorganization"),
    ]
