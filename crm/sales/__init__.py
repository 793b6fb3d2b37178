"""The items mail links to: pipelines, stages, deals, leads and projects (J1-J3).

A Django app inside `crm/` that sits above `contacts/` (it points at persons and
organizations); import-linter keeps the platform part of `crm` from importing it."""
