"""A fake Azure ML registry service on 127.0.0.1 over TLS: ARM cloud metadata, registry discovery, models.

The azure-ai-ml SDK reaches it through its own custom-cloud configuration (see docs/azure.md):
`ARM_CLOUD_METADATA_URL` names this server's `/metadata/endpoints`, whose `resourceManager` is this
server, and `REGISTRY_DISCOVERY_ENDPOINT_URL` is this server too. Registry discovery answers with
`primaryRegionResourceProviderUri` = this server, so the model requests come here as well
(`/mferp/managementfrontend/subscriptions/.../registries/<r>/models/...`). Bearer tokens are only sent
over https, so the server speaks TLS with a CA and a leaf certificate made here (`cryptography`);
`ca_path` is the CA to trust (REQUESTS_CA_BUNDLE).

Every body is built from the SDK's own REST models (`azure.ai.ml._restclient...models`) and serialised
with their `as_dict()`, so what the SDK deserialises is what its models produce. Faults: a registry
that is `forbidden` (403) or absent (404 from discovery), a model or version absent (404), `throttle`
(the next N requests under a path prefix answer 429 with `Retry-After`), and a page size for listings.

The two catalog entries (`PHI_4`, `ZEPHYR_MIRROR`) take their field values from the public azureml
registry's asset sources (github.com/Azure/azureml-assets): `assets/models/system/Phi-4/spec.yaml`
and `description.md` (a first-party model: tags author, license, task, languages,
inference_compute_allow_list, hiddenlayerscanned, SharedComputeCapacityEnabled, inference_supported_envs,
trainingDataDate) and `assets/models/system/HuggingFaceH4-zephyr-7b-beta/spec.yaml` (a Hub mirror:
tag huggingface_model_id, the licence in the asset's properties, SHA of the Hub commit,
finetuning-tasks, inference/finetune SKUs). Descriptions are shortened; list-valued tags are sent as
the strings the service returns (`"[a, b]"`), which is how the SDK hands them over.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import re
import ssl
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

TOKEN = "eyJ0eXAiOiJKV1QiLCJhbGciOiJub25lIn0.fake-azure-token-0123456789"
SUBSCRIPTION = "00000000-1111-2222-3333-444444444444"
RESOURCE_GROUP = "registry-rg"
MFE = "/mferp/managementfrontend"
API_VERSION = "2021-10-01-dataplanepreview"


@dataclass
class Entry:
    """One model version in a registry."""

    name: str
    version: str
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    properties: dict[str, str] = field(default_factory=dict)
    created_at: str = "2025-01-10T08:00:00Z"
    model_type: str = "mlflow_model"
    flavors: dict[str, dict[str, str]] = field(default_factory=dict)


@dataclass
class Registry:
    name: str
    models: dict[str, list[Entry]] = field(default_factory=dict)
    forbidden: bool = False

    def add(self, entry: Entry) -> Entry:
        self.models.setdefault(entry.name, []).append(entry)
        return entry


class StaticCredential:
    """A TokenCredential with a fixed token (what DefaultAzureCredential returns, without Azure AD)."""

    def __init__(self, token: str = TOKEN) -> None:
        self.token = token
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken

        self.scopes.append(scopes)
        return AccessToken(self.token, int(dt.datetime.now(dt.timezone.utc).timestamp()) + 3600)

    def get_token_info(self, *scopes: str, options: Any = None) -> Any:
        from azure.core.credentials import AccessTokenInfo

        self.scopes.append(scopes)
        return AccessTokenInfo(self.token, int(dt.datetime.now(dt.timezone.utc).timestamp()) + 3600)


def make_certificates(folder: Path) -> tuple[Path, Path, Path]:
    """A CA and a leaf certificate for 127.0.0.1/localhost signed by it: (ca.pem, leaf.pem, leaf.key)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "model-audit test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    ca_path, leaf_path, key_path = folder / "ca.pem", folder / "leaf.pem", folder / "leaf.key"
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    leaf_path.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return ca_path, leaf_path, key_path


# ------------------------------------------------------------------ bodies through the SDK's REST models


