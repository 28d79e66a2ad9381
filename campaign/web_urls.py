from django.urls import path

from campaign import views
from probes import views as probe_views

urlpatterns = [
    path("", views.campaign_list, name="campaign_list"),
    path("c/<slug:slug>/", views.campaign_detail, name="campaign_detail"),
    path("c/<slug:slug>/imports/new/", views.import_create, name="import_create"),
    path("c/<slug:slug>/imports/<int:pk>/", views.import_detail, name="import_detail"),
    path("c/<slug:slug>/imports/<int:pk>/status.json", views.import_status, name="import_status"),
    path("c/<slug:slug>/probes/new/", probe_views.probe_run_start, name="probe_run_start"),
    path("c/<slug:slug>/probes/<int:pk>/", probe_views.probe_run_detail, name="probe_run_detail"),
    path("c/<slug:slug>/probes/<int:pk>/status.json", probe_views.probe_run_status,
         name="probe_run_status"),
    path("c/<slug:slug>/hosts/", views.host_list, name="host_list"),
    # IPv6 addresses contain colons, which are fine in a path segment.
    path("c/<slug:slug>/hosts/<str:ip>/", views.host_detail, name="host_detail"),
]
