"""The quality-diversity archive: SQLite store, MAP-Elites grid, islands, selection (DESIGN §6)."""

from evosearch.archive.descriptors import DESCRIPTORS, Axis, Grid
from evosearch.archive.store import Archive, CellEntry

__all__ = ["DESCRIPTORS", "Archive", "Axis", "CellEntry", "Grid"]
