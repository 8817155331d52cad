"""Enrollment: bootstrap tokens (shown once, stored hashed) and pools that issue them."""
