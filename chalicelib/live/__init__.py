"""Live updates: the websocket hub that streams domain events to operators."""
