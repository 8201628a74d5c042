import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { renderReadme, sizingTable } from "../../src/api/docs.ts";

const README = readFileSync(new URL("../../README.md", import.meta.url), "utf8");

test("the README's field reference and sizing table are what `npm run gen` produces", () => {
  assert.equal(
    README,
    renderReadme(README),
    "README drifted from the schema or planner: run npm run gen",
  );
});

test("the sizing table comes from the planner: A100-80GB FP8 at 32K is TP 2, A100-40GB BF16 at 256K is refused", () => {
  const table = sizingTable();
  assert.match(table, /\| a100-80gb \| fp8 \| 32K \| 2 \| 2 \| 56\.3 GiB \|/);
  assert.match(table, /\| a100-40gb \| bf16 \| 256K \| infeasible \|/);
  assert.equal(table.split("\n").length, 2 + 2 * 5 * 3);
});

test("the field reference lists every spec field the API contract names", () => {
  for (const path of [
    "spec.model.quantization",
    "spec.model.name",
    "spec.model.revision",
    "spec.model.servedModelName",
    "spec.model.tokenSecretRef",
    "spec.model.cache.existingClaim",
    "spec.gpu.type",
    "spec.gpu.tensorParallelSize",
    "spec.maxModelLen",
    "spec.replicas",
    "spec.autoscaling.targetGenerationTokensPerSecond",
    "spec.nodePool.provider",
    "spec.nodePool.karpenter.nodeClassRef",
    "spec.nodePool.static.tolerations",
  ]) {
    assert.ok(README.includes(`| \`${path}\` |`), path);
  }
});

test("the troubleshooting table lists every reason a condition can carry", async () => {
  const { REASONS } = await import("../../src/controller/status.ts");
  // Converged/AsExpected are the healthy Progressing/Degraded reasons.
  const healthy = new Set(["Converged", "AsExpected"]);
  for (const reason of Object.values(REASONS)) {
    if (healthy.has(reason)) continue;
    assert.ok(
      README.includes(`| \`${reason}\` |`),
      `README's troubleshooting table lacks ${reason}`,
    );
  }
});
