"""Live updates: the websocket API ``chalice package`` writes for the app's websocket handlers,
and what the stack adds to it.

Chalice packages the API (``$connect``, ``$default``, ``$disconnect``, each integrated with its
handler's function, with an invoke permission, deployed to a stage named like the REST API's)
and keeps its route selection expression (``$request.body.action``: the hub's messages carry
``type``, so every message takes ``$default``). The stack adds:

- the events table's stream → the fan-out function, in order (one batch per shard at a time),
  a poison batch bisected and then skipped after a few retries, never blocking the stream;
- for the functions' role: posting to and closing connections through the management API
  (``execute-api:ManageConnections`` on this API's ``@connections``) and reading the stream;
- the URL clients connect to, as the output Chalice names ``WebsocketConnectEndpointURL``.
"""

from __future__ import annotations

from aws_cdk import ArnFormat, Duration, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from chalice.cdk import Chalice
from constructs import Construct

#: What ``chalice package`` names the websocket API, its stage and the output with its URL.
WEBSOCKET_API = "WebsocketAPI"
WEBSOCKET_STAGE = "WebsocketAPIStage"
URL_OUTPUT = "WebsocketConnectEndpointURL"
#: The management API calls the functions make on a connection: post to it, close it.
CONNECTION_METHODS = ("POST", "DELETE")
#: The stream → fan-out mapping: up to this many records a batch, gathered for at most this
#: long; a failing batch is split in two and retried, and skipped after this many retries.
BATCH_SIZE = 100
BATCHING_WINDOW = Duration.seconds(1)
RETRY_ATTEMPTS = 3


class LiveUpdates(Construct):
    """The fan-out's stream mapping, the functions' grants on connections and the stream, and
    the clients' URL, for the websocket API in ``api``'s package."""

    def __init__(self, scope: Construct, construct_id: str, *, api: Chalice,
                 fan_out: lambda_.IFunction, events: dynamodb.ITable, role: iam.IRole) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.api_id = api.get_resource(WEBSOCKET_API).ref
        stage = api.get_resource(WEBSOCKET_STAGE).ref  # its name
        self.url = f"wss://{self.api_id}.execute-api.{stack.region}.{stack.url_suffix}/{stage}"
        output = api.sam_template.get_output(URL_OUTPUT)
        output.value = self.url
        output.description = "Live-updates hub (websocket): wss://<this>?access_token=<token>"
        events.grant_stream_read(role)
        role.add_to_principal_policy(self._connections_statement())
        self.mapping = lambda_.EventSourceMapping(
            self, "FanOut", target=fan_out, event_source_arn=events.table_stream_arn,
            starting_position=lambda_.StartingPosition.LATEST, batch_size=BATCH_SIZE,
            max_batching_window=BATCHING_WINDOW, bisect_batch_on_error=True,
            retry_attempts=RETRY_ATTEMPTS)
        # Lambda checks, when it creates the mapping, that the function's role may read the
        # stream: the mapping waits for the role's policy.
        self.mapping.node.add_dependency(role)

    def _connections_statement(self) -> iam.PolicyStatement:
        """Post to and close any connection of this API, at any stage
        (``<api>/<stage>/<method>/@connections/<connection id>``)."""
        arns = [Stack.of(self).format_arn(
                    service="execute-api", resource=self.api_id,
                    resource_name=f"*/{method}/@connections/*",
                    arn_format=ArnFormat.SLASH_RESOURCE_NAME)
                for method in CONNECTION_METHODS]
        return iam.PolicyStatement(sid="LiveUpdatesConnections",
                                   actions=["execute-api:ManageConnections"], resources=arns)
