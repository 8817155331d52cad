"""The local stack: the same Chalice app as on Lambda, behind a local API Gateway, over moto.

``ampora dev`` runs it (see :mod:`chalicelib.local.server`). Nothing here is
imported by the deployed app.
"""
