"""Settings for Secure Your Server, all read from the environment.

With nothing set, the project runs on an embedded default: a PostgreSQL server under
var/postgres (campaign.embedded_db), a Celery broker on the local filesystem (no server) and
mail printed to the console. With DATABASE_URL and CELERY_BROKER_URL/REDIS_URL it runs on
your PostgreSQL and Redis. PostgreSQL is the only database.
"""

from pathlib import Path

import dj_database_url
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured
from kombu import Queue

from campaign import embedded_db
from campaign.clientip import parse_networks
from campaign.env import email_settings_from_url, env_bool, env_float, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = embedded_db.var_dir()
# The embedded defaults (PostgreSQL data, filesystem broker, uploads) live here.
VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set unless DEBUG is on")
    SECRET_KEY = "dev-only-insecure-key-never-used-in-production"  # noqa: S105
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "anymail",
    "campaign",
    "probes",
    "letters",
    "devtools",  # the demo lab and demo data (run_lab, seed_demo)
    "axes",  # login throttling (campaign/login.py)
    "ninja",  # the API (campaign/api.py); listed so its docs page is served from our statics
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Content-Security-Policy on every page that does not set its own (campaign/csp.py).
    "campaign.csp.ContentSecurityPolicyMiddleware",
    # Last, as axes asks: turns a locked-out login into the 429 page (campaign/login.py).
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "campaign.urls"
WSGI_APPLICATION = "campaign.wsgi.application"

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
                "campaign.context_processors.roles",
            ],
        },
    },
]

if env_str("DATABASE_URL"):
    DATABASES = {"default": dj_database_url.parse(env_str("DATABASE_URL"), conn_max_age=60)}
    if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        # Reports, imports and the network cache are written in PostgreSQL's SQL (inet,
        # cidr, GiST, COPY): another database would fail later, in the middle of work.
        raise ImproperlyConfigured(
            "DATABASE_URL must be a PostgreSQL URL (postgres://user@host:5432/name); unset it "
            "to use the embedded PostgreSQL under var/postgres"
        )
else:
    # The embedded default: a PostgreSQL server under var/postgres, started on first use.
    DATABASES = {"default": embedded_db.database_settings(VAR_DIR)}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "campaign_list"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
LOCALE_PATHS = [BASE_DIR / "locale"]

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)  # whitenoise warns about a missing root before collectstatic
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
MEDIA_ROOT = VAR_DIR / "media"
# Uploaded feeds are streamed from disk by the import task, never held in memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
FEED_MAX_BYTES = int(env_float("FEED_MAX_BYTES", 512 * 1024 * 1024))
# One wall-clock limit per feed fetch (redirects included): per-read timeouts never end a
# server that trickles a line every few seconds.
FEED_FETCH_DEADLINE = env_float("FEED_FETCH_DEADLINE", 300)
# Feed subscriptions: shown red after this many failed fetches in a row; a failed fetch is
# retried after FEED_RETRY_SECONDS, doubling each time, never later than the next regular
# fetch; no schedule runs more often than FEED_MIN_INTERVAL seconds.
# API calls per token per minute (campaign/api.py); past it: 429 with Retry-After.
API_RATE_LIMIT = int(env_float("API_RATE_LIMIT", 120))
FEED_FAILURES_ALERT = int(env_float("FEED_FAILURES_ALERT", 3))
FEED_RETRY_SECONDS = env_float("FEED_RETRY_SECONDS", 300)
FEED_MIN_INTERVAL = int(env_float("FEED_MIN_INTERVAL", 60))

# Security: sane everywhere, strict when not in DEBUG so `check --deploy` passes.
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_AGE = 8 * 3600
# Lax: sent on top-level navigations from other sites (a link in a mail), never on their
# forms, frames or scripts; Strict would sign staff out on every such link.
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = False
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if not DEBUG:
    SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", True)
    CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", True)
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = int(env_float("SECURE_HSTS_SECONDS", 31536000))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
    if not SECURE_HSTS_PRELOAD:
        # Preloading is hard to undo, so operators opt in explicitly; the deploy check
        # would otherwise warn about the deliberate default.
        SILENCED_SYSTEM_CHECKS = ["security.W021"]
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Celery: Redis when configured, else a broker on the local filesystem that needs no server.
_broker = env_str("CELERY_BROKER_URL") or env_str("REDIS_URL")
if _broker:
    CELERY_BROKER_URL = _broker
    CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND", _broker)
    # How long Redis waits before handing an unacknowledged task (its worker died) to
    # another worker. Must exceed the longest task; lower it where tasks are short.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": int(env_float("CELERY_VISIBILITY_TIMEOUT", 3600)),
    }
