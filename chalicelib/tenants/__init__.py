"""Tenants: each tenant's settings, created with the tenant's first authenticated request."""