def _dump(obj: Any) -> bytes:
    from azure.ai.ml._restclient.arm_ml_service._utils.model_base import SdkJSONEncoder

    return json.dumps(obj.as_dict() if hasattr(obj, "as_dict") else obj, cls=SdkJSONEncoder).encode()


def version_body(registry: str, e: Entry) -> Any:
    """The REST ModelVersion of one entry."""
    from azure.ai.ml._restclient.arm_ml_service import models as arm

    mv = arm.ModelVersion(
        properties=arm.ModelVersionProperties(
            description=e.description,
            tags=dict(e.tags),
            properties=dict(e.properties),
            model_type=e.model_type,
            model_uri=f"azureml://registries/{registry}/models/{e.name}/versions/{e.version}",
            is_archived=False,
            flavors={k: arm.FlavorData(data=v) for k, v in e.flavors.items()},
        )
    )
    mv.id = f"azureml://registries/{registry}/models/{e.name}/versions/{e.version}"
    mv.name = e.version
    mv.system_data = arm.SystemData(
        created_at=dt.datetime.fromisoformat(e.created_at.replace("Z", "+00:00")),
        created_by="azureml",
        last_modified_at=dt.datetime.fromisoformat(e.created_at.replace("Z", "+00:00")),
    )
    return mv


def container_body(registry: str, name: str, entries: list[Entry]) -> Any:
    """The REST ModelContainer of one model name."""
    from azure.ai.ml._restclient.arm_ml_service import models as arm

    latest = entries[-1]
    c = arm.ModelContainer(
        properties=arm.ModelContainerProperties(description=latest.description[:200], tags=dict(latest.tags))
    )
    c.properties["latestVersion"] = latest.version
    c.id = f"azureml://registries/{registry}/models/{name}"
    c.name = name
    c.system_data = arm.SystemData(
        created_at=dt.datetime.fromisoformat(entries[0].created_at.replace("Z", "+00:00"))
    )
    return c


# ------------------------------------------------------------------ the server


class FakeAzure:
    """The TLS server and its registries."""

    def __init__(self, cert_dir: Path) -> None:
        self.ca_path, leaf, key = make_certificates(cert_dir)
        self.registries: dict[str, Registry] = {}
        self.requests: list[dict[str, Any]] = []
        self.throttle: dict[str, int] = {}  # path prefix -> how many more 429s
        self.retry_after = 1
        self.page_size = 2
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.server.daemon_threads = True
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(leaf, key)
        self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"https://{host}:{port}"

    def start(self) -> FakeAzure:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def reset(self) -> None:
        with self.lock:
            self.registries.clear()
            self.requests.clear()
            self.throttle.clear()
            self.retry_after = 1
            self.page_size = 2

    def registry(self, name: str, *, forbidden: bool = False) -> Registry:
        reg = Registry(name, forbidden=forbidden)
        with self.lock:
            self.registries[name] = reg
        return reg

    def env(self) -> dict[str, str]:
        """The environment that points azure-ai-ml at this server (its custom-cloud settings) and trusts it."""
        return {
            "ARM_CLOUD_METADATA_URL": f"{self.url}/metadata/endpoints?api-version=2019-05-01",
            "REGISTRY_DISCOVERY_ENDPOINT_URL": f"{self.url}/",
            "REQUESTS_CA_BUNDLE": str(self.ca_path),
        }

    def paths(self) -> list[str]:
        with self.lock:
            return [r["path"] for r in self.requests]


_MODELS = re.compile(
    r"^" + MFE + r"/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.MachineLearningServices"
    r"/registries/(?P<reg>[^/]+)/models(?:/(?P<name>[^/]+)(?P<versions>/versions(?:/(?P<version>[^/]+))?)?)?$"
)
_DISCOVERY = re.compile(r"^/registrymanagement/v1\.0/registries/(?P<reg>[^/]+)/discovery$")


