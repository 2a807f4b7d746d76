"""What the app's pages share (kept outside ``pages/``, so Streamlit never lists it as a page):
`ui.common` (the current database, errors, progress, small renderers) and `ui.resources`
(cached models and data)."""
