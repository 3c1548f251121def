"""The web page: a static single-page app (plain HTML/CSS/JS, no build step) over the API.

:mod:`api.web.routes` serves it at ``/`` and its files under ``/web/``; those paths need no API
key (the page asks the user for the key and sends it as ``X-API-Key`` on API calls).
"""
