"""Storage adapters: the SQLAlchemy registry store and the stored queries as SQL."""
