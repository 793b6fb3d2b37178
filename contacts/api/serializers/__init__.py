"""Input parsing of the contacts API: bodies and query parameters, per API version."""
