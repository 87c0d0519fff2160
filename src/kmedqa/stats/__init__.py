"""Statistics: paired tests (paired), power analysis (power), the comparison plan (compare)."""
