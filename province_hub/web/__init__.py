"""The hub's supervisor web: server-rendered pages and ``/api/v1`` over the consolidated
figures, on the shared web foundation (:mod:`sync.web`)."""
