from django.db import migrations

MONEY = "kind IN ('order', 'bump', 'upsell_accept', 'downsell_accept', 'refund')"


class Migration(migrations.Migration):
    dependencies = [("analytics", "0009_stepdaily_currency")]

    operations = [
        # Customer value counts downsells too: the money events' index covers them
        # (an index whose predicate leaves them out cannot serve the query).
        migrations.RunSQL(
            "DROP INDEX IF EXISTS analytics_event_money; "
            "CREATE INDEX IF NOT EXISTS analytics_event_money ON analytics_event "
            f"(workspace_id, visitor_id, occurred_at) WHERE {MONEY};",
            "DROP INDEX IF EXISTS analytics_event_money; "
            "CREATE INDEX IF NOT EXISTS analytics_event_money ON analytics_event "
            "(workspace_id, visitor_id, occurred_at) "
            "WHERE kind IN ('order', 'bump', 'upsell_accept', 'refund');",
        ),
    ]
