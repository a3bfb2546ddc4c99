"""Brands' webhook endpoints: a transactional outbox of feed changes, delivered signed."""
