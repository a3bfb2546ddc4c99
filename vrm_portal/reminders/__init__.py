"""What needs the consumer's attention: consents to renew or about to expire, shown on
the home page and, at most once a day, in one digest email."""
