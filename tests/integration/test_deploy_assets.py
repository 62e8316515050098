"""The deployment assets in deploy/, checked with the tools that will read
them: yamllint (deploy/.yamllint) on every YAML file, the Kubernetes
objects read as data and held to what Keel needs (probes on the admin
port's /healthz and /readyz, a termination grace period longer than the
drain keel.yaml asks for, non-root, read-only root filesystem, resources,
scrape annotations), the ConfigMap's keel.yaml through `keel check`, the
generated files (configmap.yaml, prometheusrule.yaml) against their
generators, the PrometheusRule's rules through `promtool check rules`, and
the systemd units through `systemd-analyze verify`.

There is no cluster here, so the pod drill plays the kubelet: the app that
`keel build` makes of keel.yaml runs with the Deployment's args, env, user
and volumes on a read-only root, in mount and network namespaces, against
a real Redis, and is stopped with SIGTERM. Everything that runs is real:
keel, the shop's modules (built by make), redis-server, yamllint,
promtool, systemd-analyze, dpkg."""
import configparser
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from conftest import build_dir

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "kubernetes"
SYSTEMD = DEPLOY / "systemd"
# Files in deploy/kubernetes that are sources, not Kubernetes objects.
K8S_SOURCES = {"keel.yaml", "kustomization.yaml"}


def tool(name):
    p = shutil.which(name)
    if not p:
        pytest.fail(f"{name} not found: run `make deps` (scripts/install-deps.sh)")
    return p


def run(argv, **kw):
    return subprocess.run([str(a) for a in argv], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, timeout=300, **kw)


def seconds(duration: str) -> float:
    """A keel.yaml duration ('5s', '500ms', '1.5m', '1h') in seconds."""
    m = re.fullmatch(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)", str(duration))
    assert m, f"not a duration: {duration!r}"
    return float(m[1]) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[m[2]]


def port_of(hostport: str) -> int:
    return int(hostport.rsplit(":", 1)[1])


# ---------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def objects():
    """kind -> (file name, object) for every Kubernetes object file."""
    out = {}
    for f in sorted(K8S.glob("*.yaml")):
        if f.name in K8S_SOURCES:
            continue
        obj = yaml.safe_load(f.read_text())
        assert isinstance(obj, dict) and "kind" in obj, f"{f}: not a Kubernetes object"
        assert obj["kind"] not in out, f"{f}: a second {obj['kind']} (first in {out[obj['kind']][0]})"
        out[obj["kind"]] = (f.name, obj)
    return out


@pytest.fixture(scope="module")
def manifest_text(objects):
    """keel.yaml as the pods see it: the ConfigMap's data."""
    return objects["ConfigMap"][1]["data"]["keel.yaml"]


@pytest.fixture(scope="module")
def manifest(manifest_text):
    return yaml.safe_load(manifest_text)


@pytest.fixture(scope="module")
def pod(objects):
    return objects["Deployment"][1]["spec"]["template"]


@pytest.fixture(scope="module")
def container(pod):
    cs = pod["spec"]["containers"]
    assert len(cs) == 1, "the Deployment should run one container, keel"
    return cs[0]


@pytest.fixture(scope="module")
def shop_modules(manifest):
    """Builds the modules keel.yaml names (make BUILD=... build/shop/X.wasm);
    returns the folder holding them."""
    build = build_dir()
    names = [Path(c["wasm"]).name for c in manifest["components"].values()]
    targets = [f"{build}/shop/{n}" for n in names]
    p = run(["make", "--no-print-directory", "-s", f"BUILD={build}", *targets], cwd=ROOT)
    assert p.returncode == 0, f"building {names} failed:\n{p.stdout}{p.stderr}"
    return build / "shop"


@pytest.fixture
def staged(tmp_path, manifest_text, shop_modules):
    """The image's layout in a temporary folder: config/keel.yaml (the
    ConfigMap's text, unchanged) and components/ (the built modules), so the
    manifest's relative wasm paths resolve as they do in the pod."""
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "keel.yaml").write_text(manifest_text)
    (tmp_path / "components").symlink_to(shop_modules.resolve())
    return tmp_path


# ---------------------------------------------------------------- yamllint