else:
    _celery_dir = VAR_DIR / "celery"
    for _sub in ("queue", "processed", "results", "control"):
        (_celery_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_celery_dir / "queue"),
        "data_folder_out": str(_celery_dir / "queue"),
        "processed_folder": str(_celery_dir / "processed"),
        # Broadcast/pidbox files; kombu's default is ./control in the working directory.
        "control_folder": str(_celery_dir / "control"),
        "store_processed": False,
    }
    CELERY_RESULT_BACKEND = f"file://{_celery_dir / 'results'}"
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_EAGER_PROPAGATES = True
# A task is acknowledged only after it finished, so a killed worker's task is redelivered;
# every task is written to be idempotent for exactly that reason.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
# One queue per kind of work, so a million-host probe run does not hold up the mail, and each
# can get its own workers (docker-compose.yml runs one per queue). A worker started without
# -Q (bin/dev, the tests) consumes all five. A recipient's re-test is on `default`, not
# behind a campaign's probe run: a person waits for it on the page.
TASK_QUEUES = ("imports", "probes", "contacts", "mail", "default")
TASK_QUEUE_OF = {
    "campaign.tasks.run_import": "imports",
    "campaign.fetch_feeds_due": "imports",
    "campaign.fetch_feed": "imports",
    "probes.run": "probes",
    "probes.chunk": "probes",
    "probes.reprobe_due": "probes",
    "probes.auto_probe_new": "probes",
    "letters.tasks.follow_up_task": "probes",
    "letters.tasks.follow_up_due_task": "probes",
    "probes.resolve_contacts": "contacts",
    "probes.resolve_due_contacts": "contacts",
    "probes.refresh_rdap_bootstrap": "contacts",
    "letters.tasks.send_batch_task": "mail",
    "letters.tasks.fetch_mail_task": "mail",
    "campaign.refresh_dashboard": "default",
    "letters.tasks.refresh_outcomes_task": "default",
    "letters.recipient_retest": "default",
    "letters.draft_daily_batches": "default",
}
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_QUEUES = tuple(Queue(name, routing_key=name) for name in TASK_QUEUES)
CELERY_TASK_ROUTES = {task: {"queue": queue} for task, queue in TASK_QUEUE_OF.items()}
CELERY_BEAT_SCHEDULE: dict[str, dict] = {}
# Every minute: feed subscriptions whose time has come (campaign/subscriptions.py).
CELERY_BEAT_SCHEDULE["feeds-fetch-due"] = {"task": "campaign.fetch_feeds_due", "schedule": 60.0}
# Every minute: campaigns whose automation probes new hosts as they arrive.
CELERY_BEAT_SCHEDULE["probes-auto-new"] = {"task": "probes.auto_probe_new", "schedule": 60.0}
# Daily at 06:00 UTC: a draft batch per language for campaigns whose automation says so.
CELERY_BEAT_SCHEDULE["letters-daily-drafts"] = {
    "task": "letters.draft_daily_batches", "schedule": crontab(minute="0", hour="6"),
}
# Hourly: re-probe hosts whose last probe is older than their campaign's interval.
CELERY_BEAT_SCHEDULE["probes-reprobe-due"] = {"task": "probes.reprobe_due", "schedule": 3600.0}
# Every 10 minutes: contacts for newly verified hosts, and retries whose time has come.
CELERY_BEAT_SCHEDULE["contacts-resolve-due"] = {
    "task": "probes.resolve_due_contacts", "schedule": 600.0,
}
# Daily: re-test notified hosts whose follow-up delay has passed.
CELERY_BEAT_SCHEDULE["letters-follow-up-due"] = {
    "task": "letters.tasks.follow_up_due_task", "schedule": 86400.0,
}
# Every minute: the campaign report's per-host rows (letters/outcomes.py; PostgreSQL only).
CELERY_BEAT_SCHEDULE["letters-refresh-outcomes"] = {
    "task": "letters.tasks.refresh_outcomes_task", "schedule": 60.0,
}
# Weekly: IANA's RDAP bootstrap files (the shipped snapshot stays as fallback).
CELERY_BEAT_SCHEDULE["contacts-refresh-bootstrap"] = {
    "task": "probes.refresh_rdap_bootstrap", "schedule": 7 * 86400.0,
}

