"""What consumers say they like (interests) and plan (intents), brand by brand."""
