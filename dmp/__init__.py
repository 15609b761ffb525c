"""dmp: an open audience pipeline (behaviour logs -> tags -> packs -> delivery -> uplift)."""

__version__ = "0.1.0"
