"""Adapters to the outside world, each behind a small interface with a fake for tests.

The engine calls connectors only through these interfaces; connectors never import ``web``.
"""
