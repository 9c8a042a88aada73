"""A simulated payout provider: a separate HTTP service with its own database, shaped like a
real provider's API (docs/reliability.md, "The provider"). The payout code only talks to it
over HTTP; tests read its database to count executions."""
