"""Configurations: containers of immutable numbered versions that agents are given."""
