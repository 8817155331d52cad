"""Groups: named sets of agents that rollouts target; every tenant has a default group."""
