"""The brand space: a brand's API clients and webhook endpoints, managed in the browser by
the brand's operators (and by admins for any brand)."""
