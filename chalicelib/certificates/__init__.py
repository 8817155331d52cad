"""Certificates: a certificate authority per tenant that signs the agents' mTLS leaves.

The CA's key lives in Secrets Manager and never leaves the process; agents get
their leaf and the CA *certificate*. ``cryptography`` loads only in this room.
"""
