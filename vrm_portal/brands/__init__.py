"""Brands of the group, and each consumer's pairwise identifier towards each brand."""
