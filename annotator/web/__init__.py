"""`annotator serve`: the coding workbench in the browser, a thin face over `annotator.services.workbench`.

- `security`: sessions (signed HttpOnly SameSite=Strict cookies), the CSRF token, the response headers (a
  Content-Security-Policy that allows no inline script), who is signed in;
- `app`: the pages and form posts;
- `templates/`, `static/`: server-rendered Jinja pages (autoescaped: a document's text is always text) and
  one small script and stylesheet, served from the package (no CDN: pages work offline).
"""
