import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { slimEvent, slimPod, type SlimEvent, type SlimPod } from "../../src/controller/cached.ts";
import { observeCache } from "../../src/controller/model-cache.ts";

/** A loader pod as the API server returns it: spec and all. */
function fullPod(): SlimPod & { spec: Record<string, unknown> } {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name: "loader-x",
      namespace: "default",
      labels: { "batch.kubernetes.io/job-name": "loader" },
    },
    spec: {
      nodeName: "cpu-0",
      containers: [{ name: "loader", image: "python:3.12", args: ["--a", "b"] }],
      volumes: [{ name: "cache", persistentVolumeClaim: { claimName: "c" } }],
    },
    status: {
      phase: "Running",
      podIP: "10.0.0.7",
      startTime: "2026-12-02T03:00:00Z",
      conditions: [{ type: "Ready", status: "True" }],
      containerStatuses: [
        {
          name: "loader",
          ready: true,
          restartCount: 0,
          image: "python:3.12",
          imageID: "",
          state: { waiting: { reason: "ContainerCreating" } },
        },
      ],
      hostIP: "10.1.0.1",
      qosClass: "Burstable",
    } as SlimPod["status"],
  };
}

describe("cached projections", () => {
  test("slimPod keeps the node, phase, IP, start time, conditions and container states only", () => {
    const slim = slimPod(fullPod());
    assert.deepEqual(slim.spec, { nodeName: "cpu-0" });
    assert.deepEqual(Object.keys(slim.status ?? {}).sort(), [
      "conditions",
      "containerStatuses",
      "phase",
      "podIP",
      "startTime",
    ]);
    assert.equal(slim.metadata.name, "loader-x");
  });

  test("a running loader whose container reports no start time is downloading since the pod's", () => {
    const phase = observeCache({
      source: "hub",
      job: { metadata: { name: "loader" }, status: { active: 1 } },
      pods: [slimPod(fullPod())],
      revision: "r1",
      expectedBytes: 1,
    });
    assert.deepEqual(phase, {
      phase: "Downloading",
      expectedBytes: 1,
      since: "2026-12-02T03:00:00Z",
    });
  });

  test("slimEvent keeps whom an event is about, why and when, and nothing else", () => {
    const e = {
      apiVersion: "v1",
      kind: "Event",
      metadata: { name: "p.1", namespace: "default", resourceVersion: "9", uid: "u" },
      involvedObject: { kind: "Pod", name: "p", namespace: "default" },
      reason: "FailedScheduling",
      message: "no nodes",
      lastTimestamp: "2026-12-02T03:00:00Z",
      source: { component: "karpenter" },
      count: 3,
    } as SlimEvent;
    assert.deepEqual(slimEvent(e), {
      apiVersion: "v1",
      kind: "Event",
      metadata: { name: "p.1", namespace: "default", resourceVersion: "9" },
      involvedObject: { kind: "Pod", name: "p", namespace: "default" },
      reason: "FailedScheduling",
      message: "no nodes",
      lastTimestamp: "2026-12-02T03:00:00Z",
      eventTime: undefined,
      firstTimestamp: undefined,
    });
  });
});
