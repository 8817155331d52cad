"""Meta: the API describing itself (the OpenAPI document)."""
