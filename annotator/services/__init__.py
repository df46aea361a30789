"""What a user asks for: each service loads (store), computes (stats), stores, and returns its result.
The CLI and the report are thin faces over these."""
