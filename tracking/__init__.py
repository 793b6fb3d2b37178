"""Open and click tracking (E1, E2, E3): the endpoints that take the hits (`hits`, served by
`server` in production and by the WSGI entry in front of Django otherwise), their buffer
(`buffer`: a Redis stream, PostgreSQL when Redis cannot take a hit), the worker that records
each hit once (`flush`), and who a hit is from (`classify`). The data lives with the mail
(`inbox.models.MailTrackingEvent`, `inbox.tracking`), so it is read through the conversation's
visibility like the rest of it. See docs/decisions/0014-tracking.md."""
