"""Settings for the real Celery worker the fault tests start (and SIGKILL).

The test settings, minus eager tasks, plus knobs that make faults observable in seconds:
a short Redis visibility timeout (a message held by a killed worker comes back after 6 s
instead of the default hour), small probe chunks and no letter pacing.
"""

from campaign.test_settings import *  # noqa: F403

CELERY_TASK_ALWAYS_EAGER = False
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": 6,
    "unacked_restore_interval": 1,
    "unacked_restore_throttle": 1,
}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
PROBE_CHUNK_SIZE = 10
PROBE_PER_NETWORK = 4
LETTERS_PER_MINUTE = 0
LETTERS_PER_DOMAIN_PER_MINUTE = 0
