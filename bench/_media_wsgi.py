"""The app with its uploaded media served in front of it, as the front server
(nginx) does in production: ``bench/pages.py`` runs DEBUG off, where Django
itself serves no /media/."""

from __future__ import annotations

from django.conf import settings
from whitenoise import WhiteNoise

from config.wsgi import application as app

application = WhiteNoise(app, max_age=31536000)
application.add_files(str(settings.MEDIA_ROOT), prefix=settings.MEDIA_URL)
