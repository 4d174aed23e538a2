# Production image: gunicorn serves the app; the same image runs the worker and beat.
FROM python:3.11-slim AS base

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    DEBUG=false \
    STATIC_MANIFEST=true

WORKDIR /app
RUN useradd --create-home --uid 1000 app

COPY requirements.txt .
RUN pip install -r requirements.txt

COPY . .
# collectstatic needs settings to load; a throwaway key is fine at build time only.
RUN SECRET_KEY=build-only-not-secret-0123456789abcdefghij \
    DATABASE_URL=postgres://build@localhost/build REDIS_URL=redis://localhost:6379/0 \
    python manage.py collectstatic --no-input \
 && mkdir -p /app/.data/media /app/.data/edge && chown -R app:app /app/.data

USER app
EXPOSE 8000
# Workers, threads and keep-alive: config/gunicorn.py (WEB_CONCURRENCY etc. override).
ENV GUNICORN_ACCESS_LOG=-
CMD ["gunicorn", "config.wsgi:application", "--config", "config/gunicorn.py"]
