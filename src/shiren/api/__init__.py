"""The REST service: FastAPI ``/v1``, problem+json errors with stable codes, per-tenant API keys."""
