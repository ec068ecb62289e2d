#!/usr/bin/env python3
"""Checks of everything under deploy/: what an operator installs must work with this exporter.

    python3 Tests/deploy/test_deploy.py [--binary .build/debug/netprobe_exporter] [-k PATTERN]

- Every metric name in the alert and recording rules, their unit tests and the Grafana
  dashboard is in the metric catalogue (Sources/NetProbe/Metrics/Catalogue*.swift), with the
  labels it is selected, grouped and templated by; recording-rule names are defined.
- promtool: `check rules`, `check config` and `test rules` pass; every alert has a unit test
  where it fires and one where it does not; every alert has a summary, a description and a
  runbook_url whose anchor is a heading of the README; the dashboard's queries parse.
- systemd: `systemd-analyze verify` accepts the unit and its security exposure is printed
  and held under a ceiling (when systemd-analyze exists).
- Kubernetes: the DaemonSet, Service, ServiceMonitor, ConfigMap and kustomization agree on
  ports, paths, labels, names and privileges; the ConfigMap's configuration (and its
  commented examples) passes --check-config and names only loopback or documentation
  addresses.
- Container: the Dockerfile's shape (stages, user, capability, port, healthcheck), and the
  healthcheck script against a running exporter.
- Privileges (as root): the unit's model (ambient CAP_NET_RAW under no_new_privs) and the
  image's (a file capability, which no_new_privs voids) give or deny raw ICMP as documented.

Prints one closing line, `deploy: N passed, N failed, N skipped`; exit status 1 on failure.
"""
import argparse
import fnmatch
import glob
import ipaddress
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "Tests"))
from reachable import reachable_copy, reachable_directory  # noqa: E402
from suite_runner import run_and_exit  # noqa: E402
DEPLOY = os.path.join(ROOT, "deploy")
PROM = os.path.join(DEPLOY, "prometheus")
RULE_FILES = [os.path.join(PROM, "netprobe.rules.yml"), os.path.join(PROM, "netprobe.alerts.yml")]
TEST_FILES = sorted(glob.glob(os.path.join(PROM, "tests", "*.yml")))
DASHBOARDS = sorted(glob.glob(os.path.join(DEPLOY, "grafana", "*.json")))
UNIT = os.path.join(DEPLOY, "systemd", "netprobe_exporter.service")
DOCKERFILE = os.path.join(DEPLOY, "container", "Dockerfile")
HEALTHCHECK = os.path.join(DEPLOY, "container", "healthcheck.sh")
KUBE = os.path.join(DEPLOY, "kubernetes")
README = os.path.join(ROOT, "README.md")
RUNBOOK_BASE = "https://netprobe.example/README.md"
BINARY = None  # set by main() from --binary

# The systemd exposure measured on Debian 12 (systemd 252) is 1.5; the ceiling leaves room
# for another systemd's scoring, not for a weaker unit.
SECURITY_CEILING = 2.0
# Series Prometheus makes itself, allowed in rules beside the catalogue.
PROMETHEUS_SERIES = {"up": set()}
# Labels every scraped series may carry besides its own.
TARGET_LABELS = {"job", "instance"}


def relative(path):
    return os.path.relpath(path, ROOT)


def run(command, timeout=60, **kwargs):
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, **kwargs)


# ------------------------------------------------------------------ the metric catalogue

def _swift_calls(text, callee):
    """[(raw, blanked)] argument texts of every `callee(...)` call; `blanked` has each string
    literal's content replaced by spaces of the same length, so positions match `raw`."""
    calls = []
    for match in re.finditer(re.escape(callee) + r"\(", text):
        depth, i, blanked = 1, match.end(), []
        while True:
            c = text[i]
            if c == '"':
                j = i + 1
                while text[j] != '"':
                    j += 2 if text[j] == "\\" else 1
                blanked.append('"' + " " * (j - i - 1) + '"')
                i = j + 1
                continue
            depth += {"(": 1, ")": -1}.get(c, 0)
            if not depth:
                break
            blanked.append(c)
            i += 1
        calls.append((text[match.end():i], "".join(blanked)))
    return calls


def load_catalogue():
    """{name: (type, [labels])} from the Swift catalogue files."""
    text = ""
    for path in sorted(glob.glob(os.path.join(ROOT, "Sources", "NetProbe", "Metrics", "Catalogue*.swift"))):
        with open(path) as f:
            text += f.read() + "\n"
    constants = {name: re.findall(r'"([^"]*)"', body)
                 for name, body in re.findall(r"static let (\w+)\s*=\s*\[([^\]]*)\]", text)}
    families = {}
    for raw, blanked in _swift_calls(text, "MetricFamily"):
        shape = re.match(r'\s*"[^"]*",\s*\.(\w+)', raw)
        if not shape:
            continue
        name = re.match(r'\s*"([^"]*)"', raw).group(1)
        labels = []
        at = blanked.find("labels:")
        if at >= 0:
            for term in raw[at + len("labels:"):].split("+"):
                term = term.strip()
                if term.startswith("["):
                    labels += re.findall(r'"([^"]*)"', term)
                elif term:
                    labels += constants[term]
        families[name] = (shape.group(1), labels)
    return families


CATALOGUE = load_catalogue()


