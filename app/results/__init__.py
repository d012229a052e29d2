"""Results: what stored trials say, read without training. Points and their intervals (`points`,
`kept_points`, `warm_reads`), the frontier at any prices (`frontier`), what the next dollars buy
(`marginal`), the learning surfaces (`learning`), recipes kept apart (`recipes`), allocations
answered from stored trials (`stored_plans`), and the `/frontier`, `/marginal` and `/plan` routes
and bodies.
"""
