"""Agreement and validation metrics: pure computation on arrays, no database or CLI."""
