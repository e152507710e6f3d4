"""The OpenAPI 3 description served at /api/v1/openapi.json."""

OPENAPI: dict = {"openapi": "3.1.0", "info": {"title": "webinar_pay API", "version": "1"}, "paths": {}}