def family_of(name):
    """(family name, labels) for a series name, histogram suffixes included; None if unknown."""
    if name in CATALOGUE:
        return name, set(CATALOGUE[name][1])
    for suffix in ("_bucket", "_sum", "_count"):
        base = name[: -len(suffix)]
        if name.endswith(suffix) and CATALOGUE.get(base, ("",))[0] == "histogram":
            return base, set(CATALOGUE[base][1]) | ({"le"} if suffix == "_bucket" else set())
    if name in PROMETHEUS_SERIES:
        return name, PROMETHEUS_SERIES[name]
    return None


ALL_LABELS = set().union(*(set(labels) for _, labels in CATALOGUE.values())) | TARGET_LABELS | {"le"}

# ------------------------------------------------------------------ PromQL, read roughly

KEYWORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right",
            "bool", "offset", "inf", "nan", "atan2"}


def strip_strings(expr):
    return re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', expr)


def promql_names(expr):
    """[(name, {labels in its matcher})] for every series selector in a PromQL expression."""
    text = strip_strings(expr)
    text = re.sub(r"\[[^\[\]]*\]", "", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", " ", text)
    found = []
    for match in re.finditer(r"(?<![\w.$:])([A-Za-z_:][\w:]*)\s*(\{[^{}]*\})?\s*(\()?", text):
        name, matcher, call = match.group(1), match.group(2), match.group(3)
        if call and not matcher:
            continue  # a function
        if name in KEYWORDS:
            continue
        labels = set(re.findall(r"([A-Za-z_]\w*)\s*(?:=~|!~|!=|=)", matcher or ""))
        found.append((name, labels))
    # Bare matchers ({__name__=...}) are not used here.
    return found


def promql_grouping_labels(expr):
    labels = set()
    for body in re.findall(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^()]*)\)", strip_strings(expr)):
        labels |= {label.strip() for label in body.split(",") if label.strip()}
    return labels


def grafana_to_promql(expr):
    """A dashboard query with Grafana's variables replaced by values PromQL parses."""
    expr = re.sub(r"\$__(rate_interval|interval|range)\b", "5m", expr)
    expr = re.sub(r"\$\{?\w+\}?", ".*", expr)
    return expr


def load_rules():
    rules = []
    for path in RULE_FILES:
        with open(path) as f:
            for group in yaml.safe_load(f)["groups"]:
                for rule in group["rules"]:
                    rules.append((path, group["name"], rule))
    return rules


def dashboard_queries(dashboard):
    """[(where, expr, legend)] for every query of a dashboard: panels, annotations, variables."""
    queries = []

    def walk(panels):
        for panel in panels:
            for target in panel.get("targets", []):
                if "expr" in target:
                    queries.append((f"panel {panel.get('title')!r}", target["expr"], target.get("legendFormat", "")))
            walk(panel.get("panels", []))

    walk(dashboard.get("panels", []))
    for annotation in dashboard.get("annotations", {}).get("list", []):
        if "expr" in annotation:
            queries.append((f"annotation {annotation['name']!r}", annotation["expr"], annotation.get("textFormat", "")))
    return queries


