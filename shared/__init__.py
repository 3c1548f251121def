"""Code shared by the API and the worker. Never imports ``api``, ``worker`` or ``demo``."""
