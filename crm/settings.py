"""Django settings. Every value an operator may change comes from the environment; the README
lists each variable. With no DATABASE_URL / REDIS_URL the embedded servers of
`crm.localservices` are used (started if needed)."""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url
from celery.schedules import crontab

from crm import localservices

BASE_DIR = Path(__file__).resolve().parent.parent


def _env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = _env_bool("DEBUG", False)
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG and _env_bool("CRM_PRODUCTION", False):
        raise RuntimeError("SECRET_KEY must be set in production (CRM_PRODUCTION=1).")
    # Development and tests: a key kept under var/ so sessions survive restarts.
    _key_file = localservices.VAR_DIR / "secret_key"
    if not _key_file.exists():
        import secrets

        _key_file.parent.mkdir(parents=True, exist_ok=True)
        _key_file.write_text(secrets.token_urlsafe(50))
    SECRET_KEY = _key_file.read_text().strip()

ALLOWED_HOSTS = _env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")
CSRF_TRUSTED_ORIGINS = _env_list("CSRF_TRUSTED_ORIGINS", "")
SITE_URL = os.environ.get("SITE_URL", "http://127.0.0.1:8000").rstrip("/")
# Where tracked mail's pixel and links point (E1, E2): the tracking server's own address in
# production (docker-compose's `tracking` service), else the site itself, whose WSGI entry
# answers `/t/` before Django.
CRM_TRACKING_URL = os.environ.get("CRM_TRACKING_URL", SITE_URL).rstrip("/")
# Peers whose X-Forwarded-For the tracking endpoints believe (addresses or networks): the
# reverse proxy in front of them. Anyone else's header is ignored and the peer's address kept.
CRM_TRACKING_TRUSTED_PROXIES = _env_list("CRM_TRACKING_TRUSTED_PROXIES", "127.0.0.1,::1")
# The Redis stream where hits wait for the flush worker (tracking.buffer, tracking.flush).
CRM_TRACKING_STREAM = os.environ.get("CRM_TRACKING_STREAM", "crm:tracking:hits")

INSTALLED_APPS = [
    # crm comes first so that its `migrate` and `flush` commands (owner role) win over Django's.
    "crm",
    "contacts",
    "crm.sales",
    "inbox",
    "mailsync",
    "tracking",
    "django.contrib.auth",
    "django.contrib.postgres",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # E2: whose browser session is whose, so a sender's own clicks are not the recipient's.
    "tracking.middleware.SenderSessionMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Opens the request's transaction and binds it to the signed-in company (RLS).
    "crm.middleware.TenancyMiddleware",
]

ROOT_URLCONF = "crm.urls"
WSGI_APPLICATION = "crm.wsgi.application"
AUTH_USER_MODEL = "crm.User"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
# API routes accept paths with or without a trailing slash themselves; never redirect a POST.
APPEND_SLASH = False

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
                "crm.web.context.shell",
            ],
        },
    },
]

_database = dj_database_url.parse(
    localservices.database_url(), conn_max_age=int(os.environ.get("CONN_MAX_AGE", "60"))
)
# Our backend switches every connection to the runtime role that row-level security applies to.
_database["ENGINE"] = "crm.db.backends.postgresql"
_database["ATOMIC_REQUESTS"] = True
_database["CONN_HEALTH_CHECKS"] = True
_database["TEST"] = {"NAME": os.environ.get("CRM_TEST_DATABASE_NAME") or None}
DATABASES = {"default": _database}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# The two roles of docs/decisions/0002-row-level-security.md.
CRM_DB_OWNER_ROLE = os.environ.get("CRM_DB_OWNER_ROLE", "crm_owner")
CRM_DB_APP_ROLE = os.environ.get("CRM_DB_APP_ROLE", "crm_app")

REDIS_URL = localservices.redis_url()
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": os.environ.get("CRM_CACHE_PREFIX", "crm"),
    }
}
SESSION_ENGINE = "django.contrib.sessions.backends.db"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = _env_bool("SECURE_COOKIES", False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
PASSWORD_RESET_TIMEOUT = 60 * 60 * 24
CRM_INVITATION_DAYS = int(os.environ.get("CRM_INVITATION_DAYS", "7"))

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = localservices.VAR_DIR / "staticfiles"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise warns when it is missing
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", BASE_DIR / "var" / "media"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
    # Raw RFC 822 bytes of synced mail (inbox.rawstore); an S3-compatible backend in production.
    "mailraw": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": os.environ.get("CRM_MAIL_RAW_DIR", str(MEDIA_ROOT / "mail"))},
    },
}
# Outside production, serve static files straight from static/ (no collectstatic needed).
WHITENOISE_USE_FINDERS = not _env_bool("CRM_PRODUCTION", False)

EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "25"))
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = _env_bool("EMAIL_USE_TLS", False)
EMAIL_TIMEOUT = 20
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "CRM <no-reply@localhost>")

