"""Test support: a stand-in identity provider and an HTTP client for the app."""