def test_yamllint_passes_on_every_yaml_file():
    files = sorted(p.relative_to(ROOT) for p in DEPLOY.rglob("*.yaml"))
    assert len(files) >= 8, f"expected the Kubernetes objects under deploy/, found {files}"
    p = run([tool("yamllint"), "-f", "parsable", "-c", DEPLOY / ".yamllint", *files], cwd=ROOT)
    assert p.returncode == 0 and not p.stdout.strip(), f"yamllint:\n{p.stdout}{p.stderr}"


def test_the_yamllint_config_still_catches_problems(tmp_path):
    """A control: the committed config must not switch everything off."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("a:  1 \nb: yes\nb: 2\n")
    p = run([tool("yamllint"), "-f", "parsable", "-c", DEPLOY / ".yamllint", bad])
    assert p.returncode != 0
    for rule in ("colons", "trailing-spaces", "truthy", "key-duplicates"):
        assert f"({rule})" in p.stdout, f"rule {rule} not reported:\n{p.stdout}"


# ---------------------------------------------------------------- Kubernetes objects

def test_kustomization_lists_every_object(objects):
    k = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    listed = set(k["resources"])
    files = {name for name, _ in objects.values()}
    assert listed == files, f"kustomization.yaml resources {sorted(listed)} != object files {sorted(files)}"
    for kind in ("Deployment", "Service", "HorizontalPodAutoscaler", "ConfigMap", "PrometheusRule"):
        assert kind in objects, f"no {kind} in deploy/kubernetes"


def test_probes_use_the_admin_port_health_paths(container, manifest):
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports.get("admin") == port_of(manifest["admin"]["listen"]), \
        f"container port admin {ports.get('admin')} != keel.yaml admin.listen {manifest['admin']['listen']}"
    assert ports.get("http") == port_of(manifest["listen"]), \
        f"container port http {ports.get('http')} != keel.yaml listen {manifest['listen']}"
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz"),
                        ("startupProbe", "/healthz")):
        get = container[probe]["httpGet"]
        assert get["path"] == path, f"{probe} path {get['path']}, want {path}"
        assert get["port"] in ("admin", ports["admin"]), f"{probe} on port {get['port']}, not admin"
    # Readiness must notice the 503 of a drain quickly.
    r = container["readinessProbe"]
    assert r["periodSeconds"] * r.get("failureThreshold", 3) <= seconds(manifest["shutdown"]["drain_delay"]), \
        "the readiness probe needs longer than drain_delay to see the pod draining"


def test_termination_grace_covers_keel_drain(pod, container, manifest):
    sd = manifest.get("shutdown")
    assert sd, "keel.yaml in the ConfigMap has no shutdown: section"
    drain, grace = seconds(sd["drain_delay"]), seconds(sd.get("grace", "30s"))
    tgp = pod["spec"]["terminationGracePeriodSeconds"]
    assert tgp > drain + grace, \
        f"terminationGracePeriodSeconds {tgp} <= drain_delay {drain}s + grace {grace}s: Kubernetes would SIGKILL mid-drain"
    # drain_delay does what a preStop sleep would; both would add up, so the
    # Deployment has no preStop and keel.yaml has a real drain_delay.
    assert drain > 0, "no drain_delay: endpoints would still send traffic to a pod that stopped accepting"
    assert "preStop" not in container.get("lifecycle", {}), \
        "a preStop hook delays SIGTERM on top of drain_delay; deployment.yaml explains why there is none"


def test_pod_runs_unprivileged_on_a_read_only_root(pod, container):
    psc, csc = pod["spec"].get("securityContext", {}), container["securityContext"]
    assert psc.get("runAsNonRoot") is True or csc.get("runAsNonRoot") is True
    assert (csc.get("runAsUser") or psc.get("runAsUser", 0)) != 0
    assert csc["readOnlyRootFilesystem"] is True
    assert csc["allowPrivilegeEscalation"] is False
    assert csc["capabilities"]["drop"] == ["ALL"]
    # A read-only root needs somewhere to write: /tmp and the audit log's folder.
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]["name"]]


def test_writable_paths_of_keel_yaml_are_on_volumes(pod, container, manifest):
    """Every file keel.yaml writes or reads at run time lives on a mounted
    volume of the right kind (the root filesystem is read-only)."""
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}

    def volume_of(path):
        best = max((m for m in mounts if path.startswith(m.rstrip("/") + "/")), key=len, default=None)
        assert best, f"{path} is on no volume (the root filesystem is read-only)"
        return mounts[best], volumes[mounts[best]["name"]]

    for key in ("audit_log", "state_dir"):
        mount, vol = volume_of(manifest["admin"][key])
        assert "emptyDir" in vol and not mount.get("readOnly"), f"admin.{key} needs a writable volume"
    mount, vol = volume_of(manifest["admin"]["token_file"])
    assert "secret" in vol, "the admin token should come from a Secret"
    # The app of keel build carries its manifest: it refuses -f. Its --dir
    # (where relative paths resolve) must be writable too.
    args = container.get("args", [])
    assert "-f" not in args and "up" not in args, f"args {args}: the image runs the app, not keel up"
    d = args[args.index("--dir") + 1]
    assert d in mounts and not mounts[d].get("readOnly"), f"--dir {d} is not a writable volume"


def test_resources_are_requested_and_limited(container):
    res = container["resources"]
    for kind in ("requests", "limits"):
        for r in ("cpu", "memory"):
            assert r in res.get(kind, {}), f"resources.{kind}.{r} missing"


def test_prometheus_scrapes_the_admin_port(pod, manifest):
    a = pod["metadata"]["annotations"]
    assert a["prometheus.io/scrape"] == "true"
    assert int(a["prometheus.io/port"]) == port_of(manifest["admin"]["listen"])
    assert a["prometheus.io/path"] == "/metrics"


def test_service_carries_user_traffic_only(objects, pod, container):
    svc = objects["Service"][1]["spec"]
    labels = pod["metadata"]["labels"]
    for k, v in svc["selector"].items():
        assert labels.get(k) == v, f"Service selector {k}={v} matches no pod label"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    targets = [p["targetPort"] for p in svc["ports"]]
    assert targets == ["http"], f"Service targets {targets}: only the app port, never admin ({ports['admin']})"


def test_hpa_scales_the_deployment(objects):
    hpa = objects["HorizontalPodAutoscaler"][1]
    dep = objects["Deployment"][1]
    ref = hpa["spec"]["scaleTargetRef"]
    assert (ref["kind"], ref["name"]) == ("Deployment", dep["metadata"]["name"])
    assert 2 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    assert "replicas" not in dep["spec"], "with an HPA, spec.replicas resets the count on every apply"
    ru = dep["spec"]["strategy"]["rollingUpdate"]
    assert ru["maxUnavailable"] == 0, "a rollout must not drop below the wanted ready pods"


def test_scaled_out_state_lives_in_redis(manifest):
    for name, st in manifest.get("stores", {}).items():
        assert st.get("backend") == "redis", \
            f"store {name} is {st.get('backend', 'sqlite')}: one file per pod, not shared by replicas"


def test_canary_deployment_runs_beside_the_stable_one(tmp_path, objects):
    """canary.py's Deployment: linted, the new image, its own selector (the
    stable Deployment and the HPA do not count its pods), and pods the
    Service selects."""
    p = run([K8S / "canary.py", "registry.example/keel-shop:2", "2"])
    assert p.returncode == 0, p.stderr
    f = tmp_path / "canary.yaml"
    f.write_text(p.stdout)
    lint = run([tool("yamllint"), "-f", "parsable", "-c", DEPLOY / ".yamllint", f])
    assert lint.returncode == 0, lint.stdout
    can = yaml.safe_load(p.stdout)
    stable = objects["Deployment"][1]
    assert can["metadata"]["name"] == stable["metadata"]["name"] + "-canary"
    assert can["spec"]["replicas"] == 2
    assert can["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.example/keel-shop:2"
    cl, sl = can["spec"]["template"]["metadata"]["labels"], stable["spec"]["template"]["metadata"]["labels"]
    sel_s, sel_c = stable["spec"]["selector"]["matchLabels"], can["spec"]["selector"]["matchLabels"]
    assert not all(cl.get(k) == v for k, v in sel_s.items()), "the stable selector matches canary pods"
    assert not all(sl.get(k) == v for k, v in sel_c.items()), "the canary selector matches stable pods"
    svc = objects["Service"][1]["spec"]["selector"]
    assert all(cl.get(k) == v for k, v in svc.items()), "the Service does not select canary pods"
    # Everything else is the stable pod's: probes, drain, security.
    for key in ("terminationGracePeriodSeconds", "securityContext", "volumes"):
        assert can["spec"]["template"]["spec"][key] == stable["spec"]["template"]["spec"][key]
    bad = run([K8S / "canary.py", "img", "0"])
    assert bad.returncode == 2 and "REPLICAS" in bad.stderr


# ---------------------------------------------------------------- generated files

def test_configmap_is_keel_yaml_as_generated():
    p = run([K8S / "gen-configmap.sh"])
    assert p.returncode == 0, p.stderr
    assert p.stdout == (K8S / "configmap.yaml").read_text(), \
        "configmap.yaml differs from gen-configmap.sh's output: run deploy/kubernetes/gen-configmap.sh > deploy/kubernetes/configmap.yaml"
    data = yaml.safe_load(p.stdout)["data"]["keel.yaml"]
    assert data == (K8S / "keel.yaml").read_text(), "the ConfigMap's keel.yaml is not keel.yaml byte for byte"


def test_configmap_keel_yaml_passes_keel_check(staged, keel):
    r = keel("check", "-f", "config/keel.yaml", cwd=staged)
    assert r.returncode == 0, r.describe()
    assert "ok (4 components)" in r.out + r.err, r.describe()


def test_prometheusrule_is_keel_alerts_output(keel_bin, shop_modules):
    p = run([K8S / "gen-prometheusrule.sh"],
            env={"PATH": "/usr/bin:/bin", "KEEL": str(keel_bin), "KEEL_MODULES": str(shop_modules)})
    assert p.returncode == 0, f"gen-prometheusrule.sh failed:\n{p.stderr}"
    assert p.stdout == (K8S / "prometheusrule.yaml").read_text(), \
        "prometheusrule.yaml differs from gen-prometheusrule.sh's output: regenerate it (see the script's header)"


def test_prometheusrule_passes_promtool(objects, manifest, tmp_path):
    rule = objects["PrometheusRule"][1]
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    f = tmp_path / "rules.yml"
    f.write_text(yaml.safe_dump(rule["spec"]))
    p = run([tool("promtool"), "check", "rules", f])
    assert p.returncode == 0 and "SUCCESS" in p.stdout, f"promtool:\n{p.stdout}{p.stderr}"
    # Every component with an slo has its alerts, and only those.
    alerted = {r["labels"]["component"] for g in rule["spec"]["groups"]
               for r in g["rules"] if "alert" in r}
    with_slo = {n for n, c in manifest["components"].items() if "slo" in c}
    assert with_slo and alerted == with_slo, f"alerts for {sorted(alerted)}, slo on {sorted(with_slo)}"


# ---------------------------------------------------------------- image

def test_dockerfile_builds_the_app_from_keel_yaml(manifest):
    df = (DEPLOY / "Dockerfile").read_text()
    for name, c in manifest["components"].items():
        wasm = Path(c["wasm"])
        assert wasm.parent.as_posix() == "../components", f"{name}: {wasm} is not ../components/NAME.wasm"
        assert f"build/shop/{wasm.name}" in df, f"deploy/Dockerfile does not build or copy {wasm.name}"
    assert "deploy/kubernetes/keel.yaml /stage/config/keel.yaml" in df
    assert "keel build -f /stage/config/keel.yaml -o /app/keel-shop" in df
    assert "FROM debian:12-slim" in df and "USER 10001" in df


def dockerfile_build_packages():
    """The packages the Dockerfile's build stage installs."""
    df = (DEPLOY / "Dockerfile").read_text().replace("\\\n", " ")
    m = re.search(r"apt-get install -y --no-install-recommends ([^&]+)&&", df)
    assert m, "no apt-get install line in the Dockerfile's build stage"
    return m[1].split()


