"""The Kubernetes manifests (deploy/kubernetes): every overlay renders with `kubectl kustomize`, every
rendered document is valid against the Kubernetes OpenAPI schemas (kubernetes-validate, offline,
strict: an unknown or misspelt field fails), and the service and retraining pods keep their security
properties. kubectl is required: without it these tests fail, they do not skip."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
KUBERNETES = REPO_ROOT / "deploy" / "kubernetes"
OVERLAYS = sorted(path.name for path in (KUBERNETES / "overlays").iterdir() if path.is_dir())
# The oldest Kubernetes still commonly run by cities' providers, kubectl's own (1.32), and the newest
# the validator ships schemas for.
KUBERNETES_VERSIONS = ("1.30.0", "1.32.0", kubernetes_validate.latest_version())
UID = 10001  # the Dockerfile's `civicrisk` user
MODELS_DIR = "/srv/civicrisk/models"  # CIVICRISK_MODELS_DIR in the Dockerfile

Doc = dict[str, Any]


def kubectl() -> str:
    path = shutil.which("kubectl")
    assert path is not None, (
        "kubectl is not on PATH: these tests render deploy/kubernetes with `kubectl kustomize` "
        "(client only, no cluster needed); install kubectl 1.27+ to run them"
    )
    return path


_rendered: dict[str, list[Doc]] = {}


def render(directory: str) -> list[Doc]:
    if directory not in _rendered:
        result = subprocess.run(
            [kubectl(), "kustomize", str(KUBERNETES / directory)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, f"kubectl kustomize {directory} failed:\n{result.stderr}"
        _rendered[directory] = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    return _rendered[directory]


def one(docs: list[Doc], kind: str) -> Doc:
    found = [doc for doc in docs if doc["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def pod_specs(docs: list[Doc]) -> dict[str, Doc]:
    """The pod spec of the Deployment and of the CronJob."""
    return {
        "Deployment": one(docs, "Deployment")["spec"]["template"]["spec"],
        "CronJob": one(docs, "CronJob")["spec"]["jobTemplate"]["spec"]["template"]["spec"],
    }


def test_there_are_the_two_overlays() -> None:
    assert OVERLAYS == ["fleet-postgresql", "single-city-sqlite"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_rendered_document_is_valid_kubernetes(overlay: str) -> None:
    docs = render(f"overlays/{overlay}")
    assert docs
    for doc in docs:
        name = f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
        for version in KUBERNETES_VERSIONS:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as error:
                pytest.fail(f"{overlay}: {name} is not valid Kubernetes {version}: {error.message}")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_pods_run_as_the_unprivileged_user_on_a_read_only_root(overlay: str) -> None:
    for kind, pod in pod_specs(render(f"overlays/{overlay}")).items():
        assert pod["securityContext"]["runAsNonRoot"] is True, kind
        assert pod["securityContext"]["runAsUser"] == UID, kind
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", kind
        assert pod.get("automountServiceAccountToken") is False, kind
        mounts_of_tmp = []
        for container in pod["containers"]:
            context = container["securityContext"]
            where = f"{kind} {container['name']}"
            assert context["runAsNonRoot"] is True and context.get("runAsUser", UID) == UID, where
            assert context["readOnlyRootFilesystem"] is True, where
            assert context["allowPrivilegeEscalation"] is False, where
            assert context["capabilities"]["drop"] == ["ALL"], where
            assert "add" not in context["capabilities"], where
            assert "privileged" not in context or context["privileged"] is False, where
            resources = container["resources"]
            for bound in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(resources[bound]), f"{where}: {bound}"
            mounts_of_tmp += [m for m in container["volumeMounts"] if m["mountPath"] == "/tmp"]
        # A read-only root needs a writable /tmp, from an emptyDir.
        volumes = {volume["name"]: volume for volume in pod["volumes"]}
        assert len(mounts_of_tmp) == 1 and "emptyDir" in volumes[mounts_of_tmp[0]["name"]], kind


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_service_probes_resources_and_models_volume(overlay: str) -> None:
    docs = render(f"overlays/{overlay}")
    pod = pod_specs(docs)["Deployment"]
    (container,) = pod["containers"]
    assert container["command"] == ["civicrisk", "serve"]
    assert container["image"] == "civicrisk:0.2.0"
    assert [port["containerPort"] for port in container["ports"]] == [8000]
    probes = {name: container[name] for name in ("startupProbe", "readinessProbe", "livenessProbe")}
    assert probes["startupProbe"]["httpGet"]["path"] == "/health/live"
    assert probes["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    assert probes["livenessProbe"]["httpGet"]["path"] == "/health/live"
    startup = probes["startupProbe"]
    # The lead engine warms up for seconds (~12 s for a big city): allow minutes, not seconds.
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 120
    # Sized for one warmed-up worker (~460 MB, ~640 MB peak: bench/README.md "Memory") and its list
    # process under a burst of new dates (~1.15-1.3 GB: "Daily lists under load"), on its second CPU.
    assert container["resources"]["requests"]["memory"] == "768Mi"
    assert container["resources"]["limits"]["memory"] == "1536Mi"
    assert container["resources"]["limits"]["cpu"] == "2"
    config = one([d for d in docs if d["metadata"]["name"] == "civicrisk-config"], "ConfigMap")["data"]
    assert config["CIVICRISK_WORKERS"] == "1"
    assert config["CIVICRISK_DAILY_CHILD_PROCESS"] == "true"
    assert config["CIVICRISK_REQUIRE_SIGNED_BUNDLES"] == "true"
    assert config["CIVICRISK_INSPECTOR_AUTH"] == "key"
    # The served models: the civicrisk-models claim, read-only, where CIVICRISK_MODELS_DIR points.
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    (models,) = [m for m in container["volumeMounts"] if m["mountPath"] == MODELS_DIR]
    assert models["readOnly"] is True
    assert volumes[models["name"]]["persistentVolumeClaim"]["claimName"] == "civicrisk-models"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_retraining_writes_candidates_never_the_served_models(overlay: str) -> None:
    docs = render(f"overlays/{overlay}")
    cronjob = one(docs, "CronJob")
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    pod = pod_specs(docs)["CronJob"]
    (container,) = pod["containers"]
    command = container["command"] + container["args"]
    assert command[:2] == ["civicrisk", "train"]
    assert command[command.index("--out") + 1] == "/srv/civicrisk/candidates"
    assert command[command.index("--outcomes-from") + 1] == "$(CIVICRISK_DATABASE_URL)"
    claims = {v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"] if "persistentVolumeClaim" in v}
    assert "civicrisk-candidates" in claims
    assert "civicrisk-models" not in claims
    assert all(not m["mountPath"].startswith(MODELS_DIR) for m in container["volumeMounts"])


def test_single_city_sqlite_is_one_replica_with_its_database_on_a_claim() -> None:
    docs = render("overlays/single-city-sqlite")
    deployment = one(docs, "Deployment")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"]["type"] == "Recreate"
    assert not [doc for doc in docs if doc["kind"] == "HorizontalPodAutoscaler"]
    url = one(docs, "Secret")["stringData"]["CIVICRISK_DATABASE_URL"]
    assert url == "sqlite:////srv/civicrisk/var/civicrisk.sqlite3"
    pod = deployment["spec"]["template"]["spec"]
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    (var,) = [m for m in pod["containers"][0]["volumeMounts"] if m["mountPath"] == "/srv/civicrisk/var"]
    assert volumes[var["name"]] == {
        "name": var["name"],
        "persistentVolumeClaim": {"claimName": "civicrisk-var"},
    }


def test_fleet_postgresql_scales_from_three_to_ten() -> None:
    docs = render("overlays/fleet-postgresql")
    assert one(docs, "Deployment")["spec"]["replicas"] == 3
    hpa = one(docs, "HorizontalPodAutoscaler")["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (3, 10)
    (metric,) = hpa["metrics"]
    assert metric["resource"]["name"] == "cpu" and metric["resource"]["target"]["averageUtilization"] == 70
    assert one(docs, "PodDisruptionBudget")["spec"]["minAvailable"] == 1
    url = one(docs, "Secret")["stringData"]["CIVICRISK_DATABASE_URL"]
    assert url.startswith("postgresql+psycopg://")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_secrets_hold_placeholders_only(overlay: str) -> None:
    secrets = [doc for doc in render(f"overlays/{overlay}") if doc["kind"] == "Secret"]
    assert secrets
    for secret in secrets:
        assert "data" not in secret, "base64 `data` hides what is committed: use stringData placeholders"
        for key, value in secret["stringData"].items():
            # A SQLite URL is a local path, no credential; anything else must say it is a placeholder.
            if key == "CIVICRISK_DATABASE_URL" and value.startswith("sqlite:"):
                continue
            assert "change-me" in value, (
                f"{secret['metadata']['name']}.{key} does not look like a placeholder"
            )
            password = re.match(r"[a-z+]+://[^:/@]+:([^@]*)@", value)
            assert password is None or password.group(1) == "change-me", f"{key}: a real-looking password"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policy_admits_the_service_port_and_lets_out_only_dns_and_postgresql(overlay: str) -> None:
    docs = render(f"overlays/{overlay}")
    policy = one(docs, "NetworkPolicy")["spec"]
    assert policy["podSelector"]["matchLabels"]["app.kubernetes.io/name"] == "civicrisk"
    assert sorted(policy["policyTypes"]) == ["Egress", "Ingress"]
    assert [[(p["protocol"], p["port"]) for p in rule["ports"]] for rule in policy["ingress"]] == [
        [("TCP", 8000)]
    ]
    egress = sorted((p["protocol"], p["port"]) for rule in policy["egress"] for p in rule["ports"])
    assert egress == [("TCP", 53), ("TCP", 5432), ("UDP", 53)]
    service = one(docs, "Service")["spec"]
    assert service["type"] == "ClusterIP"
    assert [(p["port"], p["targetPort"]) for p in service["ports"]] == [(80, "http")]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_civicrisk_variable_is_a_setting(overlay: str) -> None:
    """A misspelt CIVICRISK_* name would be silently ignored by the service (extra="ignore")."""
    from app.platform.settings import Settings

    fields = {f"CIVICRISK_{name.upper()}" for name in Settings.model_fields}
    docs = render(f"overlays/{overlay}")
    names = {
        name
        for doc in docs
        if doc["kind"] in ("ConfigMap", "Secret")
        for name in {**doc.get("data", {}), **doc.get("stringData", {})}
    }
    for pod in pod_specs(docs).values():
        names |= {env["name"] for container in pod["containers"] for env in container.get("env", [])}
    unknown = sorted(name for name in names if name.startswith("CIVICRISK_") and name not in fields)
    assert not unknown, f"not settings in app/platform/settings.py: {unknown}"
