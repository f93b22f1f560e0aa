#!/usr/bin/env python3
"""Django's manage.py for the corpus site; `corpus_init` makes the database
(migrations) and the admin user (admin / corpus-pw)."""
import os
import sys

here = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [here, os.path.dirname(here)]
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "corpussite.settings")

if __name__ == "__main__":
    from django.core.management import execute_from_command_line
    execute_from_command_line(sys.argv)
