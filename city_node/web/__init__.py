"""The city console: an HTTP API (``/api/v1``, documented at ``/openapi.json``) and
server-rendered pages for city staff, built by :func:`city_node.web.app.create_app`."""
