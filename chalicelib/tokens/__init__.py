"""Personal access tokens: long-lived bearer tokens for automation, shown once, stored hashed."""