def heading_anchors(markdown):
    """GitHub's anchors for the headings of a Markdown text."""
    anchors = set()
    in_code = False
    for line in markdown.splitlines():
        if line.startswith("```"):
            in_code = not in_code
        match = None if in_code else re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if match:
            text = re.sub(r"[`*_]|\[([^\]]*)\]\([^)]*\)", lambda m: m.group(1) or "", match.group(1))
            anchors.add(re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-"))
    return anchors


# ------------------------------------------------------------------ tests

class CatalogueTests(unittest.TestCase):
    def test_the_catalogue_reads(self):
        self.assertGreater(len(CATALOGUE), 60)
        self.assertEqual(CATALOGUE["netprobe_ping_rtt_seconds"], ("histogram", ["target", "host", "address", "family"]))
        self.assertEqual(CATALOGUE["netprobe_multicast_receiving"][1], ["name", "group", "source", "port", "interface"])
        self.assertEqual(CATALOGUE["netprobe_querier_present"][1], ["interface", "protocol"])
        self.assertEqual(CATALOGUE["netprobe_pushes_total"], ("counter", ["result"]))

    def test_every_metric_in_the_rules_tests_and_dashboards_is_in_the_catalogue(self):
        rules = load_rules()
        records = {rule["record"]: rule["expr"] for _, _, rule in rules if "record" in rule}
        problems = []

        def check(where, expr):
            for name, labels in promql_names(expr):
                family = family_of(name)
                if family is None:
                    if ":" in name and name in records:
                        continue
                    problems.append(f"{where}: {name!r} is not in the metric catalogue"
                                    + (" (nor a recording rule defined in deploy/prometheus)" if ":" in name else ""))
                    continue
                unknown = labels - family[1] - TARGET_LABELS
                if unknown:
                    problems.append(f"{where}: {name} has no label {sorted(unknown)} (it has {sorted(family[1])})")
            unknown = promql_grouping_labels(expr) - ALL_LABELS
            if unknown:
                problems.append(f"{where}: grouping by labels no family has: {sorted(unknown)}")

        for path, group, rule in rules:
            check(f"{relative(path)}: {rule.get('alert') or rule.get('record')}", rule["expr"])
        for path in TEST_FILES:
            with open(path) as f:
                document = yaml.safe_load(f)
            for test in document["tests"]:
                for series in test.get("input_series", []):
                    check(f"{relative(path)}: input series", series["series"])
                for expr_test in test.get("promql_expr_test", []):
                    check(f"{relative(path)}: promql_expr_test", expr_test["expr"])
        for path in DASHBOARDS:
            with open(path) as f:
                dashboard = json.load(f)
            for where, expr, _ in dashboard_queries(dashboard):
                check(f"{relative(path)}: {where}", grafana_to_promql(expr))
            for variable in dashboard["templating"]["list"]:
                if variable.get("type") != "query":
                    continue
                query = variable["query"]["query"] if isinstance(variable["query"], dict) else variable["query"]
                match = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", query.strip())
                if not match:
                    problems.append(f"{relative(path)}: variable {variable['name']}: not label_values(selector, label): {query}")
                    continue
                where = f"{relative(path)}: variable {variable['name']}"
                check(where, grafana_to_promql(match.group(1)))
                names = promql_names(grafana_to_promql(match.group(1)))
                if names and family_of(names[0][0]) and match.group(2) not in family_of(names[0][0])[1] | TARGET_LABELS:
                    problems.append(f"{where}: {names[0][0]} has no label {match.group(2)!r}")
        self.assertEqual(problems, [], "\n" + "\n".join(problems))

    def test_templates_use_labels_their_series_have(self):
        # {{ $labels.x }} in alert annotations and {{x}} in dashboard legends.
        rules = load_rules()
        records = {rule["record"]: rule["expr"] for _, _, rule in rules if "record" in rule}

        def labels_of(expr, seen=()):
            labels = set(TARGET_LABELS)
            for name, _ in promql_names(expr):
                if name in records and name not in seen:
                    labels |= labels_of(records[name], seen + (name,))
                elif family_of(name):
                    labels |= family_of(name)[1]
            return labels

        problems = []
        for path, _, rule in rules:
            if "alert" not in rule:
                continue
            available = labels_of(rule["expr"]) | set(rule.get("labels", {}))
            for text in rule.get("annotations", {}).values():
                for label in re.findall(r"\$labels\.(\w+)", text):
                    if label not in available:
                        problems.append(f"{rule['alert']}: $labels.{label} is not a label of its series ({sorted(available)})")
        for path in DASHBOARDS:
            with open(path) as f:
                dashboard = json.load(f)
            for where, expr, legend in dashboard_queries(dashboard):
                available = labels_of(grafana_to_promql(expr))
                for label in re.findall(r"\{\{\s*(\w+)\s*\}\}", legend):
                    if label not in available:
                        problems.append(f"{relative(path)}: {where}: legend {{{{{label}}}}} is not a label of {expr}")
        self.assertEqual(problems, [], "\n" + "\n".join(problems))


class PrometheusTests(unittest.TestCase):
    def setUp(self):
        self.promtool = shutil.which("promtool")
        if not self.promtool:
            self.fail("promtool is missing; `make test` installs it (Debian package prometheus)")

    def promtool_ok(self, *args):
        result = run([self.promtool, *args], cwd=PROM)
        self.assertEqual(result.returncode, 0, f"promtool {' '.join(args)}:\n{result.stdout}{result.stderr}")
        return result.stdout

    def test_promtool_check_rules(self):
        self.promtool_ok("check", "rules", *RULE_FILES)

    def test_promtool_check_config(self):
        self.promtool_ok("check", "config", os.path.join(PROM, "prometheus.yml"))

    def test_promtool_test_rules(self):
        self.assertTrue(TEST_FILES, "no rule unit tests in deploy/prometheus/tests/")
        output = self.promtool_ok("test", "rules", *TEST_FILES)
        self.assertEqual(output.count("SUCCESS"), len(TEST_FILES), output)

    def test_every_alert_is_tested_firing_and_not_firing(self):
        alerts = [rule["alert"] for _, _, rule in load_rules() if "alert" in rule]
        firing, silent = set(), set()
        for path in TEST_FILES:
            with open(path) as f:
                document = yaml.safe_load(f)
            order = document.get("group_eval_order")
            self.assertEqual(order, ["netprobe.rules", "netprobe.alerts"],
                             f"{relative(path)}: set group_eval_order, or promtool evaluates the groups in no fixed order")
            for test in document["tests"]:
                for case in test.get("alert_rule_test", []):
                    (firing if case.get("exp_alerts") else silent).add(case["alertname"])
        problems = [f"{a}: no unit test where it fires" for a in alerts if a not in firing]
        problems += [f"{a}: no unit test where it stays silent" for a in alerts if a not in silent]
        problems += [f"{a}: tested but not defined" for a in (firing | silent) - set(alerts)]
        self.assertEqual(problems, [], "\n" + "\n".join(problems))

    def test_every_recording_rule_is_tested_or_used_by_a_tested_alert(self):
        rules = load_rules()
        used = " ".join(rule["expr"] for _, _, rule in rules if "alert" in rule)
        for path in TEST_FILES:
            with open(path) as f:
                for test in yaml.safe_load(f)["tests"]:
                    used += " ".join(case["expr"] for case in test.get("promql_expr_test", []))
        untested = [rule["record"] for _, _, rule in rules if "record" in rule and rule["record"] not in used]
        self.assertEqual(untested, [])

    def test_alerts_have_summary_description_severity_and_a_runbook_in_the_readme(self):
        with open(README) as f:
            anchors = heading_anchors(f.read())
        problems = []
        for _, _, rule in load_rules():
            if "alert" not in rule:
                continue
            name, annotations = rule["alert"], rule.get("annotations", {})
            for key in ("summary", "description", "runbook_url"):
                if not annotations.get(key, "").strip():
                    problems.append(f"{name}: no {key} annotation")
            if rule.get("labels", {}).get("severity") not in {"critical", "warning", "info"}:
                problems.append(f"{name}: severity label missing or unusual")
            url = annotations.get("runbook_url", "")
            base, _, anchor = url.partition("#")
            if base != RUNBOOK_BASE or anchor != name.lower():
                problems.append(f"{name}: runbook_url should be {RUNBOOK_BASE}#{name.lower()}, is {url!r}")
            if anchor not in anchors:
                problems.append(f"{name}: README.md has no heading with the anchor #{anchor} (a runbook section)")
        self.assertEqual(problems, [], "\n" + "\n".join(problems))

    def test_dashboard_queries_parse(self):
        # Each dashboard query, its variables filled in, as a recording rule for promtool.
        rules = []
        for path in DASHBOARDS:
            with open(path) as f:
                dashboard = json.load(f)
            for i, (_, expr, _) in enumerate(dashboard_queries(dashboard)):
                rules.append({"record": f"dashboard:query:{i}", "expr": grafana_to_promql(expr)})
        self.assertGreater(len(rules), 20)
        with tempfile.NamedTemporaryFile("w", suffix=".yml") as f:
            yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}, f)
            f.flush()
            self.promtool_ok("check", "rules", f.name)


