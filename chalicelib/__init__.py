"""Ampora: a control plane for fleets of OpAMP agents, served by Chalice on AWS Lambda."""
