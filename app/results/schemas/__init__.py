"""The results bodies: frontier, marginal, plan."""
