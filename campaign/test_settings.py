"""Settings for the test suite: the real PostgreSQL and Redis on 127.0.0.1 unless overridden."""

import os

os.environ.setdefault("SECRET_KEY", "test-only-secret-key-with-enough-length-0123456789abcdef")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/sys")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/15")
os.environ.setdefault("EMAIL_URL", "locmem:")
os.environ.setdefault("SECURE_SSL_REDIRECT", "0")

from campaign.settings import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast logins in tests
CELERY_TASK_ALWAYS_EAGER = True
