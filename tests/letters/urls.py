"""The project's URLs plus the letters webhooks under /anymail/, as the lead wires them."""

from django.urls import include, path

from campaign.urls import urlpatterns as project_urls

urlpatterns = [path("anymail/", include("letters.urls")), *project_urls]
