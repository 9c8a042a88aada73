"""The webhook endpoints and events API (issue 17, docs/webhooks.md): schemas, use cases and
HTTP handlers, apart from the payouts'."""
