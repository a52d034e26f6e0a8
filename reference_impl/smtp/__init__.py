"""Reference SMTP implementation: sans-IO cores and thin asyncio adapters.

Cores (no asyncio, socket or ssl): ``replies``, ``commands``, ``client``, ``server`` with
``errors``, ``events``, ``server_events``, ``params`` and ``data``. Adapters: ``aio_client``
(``AsyncSmtpClient``) and ``aio_server`` (``start_smtp_server``). This package module imports
nothing, so importing a core never pulls in an adapter.
"""
