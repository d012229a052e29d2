"""Who is calling: API keys (keys.py), the caller's team on each request (caller.py), and the guard
that refuses cross-site state changes from browsers (origin.py)."""
