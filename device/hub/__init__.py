"""Hub: the daemon's Unix-socket protocol and server, and the client the coach uses."""
