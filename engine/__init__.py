"""ozgflow's engine: process models, cases, tasks, audit history and persistence.

A library on SpiffWorkflow and SQLAlchemy. It never imports Flask or ``web``; every function takes what
it needs (a database handle, settings, a clock) as arguments.
"""
