"""Trials: the cache of measured trials and everything that keeps it true. One row per trial key,
claimed and finished under a lease (`cache`), swept when work strands (`recovery`), aggregated per
point as it finishes (`aggregates`), read as the frontier reads it (`records`), its progress
(`progress`), carried between databases (`exchange`), and the `/trials` routes and bodies.

`recipe_keys` is imported here for its ORM hook: every trial inserted through the ORM gets its
recipe keys, whichever module (or test) inserts it.
"""

from . import recipe_keys  # noqa: F401
