"""Output: the `kv` table, JSON/CSV/XLSX export, and terminal rendering (the only rich importer)."""
