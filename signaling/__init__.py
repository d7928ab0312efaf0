"""The hallbridge server: settings, tokens, Socket.IO and HTTP. The only package that speaks them."""
