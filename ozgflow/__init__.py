"""The ``ozgflow`` command: one CLI in front of the engine, the web app and the connectors."""
