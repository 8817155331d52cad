"""Ampora's Chalice app: registers middleware, blueprints and wiring. Nothing else."""

from chalice import Chalice

from chalicelib.audit.routes import bp as audit_routes
from chalicelib.bootstrap import bootstrap
from chalicelib.core.http import problem_middleware
from chalicelib.meta.planned import bp as planned_routes
from chalicelib.meta.routes import bp as meta_routes
from chalicelib.tenants.routes import bp as tenant_routes
from chalicelib.tokens.routes import bp as token_routes

app = Chalice(app_name="ampora")
app.register_middleware(problem_middleware, "http")
app.register_blueprint(tenant_routes)
app.register_blueprint(token_routes)
app.register_blueprint(audit_routes)
app.register_blueprint(meta_routes)
app.register_blueprint(planned_routes)
bootstrap()
