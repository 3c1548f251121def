"""Bulk ingestion: sources → durable item plan → chunk jobs → images and objects in the DB."""
