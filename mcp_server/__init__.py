"""The twin as an MCP server: tools, resources and prompts over the Twin service (`server.py`),
stdio and streamable HTTP with per-caller audiences (`access.py`, `http.py`), `twin serve mcp`
(`cli.py`)."""
