"""Unit of work: one connection and one transaction that rolls back unless commit() is called."""

from __future__ import annotations

from types import TracebackType

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncTransaction


class UnitOfWork:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._conn: AsyncConnection | None = None
        self._tx: AsyncTransaction | None = None

    @property
    def conn(self) -> AsyncConnection:
        assert self._conn is not None, "use the unit of work inside 'async with'"
        return self._conn

    async def __aenter__(self) -> UnitOfWork:
        self._conn = await self._engine.connect()
        try:
            self._tx = await self._conn.begin()
        except BaseException:
            await self._conn.close()
            raise
        return self

    async def commit(self) -> None:
        assert self._tx is not None
        await self._tx.commit()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if self._tx is not None and self._tx.is_active:
                await self._tx.rollback()
        finally:
            assert self._conn is not None
            await self._conn.close()
