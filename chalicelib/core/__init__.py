"""The shared kernel every feature room builds on; it imports no feature."""
