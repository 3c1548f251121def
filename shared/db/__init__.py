"""Relational storage: typed models, engine/session setup and migrations."""
