"""Letters, batches, review and tracking."""
