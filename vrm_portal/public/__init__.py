"""Public pages: home, help, language switch, health probes."""
