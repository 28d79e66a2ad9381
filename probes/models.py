# The probes app keeps two families of models in their own modules; Django finds them here.
from probes.contacts.models import *  # noqa: F403
from probes.verification.models import *  # noqa: F403
