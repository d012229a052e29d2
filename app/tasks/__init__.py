"""Tasks: the data sets a team labels. Registration of built-in, hub and uploaded tasks
(`registry`), reading uploads (`uploads`), per-team names (`names`), taking an upload back
(`removal`), and the `/tasks` routes and bodies.

"Task" always means a data set here; background work is a job (app/jobs.py).
"""
