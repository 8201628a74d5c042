import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { GPU_CATALOG, GPU_TYPES } from "../../src/catalog/gpus.ts";
import {
  GPU_SHAPES,
  GpuCloudError,
  ZONES,
  gpuCloudInstanceTypes,
  type GpuShape,
} from "../../src/cluster/gpu-cloud.ts";
import { karpenterAwsGpuRequirements } from "../../src/render/scheduling.ts";

const types = gpuCloudInstanceTypes();
const byName = new Map(types.map((t) => [t.name, t]));

function offeringLabels(name: string): Map<string, string> {
  const it = byName.get(name)!;
  return new Map(it.offerings[0]!.Requirements.map((r) => [r.key, r.values[0]]));
}

describe("the fake GPU cloud", () => {
  test("has a shape for every instance type the catalog names, and every GPU type", () => {
    for (const t of GPU_TYPES) {
      for (const name of GPU_CATALOG[t].instanceTypes) assert.ok(byName.has(name), name);
      assert.ok(
        GPU_SHAPES.some((s) => s.gpuType === t),
        t,
      );
    }
  });

  test("refuses to generate when the catalog names a shape it lacks", () => {
    const without = GPU_SHAPES.filter((s) => s.name !== "p4de.24xlarge");
    assert.throws(() => gpuCloudInstanceTypes(without), GpuCloudError);
  });

  test("sells 1-, 2-, 4- and 8-GPU A100-80GB and H100 machines", () => {
    for (const t of ["a100-80gb", "h100-80gb"] as const) {
      const counts = new Set(GPU_SHAPES.filter((s) => s.gpuType === t).map((s) => s.gpus));
      assert.deepEqual([...counts].sort(), [1, 2, 4, 8]);
    }
  });

  test("every offering carries the labels the NodePool and pod affinity select on", () => {
    for (const s of GPU_SHAPES) {
      const labels = offeringLabels(s.name);
      for (const r of karpenterAwsGpuRequirements(GPU_CATALOG[s.gpuType])) {
        assert.deepEqual([labels.get(r.key)], r.values, `${s.name} ${r.key}`);
      }
      assert.equal(labels.get("karpenter.k8s.aws/instance-gpu-count"), String(s.gpus));
    }
  });

  test("40GB and 80GB A100 machines differ in the label a TP 2 A100-80GB pool requires", () => {
    assert.equal(
      offeringLabels("p4d.24xlarge").get("karpenter.k8s.aws/instance-gpu-memory"),
      "40960",
    );
    assert.equal(
      offeringLabels("p4de.24xlarge").get("karpenter.k8s.aws/instance-gpu-memory"),
      "81920",
    );
  });

  test("resources: cpu, memory, pods and nvidia.com/gpu as sold", () => {
    assert.deepEqual(byName.get("p4de.24xlarge")!.resources, {
      cpu: "96",
      memory: "1152Gi",
      pods: "110",
      "ephemeral-storage": "2Ti",
      "nvidia.com/gpu": "8",
    });
  });

  test("on-demand in every zone, spot cheaper in two", () => {
    const it = byName.get("p5.48xlarge")!;
    const of = (ct: string) =>
      it.offerings.filter((o) =>
        o.Requirements.some((r) => r.key === "karpenter.sh/capacity-type" && r.values[0] === ct),
      );
    assert.equal(of("on-demand").length, ZONES.length);
    assert.equal(of("spot").length, 2);
    const shape = GPU_SHAPES.find((s) => s.name === "p5.48xlarge") as GpuShape;
    assert.ok(of("spot").every((o) => o.Price < shape.onDemandUsdPerHour));
  });
});
