import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { parseResource, ValidationError } from "../../src/api/validate.ts";
import type { MistralSmallDeployment } from "../../src/api/schema.ts";
import { clientAccess, computeStatus } from "../../src/controller/status.ts";
import { deploymentOf, resource } from "./msd-fixtures.ts";

function envOf(msd: MistralSmallDeployment) {
  return deploymentOf(msd).spec!.template.spec!.containers[0]!.env!;
}

describe("spec.access.apiKeySecretRef", () => {
  const keyed = parseResource(
    resource({ access: { apiKeySecretRef: { name: "vllm-key", key: "token" } } }),
  );

  test("renders VLLM_API_KEY from the Secret, never inlined", () => {
    const vars = envOf(keyed).filter((e) => e.name === "VLLM_API_KEY");
    assert.equal(vars.length, 1);
    assert.equal(vars[0]!.value, undefined);
    assert.deepEqual(vars[0]!.valueFrom, { secretKeyRef: { name: "vllm-key", key: "token" } });
  });

  test("the key defaults to VLLM_API_KEY", () => {
    const msd = parseResource(resource({ access: { apiKeySecretRef: { name: "vllm-key" } } }));
    assert.deepEqual(msd.spec.access.apiKeySecretRef, { name: "vllm-key", key: "VLLM_API_KEY" });
  });

  test("no VLLM_API_KEY and no --api-key without the field", () => {
    const open = parseResource(resource());
    assert.ok(!envOf(open).some((e) => e.name === "VLLM_API_KEY"));
    const args = deploymentOf(open).spec!.template.spec!.containers[0]!.args!;
    assert.ok(!args.some((a) => a.startsWith("--api-key")));
  });

  test("the key never reaches the command line (vLLM reads the variable)", () => {
    const args = deploymentOf(keyed).spec!.template.spec!.containers[0]!.args!;
    assert.ok(!args.some((a) => a.startsWith("--api-key")));
  });

  test("a new key Secret rolls the pods (the template hash changes)", () => {
    const hash = (m: MistralSmallDeployment) =>
      deploymentOf(m).spec!.template.metadata!.annotations![
        "serving.mistralsmall.dev/template-hash"
      ];
    const other = parseResource(
      resource({ access: { apiKeySecretRef: { name: "other-key", key: "token" } } }),
    );
    assert.notEqual(hash(keyed), hash(other));
    assert.notEqual(hash(keyed), hash(parseResource(resource())));
  });

  test("a bad Secret name or key is refused with its path", () => {
    for (const ref of [{ name: "Bad_Name" }, { name: "ok", key: "no spaces" }]) {
      assert.throws(
        () => parseResource(resource({ access: { apiKeySecretRef: ref } })),
        (err: unknown) =>
          err instanceof ValidationError &&
          err.problems.some((p) => p.path.startsWith("spec.access.apiKeySecretRef")),
      );
    }
  });

  test("--api-key in extraArgs is refused, pointing at the field", () => {
    assert.throws(
      () => parseResource(resource({ engine: { extraArgs: ["--api-key=secret"] } })),
      /extraArgs must not set flags the operator manages/,
    );
  });
});

describe("status.access", () => {
  test("names the served model and the key's Secret", () => {
    const msd = parseResource(
      resource({
        model: { servedModelName: "small" },
        access: { apiKeySecretRef: { name: "vllm-key", key: "token" } },
      }),
    );
    assert.deepEqual(clientAccess(msd), {
      servedModelName: "small",
      authentication: "bearer",
      apiKeySecretRef: { name: "vllm-key", key: "token" },
    });
  });

  test("says the API is open without a key", () => {
    const msd = parseResource(resource());
    assert.deepEqual(clientAccess(msd), {
      servedModelName: msd.spec.model.servedModelName,
      authentication: "none",
    });
  });

  test("computeStatus writes it next to the endpoint", () => {
    const msd = parseResource(resource());
    const s = computeStatus(
      {
        generation: 1,
        desiredReplicas: 1,
        pods: [],
        selector: "a=b",
        endpoint: "http://small.ml.svc:8000/v1",
        access: clientAccess(msd),
      },
      undefined,
      "2026-01-01T00:00:00Z",
    );
    assert.equal(s.endpoint, "http://small.ml.svc:8000/v1");
    assert.equal(s.access?.authentication, "none");
  });
});
