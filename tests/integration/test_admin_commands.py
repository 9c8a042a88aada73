"""`payout-admin` key and audit commands, through its main() against PostgreSQL: each command
writes exactly one audit row, a failed one none, and the keys behave as the commands say."""

from __future__ import annotations

import asyncio
import json

import pytest
import sqlalchemy as sa

from payout_core import admin
from payout_core.audit import os_user
from payout_core.db.engine import create_engine
from payout_core.db.tables import admin_audit
from payout_core.settings import Settings
from tests.support import infra
from tests.support.infra import Infra


@pytest.fixture
def run(monkeypatch, session_infra: Infra, capsys):
    """payout-admin ARGS…: (exit code, stdout)."""
    for name, value in session_infra.env(LOG_LEVEL="warning").items():
        monkeypatch.setenv(name, value)

    def payout_admin(*args: str) -> tuple[int, str]:
        capsys.readouterr()
        with pytest.raises(SystemExit) as exited:
            admin.main(list(args))
        out, payout_admin.stderr = capsys.readouterr()
        return exited.value.code, out

    payout_admin.stderr = ""
    return payout_admin


def query(settings: Settings, action):
    async def go():
        engine = create_engine(settings.database_url, pool_size=1)
        try:
            async with engine.connect() as conn:
                return await action(conn)
        finally:
            await engine.dispose()

    return asyncio.run(go())


def audit_rows(settings: Settings, name: str) -> list[sa.Row]:
    select = sa.select(admin_audit).where(admin_audit.c.client == name).order_by(admin_audit.c.id)
    return query(settings, lambda c: c.execute(select)).all()


def test_every_key_command_is_audited_once_with_its_actor(run, settings):
    name = infra.unique_name("audited")
    code, out = run("create-client", name, "--actor", "alice")
    assert code == 0
    first_key = out.splitlines()[-1]
    assert first_key.startswith("sk_")

    code, out = run("create-key", name, "--scope", "read", "--actor", "alice")
    assert code == 0
    read_key = out.splitlines()[-1]

    code, out = run("roll-key", name, "--expire-old-after", "24h", "--actor", "bob")
    assert code == 0
    new_key = out.splitlines()[1]
    assert f"old key …{first_key[-4:]} works until" in out

    code, out = run("list-keys", name)
    assert code == 0
    lines = {line.split()[2]: line.split() for line in out.splitlines()[1:]}
    assert lines["…" + first_key[-4:]][3:5] == ["write", "expiring"]
    assert lines["…" + read_key[-4:]][3:5] == ["read", "active"]
    assert lines["…" + new_key[-4:]][3:5] == ["write", "active"]

    read_key_id = lines["…" + read_key[-4:]][1]
    assert run("revoke-key", name, read_key_id, "--actor", "carol")[0] == 0
    assert run("disable-client", name, "--actor", "carol")[0] == 0

    rows = audit_rows(settings, name)
    assert [(r.action, r.actor) for r in rows] == [
        ("create-client", "alice"),
        ("create-key", "alice"),
        ("roll-key", "bob"),
        ("list-keys", os_user()),
        ("revoke-key", "carol"),
        ("disable-client", "carol"),
    ]
    by_action = {r.action: r.details for r in rows}
    assert by_action["create-key"] == {"key": "…" + read_key[-4:], "scope": "read"}
    rolled = by_action["roll-key"]
    assert rolled["new_key"] == "…" + new_key[-4:]
    assert rolled["expire_old_after_s"] == 86_400
    assert [e["key"] for e in rolled["expiring"]] == ["…" + first_key[-4:]]
    every_value = json.dumps([r.details for r in rows])
    for key in (first_key, read_key, new_key):
        assert key not in every_value and key[:-4] not in every_value  # only the last 4

    code, out = run("audit", "--client", name, "--json")
    assert code == 0
    listed = [json.loads(line) for line in out.splitlines()]
    assert [e["action"] for e in listed] == [r.action for r in rows]
    assert listed[0]["details"] == rows[0].details


def test_list_clients_and_reconcile_are_audited_too(run, settings):
    before = query(settings, lambda c: c.scalar(sa.select(sa.func.max(admin_audit.c.id))))
    name = infra.unique_name("listed")
    assert run("create-client", name)[0] == 0
    code, out = run("list-clients", "--actor", "dave")
    assert code == 0
    (line,) = [line for line in out.splitlines() if line.startswith(name)]
    assert line.split()[1:3] == ["1", "enabled"]  # one usable key
    assert run("reconcile", "--stuck-after", "3600", "--actor", "dave")[0] == 0

    select = sa.select(admin_audit).where(admin_audit.c.id > (before or 0))
    rows = [r for r in query(settings, lambda c: c.execute(select)).all() if r.actor == "dave"]
    assert sorted(r.action for r in rows) == ["list-clients", "reconcile"]
    (reconciled,) = [r for r in rows if r.action == "reconcile"]
    assert reconciled.details["stuck_after_s"] == 3600


def test_a_failed_command_writes_no_audit_row(run, settings):
    name = infra.unique_name("twice")
    assert run("create-client", name)[0] == 0
    assert run("create-client", name)[0] == 1
    assert run.stderr == f"error: a client named {name!r} already exists\n"
    assert run("roll-key", infra.unique_name("nobody"), "--expire-old-after", "1h")[0] == 1
    assert run("revoke-key", name, "ffffffff")[0] == 1
    assert [r.action for r in audit_rows(settings, name)] == ["create-client"]


def test_keys_of_a_disabled_client_cannot_be_rolled(run, settings):
    name = infra.unique_name("off")
    assert run("create-client", name)[0] == 0
    assert run("disable-client", name)[0] == 0
    assert run("roll-key", name, "--expire-old-after", "1h")[0] == 1
    assert run("create-key", name)[0] == 1