class GrafanaTests(unittest.TestCase):
    def test_dashboard_shape(self):
        self.assertTrue(DASHBOARDS)
        for path in DASHBOARDS:
            with open(path) as f:
                dashboard = json.load(f)
            variables = {v["name"]: v for v in dashboard["templating"]["list"]}
            self.assertEqual(variables["datasource"]["type"], "datasource")
            self.assertEqual(variables["datasource"]["query"], "prometheus")
            for name in ("target", "group"):
                self.assertEqual(variables[name]["type"], "query", name)
            panels = []

            def walk(items):
                for panel in items:
                    panels.append(panel)
                    walk(panel.get("panels", []))

            walk(dashboard["panels"])
            ids = [p["id"] for p in panels]
            self.assertEqual(len(ids), len(set(ids)), "panel ids repeat")
            for panel in panels:
                if panel["type"] == "row":
                    continue
                self.assertEqual(panel["datasource"]["uid"], "${datasource}", panel["title"])
                for target in panel["targets"]:
                    self.assertEqual(target["datasource"]["uid"], "${datasource}", panel["title"])
            kinds = {p["type"] for p in panels}
            self.assertIn("heatmap", kinds)
            heatmap = next(p for p in panels if p["type"] == "heatmap")
            self.assertIn("netprobe_ping_rtt_seconds_bucket", heatmap["targets"][0]["expr"])
            self.assertEqual(heatmap["targets"][0]["format"], "heatmap")
            exprs = " ".join(expr for _, expr, _ in dashboard_queries(dashboard))
            for needed in ("netprobe_path_hop_info", "netprobe_ping_jitter_seconds", "netprobe_multicast_rate_packets_per_second",
                           "netprobe_multicast_packets_lost_total", "netprobe_multicast_join_latency_seconds", "netprobe_querier_present"):
                self.assertIn(needed, exprs)
            annotations = [a for a in dashboard["annotations"]["list"] if "netprobe_path_changes_total" in a.get("expr", "")]
            self.assertTrue(annotations, "path changes are not annotations")