# Celery: the broker is Redis. Tasks take ids and a company id (crm.tenancy.TenantTask).
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", REDIS_URL)
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = _env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Task modules autodiscovery (which reads each app's tasks.py) does not find.
CELERY_IMPORTS = ["contacts.imports.tasks"]
CELERY_BEAT_SCHEDULE: dict[str, dict[str, object]] = {
    # Imports whose worker died mid-way resume from their last checkpoint.
    "resume-stalled-imports": {"task": "contacts.imports.tasks.import_sweep", "schedule": 300.0},
    "expire-invitations": {"task": "crm.tasks.invitations_expire", "schedule": 3600.0},
    # Soft-deleted persons, organizations, deals and leads are purged after 30 days.
    # Deliveries left pending while the worker was down.
    "resume-webhook-deliveries": {
        "task": "crm.tasks.webhook_deliveries_resume",
        "schedule": 300.0,
    },
    "purge-deleted-contacts": {"task": "contacts.tasks.purge_deleted", "schedule": 3600.0},
    "purge-deleted-sales-items": {"task": "crm.sales.tasks.purge_deleted", "schedule": 3600.0},
    # Mail sync: enqueue the accounts due a pass (the fallback poll), reset stuck passes.
    "mail-sync-due": {"task": "mailsync.tasks.sync_due", "schedule": 30.0},
    "mail-sync-watchdog": {"task": "mailsync.tasks.sync_watchdog", "schedule": 300.0},
    # Two-way sync (A5): carry out the provider actions whose undo window has passed.
    "mail-actions-due": {"task": "mailsync.tasks.actions_due", "schedule": 15.0},
    # Search: conversations a first sync queued for indexing, whose drain task was lost.
    "mail-search-drain-due": {"task": "inbox.tasks.search_drain_due", "schedule": 300.0},
    # The outbox: messages due (after the undo-send window or at send_at) whose run was lost.
    "mail-outbox-due": {"task": "mailsync.tasks.outbox_due", "schedule": 15.0},
    # Drafts: server copies to write (after the autosave pause) or remove, whose run was lost.
    "mail-drafts-due": {"task": "mailsync.tasks.drafts_due", "schedule": 15.0},
    # E2: record the opens and clicks the tracking endpoints buffered (the recorder's lock
    # keeps one at a time; a run not started within its interval is dropped, the next comes).
    "tracking-hits-flush": {
        "task": "tracking.tasks.hits_flush",
        "schedule": 5.0,
        "options": {"expires": 5.0},
    },
    # E2: the daily email of opens and clicks, sent in each user's morning: hourly, on the hour.
    "notifications-digest": {
        "task": "crm.tasks.notifications_digest",
        "schedule": crontab(minute=0),
    },
}
CRM_SOFT_DELETE_DAYS = int(os.environ.get("CRM_SOFT_DELETE_DAYS", "30"))

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "crm.api.authentication.ApiTokenAuthentication",
        "crm.api.authentication.CompanySessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["crm.api.permissions.IsCompanyMember"],
    "DEFAULT_RENDERER_CLASSES": ["crm.api.renderers.EnvelopeRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "rest_framework.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_THROTTLE_CLASSES": [],
    "EXCEPTION_HANDLER": "crm.api.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "CRM API",
    "DESCRIPTION": (
        "REST API shaped like Pipedrive's public API: `{success, data, additional_data}` "
        "envelopes, v1 offset paging and v2 cursor paging. Authenticate with the "
        "`x-api-token` header, the `api_token` query parameter or `Authorization: Bearer`."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI served from our own static files: no CDN, works offline.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "APPEND_COMPONENTS": {
        "securitySchemes": {
            "api_key": {"type": "apiKey", "in": "header", "name": "x-api-token"},
            "api_token_query": {"type": "apiKey", "in": "query", "name": "api_token"},
        }
    },
    "SECURITY": [{"api_key": []}, {"api_token_query": []}],
}
# Outbound HTTP (webhooks): private, loopback and link-local targets are refused unless an
# operator allows them (tests do, for their loopback receiver).
CRM_OUTBOUND_ALLOW_PRIVATE = _env_bool("CRM_OUTBOUND_ALLOW_PRIVATE", False)
CRM_OUTBOUND_TIMEOUT = float(os.environ.get("CRM_OUTBOUND_TIMEOUT", "10"))
# Key for secrets stored encrypted (webhook passwords, later mailbox passwords and OAuth
# tokens); derived from SECRET_KEY when unset.
CRM_ENCRYPTION_KEY = os.environ.get("CRM_ENCRYPTION_KEY", "")

# Mail sync: the fallback poll of every account (IMAP IDLE wakes it sooner), and the timeout
# of one network operation with a mail server.
CRM_MAIL_POLL_SECONDS = int(os.environ.get("CRM_MAIL_POLL_SECONDS", "300"))
CRM_MAIL_TIMEOUT = float(os.environ.get("CRM_MAIL_TIMEOUT", "60"))
# Messages a first-sync batch stores in one transaction (and fetches in one FETCH at most).
CRM_MAIL_BATCH_SIZE = int(os.environ.get("CRM_MAIL_BATCH_SIZE", "500"))

# Sending: the least time between two sends of one account (providers limit bursts), and the
# domain of our Message-IDs (empty: the host of SITE_URL).
CRM_MAIL_SEND_INTERVAL = float(os.environ.get("CRM_MAIL_SEND_INTERVAL", "2"))
CRM_MAIL_MESSAGE_ID_DOMAIN = os.environ.get("CRM_MAIL_MESSAGE_ID_DOMAIN", "")

# The image proxy of mail bodies (inbox.imageproxy): how long one fetch may take, and hosts that
# may resolve to private addresses (empty in production: the tests' loopback image server).
INBOX_IMAGE_PROXY_TIMEOUT = float(os.environ.get("INBOX_IMAGE_PROXY_TIMEOUT", "10"))
INBOX_IMAGE_PROXY_ALLOWED_PRIVATE_HOSTS = _env_list("INBOX_IMAGE_PROXY_ALLOWED_PRIVATE_HOSTS", "")

# Requests per token per window; 429 with Retry-After beyond it. Pipedrive's burst window is 2 s.
CRM_API_RATE_LIMIT = int(os.environ.get("CRM_API_RATE_LIMIT", "400"))
CRM_API_RATE_WINDOW = int(os.environ.get("CRM_API_RATE_WINDOW", "2"))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
