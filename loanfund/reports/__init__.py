"""Portfolio reports of a fund, and of a fund at one bank, as of a date (JSON, CSV, XLSX)."""
