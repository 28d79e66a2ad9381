from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from campaign.services import visible_campaigns


@login_required
def campaign_list(request):
    return render(request, "campaign/campaign_list.html",
                  {"campaigns": visible_campaigns(request.user)})
