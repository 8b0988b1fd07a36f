"""Running the web app under gunicorn, configured in code (no config file to keep in step)."""

from gunicorn.app.base import BaseApplication


class _Server(BaseApplication):
    def __init__(self, options, factory=None):
        self.options = options
        self.factory = factory
        super().__init__()

    def load_config(self):
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self):
        if self.factory is not None:
            return self.factory()
        from web import create_app

        return create_app()


def serve(host, port, workers, access_log="-"):
    """Serve until stopped. ``access_log``: "-" for stdout, None for none (errors always go to stderr)."""
    _Server({"bind": f"{host}:{port}", "workers": workers, "worker_class": "gthread", "threads": 4,
             "accesslog": access_log, "errorlog": "-", "timeout": 60}).run()


def serve_app(factory, host, port, workers=1, threads=8, access_log=None):
    """Serve the WSGI app ``factory()`` returns (e.g. the local FIT-Connect server) under gunicorn:
    keep-alive HTTP/1.1 and real worker threads, unlike a development server."""
    _Server({"bind": f"{host}:{port}", "workers": workers, "worker_class": "gthread", "threads": threads,
             "accesslog": access_log, "errorlog": "-", "timeout": 60, "keepalive": 30}, factory).run()
