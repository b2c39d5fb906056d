"""The quality-diversity archive: SQLite store, MAP-Elites grid, islands, selection.

Every SQL statement of evosearch lives in this package: the store's writes and a campaign's
reads in ``store.py``, the browsers', report's and exporter's reads in ``reads.py``.
"""

from evosearch.archive.descriptors import DESCRIPTORS, Axis, Grid, grid_from_config
from evosearch.archive.opening import ArchiveLocked
from evosearch.archive.reads import Walk
from evosearch.archive.schema import NotAnArchive, SchemaError
from evosearch.archive.store import Archive, CellEntry

__all__ = ["DESCRIPTORS", "Archive", "ArchiveLocked", "Axis", "CellEntry", "Grid", "NotAnArchive", "SchemaError",
           "Walk", "grid_from_config"]
