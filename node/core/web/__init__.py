"""The web interface for NGO staff: server-rendered pages (aiohttp + Jinja2), no JavaScript.

``minga run`` mounts it next to the API (:func:`node.core.web.app.mount_web`). Everything is served
by the node itself: one CSS file, no script, no font or image from another host (the Content
Security Policy is ``default-src 'none'``). Pages work on a 360 px wide screen.

Map of the package:

- ``app``: mounting, the middleware (visit, CSRF, error pages, security headers), role guards.
- ``context``: what handlers use (:func:`~node.core.web.context.render`, the visit, redirects).
- ``sessions``, ``csrf``, ``throttle``, ``passwords``, ``totp``: staff authentication. Accounts
  and server-side sessions live in the store (:mod:`node.core.store.users`); ``accounts`` holds the
  audited account operations shared with ``minga user`` (``user_cli``).
- ``i18n``, ``labels``, ``presenters``: languages (gettext catalogues in ``node/core/locale``),
  names of fields and roles, and display objects built from stored values.
- ``case_form``, ``case_search``: the case form without JavaScript, and searching cases.
- ``views/``: the pages, one module per area, each listing its routes.

Writes go through the same functions as the API (``node.features.cases.casebook`` for cases,
``node.core.sharing`` for shares and retractions), so both are stored, versioned, consent-checked
and audited the same way.
"""
