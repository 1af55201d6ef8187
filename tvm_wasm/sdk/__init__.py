"""The guest author's side: building C guests, and example programs (``examples/``) to copy."""
