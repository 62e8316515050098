"""Data residency and kv grants at `keel check` and `keel up`: a store
whose regions exclude the instance's region is refused (region: or
KEEL_REGION), a kv grant or a calls edge that lets a store's data reach a
component whose residency lies outside the store's regions is refused
with the flow's path, `keel check --explain-residency` shows who can read
each store, and a module importing keel.kv_* without a grant fails check.
"""
from pathlib import Path

import pytest

from kvlib import keel_up, kv_wasm  # noqa: F401

FLOW_YAML = """
region: {region}
stores:
  carts:
    backend: sqlite
    path: data/carts.db
    regions: [eu-west, eu-central]
components:
  cart:
    wasm: {kv}
    kv: [carts]
    residency: [eu-west]
  gateway:
    wasm: {hello}
    routes:
      - path: /kv/*
        operation: kv
    calls: [cart, reports]
    {gateway_residency}
  reports:
    wasm: {hello}
    residency: {reports_residency}
  island:
    wasm: {hello}
    residency: [us-east]
"""


def flow_yaml(kv, region="eu-west", reports="[eu-central]", gateway=""):
    hello = str(Path(kv).parent / "hello.wasm")   # imports no kv_* function
    return FLOW_YAML.format(kv=kv, hello=hello, region=region, reports_residency=reports,
                            gateway_residency=gateway)


def write(tmp_path, text, name="keel.yaml"):
    (tmp_path / name).write_text(text)
    return name


def test_allowed_layout_passes_check_and_explains(kv_wasm, keel, tmp_path):
    write(tmp_path, flow_yaml(kv_wasm))
    r = keel("check", "-f", "keel.yaml", "--explain-residency", cwd=tmp_path)
    assert r.returncode == 0, r.describe()
    out = r.out
    assert "instance region: eu-west" in out
    assert "store carts (sqlite, regions: eu-west, eu-central)" in out
    assert "cart reads it directly (residency: eu-west): store carts -> cart (kv grant)" in out
    assert ("gateway can receive it through calls (residency: unrestricted): store carts -> "
            "cart (kv grant) -> gateway (gateway calls cart: response)") in out
    assert ("reports can receive it through calls (residency: eu-central): store carts -> "
            "cart (kv grant) -> gateway (gateway calls cart: response) -> reports (gateway "
            "calls reports: payload)") in out
    assert "island" not in out
    assert "keel.yaml: ok (4 components)" in out


def test_flow_to_a_component_outside_the_regions_is_refused(kv_wasm, keel, keel_up, tmp_path):
    write(tmp_path, flow_yaml(kv_wasm, reports="[us-east]"))
    r = keel("check", "-f", "keel.yaml", cwd=tmp_path)
    assert r.returncode == 1, r.describe()
    line = [ln for ln in r.err_lines if "residency:" in ln]
    assert len(line) == 1, r.err
    assert line[0].startswith("keel.yaml:22:16: residency: component reports (residency "
                              "[us-east]) could receive data of store carts, which may live "
                              "only in [eu-west, eu-central]; flow: store carts -> cart (kv "
                              "grant) -> gateway (gateway calls cart: response) -> reports "
                              "(gateway calls reports: payload)"), line[0]
    srv = keel_up(flow_yaml(kv_wasm, reports="[us-east]"), wait=False)
    assert srv.proc.wait(60) == 1
    srv.expected_exit = True
    log = srv.log()
    assert "residency denial:" in log and "flow: store carts -> cart (kv grant)" in log, log
    assert "listening on" not in log


def test_direct_kv_grant_outside_the_regions_is_refused(kv_wasm, keel, tmp_path):
    text = flow_yaml(kv_wasm).replace("    kv: [carts]\n    residency: [eu-west]",
                                      "    kv: [carts]\n    residency: [eu-west, us-east]")
    write(tmp_path, text)
    r = keel("check", "-f", "keel.yaml", cwd=tmp_path)
    assert r.returncode == 1
    assert ("component cart (residency [eu-west, us-east]) could receive data of store "
            "carts, which may live only in [eu-west, eu-central]; flow: store carts -> cart "
            "(kv grant)") in r.err, r.err


