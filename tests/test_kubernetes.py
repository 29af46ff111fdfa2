"""deploy/kubernetes/ is valid Kubernetes, checked offline against a pinned version (issue 15).

kubernetes-validate (pinned in requirements.lock) bundles the OpenAPI schemas, so this needs no
cluster and no network; one test runs it in a network namespace of its own to prove that.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from portal.config import Defaults

KUBE = Path(__file__).resolve().parent.parent / "deploy" / "kubernetes"
#: The Kubernetes version the manifests are checked against (a supported release at the time).
KUBERNETES_VERSION = "1.33.0"
#: Read by deploy/gunicorn.conf.py, not by the app.
GUNICORN_SETTINGS = {"BIND", "WORKERS", "THREADS", "WORKER_CLASS", "ACCESS_LOG"}


def documents():
    for path in sorted(KUBE.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                yield path.name, doc


def by_kind(kind: str) -> list[dict]:
    return [doc for _, doc in documents() if doc["kind"] == kind]


@pytest.mark.parametrize("name,doc", list(documents()), ids=lambda v: v if isinstance(v, str) else v["kind"])
def test_every_manifest_is_valid_strictly(name, doc):
    kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_a_misspelt_field_is_rejected():
    pdb = dict(by_kind("PodDisruptionBudget")[0])
    pdb["spec"] = {"minAvailble": 1, "selector": pdb["spec"]["selector"]}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(pdb, KUBERNETES_VERSION, strict=True)


def test_the_kustomization_lists_every_file():
    listed = yaml.safe_load((KUBE / "kustomization.yaml").read_text())["resources"]
    assert sorted(listed) == sorted(p.name for p in KUBE.glob("*.yaml") if p.name != "kustomization.yaml")


def test_web_and_worker_have_probes_and_the_sentinel_settings():
    deployments = {doc["metadata"]["name"]: doc for doc in by_kind("Deployment")}
    web = deployments["portal-web"]["spec"]["template"]["spec"]["containers"][0]
    assert web["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert web["livenessProbe"]["httpGet"]["path"] == "/healthz"
    worker = deployments["portal-worker"]["spec"]["template"]["spec"]["containers"][0]
    assert "worker.alive" in " ".join(worker["livenessProbe"]["exec"]["command"])
    settings = by_kind("ConfigMap")[0]["data"]
    assert settings["PORTAL_REDIS_SENTINELS"] and settings["PORTAL_REDIS_SERVICE"] == "portal"
    assert settings["PORTAL_REDIS_MIN_REPLICAS"] == "1"
    assert by_kind("HorizontalPodAutoscaler")[0]["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    assert {pdb["metadata"]["name"] for pdb in by_kind("PodDisruptionBudget")} == {"portal-web", "portal-worker"}


def test_settings_and_secrets_are_keys_the_portal_knows():
    known = {name for name in vars(Defaults) if name.isupper()} | GUNICORN_SETTINGS
    settings = by_kind("ConfigMap")[0]["data"]
    secrets = {k for doc in by_kind("Secret") for k in doc["stringData"] if k.startswith("PORTAL_")}
    names = {key.removeprefix("PORTAL_") for key in [*settings, *secrets]} - {"LAPOR_TOKEN"}  # a channel's token_env
    assert sorted(names - known) == []
    for key in ("SECRET_KEY", "DEVICE_KEY", "DATA_KEYS"):
        assert f"PORTAL_{key}" not in settings  # secrets only in the Secret


def test_the_validator_needs_no_network(tmp_path):
    if not shutil.which("unshare"):
        raise AssertionError("util-linux's unshare is missing")
    script = (f"import yaml, kubernetes_validate, pathlib\n"
              f"for p in sorted(pathlib.Path({str(KUBE)!r}).glob('*.yaml')):\n"
              f"    if p.name != 'kustomization.yaml':\n"
              f"        for d in yaml.safe_load_all(p.read_text()):\n"
              f"            kubernetes_validate.validate(d, {KUBERNETES_VERSION!r}, strict=True)\n"
              f"print('offline ok')\n")
    result = subprocess.run(["unshare", "--map-root-user", "--net", sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "offline ok" in result.stdout
