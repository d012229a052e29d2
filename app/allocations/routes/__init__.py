"""The allocations routes: /allocate, /allocations, /sweeps, /webhook-secret."""
