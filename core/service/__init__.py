"""Matching as a service: an HTTP API (``python -m core serve``) that answers which catalog
postings are the same product as a new listing, over the same query path as the Compare page.

- `app`: the FastAPI routes and `serve`;
- `answers`: what each route answers, and the `RequestError` for bad input;
- `models`: connections, models and query indexes loaded once per process;
- `limits`: the upload-size and API-key guards.
"""
