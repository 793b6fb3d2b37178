"""The import pages and the contacts' CSV exports; crm.urls mounts them at the site root."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from contacts.imports import views

urlpatterns: list[URLPattern | URLResolver] = [
    path("imports/new", views.import_new, name="import_new"),
    path("imports/<int:job_id>", views.import_job, name="import_job"),
    path("imports/<int:job_id>/progress", views.import_progress, name="import_progress"),
    path("imports/<int:job_id>/resume", views.import_resume, name="import_resume"),
    path("imports/<int:job_id>/rollback", views.import_rollback, name="import_rollback"),
    path("imports/<int:job_id>/failures.csv", views.import_failures, name="import_failures"),
    path("persons/export.csv", views.persons_export, name="persons_export"),
    path("organizations/export.csv", views.organizations_export, name="organizations_export"),
]
