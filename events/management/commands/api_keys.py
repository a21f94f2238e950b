from django.core.management.base import BaseCommand, CommandError
from django.db import IntegrityError, transaction
from django.utils import timezone

from events.auth import hash_key, new_key
from events.models import ApiKey


class Command(BaseCommand):
    help = (
        "Manage API keys. While any active key exists, POST /publish needs one with the `publish` scope; "
        "with LOGGREGATOR_PROTECT_READS, /events and /stats need one with `read`."
    )

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True)
        create = actions.add_parser("create", help="Create a key and print it (shown only this once).")
        create.add_argument("name", help="Who uses the key, e.g. billing-publisher.")
        create.add_argument(
            "--scope",
            action="append",
            choices=ApiKey.SCOPES,
            help="publish and/or read; repeat for both (default: publish).",
        )
        actions.add_parser("list", help="List keys with their prefix, scopes and state.")
        revoke = actions.add_parser("revoke", help="Revoke a key at once, by name or prefix.")
        revoke.add_argument("name_or_prefix")

    def handle(self, *args, action, **options):
        getattr(self, f"handle_{action}")(**options)

    def handle_create(self, *, name, scope, **options):
        key = new_key()
        scopes = " ".join(sorted(set(scope or [ApiKey.PUBLISH])))
        try:
            with transaction.atomic():
                ApiKey.objects.create(name=name, prefix=key[:12], key_hash=hash_key(key), scopes=scopes)
        except IntegrityError:
            raise CommandError(f"A key named {name!r} already exists.") from None
        self.stdout.write(key)
        self.stderr.write(f"Created {name!r} ({scopes}). Store the key now: only its hash is kept.")

    def handle_list(self, **options):
        for api_key in ApiKey.objects.order_by("name"):
            state = f"revoked {api_key.revoked_at:%Y-%m-%d %H:%M}" if api_key.revoked_at else "active"
            created = f"{api_key.created_at:%Y-%m-%d %H:%M}"
            self.stdout.write(f"{api_key.name}\t{api_key.prefix}…\t{api_key.scopes}\tcreated {created}\t{state}")

    def handle_revoke(self, *, name_or_prefix, **options):
        active = ApiKey.objects.filter(revoked_at__isnull=True)
        matches = list(active.filter(name=name_or_prefix)) or list(active.filter(prefix=name_or_prefix))
        if not matches:
            raise CommandError(f"No active key is named or starts with {name_or_prefix!r}.")
        if len(matches) > 1:
            raise CommandError(f"{len(matches)} active keys start with {name_or_prefix!r}: revoke by name.")
        matches[0].revoked_at = timezone.now()
        matches[0].save(update_fields=["revoked_at"])
        self.stdout.write(f"Revoked {matches[0].name!r}.")
