"""What the app's pages share (kept outside ``pages/``, so it is never taken for a page):
`ui.common` (the current database, errors, progress, small renderers), `ui.resources`
(cached models and data) and `ui.navigation` (the page list and the sidebar menu)."""
