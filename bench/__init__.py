"""`make bench`: load the real services and compare them with this machine's limits."""
