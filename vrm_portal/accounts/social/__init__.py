"""Social and OpenID Connect sign-in: providers, linked identities, safe account linking."""
