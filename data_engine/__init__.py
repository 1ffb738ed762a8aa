"""The data engine's plain-Python core: warehouse, ingestion, models, issue mining, review, promotion.

Nothing in this package imports Dagster; ``assets/`` and ``sensors/`` wire it into Dagster.
"""

__version__ = "0.1.0"
