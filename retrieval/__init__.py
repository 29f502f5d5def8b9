"""Japanese-first hybrid retrieval, cited answers and matchmaking."""
