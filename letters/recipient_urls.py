"""The public recipient pages under /r/<token>/ (no login; the signed token is the key)."""

from django.urls import path

from letters import recipient_views as views

urlpatterns = [
    path("<str:token>/", views.page, name="recipient_page"),
    path("<str:token>/retest/", views.retest, name="recipient_retest"),
    path("<str:token>/runs/<int:run_id>.json", views.run_status, name="recipient_run_status"),
    path("<str:token>/reply/", views.feedback, name="recipient_feedback"),
    path("<str:token>/preferences/", views.preferences, name="recipient_preferences"),
]
