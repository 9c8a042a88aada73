"""URL table of the API. Both /api/payouts/ and /api/payouts are served."""

from __future__ import annotations

from aiohttp import web

from payout_api.handlers import ops, payouts
from payout_api.openapi.handlers import add_docs_routes
from payout_api.webhooks import handlers as webhooks


def setup_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/healthz", ops.healthz, name="healthz")
    r.add_get("/readyz", ops.readyz, name="readyz")
    r.add_get("/metrics", ops.metrics, name="metrics")
    for path in ("/api/payouts/", "/api/payouts"):
        resource = r.add_resource(path, name="payouts" if path.endswith("/") else None)
        resource.add_route("GET", payouts.list_payouts)
        resource.add_route("POST", payouts.create_payout)
    for path in ("/api/payouts/{id}/", "/api/payouts/{id}"):
        resource = r.add_resource(path, name="payout" if path.endswith("/") else None)
        resource.add_route("GET", payouts.get_payout)
        resource.add_route("PATCH", payouts.update_payout)
        resource.add_route("DELETE", payouts.delete_payout)
    for path in ("/api/payouts/{id}/events/", "/api/payouts/{id}/events"):
        resource = r.add_resource(path, name="payout-events" if path.endswith("/") else None)
        resource.add_route("GET", payouts.list_events)
    webhooks.add_routes(r)
    add_docs_routes(r)
