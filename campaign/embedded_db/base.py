"""Django's PostgreSQL backend, pointed at the embedded server and starting it on first use.

Settings only name this engine; nothing starts until a command actually connects, so
`manage.py compile_translations` or a settings check never spawns a server.
"""

from django.db.backends.postgresql import base

from campaign import embedded_db


class DatabaseWrapper(base.DatabaseWrapper):
    def get_connection_params(self) -> dict:
        socket_dir = str(embedded_db.socket_dir_for(embedded_db.var_dir_of(self.settings_dict)))
        # In the settings too: `manage.py dbshell` and the test database creation read them.
        self.settings_dict["HOST"] = socket_dir
        params = super().get_connection_params()
        params["host"] = socket_dir
        return params
