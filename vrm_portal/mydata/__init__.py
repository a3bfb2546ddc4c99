"""The consumer's "My data" pages: one timeline of the relationship, and who read what."""
