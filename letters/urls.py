"""ESP webhooks, to be included under /anymail/ (e.g. /anymail/mailgun/tracking/).

anymail's views authenticate each call (HTTP basic auth from ANYMAIL_WEBHOOK_SECRET, plus
the ESP's own signature where it has one), normalise the payload and send the `tracking` or
`inbound` signal that letters.receivers turns into letter updates.
"""

from django.urls import include, path

urlpatterns = [path("", include("anymail.urls"))]
