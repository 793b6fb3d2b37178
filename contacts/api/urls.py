"""This app's API routes; crm.urls mounts them under /api/v1 (and /v1) and /api/v2."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver

v1_patterns: list[URLPattern | URLResolver] = []
v2_patterns: list[URLPattern | URLResolver] = []
