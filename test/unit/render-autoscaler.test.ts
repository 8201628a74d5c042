import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { parseResource } from "../../src/api/validate.ts";
import { plan } from "../../src/planner/plan.ts";
import { renderAll } from "../../src/render/index.ts";
import { targetModel } from "../../src/autoscale/model.ts";

function msd(autoscaling: Record<string, unknown>) {
  return parseResource({
    apiVersion: "serving.mistralsmall.dev/v1alpha1",
    kind: "MistralSmallDeployment",
    metadata: { name: "m", namespace: "ai", uid: "u1" },
    spec: { gpu: { type: "a100-80gb" }, replicas: 2, autoscaling },
  });
}

type Obj = {
  kind: string;
  spec: Record<string, unknown>;
  metadata: { ownerReferences?: unknown[] };
};
const kinds = (m: ReturnType<typeof msd>) => renderAll(m, plan(m.spec)).map((o) => o.kind);

describe("hpa and keda modes", () => {
  test("builtin or disabled autoscaling emits neither an HPA nor a ScaledObject", () => {
    assert.ok(!kinds(msd({})).includes("HorizontalPodAutoscaler"));
    assert.ok(!kinds(msd({ enabled: true, maxReplicas: 3 })).includes("HorizontalPodAutoscaler"));
    assert.ok(!kinds(msd({ enabled: false, mode: "hpa" })).includes("HorizontalPodAutoscaler"));
  });

  test("mode hpa: autoscaling/v2 HPA on the MSD scale subresource with the plan's target", () => {
    const m = msd({
      enabled: true,
      mode: "hpa",
      minReplicas: 1,
      maxReplicas: 5,
      scaleDown: { stabilizationWindowSeconds: 300 },
    });
    const p = plan(m.spec);
    const hpa = renderAll(m, p).find((o) => o.kind === "HorizontalPodAutoscaler") as unknown as Obj;
    assert.deepEqual(hpa.spec.scaleTargetRef, {
      apiVersion: "serving.mistralsmall.dev/v1alpha1",
      kind: "MistralSmallDeployment",
      name: "m",
    });
    assert.equal(hpa.spec.maxReplicas, 5);
    const metric = (
      hpa.spec.metrics as { pods: { metric: { name: string }; target: { averageValue: string } } }[]
    )[0]!;
    assert.equal(metric.pods.metric.name, "vllm_generation_tokens_per_second");
    assert.equal(metric.pods.target.averageValue, String(targetModel(p).tokensPerSecond));
    const behavior = hpa.spec.behavior as { scaleDown: { stabilizationWindowSeconds: number } };
    assert.equal(behavior.scaleDown.stabilizationWindowSeconds, 300);
    assert.equal(hpa.metadata.ownerReferences?.length, 1);
  });

  test("mode keda: a ScaledObject with Prometheus triggers on the vLLM metrics", () => {
    const m = msd({
      enabled: true,
      mode: "keda",
      targetGenerationTokensPerSecond: 900,
      prometheusUrl: "http://prom.monitoring:9090",
    });
    const so = renderAll(m, plan(m.spec)).find((o) => o.kind === "ScaledObject") as unknown as Obj;
    const triggers = so.spec.triggers as {
      type: string;
      metadata: { serverAddress: string; query: string; threshold: string };
    }[];
    assert.equal(triggers[0]!.metadata.serverAddress, "http://prom.monitoring:9090");
    assert.equal(triggers[0]!.metadata.threshold, "900");
    assert.match(
      triggers[0]!.metadata.query,
      /rate\(vllm:generation_tokens_total\{namespace="ai",model_name="mistral-small-4"\}\[1m\]\)/,
    );
    assert.match(triggers[1]!.metadata.query, /vllm:num_requests_waiting\{/);
    assert.equal(so.spec.minReplicaCount, 1);
  });
});