class SystemdTests(unittest.TestCase):
    def setUp(self):
        with open(UNIT) as f:
            self.text = f.read()
        self.settings = {}
        for line in re.sub(r"\\\n\s*", " ", self.text).splitlines():
            if "=" in line and not line.lstrip().startswith(("#", ";")):
                key, _, value = line.partition("=")
                self.settings.setdefault(key.strip(), []).append(value.strip())

    def test_the_unit_asks_for_what_the_issue_asks(self):
        expected = {
            "AmbientCapabilities": ["CAP_NET_RAW"], "CapabilityBoundingSet": ["CAP_NET_RAW"],
            "NoNewPrivileges": ["yes"], "ProtectSystem": ["strict"], "ProtectHome": ["yes"], "PrivateTmp": ["yes"],
            "RestrictAddressFamilies": ["AF_INET AF_INET6 AF_UNIX AF_NETLINK"],
            "DynamicUser": ["yes"], "Restart": ["on-failure"],
        }
        for key, value in expected.items():
            self.assertEqual(self.settings.get(key), value, key)
        self.assertIn("@system-service", self.settings["SystemCallFilter"])
        self.assertTrue(any("-HUP $MAINPID" in v for v in self.settings["ExecReload"]))
        start = self.settings["ExecStart"][0]
        self.assertTrue(start.startswith("/usr/local/bin/netprobe_exporter "), start)
        self.assertIn("--config.file=/etc/netprobe/netprobe.yml", start)
        self.assertIn("--web.listen-address=:9469", start)

    def unit_copy(self, directory):
        """The unit with ExecStart pointing at a binary that exists here."""
        binary = BINARY if BINARY and os.path.exists(BINARY) else "/bin/true"
        path = os.path.join(directory, "netprobe_exporter.service")
        with open(path, "w") as f:
            f.write(self.text.replace("/usr/local/bin/netprobe_exporter", binary))
        return path

    def test_systemd_analyze_verify(self):
        if not shutil.which("systemd-analyze"):
            self.skipTest("systemd-analyze is not installed")
        with tempfile.TemporaryDirectory() as directory:
            path = self.unit_copy(directory)
            result = run(["systemd-analyze", "verify", "--man=no", "--recursive-errors=no", path])
            # verify exits 0 on unknown keys and bad values, and only says so: read what it says.
            said = [line for line in (result.stdout + result.stderr).splitlines() if "netprobe_exporter" in line]
            self.assertEqual((result.returncode, said), (0, []), result.stdout + result.stderr)

    def test_systemd_analyze_security(self):
        if not shutil.which("systemd-analyze"):
            self.skipTest("systemd-analyze is not installed")
        with tempfile.TemporaryDirectory() as directory:
            path = self.unit_copy(directory)
            result = run(["systemd-analyze", "security", "--no-pager", "--offline=true", path])
            match = re.search(r"Overall exposure level for \S+: ([\d.]+) (\w+)", result.stdout)
            if not match and "offline" in result.stderr:
                self.skipTest("this systemd-analyze cannot analyze a unit file offline")
            self.assertTrue(match, result.stdout + result.stderr)
            exposure = float(match.group(1))
            print(f"\n    systemd-analyze security: exposure {exposure} {match.group(2)} (ceiling {SECURITY_CEILING}) ",
                  end="", flush=True)
            self.assertLessEqual(exposure, SECURITY_CEILING, result.stdout)


def kube_documents():
    documents = {}
    for path in sorted(glob.glob(os.path.join(KUBE, "*.yaml"))):
        with open(path) as f:
            for document in yaml.safe_load_all(f):
                if document:
                    documents.setdefault(document["kind"], []).append((os.path.basename(path), document))
    return documents


def one(documents, kind):
    items = documents.get(kind, [])
    assert len(items) == 1, f"expected one {kind} in deploy/kubernetes, found {len(items)}"
    return items[0][1]


def flag(args, name):
    for arg in args:
        if arg.startswith(f"--{name}="):
            return arg.split("=", 1)[1]
    return None


def configmap(documents, name):
    """The ConfigMap called `name` (there is one for netprobe.yml, one for target files)."""
    (found,) = [d for _, d in documents.get("ConfigMap", []) if d["metadata"]["name"] == name]
    return found


def configmap_config():
    (key, text), = configmap(kube_documents(), "netprobe-config")["data"].items()
    return key, text


def uncommented(text):
    """The configuration with its commented-out example entries turned on."""
    return re.sub(r"(?m)^(\s*)# (\s*(?:- )?[a-z_]+:.*)$", r"\1\2", text)


