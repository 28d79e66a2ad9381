from django.urls import path

from campaign import views

urlpatterns = [
    path("", views.campaign_list, name="campaign_list"),
]
