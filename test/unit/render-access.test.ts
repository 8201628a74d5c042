import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { parseResource, ValidationError } from "../../src/api/validate.ts";
import { API_VERSION, KIND, type MistralSmallDeployment } from "../../src/api/schema.ts";
import { plan, type Plan } from "../../src/planner/plan.ts";
import { renderNetworkPolicy } from "../../src/render/networkpolicy.ts";
import { renderPodMonitor } from "../../src/render/podmonitor.ts";
import { renderDeployment } from "../../src/render/deployment.ts";
import { OPERATOR_APP } from "../../src/delivery/manifests.ts";

type Raw = Record<string, unknown>;

const SELECTOR = {
  "app.kubernetes.io/instance": "small",
  "app.kubernetes.io/name": "mistral-small",
};
const PORT = [{ protocol: "TCP", port: 8000 }];

function parsed(spec: Raw = {}): { msd: MistralSmallDeployment; p: Plan } {
  const msd = parseResource({
    apiVersion: API_VERSION,
    kind: KIND,
    metadata: { name: "small", namespace: "ml", uid: "u-1" },
    spec: { gpu: { type: "a100-80gb" }, ...spec },
  });
  const p = plan(msd.spec);
  assert.ok(p.feasible, p.reasons.join("; "));
  return { msd, p };
}

/** The rendered object is a `kind` of `apiVersion`, named after and beside the resource. */
function assertIdentity(
  o: { apiVersion: string; kind: string; metadata: { name?: string; namespace?: string } },
  apiVersion: string,
  kind: string,
): void {
  assert.equal(o.apiVersion, apiVersion);
  assert.equal(o.kind, kind);
  assert.equal(o.metadata.name, "small");
  assert.equal(o.metadata.namespace, "ml");
}

describe("renderNetworkPolicy", () => {
  test("on by default: the API port from this namespace, the same port from monitoring", () => {
    const { msd, p } = parsed();
    const np = renderNetworkPolicy(msd, p);
    assert.ok(np !== undefined);
    assertIdentity(np, "networking.k8s.io/v1", "NetworkPolicy");
    assert.equal(np.metadata.ownerReferences?.[0]?.uid, "u-1");
    assert.deepEqual(np.spec, {
      podSelector: { matchLabels: SELECTOR },
      policyTypes: ["Ingress"],
      ingress: [
        { from: [{ podSelector: {} }], ports: PORT },
        {
          from: [
            { namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "monitoring" } } },
          ],
          ports: PORT,
        },
      ],
    });
  });

  test("the pods it selects are the Deployment's, on the container's port", () => {
    const { msd, p } = parsed();
    const np = renderNetworkPolicy(msd, p)!;
    const d = renderDeployment(msd, p, 1);
    assert.deepEqual(np.spec.podSelector.matchLabels, d.spec!.selector.matchLabels);
    const containerPort = d.spec!.template.spec!.containers[0]!.ports![0]!.containerPort;
    for (const rule of np.spec.ingress) assert.equal(rule.ports[0]!.port, containerPort);
  });

  test("the rule is written as `from` on the wire (not the client library's `_from`)", () => {
    const { msd, p } = parsed();
    const wire = JSON.parse(JSON.stringify(renderNetworkPolicy(msd, p))) as {
      spec: { ingress: Raw[] };
    };
    for (const rule of wire.spec.ingress) {
      assert.ok("from" in rule);
      assert.ok(!("_from" in rule));
    }
  });

  test("apiFrom replaces the default: namespaces, pods, or pods in namespaces", () => {
    const { msd, p } = parsed({
      access: {
        networkPolicy: {
          apiFrom: [
            { namespaceSelector: { matchLabels: { team: "apps" } } },
            { podSelector: { matchLabels: { role: "gateway" } } },
            {
              namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "web" } },
              podSelector: { matchLabels: { app: "chat" } },
            },
          ],
          metricsNamespaceSelector: {
            matchLabels: { "kubernetes.io/metadata.name": "observability" },
          },
        },
      },
    });
    const np = renderNetworkPolicy(msd, p)!;
    assert.deepEqual(np.spec.ingress[0]!.from, [
      { namespaceSelector: { matchLabels: { team: "apps" } } },
      { podSelector: { matchLabels: { role: "gateway" } } },
      {
        namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "web" } },
        podSelector: { matchLabels: { app: "chat" } },
      },
    ]);
    assert.deepEqual(np.spec.ingress[1]!.from, [
      { namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "observability" } } },
    ]);
  });

  test("an empty apiFrom lets no client in (only the metrics rule remains useful)", () => {
    const { msd, p } = parsed({ access: { networkPolicy: { apiFrom: [] } } });
    assert.deepEqual(renderNetworkPolicy(msd, p)!.spec.ingress[0]!.from, []);
  });

  test("the builtin autoscaler's operator pods may scrape, from the operator's namespace", () => {
    const { msd, p } = parsed({ autoscaling: { enabled: true } });
    const operator = { podSelector: { matchLabels: { "app.kubernetes.io/name": OPERATOR_APP } } };
    assert.deepEqual(
      renderNetworkPolicy(msd, p, { operatorNamespace: "msd-system" })!.spec.ingress[1]!.from[1],
      {
        namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "msd-system" } },
        ...operator,
      },
    );
    assert.deepEqual(renderNetworkPolicy(msd, p)!.spec.ingress[1]!.from[1], {
      namespaceSelector: {},
      ...operator,
    });
    const keda = parsed({ autoscaling: { enabled: true, mode: "keda" } });
    assert.equal(renderNetworkPolicy(keda.msd, keda.p)!.spec.ingress[1]!.from.length, 1);
  });

  test("opt-out renders nothing", () => {
    const { msd, p } = parsed({ access: { networkPolicy: { enabled: false } } });
    assert.equal(renderNetworkPolicy(msd, p), undefined);
  });

  test("a peer with neither selector is refused", () => {
    assert.throws(
      () => parsed({ access: { networkPolicy: { apiFrom: [{}] } } }),
      (err: unknown) =>
        err instanceof ValidationError &&
        err.problems.some(
          (x) =>
            x.path === "spec.access.networkPolicy.apiFrom.0.namespaceSelector" &&
            /namespaceSelector, podSelector or both/.test(x.message),
        ),
    );
  });
});

