"""Rollouts: a published configuration version moved onto a group a wave at a time."""
