//! sqlx repositories for PostgreSQL and SQLite.
