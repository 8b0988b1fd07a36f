"""Running the web app under gunicorn, configured in code (no config file to keep in step)."""

from gunicorn.app.base import BaseApplication


class _Server(BaseApplication):
    def __init__(self, options):
        self.options = options
        super().__init__()

    def load_config(self):
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self):
        from web import create_app

        return create_app()


def serve(host, port, workers, access_log="-"):
    """Serve until stopped. ``access_log``: "-" for stdout, None for none (errors always go to stderr)."""
    _Server({"bind": f"{host}:{port}", "workers": workers, "worker_class": "gthread", "threads": 4,
             "accesslog": access_log, "errorlog": "-", "timeout": 60}).run()
