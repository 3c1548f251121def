"""The ``roisearch`` command line: wires ``shared``, ``api``, ``worker`` and ``demo`` together."""
