"""Conference domain and media core. Never imports aiohttp, socketio or redis."""