describe("renderPodMonitor", () => {
  test("off by default", () => {
    const { msd, p } = parsed();
    assert.equal(renderPodMonitor(msd, p), undefined);
  });

  test("scrapes the pods' http port at /metrics, labelled by deployment", () => {
    const { msd, p } = parsed({
      monitoring: { podMonitor: { enabled: true, interval: "15s", labels: { release: "kps" } } },
    });
    const pm = renderPodMonitor(msd, p);
    assert.ok(pm !== undefined);
    assertIdentity(pm, "monitoring.coreos.com/v1", "PodMonitor");
    assert.equal(pm.metadata.labels.release, "kps");
    assert.equal(pm.metadata.labels["app.kubernetes.io/managed-by"], "mistral-small-operator");
    assert.deepEqual(pm.spec, {
      selector: { matchLabels: SELECTOR },
      podTargetLabels: ["app.kubernetes.io/instance"],
      podMetricsEndpoints: [{ port: "http", path: "/metrics", interval: "15s" }],
    });
    const ports = renderDeployment(msd, p, 1).spec!.template.spec!.containers[0]!.ports!;
    assert.ok(
      ports.some((x) => x.name === "http"),
      "the endpoint names a port the pod has",
    );
  });

  test("the interval defaults to 30s and must be a Prometheus duration", () => {
    const { msd, p } = parsed({ monitoring: { podMonitor: { enabled: true } } });
    assert.equal(renderPodMonitor(msd, p)!.spec.podMetricsEndpoints[0]!.interval, "30s");
    for (const ok of ["1m30s", "500ms", "0"]) {
      parsed({ monitoring: { podMonitor: { enabled: true, interval: ok } } });
    }
    for (const bad of ["30", "1.5m", "30 s"]) {
      assert.throws(
        () => parsed({ monitoring: { podMonitor: { enabled: true, interval: bad } } }),
        /Prometheus duration/,
        bad,
      );
    }
  });
});
