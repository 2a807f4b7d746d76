"""What the app's pages share (kept outside ``app_pages/``, so it is never taken for a page):
`ui.common` (the current database, errors, progress, small renderers) and `ui.resources`
(cached models and data)."""
