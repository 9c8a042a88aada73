"""PostgreSQL storage: tables, engine, migrations."""
