"""One router per resource of the HTTP API (``shiren.api.app.create_app`` includes them all)."""
