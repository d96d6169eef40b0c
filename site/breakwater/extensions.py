"""Extensions, created unbound here and bound to the app inside ``create_app``."""

from flask_wtf.csrf import CSRFProtect

from breakwater.database import Database

csrf = CSRFProtect()
db = Database()