# Cache: rate limits of the public recipient pages (shared by every web process via Redis).
_cache_url = env_str("REDIS_URL")
CACHES = {"default": {
    "BACKEND": "django.core.cache.backends.redis.RedisCache" if _cache_url
    else "django.core.cache.backends.locmem.LocMemCache",
    "LOCATION": _cache_url or "sys-default", "KEY_PREFIX": "sys",
}}
# Login throttling (campaign/login.py): failures per username / per client address within
# the lock-out window before further attempts get 429.
LOGIN_FAILURES_PER_USER = int(env_float("LOGIN_FAILURES_PER_USER", 5))
LOGIN_FAILURES_PER_ADDRESS = int(env_float("LOGIN_FAILURES_PER_ADDRESS", 20))
LOGIN_LOCKOUT_SECONDS = int(env_float("LOGIN_LOCKOUT_SECONDS", 900))
# Inbound mail (letters/inbound): letters' envelope sender is bounces+<token>@BOUNCE_DOMAIN
# (an agency's own bounce domain wins); empty: the From address, as without VERP.
BOUNCE_DOMAIN = env_str("BOUNCE_DOMAIN")
BOUNCE_LOCAL_PART = env_str("BOUNCE_LOCAL_PART", "bounces")
# DKIM (letters/dkim_signing.py): letters sent through our own SMTP are signed when a selector
# and a PEM key file are set (an agency's own win); the domain defaults to the sender's.
DKIM_SELECTOR = env_str("DKIM_SELECTOR")
DKIM_PRIVATE_KEY_FILE = env_str("DKIM_PRIVATE_KEY_FILE")
DKIM_DOMAIN = env_str("DKIM_DOMAIN")
# Postal letters (letters/postal/printing.py): processes that lay out a long print job in
# parallel; 0: one per CPU.
POSTAL_PDF_WORKERS = int(env_float("POSTAL_PDF_WORKERS", 0))
# A batch of at least LETTER_RENDER_PARALLEL_MIN letters is rendered by this many forked
# processes (0: one per CPU; 1: in the builder's process). letters/parallel_render.py.
LETTER_RENDER_WORKERS = int(env_float("LETTER_RENDER_WORKERS", 0))
LETTER_RENDER_PARALLEL_MIN = int(env_float("LETTER_RENDER_PARALLEL_MIN", 1000))
# The bounce mailbox the poller reads (imaps://user:password@host:port/MAILBOX); handled mail
# is moved to INBOUND_IMAP_DONE_FOLDER. Unset: no poller (an MTA pipes into receive_mail).
INBOUND_IMAP_URL = env_str("INBOUND_IMAP_URL")
INBOUND_IMAP_DONE_FOLDER = env_str("INBOUND_IMAP_DONE_FOLDER", "Processed")
INBOUND_IMAP_TIMEOUT = env_float("INBOUND_IMAP_TIMEOUT", 30)
if INBOUND_IMAP_URL:
    CELERY_BEAT_SCHEDULE["letters-fetch-mail"] = {
        "task": "letters.tasks.fetch_mail_task", "schedule": 60.0,
    }
# Reverse proxies whose X-Forwarded-For is believed, for every rate limit (campaign/clientip.py);
# empty: trust nobody, the client is REMOTE_ADDR.
TRUSTED_PROXIES = env_list("TRUSTED_PROXIES")
parse_networks(tuple(TRUSTED_PROXIES))  # a typo must stop the start, not trust or ignore a proxy
# django-axes counts and refuses; campaign/login.py holds the rules (see its docstring).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first: a locked login never checks a password
    "django.contrib.auth.backends.ModelBackend",
]
AXES_HANDLER = "campaign.login.LoginThrottleHandler"
AXES_FAILURE_LIMIT = 1  # the handler reports how many of the two limits were reached
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address", ["ip_address", "username"]]
AXES_USERNAME_CALLABLE = "campaign.login.normalized_username"
AXES_CLIENT_IP_CALLABLE = "campaign.login.address_of"
AXES_COOLOFF_TIME = "campaign.login.lockout_length"
AXES_LOCKOUT_CALLABLE = "campaign.login.lockout_response"
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False  # a lock ends on time
AXES_DISABLE_ACCESS_LOG = True  # successful logins are not kept (the audit log has the work)
# Absolute base of the links letters carry to the recipient page (https://… in production).
PUBLIC_BASE_URL = env_str("PUBLIC_BASE_URL", "http://localhost:8000").rstrip("/")
# The longest one letter render (a preview, a batch's letter) may run, whatever the template.
LETTER_RENDER_SECONDS = env_float("LETTER_RENDER_SECONDS", 2.0)

