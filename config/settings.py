"""OpenFunnels settings: one file, every deployment knob read from the environment."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

from .env import (
    EnvError,
    database_config,
    env_bool,
    env_int,
    env_list,
    env_str,
    fail,
    redis_urls,
)
from .proxies import parse_networks

BASE_DIR = Path(__file__).resolve().parent.parent
DEFAULT_SECRET_KEY = "dev-insecure-openfunnels-secret-key-change-me"

try:
    # ---------------------------------------------------------------- core
    # On for a developer checkout; the Docker image and compose file set DEBUG=false.
    DEBUG = env_bool("DEBUG", True)
    SECRET_KEY = env_str("SECRET_KEY", DEFAULT_SECRET_KEY)
    if not DEBUG and (SECRET_KEY == DEFAULT_SECRET_KEY or len(SECRET_KEY) < 32):
        raise EnvError(
            "SECRET_KEY must be set to a random string of 32+ characters when DEBUG "
            "is off (python -c 'import secrets; print(secrets.token_urlsafe(50))')"
        )
    # The app's own (admin) hosts. Published funnels are never served on them: they
    # live on public hosts, <workspace-slug>.<PUBLIC_DOMAIN> and custom domains
    # (pages.public.hosts decides which is which, per request).
    APP_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]" if DEBUG else "")
    # Host[:port] under which every workspace gets its own subdomain. Use a domain
    # of its own (like github.io for GitHub), not a sibling of the app's host.
    PUBLIC_DOMAIN = env_str("PUBLIC_DOMAIN", "localhost" if DEBUG else "")
    PUBLIC_DOMAIN = PUBLIC_DOMAIN.strip().strip(".").lower()
    if not PUBLIC_DOMAIN:
        raise EnvError(
            "PUBLIC_DOMAIN must be set when DEBUG is off: the domain whose "
            "subdomains serve the published funnels (e.g. pages.example.com, "
            "with a wildcard DNS record *.pages.example.com)"
        )
    if "/" in PUBLIC_DOMAIN or "://" in PUBLIC_DOMAIN:
        raise EnvError(
            f"PUBLIC_DOMAIN is a host name (optionally :port), got {PUBLIC_DOMAIN!r}"
        )
    PUBLIC_SCHEME = env_str("PUBLIC_SCHEME", "http" if DEBUG else "https")
    if PUBLIC_SCHEME not in {"http", "https"}:
        raise EnvError(f"PUBLIC_SCHEME must be http or https, got {PUBLIC_SCHEME!r}")
    # Uploaded images from the app itself (make run); compose's proxy serves them
    # from the shared volume before a request reaches the app.
    SERVE_MEDIA = env_bool("SERVE_MEDIA", True)
    CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")
    SITE_URL = env_str("SITE_URL", "http://127.0.0.1:8000").rstrip("/")

    # ---------------------------------------------------------------- services
    DATABASES = {
        "default": database_config(
            env_str("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/openfunnels")
        )
    }
    REDIS_URL, CELERY_BROKER_URL = redis_urls(
        env_str("REDIS_URL", "redis://127.0.0.1:6379/0")
    )

    # ---------------------------------------------------------------- e-mail
    EMAIL_BACKEND = env_str(
        "EMAIL_BACKEND",
        "django.core.mail.backends.console.EmailBackend"
        if DEBUG
        else "django.core.mail.backends.smtp.EmailBackend",
    )
    EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
    EMAIL_PORT = env_int("EMAIL_PORT", 25)
    EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
    EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
    EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
    EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
    EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 20)
    DEFAULT_FROM_EMAIL = env_str(
        "DEFAULT_FROM_EMAIL", "OpenFunnels <noreply@localhost>"
    )
    SERVER_EMAIL = DEFAULT_FROM_EMAIL
    # Seconds before each retry of a refused sequence e-mail (then it is given up).
    SEQUENCE_RETRY_SECONDS = [
        int(n) for n in env_list("SEQUENCE_RETRY_SECONDS", "60,300,1800,7200")
    ]

    # ---------------------------------------------------------------- payments
    PAYMENT_GATEWAY = env_str("PAYMENT_GATEWAY", "test")
    STRIPE_SECRET_KEY = env_str("STRIPE_SECRET_KEY")
    STRIPE_PUBLISHABLE_KEY = env_str("STRIPE_PUBLISHABLE_KEY")
    STRIPE_WEBHOOK_SECRET = env_str("STRIPE_WEBHOOK_SECRET")
    if PAYMENT_GATEWAY not in {"test", "stripe"}:
        raise EnvError(
            f"PAYMENT_GATEWAY must be test or stripe, got {PAYMENT_GATEWAY!r}"
        )
    if PAYMENT_GATEWAY == "stripe" and not STRIPE_SECRET_KEY:
        raise EnvError("PAYMENT_GATEWAY=stripe needs STRIPE_SECRET_KEY")
    if PAYMENT_GATEWAY == "stripe" and not STRIPE_PUBLISHABLE_KEY:
        # Order forms collect the card with Stripe.js, which needs the public key.
        raise EnvError("PAYMENT_GATEWAY=stripe needs STRIPE_PUBLISHABLE_KEY")

    # ---------------------------------------------------------------- security
    SECURE_COOKIES = env_bool("SECURE_COOKIES", not DEBUG)
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000)
    STATIC_MANIFEST = env_bool("STATIC_MANIFEST", not DEBUG)

    # ---------------------------------------------------------------- API
    # Requests per API token and window: "600/minute", "20/second", "10000/hour".
    API_RATE_LIMIT = env_str("API_RATE_LIMIT", "600/minute")
    if not re.fullmatch(r"\d+/(second|minute|hour|day|[smhd])", API_RATE_LIMIT):
        raise EnvError(
            f"API_RATE_LIMIT must look like 600/minute, got {API_RATE_LIMIT!r}"
        )
    # Peers whose X-Forwarded-For / X-Forwarded-Proto are believed (config/proxies.py).
    TRUSTED_PROXIES = env_list("TRUSTED_PROXIES")
    try:
        parse_networks(TRUSTED_PROXIES)
    except ValueError as exc:
        raise EnvError(f"TRUSTED_PROXIES: {exc}") from None
    # Webhooks may target loopback/private/link-local addresses (self-hosters only).
    WEBHOOK_ALLOW_PRIVATE = env_bool("WEBHOOK_ALLOW_PRIVATE", False)
    # Image uploads decoded at once per web process, and how long one more may wait.
    IMAGE_DECODE_CONCURRENCY = max(1, env_int("IMAGE_DECODE_CONCURRENCY", 1))
    IMAGE_UPLOAD_WAIT_SECONDS = env_int("IMAGE_UPLOAD_WAIT_SECONDS", 10)
except EnvError as exc:
    fail(str(exc))

# Django's own Host check cannot know custom domains, so it lets every host through
# and pages.public.middleware.HostRoutingMiddleware (first in MIDDLEWARE) answers 404
# to any host that is not an app host, a workspace subdomain or a custom domain.
ALLOWED_HOSTS = ["*"]

SESSION_COOKIE_SECURE = SECURE_COOKIES
CSRF_COOKIE_SECURE = SECURE_COOKIES
# "__Host-" cookies cannot be set or overwritten by a sibling host, so a public page
# under the same parent domain cannot plant a session or CSRF cookie for the admin.
if SECURE_COOKIES:
    SESSION_COOKIE_NAME = "__Host-sessionid"
    CSRF_COOKIE_NAME = "__Host-csrftoken"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SECURE_HSTS_INCLUDE_SUBDOMAINS = False
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "strict-origin-when-cross-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
# No SECURE_PROXY_SSL_HEADER: X-Forwarded-Proto counts only from TRUSTED_PROXIES,
# which config.proxies.ProxyMiddleware checks before setting the request's scheme.
X_FRAME_OPTIONS = "DENY"

# ---------------------------------------------------------------- apps
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django.contrib.postgres",
    "django_htmx",
    "ninja",
    "template_partials",
    "accounts",
    "funnels",
    "analytics",
    "pages",
    "leads",
]

MIDDLEWARE = [
    "config.proxies.ProxyMiddleware",
    "pages.public.middleware.HostRoutingMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "pages.public.middleware.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "accounts.actors.AuditActorMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "accounts.context_processors.workspace",
            ],
        },
    }
]

# ---------------------------------------------------------------- data
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "of",
        "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 2},
    }
}
# Sessions live in Redis for speed and in Postgres so that a Redis restart
# does not log everybody out.
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"

_VALIDATORS = "django.contrib.auth.password_validation"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": f"{_VALIDATORS}.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 10},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "funnels:list"
LOGOUT_REDIRECT_URL = "accounts:login"
PASSWORD_RESET_TIMEOUT = 60 * 60 * 24
INVITATION_MAX_AGE = timedelta(days=7)
SIGNUP_LINK_MAX_AGE = timedelta(days=3)

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# ---------------------------------------------------------------- files
STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(BASE_DIR / ".data" / "media")))
# Lead CSV exports: private files, served only through a workspace-scoped view.
EXPORTS_ROOT = Path(env_str("EXPORTS_ROOT", str(BASE_DIR / ".data" / "exports")))
EXPORT_TTL_HOURS = 24
# The edge (pages/edge.py): published pages as files under EDGE_ROOT/sites, served
# by nginx with the configuration edge_sync writes to EDGE_ROOT/nginx.conf; views
# are lines in EDGE_ROOT/logs/*.log that the shipper stores (analytics.shipper).
EDGE_ENABLED = env_bool("EDGE_ENABLED", True)
EDGE_ROOT = Path(env_str("EDGE_ROOT", str(BASE_DIR / ".data" / "edge")))
EDGE_LISTEN = env_str("EDGE_LISTEN", "127.0.0.1:8080")
EDGE_UPSTREAM = env_str("EDGE_UPSTREAM", "127.0.0.1:8000")
EDGE_WORKERS = env_str("EDGE_WORKERS", "auto")
# Public form posts accepted per client IP per 10 minutes.
FORM_IP_LIMIT = env_int("FORM_IP_LIMIT", 20)
EDGE_NODE = env_str("EDGE_NODE", "")  # this node's name for its logs (host name)
EDGE_USER = env_str("EDGE_USER", "")  # nginx's "user" (workers) when started as root
EDGE_NGINX = env_str("EDGE_NGINX", "")  # default: nginx on PATH, if any
# "signal": SIGHUP the nginx whose pid is in EDGE_ROOT/nginx.pid (same host);
# "watch": a watcher next to nginx reloads when the file changes (compose).
EDGE_RELOAD = env_str("EDGE_RELOAD", "signal")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if STATIC_MANIFEST
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = not STATIC_MANIFEST
WHITENOISE_AUTOREFRESH = DEBUG
DATA_UPLOAD_MAX_MEMORY_SIZE = 12 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024

# ---------------------------------------------------------------- celery
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": 3600,
    # A web request that queues work after committing must not hang for seconds
    # on a dead broker: connect once more at once, then give up (enqueue_on_commit
    # logs it and a sweeper queues the work later). Workers keep their own,
    # patient reconnect loop (broker_connection_max_retries).
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 0.2,
}
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_BEAT_SCHEDULE_FILENAME = str(BASE_DIR / ".data" / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE = {
    "worker-heartbeat": {
        "task": "config.celery.heartbeat_task",
        "schedule": 30.0,
        "options": {"expires": 25},
    },
    "orders-reconcile": {
        "task": "leads.tasks.orders_reconcile_task",
        "schedule": 120.0,
        "options": {"expires": 110},
    },
    "webhooks-sweep": {
        "task": "leads.tasks.webhooks_sweep_task",
        "schedule": 120.0,
        "options": {"expires": 110},
    },
    "lead-exports-tidy": {
        "task": "leads.tasks.lead_exports_tidy_task",
        "schedule": 120.0,
        "options": {"expires": 110},
    },
    "sequences-sweep": {
        "task": "leads.tasks.sequences_sweep_task",
        "schedule": 60.0,
        "options": {"expires": 55},
    },
    "checkouts-abandoned": {
        "task": "leads.tasks.checkouts_abandoned_task",
        "schedule": 300.0,
        "options": {"expires": 290},
    },
    "audit-log-purge": {
        "task": "accounts.tasks.audit_purge_task",
        "schedule": 60.0 * 60 * 24,
        "options": {"expires": 60 * 60},
    },
    "api-idempotency-keys-purge": {
        "task": "accounts.tasks.idempotency_keys_purge_task",
        "schedule": 60.0 * 60,
        "options": {"expires": 60 * 30},
    },
    "invitations-purge": {
        "task": "accounts.tasks.invitations_purge_task",
        "schedule": 60.0 * 60,
        "options": {"expires": 60 * 30},
    },
    "analytics-events-flush": {
        "task": "analytics.tasks.events_flush_task",
        "schedule": 5.0,
        "options": {"expires": 5},
    },
    "analytics-rollups-update": {
        "task": "analytics.tasks.rollups_update_task",
        "schedule": 30.0,
        "options": {"expires": 25},
    },
    "analytics-partitions-ensure": {
        "task": "analytics.tasks.event_partitions_ensure_task",
        "schedule": 60.0 * 60 * 6,
        "options": {"expires": 60 * 60},
    },
    "analytics-events-retention": {
        "task": "analytics.tasks.events_retention_task",
        "schedule": 60.0 * 60 * 24,
        "options": {"expires": 60 * 60},
    },
}

# ---------------------------------------------------------------- logging
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
