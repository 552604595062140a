"""The web foundation both tiers' HTTP consoles stand on (the city console, the hub's
supervisor web): signed session cookie, CSRF, failed-login throttling, zh/en labels, the page
layout, error pages, static files and a uvicorn server that runs inside a tier's event loop.

Each tier keeps its own routes, templates, role table and account store; this package
imports neither tier (``sync`` is the shared layer), so everything tier-specific comes in as
arguments: how to find the account, which exceptions mean which status, which labels.

Modules: :mod:`sync.web.auth` (session, CSRF, credentials), :mod:`sync.web.throttle`
(failed logins), :mod:`sync.web.i18n` (languages and shared labels), :mod:`sync.web.app`
(middleware, error mapping, templates, static files, page rendering), :mod:`sync.web.server`
(uvicorn in the tier's loop), :mod:`sync.web.keys` (the signing key file, without the web
stack), :mod:`sync.web.params` (query value types).
"""
