"""The agents' endpoint: an API Gateway HTTP API (payload 1.0) and its mutual-TLS custom domain.

Agents are the bulk of all traffic, so ``POST /v1/opamp`` sits on an HTTP API
(about $1 per million requests) rather than the operators' REST API. The same
Chalice handler serves it: payload format 1.0 is the REST proxy event's shape, and
behind a custom domain with mutual TLS it carries ``requestContext.identity.clientCert``.
The domain's truststore (every tenant CA certificate, PEM) lives in a versioned S3 bucket:
the stack writes a placeholder once (if absent), and the functions append each tenant CA they
create and point the domain at the new version (``chalicelib.certificates.truststore``).
"""

from __future__ import annotations

from pathlib import Path

from aws_cdk import CfnOutput, CfnResource, RemovalPolicy, Stack
from aws_cdk import aws_apigatewayv2 as apigw
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import custom_resources as cr
from aws_cdk.aws_apigatewayv2_integrations import HttpLambdaIntegration
from constructs import Construct

from infra.config import StageSettings
from infra.functions import Route

#: The truststore object's key in the truststore bucket.
TRUSTSTORE_KEY = "truststore.pem"
#: The first truststore: a CA certificate whose key was discarded when it was made (API Gateway
#: refuses a domain without a truststore with a certificate in it). It signs nothing.
PLACEHOLDER = Path(__file__).resolve().parent / "truststore-placeholder.pem"


class AgentApi(Construct):
    """The HTTP API that serves the agents' routes, the truststore bucket, and the mTLS domain."""

    def __init__(self, scope: Construct, construct_id: str, *, settings: StageSettings,
                 functions: dict[Route, lambda_.IFunction]) -> None:
        super().__init__(scope, construct_id)
        self.truststore = self._truststore_bucket()
        self.seed = self._seed_truststore()
        self.http_api = apigw.HttpApi(
            self, "HttpApi", api_name=f"{settings.resource_prefix}agents",
            description="Ampora agents: OpAMP over HTTP")
        for route, function in functions.items():
            self._add_route(route, function)
        self.domain = self._domain(settings) if settings.agent_domain else None
        CfnOutput(self, "AgentEndpoint", value=f"{self.http_api.api_endpoint}/v1/opamp",
                  description="OpAMP endpoint for enrollment (bootstrap tokens)")

    def _truststore_bucket(self) -> s3.Bucket:
        return s3.Bucket(
            self, "Truststore", versioned=True, enforce_ssl=True,
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            removal_policy=RemovalPolicy.RETAIN)

    def _seed_truststore(self) -> cr.AwsCustomResource:
        """Write the placeholder truststore on the stack's first deploy, only if there is none
        (``IfNoneMatch``): later deploys never touch what the functions have appended."""
        put = cr.AwsSdkCall(
            service="S3", action="putObject",
            parameters={"Bucket": self.truststore.bucket_name, "Key": TRUSTSTORE_KEY,
                        "Body": PLACEHOLDER.read_text(), "ContentType": "application/x-pem-file",
                        "IfNoneMatch": "*"},
            physical_resource_id=cr.PhysicalResourceId.of(TRUSTSTORE_KEY),
            ignore_error_codes_matching="PreconditionFailed|ConditionalRequestConflict")
        seed = cr.AwsCustomResource(
            self, "TruststoreSeed", on_create=put, install_latest_aws_sdk=False,
            policy=cr.AwsCustomResourcePolicy.from_statements([iam.PolicyStatement(
                actions=["s3:PutObject"],
                resources=[self.truststore.arn_for_objects(TRUSTSTORE_KEY)])]))
        # The provider's function names its role (GetAtt) and also DependsOn it: cfn-lint W3005.
        uuid = cr.AwsCustomResource.PROVIDER_FUNCTION_UUID.replace("-", "")
        provider = Stack.of(self).node.find_child(f"AWS{uuid}")
        cfn = provider.node.default_child
        assert isinstance(cfn, CfnResource)
        cfn.add_deletion_override("DependsOn")
        return seed

    def _add_route(self, route: Route, function: lambda_.IFunction) -> None:
        integration = HttpLambdaIntegration(
            f"{route.logical_id}Integration", function,
            payload_format_version=apigw.PayloadFormatVersion.VERSION_1_0)
        self.http_api.add_routes(path=route.path, methods=[apigw.HttpMethod(route.method)],
                                 integration=integration)

    def _domain(self, settings: StageSettings) -> apigw.DomainName:
        certificate = acm.Certificate.from_certificate_arn(
            self, "Certificate", settings.agent_certificate_arn)
        mtls = apigw.MTLSConfig(bucket=self.truststore, key=TRUSTSTORE_KEY,
                                version=settings.agent_truststore_version or None)
        domain = apigw.DomainName(self, "Domain", domain_name=settings.agent_domain_name,
                                  certificate=certificate, mtls=mtls,
                                  security_policy=apigw.SecurityPolicy.TLS_1_2)
        domain.node.add_dependency(self.seed)
        apigw.ApiMapping(self, "Mapping", api=self.http_api, domain_name=domain)
        CfnOutput(self, "AgentMtlsEndpoint",
                  value=f"https://{settings.agent_domain_name}/v1/opamp",
                  description="OpAMP endpoint for agents with a client certificate (mTLS)")
        CfnOutput(self, "AgentDomainTarget", value=domain.regional_domain_name,
                  description="Point the agent domain's DNS (CNAME/alias) here")
        return domain
