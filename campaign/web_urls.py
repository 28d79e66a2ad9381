from django.urls import path

from campaign import (
    agency_views,
    campaign_views,
    job_views,
    selectors,
    subscription_views,
    views,
)
from letters import postal_views, template_views
from letters import views as letter_views
from probes import contact_views
from probes import views as probe_views
from probes.contacts import pages as contact_pages
from probes.verification import selectors as probe_selectors

urlpatterns = [
    path("", views.campaign_list, name="campaign_list"),
    path("campaigns/new/", campaign_views.campaign_create, name="campaign_create"),
    path("c/<slug:slug>/", views.campaign_detail, name="campaign_detail"),
    path("c/<slug:slug>/imports/new/", views.import_create, name="import_create"),
    path("c/<slug:slug>/imports/<int:pk>/", views.import_detail, name="import_detail"),
    # One status view for every job; each passes the lookup that scopes it to the campaign.
    path("c/<slug:slug>/imports/<int:pk>/status.json", job_views.job_status,
         {"lookup": selectors.import_for}, name="import_status"),
    path("c/<slug:slug>/feeds/", subscription_views.feed_list, name="feed_list"),
    path("c/<slug:slug>/feeds/<int:pk>/", subscription_views.feed_detail, name="feed_detail"),
    path("c/<slug:slug>/feeds/<int:pk>/action/", subscription_views.feed_action,
         name="feed_action"),
    path("c/<slug:slug>/probes/new/", probe_views.probe_run_start, name="probe_run_start"),
    path("c/<slug:slug>/probes/<int:pk>/", probe_views.probe_run_detail, name="probe_run_detail"),
    path("c/<slug:slug>/probes/<int:pk>/status.json", job_views.job_status,
         {"lookup": probe_selectors.run_for}, name="probe_run_status"),
    path("c/<slug:slug>/contacts/new/", contact_views.contact_run_start, name="contact_run_start"),
    path("c/<slug:slug>/contacts/<int:pk>/", contact_views.contact_run_detail,
         name="contact_run_detail"),
    path("c/<slug:slug>/contacts/<int:pk>/status.json", job_views.job_status,
         {"lookup": contact_pages.run_for}, name="contact_run_status"),
    path("c/<slug:slug>/batches/new/", letter_views.batch_create, name="batch_create"),
    path("c/<slug:slug>/batches/<int:pk>/", letter_views.batch_detail, name="batch_detail"),
    path("c/<slug:slug>/batches/<int:pk>/status.json", letter_views.batch_status,
         name="batch_status"),
    path("c/<slug:slug>/batches/<int:pk>/submit/", letter_views.batch_submit,
         name="batch_submit"),
    path("c/<slug:slug>/batches/<int:pk>/approve/", letter_views.batch_approve,
         name="batch_approve"),
    path("c/<slug:slug>/batches/<int:pk>/reject/", letter_views.batch_reject,
         name="batch_reject"),
    path("c/<slug:slug>/batches/<int:pk>/send/", letter_views.batch_send, name="batch_send"),
    path("c/<slug:slug>/batches/<int:pk>/postal.pdf", postal_views.batch_print,
         name="batch_print"),
    path("c/<slug:slug>/batches/<int:pk>/addresses.csv", postal_views.batch_addresses,
         name="batch_addresses"),
    path("c/<slug:slug>/batches/<int:pk>/posted/", postal_views.batch_posted,
         name="batch_posted"),
    path("c/<slug:slug>/letters/<int:pk>/letter.pdf", postal_views.letter_pdf,
         name="letter_pdf"),
    path("c/<slug:slug>/letters/<int:pk>/returned/", postal_views.letter_returned,
         name="letter_returned"),
    path("c/<slug:slug>/letters/", letter_views.letter_list, name="letter_list"),
    path("c/<slug:slug>/letters/<int:pk>/", letter_views.letter_detail, name="letter_detail"),
    path("c/<slug:slug>/deliverability/", letter_views.deliverability, name="deliverability"),
    path("c/<slug:slug>/letters/<int:pk>/preview/", letter_views.letter_preview,
         name="letter_preview"),
    path("c/<slug:slug>/letters/<int:pk>/remove/", letter_views.letter_remove,
         name="letter_remove"),
    path("review/", letter_views.review_queue, name="review_queue"),
    path("agencies/", agency_views.agency_list, name="agency_list"),
    path("agencies/<int:pk>/", agency_views.agency_settings, name="agency_settings"),
    path("templates/<str:name>/", template_views.template_edit, name="template_edit"),
    path("templates/<str:name>/preview/", template_views.template_preview,
         name="template_preview"),
    path("suppressions/", contact_views.suppression_list, name="suppression_list"),
    path("c/<slug:slug>/hosts/", views.host_list, name="host_list"),
    # IPv6 addresses contain colons, which are fine in a path segment.
    path("c/<slug:slug>/hosts/<str:ip>/", views.host_detail, name="host_detail"),
    path("c/<slug:slug>/hosts/<str:ip>/contact/", contact_views.contact_set, name="contact_set"),
]
