"""The ``rescue`` command line and its terminal output."""
