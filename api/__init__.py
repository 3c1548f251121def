"""The FastAPI front end: queries, ingestion status, reports. Imports ``shared`` only."""
