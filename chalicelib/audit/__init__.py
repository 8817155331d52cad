"""Audit: an immutable trail of every state-changing request, kept for the retention period."""