class KubernetesTests(unittest.TestCase):
    def setUp(self):
        self.documents = kube_documents()
        self.daemonset = one(self.documents, "DaemonSet")
        self.service = one(self.documents, "Service")
        self.monitor = one(self.documents, "ServiceMonitor")
        self.configmap = configmap(self.documents, "netprobe-config")
        self.targets = configmap(self.documents, "netprobe-targets")
        self.pod = self.daemonset["spec"]["template"]["spec"]
        (self.container,) = self.pod["containers"]

    def test_daemonset_network_and_privileges(self):
        self.assertIs(self.pod["hostNetwork"], True)
        self.assertEqual(self.pod["dnsPolicy"], "ClusterFirstWithHostNet")
        security = self.container["securityContext"]
        self.assertEqual(security["capabilities"], {"drop": ["ALL"], "add": ["NET_RAW"]})
        self.assertIs(security["readOnlyRootFilesystem"], True)
        self.assertIs(security.get("runAsNonRoot", self.pod["securityContext"].get("runAsNonRoot")), True)
        # false would set no_new_privs, and the kernel would ignore the binary's file capability.
        self.assertIs(security["allowPrivilegeEscalation"], True)
        self.assertNotEqual(self.pod["securityContext"].get("runAsUser"), 0)
        self.assertIs(self.pod.get("automountServiceAccountToken"), False)

    def test_probes_ports_and_paths_agree(self):
        args = self.container["args"]
        port = int(flag(args, "web.listen-address").rsplit(":", 1)[1])
        (container_port,) = self.container["ports"]
        self.assertEqual(container_port["containerPort"], port)
        self.assertEqual(port, 9469)
        self.assertEqual(self.container["livenessProbe"]["httpGet"]["path"], "/-/healthy")
        self.assertEqual(self.container["readinessProbe"]["httpGet"]["path"], "/-/ready")
        for probe in ("livenessProbe", "readinessProbe"):
            self.assertIn(self.container[probe]["httpGet"]["port"], (container_port["name"], port))
        (service_port,) = self.service["spec"]["ports"]
        self.assertEqual(service_port["port"], port)
        self.assertIn(service_port["targetPort"], (container_port["name"], port))
        (endpoint,) = self.monitor["spec"]["endpoints"]
        self.assertEqual(endpoint["port"], service_port["name"])
        self.assertEqual(endpoint.get("path", "/metrics"), flag(args, "web.telemetry-path") or "/metrics")

    def test_service_and_servicemonitor_select_the_agents(self):
        pod_labels = self.daemonset["spec"]["template"]["metadata"]["labels"]
        self.assertEqual(self.service["spec"]["clusterIP"], "None")
        for key, value in self.service["spec"]["selector"].items():
            self.assertEqual(pod_labels.get(key), value)
        self.assertEqual(self.daemonset["spec"]["selector"]["matchLabels"].items() - pod_labels.items(), set())
        self.assertEqual(self.monitor["apiVersion"], "monitoring.coreos.com/v1")
        for key, value in self.monitor["spec"]["selector"]["matchLabels"].items():
            self.assertEqual(self.service["metadata"]["labels"].get(key), value)
        self.assertIn(self.service["metadata"]["namespace"], self.monitor["spec"]["namespaceSelector"]["matchNames"])
        # The job label must be "netprobe", as the scrape config's job and NetprobeExporterDown expect.
        job = self.service["metadata"]["labels"][self.monitor["spec"]["jobLabel"]]
        with open(os.path.join(PROM, "prometheus.yml")) as f:
            jobs = [c["job_name"] for c in yaml.safe_load(f)["scrape_configs"]]
        self.assertIn(job, jobs)
        alerts = " ".join(rule["expr"] for _, _, rule in load_rules() if "alert" in rule)
        self.assertIn(f'up{{job="{job}"}}', alerts)

    def test_resources_from_the_benchmarks(self):
        resources = self.container["resources"]
        self.assertEqual(resources["requests"]["memory"], "64Mi")
        self.assertEqual(resources["requests"]["cpu"], "50m")
        self.assertNotIn("cpu", resources.get("limits", {}), "a CPU limit throttles the probe loops into RTT jitter")
        self.assertIn("memory", resources["limits"])

    def test_configmap_mount_and_names(self):
        args = self.container["args"]
        config_file = flag(args, "config.file")
        (mount,) = [m for m in self.container["volumeMounts"] if config_file.startswith(m["mountPath"] + "/")]
        self.assertNotIn("subPath", mount, "a subPath mount never sees ConfigMap updates")
        self.assertIs(mount.get("readOnly"), True)
        (volume,) = [v for v in self.pod["volumes"] if v["name"] == mount["name"]]
        self.assertEqual(volume["configMap"]["name"], self.configmap["metadata"]["name"])
        key, _ = configmap_config()
        self.assertEqual(os.path.basename(config_file), key)

    def test_target_files_configmap_is_mounted_where_target_files_look(self):
        _, text = configmap_config()
        patterns = [p for entry in yaml.safe_load(text)["target_files"] for p in entry["files"]]
        (mount,) = [m for m in self.container["volumeMounts"] if m["name"] == "targets"]
        self.assertNotIn("subPath", mount, "a subPath mount never sees ConfigMap updates")
        (volume,) = [v for v in self.pod["volumes"] if v["name"] == mount["name"]]
        self.assertEqual(volume["configMap"]["name"], self.targets["metadata"]["name"])
        for pattern in patterns:
            self.assertEqual(os.path.dirname(pattern), mount["mountPath"], pattern)
        for key in self.targets["data"]:
            self.assertTrue(any(fnmatch.fnmatch(f"{mount['mountPath']}/{key}", p) for p in patterns), key)

    def test_target_files_configmap_is_read_with_documentation_addresses(self):
        if not BINARY:
            self.skipTest("no --binary given")
        allowed = [ipaddress.ip_network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32")]
        with tempfile.TemporaryDirectory() as root:
            directory = os.path.join(root, "targets")
            os.mkdir(directory)
            for key, body in self.targets["data"].items():
                with open(os.path.join(directory, key), "w") as f:
                    f.write(body)
                groups = json.loads(body) if key.endswith(".json") else yaml.safe_load(body)
                for address in (t for group in groups for t in group["targets"]):
                    ip = ipaddress.ip_address(address)
                    self.assertTrue(any(ip in network for network in allowed), f"{key}: {address}")
            _, text = configmap_config()
            config = os.path.join(root, "netprobe.yml")
            with open(config, "w") as f:
                f.write(text.replace("/etc/netprobe/targets/", directory + "/"))
            result = run([BINARY, f"--config.file={config}", "--check-config"])
            self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
            for key in self.targets["data"]:
                self.assertRegex(result.stdout, rf"{re.escape(directory)}/{re.escape(key)}: [1-9]\d* targets")

    def test_one_namespace_and_a_complete_kustomization(self):
        with open(os.path.join(KUBE, "kustomization.yaml")) as f:
            kustomization = yaml.safe_load(f)
        namespace = kustomization["namespace"]
        for kind, items in self.documents.items():
            for _, document in items:
                if kind in ("Kustomization", "Namespace"):
                    continue
                self.assertEqual(document["metadata"].get("namespace"), namespace, kind)
        self.assertEqual(one(self.documents, "Namespace")["metadata"]["name"], namespace)
        files = {os.path.basename(p) for p in glob.glob(os.path.join(KUBE, "*.yaml"))} - {"kustomization.yaml"}
        self.assertEqual(set(kustomization["resources"]), files)
        image = self.container["image"].split(":")[0]
        self.assertIn(image, [i["name"] for i in kustomization["images"]])
        if shutil.which("kubectl"):
            result = run(["kubectl", "kustomize", KUBE])
            self.assertEqual(result.returncode, 0, result.stderr)

    def test_configmap_names_only_loopback_and_documentation_addresses(self):
        _, text = configmap_config()
        config = yaml.safe_load(uncommented(text))
        allowed = [ipaddress.ip_network(n) for n in ("127.0.0.0/8", "::1/128", "192.0.2.0/24", "198.51.100.0/24",
                                                    "203.0.113.0/24", "198.18.0.0/15", "2001:db8::/32", "239.0.0.0/8")]
        addresses = [t["host"] for t in config["targets"]]
        addresses += [m["group"] for m in config.get("multicast", [])]
        addresses += [s for m in config.get("multicast", []) for s in m.get("sources", [])]
        self.assertGreater(len(addresses), 3)
        for address in addresses:
            ip = ipaddress.ip_address(address)
            self.assertTrue(any(ip in network for network in allowed), f"{address} is not a loopback or documentation address")

    def test_configmap_configuration_is_valid(self):
        if not BINARY:
            self.skipTest("no --binary given")
        key, text = configmap_config()
        with tempfile.TemporaryDirectory() as directory:
            for label, body in (("as shipped", text), ("examples uncommented", uncommented(text))):
                path = os.path.join(directory, key)
                with open(path, "w") as f:
                    f.write(body)
                result = run([BINARY, f"--config.file={path}", "--check-config"])
                self.assertEqual(result.returncode, 0, f"{label}:\n{result.stdout}{result.stderr}")
            self.assertIn("Querier watch", result.stdout)  # the uncommented copy has every section


class ContainerTests(unittest.TestCase):
    def setUp(self):
        with open(DOCKERFILE) as f:
            self.text = re.sub(r"\\\n", " ", f.read())
        self.lines = [l.strip() for l in self.text.splitlines() if l.strip() and not l.lstrip().startswith("#")]

    def instruction(self, name):
        return [l.split(None, 1)[1] for l in self.lines if l.split(None, 1)[0].upper() == name]

    def test_dockerfile_shape(self):
        args = dict(a.split("=", 1) for a in self.instruction("ARG") if "=" in a)
        self.assertRegex(args["SWIFT_IMAGE"], r"^swift:6\.\d+(\.\d+)?-bookworm$")
        self.assertEqual(args["RUNTIME_IMAGE"], "debian:bookworm-slim")
        stages = self.instruction("FROM")
        self.assertEqual(len(stages), 2)
        self.assertIn("AS build", stages[0])
        runtime = self.text.split("FROM ${RUNTIME_IMAGE}")[1]
        for package in ("libcurl4", "ca-certificates"):
            self.assertRegex(runtime, rf"apt-get -q install[^&]*\b{package}\b")
        self.assertIn("setcap cap_net_raw+ep /usr/local/bin/netprobe_exporter", runtime)
        (user,) = self.instruction("USER")
        uid = int(user.split(":")[0])
        self.assertNotEqual(uid, 0)
        daemonset = one(kube_documents(), "DaemonSet")
        self.assertEqual(daemonset["spec"]["template"]["spec"]["securityContext"]["runAsUser"], uid)
        self.assertEqual(self.instruction("EXPOSE"), ["9469"])
        (healthcheck,) = self.instruction("HEALTHCHECK")
        self.assertIn("/usr/local/bin/netprobe-healthcheck", healthcheck)
        self.assertIn("deploy/container/healthcheck.sh /usr/local/bin/netprobe-healthcheck", self.text)
        (entrypoint,) = self.instruction("ENTRYPOINT")
        self.assertEqual(json.loads(entrypoint), ["/usr/local/bin/netprobe_exporter"])
        (cmd,) = self.instruction("CMD")
        self.assertIn("--web.listen-address=:9469", json.loads(cmd))
        for copy in self.instruction("COPY"):
            parts = [p for p in copy.split() if not p.startswith("--")]
            if "--from=build" in copy:
                continue
            for source in parts[:-1]:
                self.assertTrue(os.path.exists(os.path.join(ROOT, source)), f"COPY {source}: no such file in the repository")
        if shutil.which("hadolint"):
            result = run(["hadolint", DOCKERFILE])
            self.assertEqual(result.returncode, 0, result.stdout)

    def test_healthcheck_script(self):
        self.assertEqual(run(["bash", "-n", HEALTHCHECK]).returncode, 0)
        self.assertTrue(os.access(HEALTHCHECK, os.X_OK), "healthcheck.sh is not executable")
        if not BINARY:
            self.skipTest("no --binary given")
        with tempfile.TemporaryDirectory() as directory:
            exporter = RunningExporter(self, [BINARY], directory)
            address = f"127.0.0.1:{exporter.port}"
            result = run([HEALTHCHECK], env={**os.environ, "NETPROBE_HEALTH_ADDRESS": address})
            self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
            exporter.stop()
            result = run([HEALTHCHECK], env={**os.environ, "NETPROBE_HEALTH_ADDRESS": address})
            self.assertEqual(result.returncode, 1, result.stdout + result.stderr)


class RunningExporter:
    """The exporter as a child process on an ephemeral loopback port, stopped by PID."""

    def __init__(self, test, command, directory, config=None, preexec_fn=None):
        self.log_path = os.path.join(directory, f"exporter-{time.monotonic_ns()}.log")
        arguments = ["--web.listen-address=127.0.0.1:0"] + ([f"--config.file={config}"] if config else [])
        self.log = open(self.log_path, "w+")
        self.process = subprocess.Popen(command + arguments, stdout=subprocess.DEVNULL, stderr=self.log,
                                        preexec_fn=preexec_fn)
        test.addCleanup(self.stop)
        deadline = time.monotonic() + 15
        self.port = None
        while time.monotonic() < deadline and self.port is None:
            if self.process.poll() is not None:
                test.fail(f"the exporter exited with {self.process.returncode}: {self.text()}")
            match = re.search(r"msg=listening address=127\.0\.0\.1:(\d+)", self.text())
            self.port = int(match.group(1)) if match else None
            time.sleep(0.05)
        if self.port is None:
            test.fail(f"the exporter did not listen: {self.text()}")

    def text(self):
        self.log.seek(0)
        return self.log.read()

    def sample(self, prefix):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=5) as response:
            for line in response.read().decode().splitlines():
                if line.startswith(prefix):
                    return float(line.rsplit(" ", 1)[1])
        return None

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if not self.log.closed:
            self.log.close()


