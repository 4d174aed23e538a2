from __future__ import annotations

from django.db import migrations


def clamp(apps, schema_editor) -> None:
    # The Tripwire template shipped a radius of 999 that the theme form refuses.
    FunnelTheme = apps.get_model("pages", "FunnelTheme")
    FunnelTheme.objects.filter(button_radius__gt=60).update(button_radius=60)


class Migration(migrations.Migration):
    dependencies = [("pages", "0003_merge_0002_domain_0002_split_tests")]

    operations = [migrations.RunPython(clamp, migrations.RunPython.noop)]
