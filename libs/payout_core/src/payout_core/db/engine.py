"""Engine construction from DATABASE_URL."""

from __future__ import annotations

from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine


def async_url(database_url: str) -> str:
    """postgresql://... as SQLAlchemy's asyncpg URL."""
    url = make_url(database_url)
    return url.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)


def create_engine(database_url: str, pool_size: int = 10) -> AsyncEngine:
    return create_async_engine(
        async_url(database_url),
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        pool_timeout=5,
        # Errors and logs never echo statement values (account numbers live in them).
        hide_parameters=True,
        # Short connect timeout so an unreachable database turns into a 503 quickly.
        connect_args={"timeout": 5, "command_timeout": 30},
    )
