"""The results routes: /frontier, /marginal, /plan."""
