"""MCP server for the day-2 operations of moodle.platform sites."""

__version__ = "0.1.0"
