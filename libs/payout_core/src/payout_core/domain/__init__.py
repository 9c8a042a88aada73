"""Domain rules of a payout: money, bank accounts, statuses. Pure Python, no I/O."""
