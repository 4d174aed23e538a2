from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("funnels", "0007_published_offer"),
    ]

    operations = [
        migrations.AddField(
            model_name="product",
            name="updated_at",
            field=models.DateTimeField(auto_now=True),
        ),
        # Existing products last changed when they were made, as far as we know.
        migrations.RunSQL(
            "UPDATE funnels_product SET updated_at = created_at",
            migrations.RunSQL.noop,
        ),
    ]