def _handler(az: FakeAzure) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

        def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _error(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
            body = json.dumps({"error": {"code": code, "message": message}}).encode()
            self._send(status, body, headers)

        def do_GET(self) -> None:  # noqa: N802
            parts = urlsplit(self.path)
            path, query = unquote(parts.path), dict(parse_qsl(parts.query, keep_blank_values=True))
            auth = self.headers.get("Authorization", "")
            with az.lock:
                az.requests.append({"path": path, "query": query, "auth": auth})
                throttled = next((p for p, n in az.throttle.items() if n > 0 and path.startswith(p)), None)
                if throttled is not None:
                    az.throttle[throttled] -= 1
            if throttled is not None:
                self._error(
                    429, "TooManyRequests", "Rate limit exceeded", {"Retry-After": str(az.retry_after)}
                )
                return
            if path == "/metadata/endpoints":
                self._metadata()
                return
            if auth != f"Bearer {TOKEN}":
                self._error(401, "InvalidAuthenticationToken", "The access token is invalid.")
                return
            if m := _DISCOVERY.match(path):
                self._discovery(m["reg"])
            elif (m := _MODELS.match(path)) is not None:
                self._models(m["reg"], m["name"], bool(m["versions"]), m["version"], query)
            else:
                self._error(404, "NotFound", f"no route for {path}")

        def _metadata(self) -> None:
            base = az.url + "/"
            cloud = {
                "name": "AzureModelAuditTest",
                "portal": "https://portal.modelaudit.test/",
                "resourceManager": base,
                "authentication": {"loginEndpoint": base, "audiences": [base]},
                "suffixes": {"storage": "core.modelaudit.test"},
            }
            self._send(200, json.dumps([cloud]).encode())

        def _registry(self, name: str) -> Registry | None:
            reg = az.registries.get(name)
            if reg is None:
                self._error(404, "RegistryNotFound", f"Registry {name} not found")
                return None
            if reg.forbidden:
                self._error(
                    403,
                    "AuthorizationFailed",
                    f"The client does not have authorization to read registry {name}.",
                )
                return None
            return reg

        def _discovery(self, name: str) -> None:
            from azure.ai.ml._restclient.registry_discovery.models import RegistryDiscoveryDto

            if self._registry(name) is None:
                return
            dto = RegistryDiscoveryDto(
                registry_name=name,
                tenant_id="tenant",
                primary_region="eastus",
                regions=["eastus"],
                subscription_id=SUBSCRIPTION,
                resource_group=RESOURCE_GROUP,
                primary_region_resource_provider_uri=az.url + "/",
            )
            self._send(200, _dump(dto))

        def _models(
            self, reg_name: str, name: str | None, versions: bool, version: str | None, q: dict[str, str]
        ) -> None:
            reg = self._registry(reg_name)
            if reg is None:
                return
            if name is None:
                names = sorted(reg.models)
                self._page([_dump(container_body(reg_name, n, reg.models[n])) for n in names], q)
                return
            entries = reg.models.get(name)
            if not entries:
                self._error(404, "UserError", f"Model container {name} not found")
                return
            if not versions:
                self._send(200, _dump(container_body(reg_name, name, entries)))
                return
            if version is None:  # a list of versions ($orderBy=createdtime desc, $top=1 for 'latest')
                ordered = sorted(entries, key=lambda e: e.created_at, reverse=True)
                top = int(q.get("$top", len(ordered)))
                self._page([_dump(version_body(reg_name, e)) for e in ordered[:top]], q)
                return
            e = next((x for x in entries if x.version == version), None)
            if e is None:
                self._error(404, "UserError", f"Model {name}:{version} not found")
                return
            self._send(200, _dump(version_body(reg_name, e)))

        def _page(self, items: list[bytes], q: dict[str, str]) -> None:
            start = int(q.get("$skipToken", "0") or 0)
            page = items[start : start + az.page_size]
            body: dict[str, Any] = {"value": [json.loads(b) for b in page]}
            if start + az.page_size < len(items):
                rest = {**q, "$skipToken": str(start + az.page_size)}
                body["nextLink"] = f"{az.url}{urlsplit(self.path).path}?{urlencode(rest)}"
            self._send(200, json.dumps(body).encode())

    return Handler


# ------------------------------------------------------------------ catalog entries from the public catalog

# Phi-4 (azureml registry), from Azure/azureml-assets assets/models/system/Phi-4/spec.yaml (version 2)
# and description.md; the licence text (licenseDescription) is left out, the description is shortened.
PHI_4 = Entry(
    name="Phi-4",
    version="2",
    description=(
        "Phi-4 is a state-of-the-art open model built upon a blend of synthetic datasets, data from filtered "
        "public domain websites, and acquired academic books and Q&A datasets. The goal of this approach was to "
        "ensure that small capable models were trained with data focused on high quality and advanced "
        "reasoning.\n\n"
        "### Model Architecture\n\nPhi-4 is a 14B parameters, dense decoder-only transformer model.\n\n"
        "### Training Data\n\nOur training data is an extension of the data used for Phi-3 and includes a wide "
        "variety of sources from publicly available documents filtered rigorously for quality, selected "
        "high-quality educational data, and code; newly created synthetic, textbook-like data; acquired "
        "academic books and Q&A datasets; and high quality chat format supervised data.\n"
    ),
    tags={
        "author": "Microsoft",
        "SharedComputeCapacityEnabled": "",
        "disable-batch": "true",
        "languages": "en,ar,bn,cs,da,de,el,es,fa,fi,fr",
        "keywords": "Reasoning,Understanding,Low latency",
        "inference_supported_envs": "['vllm']",
        "license": "MIT",
        "task": "chat-completion",
        "displayName": "Phi-4",
        "summary": "Phi-4 14B, a highly capable model for low latency scenarios.",
        "textContextWindow": "16384",
        "trainingDataDate": "June 2024",
        "hiddenlayerscanned": "",
        "maas-inference": "true",
        "inference_compute_allow_list": "['Standard_NC24ads_A100_v4', 'Standard_NC48ads_A100_v4', "
        "'Standard_NC96ads_A100_v4', 'Standard_ND96asr_v4', 'Standard_ND96amsr_A100_v4']",
    },
    properties={
        "inference-min-sku-spec": "24|1|220|64",
        "languages": "en",
        "SharedComputeCapacityEnabled": "true",
    },
    created_at="2025-01-08T17:00:00Z",
)

# HuggingFaceH4-zephyr-7b-beta (azureml registry), a Hub mirror, from Azure/azureml-assets
# assets/models/system/HuggingFaceH4-zephyr-7b-beta/spec.yaml (version 1) and model.yaml (mlflow_model).
# The description is the catalog's usual mirror summary pointing at the original card.
ZEPHYR_MIRROR = Entry(
    name="HuggingFaceH4-zephyr-7b-beta",
    version="1",
    description=(
        "Zephyr is a series of language models that are trained to act as helpful assistants. Zephyr-7B-beta "
        "is the second model in the series, a fine-tuned version of mistralai/Mistral-7B-v0.1.\n\n"
        "> The above summary was generated using ChatGPT. Review the original model card to understand the "
        "data used to train the model, evaluation metrics, license, intended uses, limitations and bias before "
        "using the model.\n"
    ),
    tags={
        "Featured": "",
        "SharedComputeCapacityEnabled": "",
        "huggingface_model_id": "HuggingFaceH4/zephyr-7b-beta",
        "inference_compute_allow_list": "['Standard_NC12s_v3', 'Standard_NC24s_v3', 'Standard_ND40rs_v2', "
        "'Standard_NC24ads_A100_v4']",
    },
    properties={
        "SharedComputeCapacityEnabled": "true",
        "SHA": "dc24cabd13eacd3ae3a5fe574bd645483a335a4a",
        "inference-min-sku-spec": "12|1|220|64",
        "finetune-recommended-sku": "Standard_ND40rs_v2, Standard_ND96amsr_A100_v4, Standard_ND96asr_v4",
        "finetuning-tasks": "text-generation",
        "languages": "en",
        "license": "mit",
    },
    created_at="2024-01-25T12:00:00Z",
    flavors={"transformers": {"framework": "pt", "task": "text-generation"}},
)
