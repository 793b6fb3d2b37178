"""The REST API (K2), shaped like Pipedrive's public API.

The plumbing every resource shares lives here, one concern per module:

- `authentication`: API tokens (`x-api-token`, `api_token`, `Authorization: Bearer`) and browser
  sessions, both resolving to an active membership of one company;
- `permissions`: `IsCompanyMember`;
- `renderers`: the `{success, data, additional_data}` envelope;
- `errors`: the error envelope for every 4xx and 5xx;
- `pagination`: v1 offset paging and v2 cursor paging;
- `ratelimit`: the per-token fixed window in Redis;
- `views`: the base classes resources derive from (they apply the rate limit);
- `schema`: OpenAPI helpers that document the envelopes;
- `urls`: `/api/v1/` (also `/v1/`), `/api/v2/`, the schema and the docs page.

Resources are modules beside them (`users`), with API-only reads in `selectors`.
"""
