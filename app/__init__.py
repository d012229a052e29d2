"""The labelmix service: API, schemas, database, allocation search and frontier.

Nothing here imports torch at import time: the engine is loaded only where a trial runs.
"""
