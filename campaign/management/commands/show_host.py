import json

from django.core.management.base import BaseCommand, CommandError

from campaign.addresses import AddressRejected, parse_ip
from campaign.cli import get_campaign
from campaign.models import Host
from campaign.reports import host_detail


class Command(BaseCommand):
    help = "Everything known about one host of a campaign."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("ip")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, **options):
        campaign = get_campaign(options["slug"])
        try:
            ip = str(parse_ip(options["ip"].strip()))
        except AddressRejected:
            raise CommandError(f"{options['ip']!r} is not an IP address") from None
        host = Host.objects.filter(campaign=campaign, ip=ip).first()
        if host is None:
            raise CommandError(f"{ip} is not a host of campaign {campaign.slug}")
        detail = host_detail(host)
        if options["json"]:
            self.stdout.write(json.dumps(detail, sort_keys=True))
            return
        self.stdout.write(f"{detail['ip']} {detail['state']} kinds={','.join(detail['kinds'])} "
                          f"ports={','.join(map(str, detail['ports'])) or '-'}")
        for s in detail["sightings"]:
            self.stdout.write(f"  seen {s['seen_at']} in {s['feed']} line {s['line']}"
                              f"{' port ' + str(s['port']) if s['port'] else ''}")
