"""Tuning tables: the journal of Optuna operations that makes up every study (see journal.py)."""

from sqlalchemy import BigInteger, Column, Table, Text

from mloop.store.sql.tables import metadata

# One row per Optuna journal entry; ``seq`` is the entry's position (0, 1, 2, ... with no gap), which is
# how Optuna's JournalStorage reads "every entry from n on".
tuning_journal = Table(
    "tuning_journal", metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("entry", Text, nullable=False),
)
