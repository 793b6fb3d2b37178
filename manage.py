#!/usr/bin/env python
"""Django's command-line utility. Works with no environment set: crm.settings finds (or
starts) the embedded PostgreSQL and Redis when DATABASE_URL / REDIS_URL are absent."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
