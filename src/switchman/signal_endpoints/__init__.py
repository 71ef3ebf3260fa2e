"""Signal endpoints, their tokens, ingestion and signal queries."""
