"""Keyset pagination and filters."""

from __future__ import annotations

from tests.integration.test_api_payouts import PAYOUT


async def make(api, auth, n, **fields):
    ids = []
    for i in range(n):
        resp = await api.post(
            "/api/payouts/", json=dict(PAYOUT, description=f"#{i}", **fields), headers=auth
        )
        ids.append((await resp.json())["id"])
    return ids


async def walk(api, auth, url):
    seen, pages = [], 0
    while url:
        data = await (await api.get(url, headers=auth)).json()
        seen += [p["id"] for p in data["results"]]
        url = data["next"]  # relative: no PUBLIC_BASE_URL in the tests' settings
        pages += 1
    return seen, pages


async def test_pages_cover_everything_newest_first(api, auth):
    ids = await make(api, auth, 7)
    seen, pages = await walk(api, auth, "/api/payouts/?limit=3")
    assert seen == ids[::-1] and pages == 3


async def test_pagination_is_stable_while_payouts_arrive(api, auth):
    ids = await make(api, auth, 6)
    first = await (await api.get("/api/payouts/?limit=3", headers=auth)).json()
    await make(api, auth, 4)  # newer payouts must not shift the next page
    second = await (await api.get(first["next"], headers=auth)).json()
    got = [p["id"] for p in first["results"] + second["results"]]
    assert got == ids[::-1]
    # and previous goes back to exactly the first page
    back = await (await api.get(second["previous"], headers=auth)).json()
    assert [p["id"] for p in back["results"]] == [p["id"] for p in first["results"]]


async def test_first_page_has_no_previous_and_last_has_no_next(api, new_client_key):
    auth = {"Authorization": f"Bearer {await new_client_key()}"}
    await make(api, auth, 2)
    data = await (await api.get("/api/payouts/?limit=5", headers=auth)).json()
    assert data["previous"] is None and data["next"] is None and len(data["results"]) == 2


async def test_filters(api, new_client_key):
    auth = {"Authorization": f"Bearer {await new_client_key()}"}
    usd = await make(api, auth, 2)
    jpy = await make(api, auth, 1, amount="5", currency="JPY")
    await api.patch(f"/api/payouts/{usd[0]}/", json={"status": "cancelled"}, headers=auth)

    async def ids(query):
        resp = await api.get(f"/api/payouts/?{query}", headers=auth)
        assert resp.status == 200
        return {p["id"] for p in (await resp.json())["results"]}

    assert await ids("currency=JPY") == set(jpy)
    assert await ids("status=cancelled") == {usd[0]}
    assert await ids("status=cancelled&status=pending") == set(usd + jpy)
    created = (await (await api.get(f"/api/payouts/{jpy[0]}/", headers=auth)).json())["created_at"]
    assert await ids(f"created_before={created}") == set(usd)
    assert await ids(f"created_after={created.replace('Z', '%2B00:00')}") == set()


async def test_bad_parameters_are_400_naming_them(api, auth):
    for query, name in (
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("status=nope", "status"),
        ("currency=usd", "currency"),
        ("cursor=garbage", "cursor"),
        ("created_after=never", "created_after"),
        ("colour=red", "colour"),
    ):
        resp = await api.get(f"/api/payouts/?{query}", headers=auth)
        assert resp.status == 400, query
        problem = await resp.json()
        assert name in problem["detail"] and name in problem["errors"]
