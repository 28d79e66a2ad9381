from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path, re_path

from campaign.api import api
from campaign.login import ThrottledLoginView
from letters.recipient_views import short_link

urlpatterns = [
    path("admin/", admin.site.urls),
    # The JSON API for scripts and pipelines (token auth; schema and docs under it).
    path("api/v1/", api.urls),
    path("login/", ThrottledLoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("password/", auth_views.PasswordChangeView.as_view(), name="password_change"),
    path(
        "password/done/",
        auth_views.PasswordChangeDoneView.as_view(),
        name="password_change_done",
    ),
    # anymail tracking and inbound webhooks (authenticated by anymail's settings).
    path("anymail/", include("letters.urls")),
    # The recipient's page: public, reached by the signed link in each letter.
    path("r/", include("letters.recipient_urls")),
    # The short link a printed letter gives for that page (letters.shortlinks).
    re_path(r"^s/(?P<code>[^/]{1,40})/?$", short_link, name="short_link"),
    path("", include("campaign.web_urls")),
]
