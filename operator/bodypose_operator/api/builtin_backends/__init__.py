"""The operator halves of the built-in backends, one module each.

Each module holds one backend's row (`ROW`, its facts, from its contract row) and its
part: the object the row carries, implementing the optional interfaces of
`api/capabilities.py` it has a use for. The table (`api/backends.py`) lists the rows;
a plug-in's row and part live in its own package instead, and reach the table through
its `register_operator` hook. The modules import none of one another.
"""
