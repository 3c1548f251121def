"""Similarity search, the application layer behind the API's search routes and the CLI:
:class:`~shared.search.service.SearchService` (import it from its module: it pulls in the
database layer, which this package's importers may not need)."""