@pytest.mark.parametrize("how", ["manifest", "env"])
def test_instance_region_outside_store_regions_refuses_to_start(kv_wasm, keel, keel_up,
                                                                 tmp_path, how):
    region = "us-east" if how == "manifest" else "eu-west"
    env = {"KEEL_REGION": "ap-south"} if how == "env" else None
    write(tmp_path, flow_yaml(kv_wasm, region=region))
    want_region = "us-east" if how == "manifest" else "ap-south"
    source = "region: in the manifest" if how == "manifest" else "KEEL_REGION"
    msg = (f"residency: store carts may live only in regions [eu-west, eu-central], but this "
           f"instance's region is {want_region} (from {source}); refusing to open it")
    r = keel("check", "-f", "keel.yaml", cwd=tmp_path, env_extra=env)
    assert r.returncode == 1 and msg in r.err, r.err
    assert "keel.yaml:4:3:" in r.err
    srv = keel_up(flow_yaml(kv_wasm, region=region), env=env, wait=False)
    assert srv.proc.wait(60) == 1
    srv.expected_exit = True
    assert msg in srv.log(), srv.log()
    assert not (tmp_path / "data" / "carts.db").exists()    # never opened


def test_no_region_with_restricted_store_is_refused(kv_wasm, keel, tmp_path):
    write(tmp_path, flow_yaml(kv_wasm).replace("region: eu-west\n", ""))
    r = keel("check", "-f", "keel.yaml", cwd=tmp_path, env_extra={"KEEL_REGION": None})
    assert r.returncode == 1
    assert "but this instance has no region (set region: in the manifest or KEEL_REGION)" in r.err


def test_kv_import_without_grant_fails_check(kv_wasm, keel, tmp_path):
    write(tmp_path, f"""
components:
  nogrant:
    wasm: {kv_wasm}
""")
    r = keel("check", "-f", "keel.yaml", cwd=tmp_path)
    assert r.returncode == 1
    assert ("component nogrant: imports keel.kv_get but has no kv grant: every call would be "
            "denied (add kv: [STORE] to the component)") in r.err, r.err


@pytest.mark.parametrize("yaml, expect", [
    ("stores:\n  s: { backend: mongo }\n", "2:17: store s: backend must be sqlite or redis, got 'mongo'"),
    ("stores:\n  s: { backend: sqlite }\n", "2:6: store s: backend sqlite needs a path"),
    ("stores:\n  s: { backend: redis, url: http://x }\n", "store s: url 'http://x' must start with redis://"),
    ("stores:\n  s: { path: a.db, url: redis://x }\n", "store s: 'url' applies only to backend redis"),
    ("stores:\n  s: { path: a.db, max_value: 1TiB }\n", "store s: max_value 1TiB is out of bounds"),
    ("stores:\n  s: { path: a.db, regions: [EU] }\n", "regions: invalid region 'EU'"),
    ("stores:\n  S!: { path: a.db }\n", "stores: invalid store name 'S!'"),
    ("region: Mars\n", "region: invalid region 'Mars'"),
])
def test_store_config_errors(kv_wasm, keel, tmp_path, yaml, expect):
    write(tmp_path, yaml + f"components:\n  c:\n    wasm: {kv_wasm}\n")
    r = keel("check", "-f", "keel.yaml", cwd=tmp_path)
    assert r.returncode == 1 and expect in r.err, r.err


def test_kv_grant_of_unknown_store(kv_wasm, keel, tmp_path):
    write(tmp_path, f"components:\n  c:\n    wasm: {kv_wasm}\n    kv: [nope]\n")
    r = keel("check", "-f", "keel.yaml", cwd=tmp_path)
    assert r.returncode == 1
    assert "keel.yaml:4:10: component c: kv: no store named 'nope'" in r.err, r.err