RAW_CONFIG = """defaults:
  interval: 100ms
  socket: raw
targets:
  - name: loopback
    host: 127.0.0.1
"""


def drop_to_nobody(no_new_privs):
    """For preexec_fn: uid/gid 65534 with nothing permitted, and optionally no_new_privs."""
    def drop():
        import ctypes
        os.setgroups([])
        os.setresgid(65534, 65534, 65534)
        os.setresuid(65534, 65534, 65534)
        if no_new_privs and ctypes.CDLL(None, use_errno=True).prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")
    return drop


class PrivilegeTests(unittest.TestCase):
    """The privilege models the deploy files rely on, tried on this kernel with raw ICMP.

    The exporter runs as nobody, so it runs from copies that nobody can reach, never from the
    checkout (which may sit under a directory only root may enter, such as /root)."""

    def setUp(self):
        if os.geteuid() != 0:
            self.skipTest("needs root (to change users and capabilities)")
        if not BINARY:
            self.skipTest("no --binary given")
        self.binary = reachable_copy(BINARY)
        self.directory = reachable_directory()
        self.addCleanup(shutil.rmtree, self.directory)
        self.config = os.path.join(self.directory, "raw.yml")
        with open(self.config, "w") as f:
            f.write(RAW_CONFIG)
        os.chmod(self.config, 0o644)

    def raw_ping_works(self, command, preexec_fn=None):
        exporter = RunningExporter(self, command, self.directory, self.config, preexec_fn)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            received = exporter.sample('netprobe_ping_packets_received_total{target="loopback"')
            if received:
                return True
            if exporter.sample('netprobe_ping_socket_errors_total{family="ip4",socket="raw",errno="EPERM"}'):
                self.assertIn("CAP_NET_RAW", exporter.text())  # the log says what to grant
                return False
            time.sleep(0.1)
        self.fail(f"neither replies nor a socket error within 5 s: {exporter.text()}")

    def test_systemd_ambient_capability_survives_no_new_privs(self):
        setpriv = shutil.which("setpriv")
        if not setpriv:
            self.fail("setpriv is missing (util-linux); `make test` installs it")
        command = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups",
                   "--inh-caps=-all,+net_raw", "--ambient-caps=-all,+net_raw", "--bounding-set=-all,+net_raw",
                   "--no-new-privs", self.binary]
        self.assertTrue(self.raw_ping_works(command))

    def test_without_capabilities_raw_sockets_are_refused_and_reported(self):
        self.assertFalse(self.raw_ping_works([self.binary], drop_to_nobody(no_new_privs=False)))

    def test_container_file_capability_works_unless_no_new_privs(self):
        setcap = shutil.which("setcap")
        if not setcap:
            self.fail("setcap is missing (libcap2-bin); `make test` installs it")
        # A copy of its own: setcap marks the file, and the other tests' copy must stay bare.
        binary = os.path.join(self.directory, "netprobe_exporter")
        shutil.copy(BINARY, binary)
        os.chmod(binary, 0o755)
        result = run([setcap, "cap_net_raw+ep", binary])
        if result.returncode != 0:
            self.skipTest(f"setcap failed here (file system without extended attributes?): {result.stderr}")
        self.assertTrue(self.raw_ping_works([binary], drop_to_nobody(no_new_privs=False)),
                        "the image's model: non-root user, cap_net_raw+ep on the binary")
        self.assertFalse(self.raw_ping_works([binary], drop_to_nobody(no_new_privs=True)),
                         "no_new_privs (allowPrivilegeEscalation: false) should void the file capability")


def main():
    global BINARY
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", help="the netprobe_exporter binary (for --check-config and live checks)")
    parser.add_argument("-k", dest="pattern", help="run only tests whose id contains this text")
    args = parser.parse_args()
    if args.binary:
        BINARY = os.path.abspath(args.binary)
        if not os.path.exists(BINARY):
            parser.error(f"{args.binary}: no such file")
    suite = unittest.defaultTestLoader.loadTestsFromModule(sys.modules[__name__])
    run_and_exit(suite, "deploy", args.pattern)


if __name__ == "__main__":
    main()
