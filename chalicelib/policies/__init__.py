"""Policies: CEL expressions that must hold for a push (a rollout to agents, a publish of a
configuration version) to happen, with their draft → approval lifecycle."""
