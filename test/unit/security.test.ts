import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { asStored, hardenPodSpec, securityDrift } from "../../src/render/security.ts";
import { isSubset } from "../../src/controller/status.ts";

function deployment(podSpec: Record<string, unknown>) {
  return { kind: "Deployment", spec: { template: { spec: podSpec } } };
}

const desired = deployment(
  hardenPodSpec({
    securityContext: { runAsNonRoot: true, runAsUser: 1000 },
    containers: [
      {
        name: "vllm",
        image: "vllm/vllm-openai",
        securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] } },
      },
    ],
  }) as unknown as Record<string, unknown>,
);

/** The live object as the API server stores our apply: false plain bools and empty lists dropped. */
const stored = deployment({
  automountServiceAccountToken: false,
  securityContext: { runAsNonRoot: true, runAsUser: 1000 },
  containers: [
    {
      name: "vllm",
      image: "vllm/vllm-openai",
      securityContext: {
        privileged: false,
        allowPrivilegeEscalation: false,
        capabilities: { drop: ["ALL"] },
      },
    },
  ],
});

describe("hardenPodSpec", () => {
  test("keeps the renderer's values and adds the missing ones", () => {
    const spec = hardenPodSpec({
      containers: [{ name: "a", securityContext: { capabilities: { add: ["NET_BIND_SERVICE"] } } }],
    });
    assert.equal(spec.hostNetwork, false);
    assert.equal(spec.automountServiceAccountToken, false);
    assert.deepEqual(spec.containers[0]!.securityContext, {
      privileged: false,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ["ALL"], add: ["NET_BIND_SERVICE"] },
    });
  });
});

describe("securityDrift", () => {
  test("the object as stored is no drift, and not a difference that re-applies forever", () => {
    assert.deepEqual(securityDrift(desired, stored), []);
    assert.ok(isSubset(asStored(desired), stored));
    assert.ok(!isSubset(desired, stored), "without asStored, hostNetwork:false never matches");
  });

  test("a hand patch making the pod privileged is listed field by field", () => {
    const patched = structuredClone(stored) as unknown as {
      spec: {
        template: {
          spec: Record<string, unknown> & {
            containers: { securityContext: Record<string, unknown> }[];
          };
        };
      };
    };
    const pod = patched.spec.template.spec;
    pod.hostNetwork = true;
    pod.automountServiceAccountToken = true;
    const sc = pod.containers[0]!.securityContext;
    sc.privileged = true;
    sc.allowPrivilegeEscalation = true;
    sc.capabilities = { drop: ["ALL"], add: ["SYS_ADMIN"] };
    assert.deepEqual(securityDrift(desired, patched), [
      "spec.template.spec.hostNetwork: true -> false",
      "spec.template.spec.automountServiceAccountToken: true -> false",
      "spec.template.spec.containers[vllm].securityContext.allowPrivilegeEscalation: true -> false",
      'spec.template.spec.containers[vllm].securityContext.capabilities.add: ["SYS_ADMIN"] -> []',
      "spec.template.spec.containers[vllm].securityContext.privileged: true -> false",
    ]);
    assert.ok(!isSubset(asStored(desired), patched), "the drift triggers an apply");
  });

  test("a removed pod security context field is drift too", () => {
    const patched = structuredClone(stored);
    delete (patched.spec.template.spec.securityContext as Record<string, unknown>).runAsNonRoot;
    assert.deepEqual(securityDrift(desired, patched), [
      "spec.template.spec.securityContext.runAsNonRoot: unset -> true",
    ]);
  });
});

describe("foreignEntries", () => {
  test("a hand-replaced Service port: the ports list goes back whole", async () => {
    const { foreignEntries } = await import("../../src/controller/foreign.ts");
    const want = { spec: { ports: [{ name: "http", port: 8000, protocol: "TCP" }] } };
    const live = { spec: { ports: [{ name: "http", port: 9999, protocol: "TCP" }] } };
    assert.deepEqual(foreignEntries("Service", want, live), {
      patch: { spec: { ports: want.spec.ports } },
      removed: ["spec.ports[9999/TCP]"],
    });
    assert.equal(foreignEntries("Service", want, want), undefined);
  });
  test("a hand-added sidecar and init container are removed; ours stay", async () => {
    const { foreignEntries } = await import("../../src/controller/foreign.ts");
    const ours = { name: "vllm", image: "vllm" };
    const want = {
      spec: { template: { spec: { containers: [ours], volumes: [{ name: "tmp" }] } } },
    };
    const live = {
      spec: {
        template: {
          spec: {
            containers: [ours, { name: "sidecar", securityContext: { privileged: true } }],
            initContainers: [{ name: "init" }],
            volumes: [{ name: "tmp" }],
          },
        },
      },
    };
    const f = foreignEntries("Deployment", want, live);
    assert.deepEqual(f?.removed, [
      "spec.template.spec.containers[sidecar]",
      "spec.template.spec.initContainers[init]",
    ]);
    assert.deepEqual(f?.patch, {
      spec: { template: { spec: { containers: [ours], initContainers: null } } },
    });
  });
});
