"""Ampora's Chalice app: registers middleware, blueprints and wiring (and the hub's websocket
routes, which Chalice deploys only from the app itself). Nothing else."""

from typing import Any

from chalice import Chalice

from chalicelib.agents.routes import bp as agent_routes
from chalicelib.audit.routes import bp as audit_routes
from chalicelib.bootstrap import bootstrap
from chalicelib.certificates.routes import bp as certificate_routes
from chalicelib.configurations.routes import bp as configuration_routes
from chalicelib.core.http import problem_middleware
from chalicelib.enrollment.routes import bp as enrollment_routes
from chalicelib.groups.routes import bp as group_routes
from chalicelib.live import routes as live
from chalicelib.live.routes import bp as live_routes
from chalicelib.meta.planned import bp as planned_routes
from chalicelib.meta.routes import bp as meta_routes
from chalicelib.opamp.routes import bp as opamp_routes
from chalicelib.policies.routes import bp as policy_routes
from chalicelib.rollouts.routes import bp as rollout_routes
from chalicelib.rollouts.tasks import bp as rollout_tasks
from chalicelib.tenants.routes import bp as tenant_routes
from chalicelib.tokens.routes import bp as token_routes

app = Chalice(app_name="ampora")
app.experimental_feature_flags.update(["WEBSOCKETS"])
app.api.binary_types.append("application/x-protobuf")
app.register_middleware(problem_middleware, "http")
app.register_blueprint(tenant_routes)
app.register_blueprint(token_routes)
app.register_blueprint(enrollment_routes)
app.register_blueprint(audit_routes)
app.register_blueprint(agent_routes)
app.register_blueprint(opamp_routes)
app.register_blueprint(group_routes)
app.register_blueprint(configuration_routes)
app.register_blueprint(policy_routes)
app.register_blueprint(rollout_routes)
app.register_blueprint(rollout_tasks)
app.register_blueprint(certificate_routes)
app.register_blueprint(meta_routes)
app.register_blueprint(live_routes)
app.register_blueprint(planned_routes)
bootstrap()


@app.on_ws_connect()
def live_connect(event: Any) -> Any:
    """``$connect`` of the live-updates hub."""
    return live.connect(event)


@app.on_ws_message()
def live_message(event: Any) -> None:
    """``$default``: a client message to the hub."""
    live.message(event)


@app.on_ws_disconnect()
def live_disconnect(event: Any) -> None:
    """``$disconnect`` from the hub."""
    live.disconnect(event)
