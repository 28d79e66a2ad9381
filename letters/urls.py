"""ESP webhooks, to be included under /anymail/ (e.g. /anymail/mailgun/tracking/).

anymail's views authenticate each call (HTTP basic auth from ANYMAIL_WEBHOOK_SECRET, plus
the ESP's own signature where it has one), normalise the payload and send the `tracking` or
`inbound` signal that letters.receivers turns into letter updates. Each is served behind
letters.webhooks' guard (ESPs not in ANYMAIL_WEBHOOK_ESPS, or not set up, are 404;
unreadable payloads 400; one transaction per call), under anymail's own routes and names
(`anymail:mailgun_tracking_webhook`, …).
"""

from anymail import urls as anymail_urls

from letters.webhooks import guarded_urlpatterns

app_name = "anymail"
urlpatterns = guarded_urlpatterns(anymail_urls.urlpatterns)
