"""The embedded default: the digits demo's data and the loop ``make demo`` runs."""
