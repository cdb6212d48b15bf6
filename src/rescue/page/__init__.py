"""report.html and its plots, read from the records a rescue or sweep left in its folder."""