# Mail
_email = email_settings_from_url(env_str("EMAIL_URL", "console:"))
globals().update(_email)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "secureyourserver@localhost")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
ANYMAIL = {
    key.removeprefix("ANYMAIL_"): value
    for key, value in __import__("os").environ.items()
    if key.startswith("ANYMAIL_") and key not in ("ANYMAIL_BACKEND", "ANYMAIL_WEBHOOK_ESPS")
}
# The ESPs whose webhooks answer (letters/webhooks.py), by anymail's URL name (`mailgun`,
# `postmark`…); unset: the ESP EMAIL_BACKEND sends through, if it is an anymail one.
ANYMAIL_WEBHOOK_ESPS = env_list("ANYMAIL_WEBHOOK_ESPS") or None

# Outbound network: probes, RDAP, WHOIS, feed URLs.
PROBE_ALLOWED_NETWORKS = env_list("PROBE_ALLOWED_NETWORKS")
# Labs and the demo: connect to nothing outside PROBE_ALLOWED_NETWORKS, public or not.
PROBE_LAB_ONLY = env_bool("PROBE_LAB_ONLY", False)
PROBE_CANARY_DOMAIN = env_str("PROBE_CANARY_DOMAIN", "canary.invalid")
PROBE_CANARY_ADDR = env_str("PROBE_CANARY_ADDR", "")
PROBE_TIMEOUT = env_float("PROBE_TIMEOUT", 5.0)
# Hosts per probe-run chunk (a Celery task each), connections at once per worker process, and
# at once per /24 (IPv4) or /48 (IPv6) so one network is never flooded.
PROBE_CHUNK_SIZE = int(env_float("PROBE_CHUNK_SIZE", 2000))
# The most new hosts one automatic probe run takes (campaign automation, probe_new).
PROBE_AUTO_MAX_HOSTS = int(env_float("PROBE_AUTO_MAX_HOSTS", 100_000))
PROBE_CONCURRENCY = int(env_float("PROBE_CONCURRENCY", 256))
PROBE_PER_NETWORK = int(env_float("PROBE_PER_NETWORK", 8))
RDAP_BOOTSTRAP_URL = env_str("RDAP_BOOTSTRAP_URL", "https://data.iana.org/rdap/")
WHOIS_IANA_SERVER = env_str("WHOIS_IANA_SERVER", "whois.iana.org:43")
# Abuse contacts: how long one registry answer stands for its whole network, and the steady
# pace of look-ups per registry (0 = unpaced; 429s and refusals still back off).
CONTACT_CACHE_DAYS = env_float("CONTACT_CACHE_DAYS", 30)
CONTACT_LOOKUPS_PER_SECOND = float(env_str("CONTACT_LOOKUPS_PER_SECOND", "") or 10)
# A "running" contact run without progress for this long belongs to a dead worker: the beat
# marks it failed and starts afresh (one look-up can take a few timeouts, never minutes).
CONTACT_RUN_STALE_SECONDS = int(env_float("CONTACT_RUN_STALE_SECONDS", 900))
RDAP_BOOTSTRAP_DIR = VAR_DIR / "rdap"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    # httpx logs every request at INFO: thousands of lines per RDAP run.
    "loggers": {"django.db.backends": {"level": "WARNING"}, "httpx": {"level": "WARNING"}},
}

# The dashboard caches its counts for campaigns of at least this many hosts, for this long;
# past DASHBOARD_STALE_SECONDS a cached copy is refreshed before it is shown.
DASHBOARD_CACHE_MIN_HOSTS = int(env_float("DASHBOARD_CACHE_MIN_HOSTS", 50_000))
DASHBOARD_CACHE_SECONDS = int(env_float("DASHBOARD_CACHE_SECONDS", 60))
DASHBOARD_STALE_SECONDS = int(env_float("DASHBOARD_STALE_SECONDS", 300))
# Sending pace: letters per minute overall and per recipient domain (letters/throttle.py).
LETTERS_PER_MINUTE = env_float("LETTERS_PER_MINUTE", 120)
LETTERS_PER_DOMAIN_PER_MINUTE = env_float("LETTERS_PER_DOMAIN_PER_MINUTE", 20)
# The recipient's page: how long a letter's link works at most, and its rate limits (merged
# over letters.recipient.DEFAULT_LIMITS).
RECIPIENT_LINK_MAX_AGE_DAYS = int(env_float("RECIPIENT_LINK_MAX_AGE_DAYS", 400))
RECIPIENT_RATE_LIMITS: dict = {}