def test_dockerfile_build_stage_installs_the_projects_build_packages():
    """Each package the image build installs is one scripts/install-deps.sh
    installs too, and installed here (so the name is right and this tree
    builds with it)."""
    deps = (ROOT / "scripts" / "install-deps.sh").read_text()
    listed = set()
    for line in deps[deps.index("PACKAGES=("):deps.index("\n)\n")].splitlines()[1:]:
        listed.update(line.split("#")[0].split())
    for pkg in dockerfile_build_packages():
        if pkg == "libc6-dev":          # gcc's dependency, named for --no-install-recommends
            continue
        assert pkg in listed, f"the Dockerfile installs {pkg}, which install-deps.sh does not"
        q = run(["dpkg-query", "-W", "-f=${Status}", pkg])
        assert "install ok installed" in q.stdout, f"{pkg} is not an installed Debian package here"


def test_runtime_packages_are_the_libraries_keel_loads(keel_bin):
    p = run([DEPLOY / "runtime-packages.sh", keel_bin])
    assert p.returncode == 0, p.stderr
    pkgs = p.stdout.split()
    # h2o is always linked dynamically; others may be static.
    assert any(x.startswith("libh2o-evloop") for x in pkgs), f"libh2o-evloop* missing from {pkgs}"
    assert "libc6" not in pkgs
    for pkg in pkgs:
        q = run(["dpkg-query", "-W", "-f=${Status}", pkg])
        assert "install ok installed" in q.stdout, f"{pkg}: not an installed package"
    bad = run([DEPLOY / "runtime-packages.sh", ROOT / "README.md"])
    assert bad.returncode == 1 and "README.md" in bad.stderr


