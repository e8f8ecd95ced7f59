"""The operator parts of the built-in backends, one module each.

Each module holds one backend's part: the object its row in the backend table
(`api/backends.py`) carries, implementing the optional interfaces of
`api/capabilities.py` it has a use for. A plug-in's part lives in its own package
instead, and reaches the table through its `register_operator` hook. The modules name
no backend (the table joins each part to its name) and import none of one another.
"""
