"""Ampora's AWS CDK app: deploys exactly what the code defines (routes, tables, settings)."""