# ---------------------------------------------------------------- the pod, for real

def http(method, url, body=None, headers=None, timeout=3):
    """(status, body text); status 0 when nothing answered."""
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace")
    except OSError:
        return 0, ""


def wait_status(url, want, seconds, proc=None):
    """When url first answered want (monotonic time), or None: not within
    seconds, or proc exited meanwhile."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if http("GET", url, timeout=1)[0] == want:
            return time.monotonic()
        if proc is not None and proc.poll() is not None:
            return None
        time.sleep(0.05)
    return None


def pod_drill(app, spec):
    """Runs inside `unshare --mount --net`, as root: builds what the kubelet
    would give the container (a read-only root, emptyDirs, the Secret, the
    user, the env, a Redis reachable as keel-redis), starts the app with the
    Deployment's args, probes it, uses it, then stops it as Kubernetes does
    (SIGTERM) and times the drain. Prints one JSON object."""
    out = {}

    def sh(*argv):
        subprocess.run(argv, check=True)

    sh("ip", "link", "set", "lo", "up")
    sh("mount", "--make-rprivate", "/")
    # The image's /app: a copy of the app, before /tmp (where it may be) is hidden.
    sh("mount", "-t", "tmpfs", "-o", "mode=0755", "tmpfs", "/mnt")
    shutil.copy(app, "/mnt/keel-shop")
    app = "/mnt/keel-shop"
    for d in ("/tmp", "/run", "/var/lib"):
        sh("mount", "-t", "tmpfs", "-o", "mode=0755", "tmpfs", d)
    uid = spec["uid"]
    for d, mode in (("/var/lib/keel", 0o755), ("/run/keel", 0o750), ("/tmp/keel", 0o1777)):
        os.makedirs(d)
        os.chown(d, uid, uid)
        os.chmod(d, mode)
    with open("/run/keel/admin.token", "w") as f:
        f.write("ci " + "c" * 64 + "\n")
    os.chown("/run/keel/admin.token", 0, uid)
    os.chmod("/run/keel/admin.token", 0o440)
    with open("/run/hosts", "w") as f:
        f.write("127.0.0.1 localhost keel-redis\n")
    sh("mount", "--bind", "/run/hosts", "/etc/hosts")
    sh("mount", "-o", "remount,bind,ro", "/")          # readOnlyRootFilesystem

    redis = subprocess.Popen(["redis-server", "--port", "6379", "--bind", "127.0.0.1",
                              "--save", "", "--appendonly", "no", "--dir", "/tmp"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    env = {"PATH": "/usr/bin:/bin", **spec["env"]}
    log = open("/tmp/keel/app.log", "wb")
    t_start = time.monotonic()
    proc = subprocess.Popen(["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
                             "--", app, *spec["args"]], env=env, stdout=log, stderr=log)
    admin, web = f"http://127.0.0.1:{spec['admin_port']}", f"http://127.0.0.1:{spec['http_port']}"
    try:
        live = wait_status(admin + spec["liveness"], 200, spec["startup_budget"], proc)
        out["live_after"] = live and live - t_start
        ready = wait_status(admin + spec["readiness"], 200, 30, proc)
        out["ready_after"] = ready and ready - t_start
        out["products"] = http("GET", web + "/api/products")[0]
        login = http("POST", web + "/api/login", b'{"user":"alice","password":"wonderland"}',
                     {"Content-Type": "application/json"})
        token = json.loads(login[1]).get("token", "") if login[0] == 200 else ""
        auth = {"Authorization": "Bearer " + token, "Content-Type": "application/json"}
        out["cart_post"] = http("POST", web + "/api/cart", b'{"items":[{"id":"mug","qty":2}]}', auth)[0]
        out["cart_get"] = http("GET", web + "/api/cart", headers=auth)
        keys = subprocess.run(["redis-cli", "-p", "6379", "--scan", "--pattern", "*"],
                              stdout=subprocess.PIPE, text=True).stdout.split()
        out["redis_keys"] = keys
        out["metrics"] = "keel_requests_total" in http("GET", admin + "/metrics")[1]
        # Stop it as the kubelet does.
        t_term = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        unready = wait_status(admin + spec["readiness"], 503, 2)
        out["unready_after_term"] = unready and unready - t_term
        time.sleep(1)
        out["serving_while_draining"] = http("GET", web + "/api/products")[0]
        try:
            out["exit"] = proc.wait(timeout=spec["kill_after"])
        except subprocess.TimeoutExpired:
            out["exit"] = "killed"
            proc.kill()
            proc.wait()
        out["stopped_after_term"] = time.monotonic() - t_term
    finally:
        if proc.poll() is None:
            proc.kill()
        redis.kill()
        log.close()
        out["log_tail"] = open("/tmp/keel/app.log", errors="replace").read()[-3000:]
    print(json.dumps(out))


def test_the_pod_serves_and_drains_as_the_deployment_expects(keel, staged, pod, container, manifest):
    """The app built from keel.yaml, started with the Deployment's args, env
    and user on a read-only root with the Deployment's volumes and a real
    Redis: it passes its probes, serves the shop with carts in Redis, and
    on SIGTERM turns unready at once, serves through drain_delay and exits
    0 well inside terminationGracePeriodSeconds."""
    for t in ("unshare", "setpriv", "redis-server", "redis-cli", "ip"):
        if not shutil.which(t):
            pytest.skip(f"{t} is not installed")
    if run(["unshare", "--mount", "--net", "--fork", "true"]).returncode != 0:
        pytest.skip("cannot create mount and network namespaces here (needs root)")
    app = build_dir() / "deploy" / "keel-shop"
    app.parent.mkdir(parents=True, exist_ok=True)
    r = keel("build", "-f", "config/keel.yaml", "-o", app, "--cache", build_dir() / "deploy" / "cache",
             cwd=staged)
    assert r.returncode == 0, r.describe()

    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    sp = container["startupProbe"]
    sd = manifest["shutdown"]
    spec = {
        "uid": pod["spec"]["securityContext"]["runAsUser"],
        "args": container.get("args", []),
        "env": {e["name"]: e["value"] for e in container.get("env", [])},
        "admin_port": ports["admin"], "http_port": ports["http"],
        "liveness": container["livenessProbe"]["httpGet"]["path"],
        "readiness": container["readinessProbe"]["httpGet"]["path"],
        "startup_budget": sp["periodSeconds"] * sp["failureThreshold"],
        "kill_after": pod["spec"]["terminationGracePeriodSeconds"],
    }
    p = run(["unshare", "--mount", "--net", "--fork", "--", sys.executable, __file__,
             "pod-drill", app, json.dumps(spec)])
    assert p.returncode == 0, f"the drill failed:\n{p.stdout}\n{p.stderr}"
    res = json.loads(p.stdout.strip().splitlines()[-1])
    why = json.dumps(res, indent=1)
    assert res["live_after"] is not None, f"/healthz never answered 200\n{why}"
    assert res["ready_after"] is not None, f"/readyz never answered 200\n{why}"
    assert res["products"] == 200 and res["cart_post"] == 200, why
    assert res["cart_get"][0] == 200 and "mug" in res["cart_get"][1], why
    prefix = manifest["stores"]["carts"]["prefix"]
    assert any(k.startswith(prefix) for k in res["redis_keys"]), f"no cart in Redis\n{why}"
    assert res["metrics"], why
    drain, grace = seconds(sd["drain_delay"]), seconds(sd["grace"])
    assert res["unready_after_term"] is not None and res["unready_after_term"] < 1, \
        f"/readyz did not turn 503 at once on SIGTERM\n{why}"
    assert res["serving_while_draining"] == 200, f"stopped serving inside drain_delay\n{why}"
    assert res["exit"] == 0, f"exit status {res['exit']} after SIGTERM\n{why}"
    assert drain - 0.5 <= res["stopped_after_term"] < drain + grace, why


# ---------------------------------------------------------------- systemd

def unit(name):
    cp = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",))
    cp.optionxform = str
    cp.read_string((SYSTEMD / name).read_text())
    return cp


def test_systemd_units_pass_systemd_analyze_verify(tmp_path, keel_bin):
    sa = shutil.which("systemd-analyze")
    if not sa:
        pytest.skip("systemd-analyze is not installed (Debian package systemd)")
    # verify insists that ExecStart's binary exists: point it at this build.
    for name in ("keel.socket", "keel.service"):
        text = (SYSTEMD / name).read_text().replace("/usr/local/bin/keel", str(keel_bin))
        (tmp_path / name).write_text(text)
    p = run([sa, "verify", tmp_path / "keel.socket", tmp_path / "keel.service"])
    # Bad values are only warnings to systemd: any line about our units fails.
    ours = [ln for ln in (p.stdout + p.stderr).splitlines() if "keel." in ln]
    assert p.returncode == 0 and not ours, f"systemd-analyze verify:\n{p.stdout}{p.stderr}"


def test_systemd_service_is_hardened_and_drains(manifest):
    svc = unit("keel.service")["Service"]
    want = {"NoNewPrivileges": "true", "ProtectSystem": "strict", "ProtectHome": "true",
            "PrivateTmp": "true", "PrivateDevices": "true", "RestrictNamespaces": "true",
            "CapabilityBoundingSet": "", "KillSignal": "SIGTERM"}
    for k, v in want.items():
        assert svc.get(k) == v, f"keel.service: {k}={svc.get(k)!r}, want {v!r}"
    assert svc["ExecReload"].endswith("kill -HUP $MAINPID")
    stop = seconds(svc["TimeoutStopSec"])
    sd = manifest["shutdown"]
    assert stop > seconds(sd["drain_delay"]) + seconds(sd["grace"]), \
        "TimeoutStopSec must exceed drain_delay + grace, or systemd SIGKILLs Keel mid-drain"
    sock = unit("keel.socket")
    assert sock["Socket"]["ListenStream"].endswith(":" + str(port_of(manifest["listen"])))
    assert unit("keel.service")["Unit"]["Requires"] == "keel.socket"
    # PartOf would restart the socket with the service: connections arriving
    # during a restart would be refused instead of queued.
    assert "PartOf" not in sock["Unit"], "keel.socket must outlive restarts of keel.service"


# ---------------------------------------------------------------- the docs

def slug(heading: str) -> str:
    """The anchor a Markdown renderer derives from a heading."""
    s = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return s.replace(" ", "-")


def anchors(md: Path) -> set:
    return {slug(m[1]) for m in re.finditer(r"^#+ (.+)$", md.read_text(), re.M)}


def test_operations_doc_links_resolve():
    """Every link of the deploy docs to a section lands on a heading."""
    docs = {ROOT / "docs" / "operations.md", DEPLOY / "README.md"}
    for md in docs:
        for target in re.findall(r"\]\(([^)\s]*)\)", md.read_text()):
            if target.startswith("http"):
                continue
            path, _, frag = target.partition("#")
            f = (md.parent / path).resolve() if path else md
            assert f.exists(), f"{md.name}: link to missing {target}"
            if frag:
                assert frag in anchors(f), f"{md.name}: no heading #{frag} in {f.name}"


def test_operations_doc_quotes_the_assets_values(manifest, pod):
    ops = (ROOT / "docs" / "operations.md").read_text()
    section = ops[ops.index("## Deploying and changing Keel"):]
    sd, ro = manifest["shutdown"], manifest["rollout"]
    assert f"shutdown: {{ drain_delay: {sd['drain_delay']}, grace: {sd['grace']} }}" in section
    assert f"{pod['spec']['terminationGracePeriodSeconds']} s" in section
    for k, v in ro.items():
        assert re.search(rf"{k}:\s+{re.escape(str(v))}", section), f"rollout.{k}: {v} not in the docs"


if __name__ == "__main__" and len(sys.argv) == 4 and sys.argv[1] == "pod-drill":
    pod_drill(sys.argv[2], json.loads(sys.argv[3]))
