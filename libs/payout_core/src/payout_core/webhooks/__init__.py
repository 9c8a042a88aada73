"""Webhooks to the Standard Webhooks specification: events, endpoint secrets, URL safety,
signatures and the delivery queues (docs/webhooks.md)."""
