"""What comes in: data files read with line numbers, documents and codes, splits, the coded-by selection,
the bundled example datasets, gold building."""
