/**
 * What the operator's caches hold of the kinds it watches but does not own: pods and
 * Karpenter's events, projected before caching (the informer's transform) to what is read.
 * The projection's type is the cache's type, so a reader cannot reach for a dropped field.
 */
import type { CoreV1Event, V1PodSpec, V1PodStatus } from "@kubernetes/client-node";
import type { KubeObject, Wire } from "../kube/objects.ts";
import { selectorLabels } from "../render/names.ts";
import type { LoaderPodView } from "./model-cache.ts";
import type { PodView } from "./status.ts";

/** A pod as cached: its metadata, its node and the status fields status.ts and model-cache.ts read. */
export interface SlimPod extends KubeObject {
  spec?: Pick<Wire<V1PodSpec>, "nodeName"> | undefined;
  status?:
    | Pick<Wire<V1PodStatus>, "phase" | "podIP" | "startTime" | "conditions" | "containerStatuses">
    | undefined;
}

/**
 * The pods of a resource's model server: in its namespace and carrying its selector labels
 * (src/render/names.ts), whichever their state.
 */
export function podsOfResource<P extends KubeObject>(pods: readonly P[], msd: KubeObject): P[] {
  const labels = Object.entries(selectorLabels(msd));
  return pods.filter(
    (p) =>
      p.metadata.namespace === msd.metadata.namespace &&
      labels.every(([k, v]) => p.metadata.labels?.[k] === v),
  );
}

/**
 * Pods are only read for their phase, conditions, container states, start time, IP and node:
 * the rest (the whole pod spec) is dropped before caching, which keeps memory flat at 500
 * resources.
 */
export function slimPod(pod: SlimPod): SlimPod {
  const { spec, status } = pod;
  return {
    apiVersion: pod.apiVersion,
    kind: pod.kind,
    metadata: pod.metadata,
    spec: spec?.nodeName === undefined ? {} : { nodeName: spec.nodeName },
    status: {
      phase: status?.phase,
      podIP: status?.podIP,
      startTime: status?.startTime,
      conditions: status?.conditions,
      containerStatuses: status?.containerStatuses,
    },
  };
}

type Assert<T extends true> = T;
type StatusKeys<V extends { status?: unknown }> = keyof NonNullable<V["status"]>;
/**
 * Fails to compile when status.ts or model-cache.ts reads a pod status field the projection
 * drops (the loader's startTime once was: its fallback never saw a value).
 */
export type SlimPodKeepsWhatViewsRead = Assert<
  [Exclude<StatusKeys<PodView> | StatusKeys<LoaderPodView>, StatusKeys<SlimPod>>] extends [never]
    ? true
    : false
>;

type EventFields =
  | "involvedObject"
  | "reason"
  | "message"
  | "lastTimestamp"
  | "eventTime"
  | "firstTimestamp";

/** A core/v1 Event as cached: whom it is about, why, and when. */
export interface SlimEvent extends KubeObject, Partial<Pick<Wire<CoreV1Event>, EventFields>> {}

/** Karpenter's events keep only what status quotes: whom they are about, why, and when. */
export function slimEvent(e: SlimEvent): SlimEvent {
  return {
    apiVersion: e.apiVersion,
    kind: e.kind,
    metadata: {
      name: e.metadata.name,
      ...(e.metadata.namespace === undefined ? {} : { namespace: e.metadata.namespace }),
      ...(e.metadata.resourceVersion === undefined
        ? {}
        : { resourceVersion: e.metadata.resourceVersion }),
    },
    involvedObject: e.involvedObject,
    reason: e.reason,
    message: e.message,
    lastTimestamp: e.lastTimestamp,
    eventTime: e.eventTime,
    firstTimestamp: e.firstTimestamp,
  };
}
