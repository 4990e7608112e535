"""Storage that knows nothing about ML: SQL metadata, blobs, key-value."""
