"""How examples get in: readers for landed files, row validation, and the landing folder's decisions."""
