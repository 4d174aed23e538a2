from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("analytics", "0007_log_offset")]

    operations = [
        # Customer value reads only the money events of a workspace.
        migrations.RunSQL(
            "CREATE INDEX IF NOT EXISTS analytics_event_money ON analytics_event "
            "(workspace_id, visitor_id, occurred_at) "
            "WHERE kind IN ('order', 'bump', 'upsell_accept', 'refund');",
            "DROP INDEX IF EXISTS analytics_event_money;",
        ),
    ]
