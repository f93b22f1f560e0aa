"""manage.py corpus_init: migrate, then the superuser admin / corpus-pw."""
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create the corpus database and its admin user."

    def handle(self, *args, **options):
        call_command("migrate", verbosity=0, interactive=False)
        User = get_user_model()
        if not User.objects.filter(username="admin").exists():
            User.objects.create_superuser("admin", "admin@example.invalid",
                                          "corpus-pw")
