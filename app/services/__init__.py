"""The service's logic, between the API and the database.

recipe_keys is imported here for its ORM hook: every trial inserted through the ORM gets its recipe
keys, whichever service (or test) inserts it.
"""

from . import recipe_keys  # noqa: F401
